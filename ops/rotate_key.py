"""Rotate the login-token key: ``make rotate-login-key [EMERGENCY=1] [SHOW_KEY=1] [LOCAL=1]``.

    python -m ops.rotate_key [--emergency] [--show-key] [--local | --stack-name NAME]

The login-token key is the one secret the bridge shares with your platform: the platform signs login tokens
with it, ``make link`` signs email links with it, and the bridge verifies both. A rotation puts a new random
256-bit key into the login-token secret (``PutSecretValue``): Secrets Manager labels it ``AWSCURRENT`` and
moves ``AWSPREVIOUS`` to the key in use until now.

Routine: a function whose cached key fails a signature fetches the current key again (at most every
``REFRESH_SECONDS``, 10 s), so tokens signed with the new key work at once; the old key is still accepted for
``LOGIN_TOKEN_PREVIOUS_KEY_GRACE`` seconds after the new version was created. The platform switches to the new
key any time in between, and nobody is signed out.

``--emergency``: the key in use until now is presumed leaked. Once the new key is in, the ``AWSPREVIOUS``
label is removed from the old version (``UpdateSecretVersionStage``), so there is no previous key: tokens and
email links signed with the old key are refused as soon as the functions' caches expire, and sign-ins fail
until the platform signs with the new key.

The key is printed only with ``--show-key``: it is then the only thing on stdout (the report goes to stderr),
so it can be piped into the platform's secret store. Otherwise read it with
``aws secretsmanager get-secret-value`` (the report says the command).

Exit status: 0 rotated, 2 usage error, 3 the bridge's resources cannot be reached or the rotation failed (the
message says in what state the secret was left).
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NoReturn, TextIO

from local.template import FunctionSpec, functions
from ops.target import EXIT_TARGET, EXIT_USAGE, Target, TargetError, add_target_arguments, aws_errors, resolve
from sso_bridge.secrets import REFRESH_SECONDS
from sso_bridge.settings import LINK_TTL_MAX

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

__all__ = ["KEY_BYTES", "Rotation", "main", "new_key", "report", "rotate"]

KEY_BYTES = 32  # 256 bits: RFC 7518's minimum for an HS256 key
CURRENT, PREVIOUS = "AWSCURRENT", "AWSPREVIOUS"
MAX_AGE_SETTING = "SECRETS_MAX_AGE"
MAX_AGE_DEFAULT = 300  # the layer's default (sso_bridge.settings)
GRACE_SETTING = "LOGIN_TOKEN_PREVIOUS_KEY_GRACE"


def new_key() -> str:
    """A random 256-bit key as 43 base64url characters (no padding): printable, and no shell quoting needed."""
    return secrets.token_urlsafe(KEY_BYTES)


@dataclass(frozen=True)
class Rotation:
    """What a rotation did; never the key."""

    secret_name: str
    version_id: str  # the new key's version, AWSCURRENT
    created_at: int  # its CreatedDate: the bridge's grace for the previous key counts from it
    replaced_version_id: str | None  # AWSCURRENT until now
    previous_version_id: str | None  # AWSPREVIOUS now: the replaced key, None after an emergency rotation
    emergency: bool


@dataclass(frozen=True)
class Timing:
    """The bridge's two clocks for a rotation, in seconds."""

    max_age: int  # SECRETS_MAX_AGE: how long a function may verify with a key it fetched
    max_age_known: bool  # False: the target does not say, so the layer's default
    grace: int  # LOGIN_TOKEN_PREVIOUS_KEY_GRACE: how long after the rotation the previous key is accepted


def _labels(client: SecretsManagerClient, secret_id: str) -> tuple[str, dict[str, list[str]]]:
    described = client.describe_secret(SecretId=secret_id)
    stages = {version: list(labels) for version, labels in described.get("VersionIdsToStages", {}).items()}
    return described.get("Name", secret_id), stages


def _holder(stages: Mapping[str, Sequence[str]], label: str) -> str | None:
    return next((version for version, labels in stages.items() if label in labels), None)


