"""Print the public key to paste into a vendor: ``make vendor-public-key PROVIDER=freshworks [LOCAL=1]``.

    python -m ops.vendor_public_key --provider freshworks [--local | --stack-name NAME]

Freshworks verifies the bridge's id_tokens (RS256) with a public key its admin pastes into the SSO settings; the
bridge signs with the private half, kept in the vendor's secret (``FreshworksSecretArn``). This reads that secret
from the deployed stack (or the local one, ``--local``), derives the public key and prints it as PEM
(SubjectPublicKeyInfo, ``-----BEGIN PUBLIC KEY-----``): alone on stdout, so ``> freshworks.pub`` keeps only the
key; what it read goes to stderr. The private key is never printed.

A secret that still holds the template's placeholder, or a key the bridge would refuse (not an RSA private key,
shorter than 2048 bits), is one line saying so and how to make and put a key.

Exit status: 0 printed, 2 usage error (no ``PROVIDER``, a provider that signs with a shared secret, a stack without
it), 3 the secret cannot be read or holds no usable key.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn, TextIO

from ops.target import EXIT_TARGET, EXIT_USAGE, Target, TargetError, add_target_arguments, aws_errors, resolve
from ops.vendor_template import vendor_templates
from sso_bridge.secrets import PLACEHOLDER_PREFIX

__all__ = ["MIN_KEY_BITS", "RSA_VENDORS", "PublicKey", "UsageError", "main", "make_key_advice", "public_key"]

# Vendors whose key is an RSA private key (the others share a secret: nothing public to print), and where their
# admin takes the public key.
RSA_VENDORS = {"freshworks": "Freshworks' Security settings (your policy's SSO, JWT: the public key field)"}
MIN_KEY_BITS = 2048  # what the bridge signs with (functions/freshworks/app.py MIN_KEY_BITS)


class UsageError(Exception):
    """Bad arguments, or a provider this bridge cannot print a key for: exit 2."""


@dataclass(frozen=True)
class PublicKey:
    pem: str  # SubjectPublicKeyInfo PEM, with its final newline
    bits: int
    secret_name: str
    version_id: str


def make_key_advice(secret_id: str, cli: str = "aws") -> str:
    """How to make a key and put it into the secret (the private key file is then deleted)."""
    return (
        "make one with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out freshworks.pem`, put it "
        f"with `{cli} secretsmanager put-secret-value --secret-id {secret_id} --secret-string file://freshworks.pem`, "
        "delete freshworks.pem, then run this again"
    )


def public_key(private_pem: str, *, secret_id: str, cli: str = "aws") -> tuple[str, int]:
    """The SubjectPublicKeyInfo PEM of ``private_pem`` and its size; ``TargetError`` for a key the bridge refuses."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if private_pem.startswith(PLACEHOLDER_PREFIX):
        raise TargetError(
            f"{secret_id} still holds the template's placeholder, not a key: {make_key_advice(secret_id, cli)}"
        )
    try:
        key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    except (ValueError, TypeError) as exc:  # the text says nothing of the key (cryptography never quotes it)
        raise TargetError(
            f"{secret_id} does not hold a PEM private key without a passphrase: {make_key_advice(secret_id, cli)}"
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TargetError(
            f"{secret_id} holds a {type(key).__name__}, not an RSA key: {make_key_advice(secret_id, cli)}"
        )
    if key.key_size < MIN_KEY_BITS:
        raise TargetError(
            f"{secret_id} holds a {key.key_size}-bit RSA key; the bridge signs only with {MIN_KEY_BITS} bits or more: "
            f"{make_key_advice(secret_id, cli)}"
        )
    spki = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return spki.decode(), key.key_size


def _check_served(vendor: str, target: Target) -> None:
    if vendor in target.vendors:
        return
    if target.local:
        raise UsageError(f"the local stack runs without {vendor}: restart `make run` with {vendor} in VENDORS")
    template = vendor_templates().get(vendor)
    switch = template.switch if template is not None else f"Enable{vendor.capitalize()}"
    raise UsageError(
        f"{target.where} has no {vendor}: it was deployed with {switch}=false (redeploy with {switch}=true)"
    )


def read(target: Target, vendor: str) -> PublicKey:
    """The vendor key's public half, read from ``target``'s secret (its current version)."""
    _check_served(vendor, target)
    secret_id = target.vendor_secret_id(vendor)
    cli = f"aws --endpoint-url {target.endpoint_url}" if target.endpoint_url else "aws"
    with aws_errors(f"cannot read the {vendor} key of {target.where}"):
        answer = target.secretsmanager().get_secret_value(SecretId=secret_id)
    name = answer.get("Name") or secret_id
    pem, bits = public_key(answer.get("SecretString") or "", secret_id=name, cli=cli)
    return PublicKey(pem=pem, bits=bits, secret_name=name, version_id=answer.get("VersionId", "?"))


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line (no usage block), status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m ops.vendor_public_key",
        description="Print the public key of a vendor's RSA signing key, to paste into the vendor's SSO settings.",
        epilog="Exit status: 0 printed, 2 usage error, 3 the key cannot be read or is not usable.",
    )
    parser.add_argument("--provider", default="", help=f"the vendor ({', '.join(RSA_VENDORS)})")
    parser.add_argument("--make", action="store_true", help=argparse.SUPPRESS)  # messages name make's variables
    add_target_arguments(parser, default_stack="sso-bridge")
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    parser = _parser()
    args = parser.parse_args(argv)
    option = "PROVIDER" if args.make else "--provider"
    vendor = args.provider.strip().lower()
    try:
        if not vendor:
            raise UsageError(f"{option} is required: {', '.join(RSA_VENDORS)}")
        if vendor not in RSA_VENDORS:
            shown = args.provider.strip()[:40].encode("unicode_escape").decode()
            raise UsageError(
                f"{option} {shown!r} has no RSA key, so no public key to print (it signs with a shared secret, or is "
                f"no vendor); RSA keys: {', '.join(RSA_VENDORS)}"
            )
        key = read(resolve(args.local, args.stack_name), vendor)
    except UsageError as exc:
        print(f"{parser.prog}: error: {exc}", file=err)
        return EXIT_USAGE
    except TargetError as exc:
        print(f"{parser.prog}: error: {exc}", file=err)
        return EXIT_TARGET
    print(
        f"the public half of the {vendor} key in {key.secret_name} (version {key.version_id}, {key.bits} bits); "
        f"paste it into {RSA_VENDORS[vendor]}",
        file=err,
    )
    out.write(key.pem)
    return 0


if __name__ == "__main__":
    sys.exit(main())