def rotate(
    client: SecretsManagerClient,
    secret_id: str,
    *,
    emergency: bool = False,
    key: str | None = None,
    where: str = "the bridge",
    cli: str = "aws",
) -> tuple[Rotation, str]:
    """Put a new key (``key``, else a random one) as ``AWSCURRENT``; with ``emergency``, leave no ``AWSPREVIOUS``.

    Returns what was done and the key. Failures are ``TargetError`` lines saying whether the secret changed;
    ``where`` names the bridge in them, ``cli`` starts the ``aws`` command they suggest (``aws --endpoint-url
    ...`` for the local stack).
    """
    key = key or new_key()
    token = str(uuid.uuid4())  # the new version's id; retries of the same put are idempotent
    with aws_errors(f"cannot read the login-token secret of {where}, nothing changed"):
        name, before = _labels(client, secret_id)
    replaced = _holder(before, CURRENT)
    with aws_errors(f"cannot put a new key into {name} ({where}), the key is unchanged unless version {token} exists"):
        version_id = client.put_secret_value(SecretId=secret_id, SecretString=key, ClientRequestToken=token).get(
            "VersionId", token
        )
    put_at = int(time.time())
    previous = replaced
    if emergency:
        _drop_previous(client, secret_id, name, version_id, cli=cli)
        previous = None
    return Rotation(
        secret_name=name,
        version_id=version_id,
        created_at=_created_at(client, secret_id, version_id, default=put_at),
        replaced_version_id=replaced,
        previous_version_id=previous,
        emergency=emergency,
    ), key


def _drop_previous(client: SecretsManagerClient, secret_id: str, name: str, version_id: str, *, cli: str) -> None:
    """Remove ``AWSPREVIOUS`` from whichever version holds it after the put (the replaced one, barring a race)."""
    held_by: str | None = None
    try:
        with aws_errors(f"cannot remove {PREVIOUS} from the old key of {name}"):
            _, after = _labels(client, secret_id)
            held_by = _holder(after, PREVIOUS)
            if held_by is not None:
                client.update_secret_version_stage(
                    SecretId=secret_id, VersionStage=PREVIOUS, RemoveFromVersionId=held_by
                )
            _, after = _labels(client, secret_id)
        left = _holder(after, PREVIOUS)
        if left is not None:
            held_by = left
            raise TargetError(f"version {left} of {name} is still {PREVIOUS} (another rotation at the same time?)")
    except TargetError as exc:
        command = f"{cli} secretsmanager update-secret-version-stage --secret-id {name} --version-stage {PREVIOUS}"
        command += f" --remove-from-version-id {held_by or '<the AWSPREVIOUS version>'}"
        raise TargetError(
            f"{exc}; the new key is current (version {version_id}) but the OLD KEY IS STILL ACCEPTED: run `{command}`"
        ) from exc


def _created_at(client: SecretsManagerClient, secret_id: str, version_id: str, *, default: int) -> int:
    """The new version's ``CreatedDate`` (what the bridge counts the grace from); ``default`` if unreadable."""
    try:
        with aws_errors("cannot read the new version"):
            created = client.get_secret_value(SecretId=secret_id, VersionId=version_id).get("CreatedDate")
    except TargetError:
        return default  # the rotation is done; the time of the put is within seconds of it
    return int(created.timestamp()) if created is not None else default


# --- what the bridge does with it ---------------------------------------------------------------------------


def _template_value(specs: Sequence[FunctionSpec], variable: str) -> str | None:
    """A literal the template gives ``variable`` (a deployed stack's functions have it unless set by hand)."""
    for spec in specs:
        value = spec.environment.get(variable)
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
    return None


def _seconds(target: Target, variable: str, specs: Sequence[FunctionSpec]) -> int | None:
    return target.seconds(variable, _template_value(specs, variable))


def timing(target: Target) -> Timing:
    """``SECRETS_MAX_AGE`` and the previous key's grace as ``target`` runs them, read before anything changes.

    The grace defaults to the link lifetime cap (``LINK_TOKEN_MAX_TTL``), as in the layer's settings: every
    email link sent before a rotation keeps working.
    """
    specs = functions()
    max_age = _seconds(target, MAX_AGE_SETTING, specs)
    grace = _seconds(target, GRACE_SETTING, specs)
    return Timing(
        max_age=MAX_AGE_DEFAULT if max_age is None else max_age,
        max_age_known=max_age is not None,
        grace=min(grace, LINK_TTL_MAX) if grace is not None else target.link_max_ttl,
    )


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def report(rotation: Rotation, clock: Timing, *, where: str, cli: str = "aws", key_shown: bool = False) -> list[str]:
    """The lines an operator reads after a rotation: what changed, until when the old key works, what next."""
    name, created = rotation.secret_name, rotation.created_at
    caches = f"{MAX_AGE_SETTING} {clock.max_age} s" if clock.max_age_known else f"{MAX_AGE_SETTING}, 300 s by default"
    switched = _iso(created + clock.max_age)
    kind = " (emergency)" if rotation.emergency else ""
    lines = [
        f"rotated the login-token key of {where}{kind}: secret {name}, new version {rotation.version_id} "
        f"({CURRENT} since {_iso(created)})"
    ]
    if rotation.emergency:
        old = f" (version {rotation.replaced_version_id})" if rotation.replaced_version_id else ""
        lines += [
            f"no previous key: the old key{old} is no longer {PREVIOUS}; login tokens and email links signed with it "
            f"are refused once the functions' caches expire, by {switched} ({caches})",
            "next: give the platform the new key NOW: it must sign with it from now on (sign-ins fail until it "
            f"does, and a few may until {switched}); mint again the email links still to be clicked (make link)",
        ]
    elif rotation.previous_version_id is None:
        lines += [
            f"no previous key (the secret had no {CURRENT} version); the functions use the new key by {switched} "
            f"({caches})",
            "next: give the platform the new key: it must sign with it from now on",
        ]
    elif clock.grace == 0:
        lines += [
            f"the old key (version {rotation.previous_version_id}, now {PREVIOUS}) is refused once the functions' "
            f"caches expire, by {switched} ({GRACE_SETTING} is 0; {caches}); so are email links signed with it",
            "next: give the platform the new key NOW: it must sign with it from now on; mint again the email links "
            "still to be clicked (make link)",
        ]
    else:
        retired = _iso(created + clock.grace)
        lines += [
            f"the old key (version {rotation.previous_version_id}, now {PREVIOUS}) stays valid until {retired} "
            f"({GRACE_SETTING} {clock.grace} s), and so do email links signed with it",
            f"the functions accept the new key at once (a failed signature makes them fetch it again, at most every "
            f"{REFRESH_SECONDS} s) and use it first by {switched} ({caches})",
            f"next: give the platform the new key: it can sign with it now, and must before {retired}, when the old "
            "key is refused",
        ]
    if key_shown:
        lines.append("the new key is on stdout, once: hand it to the platform over a secure channel, keep no copy")
    else:
        lines.append(
            f"read the key with `{cli} secretsmanager get-secret-value --secret-id {name} "
            "--query SecretString --output text`"
        )
    return lines


# --- command ------------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line (no usage block), status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m ops.rotate_key",
        description="Put a new random login-token key; the platform must then sign with it.",
        epilog="Exit status: 0 rotated, 2 usage error, 3 the bridge's resources unreachable or the rotation failed.",
    )
    parser.add_argument(
        "--emergency",
        action="store_true",
        help="the current key leaked: keep no previous key; tokens signed with it are refused once caches expire",
    )
    parser.add_argument(
        "--show-key", action="store_true", help="print the new key on stdout (the report goes to stderr)"
    )
    add_target_arguments(parser, default_stack="sso-bridge")
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        target = resolve(args.local, args.stack_name)
        secret_id = target.resource("LOGIN_TOKEN_SECRET_ID")
        clock = timing(target)  # a bad setting stops here, before anything changes
        cli = f"aws --endpoint-url {target.endpoint_url}" if target.endpoint_url else "aws"
        rotation, key = rotate(
            target.secretsmanager(), secret_id, emergency=args.emergency, where=target.where, cli=cli
        )
    except TargetError as exc:
        print(f"{parser.prog}: error: {exc}", file=err)
        return EXIT_TARGET
    lines = report(rotation, clock, where=target.where, cli=cli, key_shown=args.show_key)
    if args.show_key:
        print("\n".join(lines), file=err)
        print(key, file=out)
    else:
        print("\n".join(lines), file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
