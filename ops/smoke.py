"""Prove a bridge works, deployed or local: ``make smoke [STACK_NAME=...] [LOCAL=1]``.

    python -m ops.smoke [--local] [--stack-name NAME]

For each vendor the stack serves, it mints a one-minute login token for the reserved address ``SMOKE_EMAIL``
with the stack's current login-token key, and calls the vendor's HTTP API route and its function URL as a
browser would, never following a redirect: the redirect must go to the vendor's host carrying a token, which
is never delivered, so no vendor account is ever made. Around that: HEAD mints nothing, every answer carries
HSTS, an unknown path is a JSON 404 when JSON is asked for, the function URL is public (a 403 means its
public-access permissions are missing), the vendor key is no longer the template's placeholder, and the
OpenID provider's discovery document answers when OpenID Connect is on.

One line per check, ``ok`` or ``FAIL`` with the reason and what to do. Nothing secret is printed: no token,
no key, no redirect's query. HappyFox records each token it signs; a smoke sign-in's record says ``smoke``.

Exit status: 0 every check passed, 1 a check failed, 2 usage error, 3 the bridge cannot be reached.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import re
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO
from urllib.parse import parse_qsl, urlencode, urlsplit

from local.mint_login_token import mint
from local.template import functions
from ops.http_probe import Answer, Unreachable, fetch
from ops.target import (
    EXIT_TARGET,
    Target,
    TargetError,
    add_target_arguments,
    aws_errors,
    resolve,
    vendor_secrets,
)
from sso_bridge.jti_store import SMOKE_EMAIL
from sso_bridge.oidc_state import CALLBACK_PATH
from sso_bridge.secrets import PLACEHOLDER_PREFIX

__all__ = [
    "EXIT_FAILED",
    "PROBE_PATH",
    "SMOKE_EMAIL",
    "TOKEN_TTL",
    "Answer",
    "Check",
    "Probe",
    "Unreachable",
    "fetch",
    "main",
    "probe_for",
    "run_checks",
]

EXIT_FAILED = 1
TOKEN_TTL = 60  # seconds: long enough for a cold start, too short to be worth stealing from a log
PROBE_PATH = "/sso-bridge-smoke/no-such-page"  # no route serves it
SMOKE_NAME = "sso-bridge smoke"
_JWT = re.compile(r"^[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}$")
_REDIRECTS = (301, 302, 303, 307, 308)
_STACK = "stack"  # the vendor column of checks about the whole stack


@dataclass(frozen=True)
class Check:
    vendor: str  # or "stack"
    what: str
    problem: str | None = None  # None: passed

    @property
    def ok(self) -> bool:
        return self.problem is None

    def line(self, width: int = 12) -> str:
        status = "ok  " if self.ok else "FAIL"
        text = f"{status} {self.vendor.ljust(width)}  {self.what}"
        return text if self.ok else f"{text}: {self.problem}"


@dataclass(frozen=True)
class Probe:
    """How to sign in at one vendor: its HTTP API route, the query it needs, the host its redirect goes to."""

    vendor: str
    route: str
    query: Mapping[str, str] = field(default_factory=dict)
    host: str | None = None  # None: any host but the bridge's own


def _host(url: str) -> str:
    return (urlsplit(url.strip()).hostname or "").lower()


def _route(vendor: str, template: dict[str, object] | None = None) -> str | None:
    """The vendor function's first GET route on the HTTP API without a path parameter (its sign-in)."""
    for spec in functions(template):
        if spec.code_uri.rstrip("/").rsplit("/", 1)[-1] != vendor:
            continue
        for route in spec.routes:
            if route.method in ("GET", "ANY") and "{" not in route.path and route.path != CALLBACK_PATH:
                return route.path
    return None


def probe_for(vendor: str, settings: Callable[[str], str | None], template: dict[str, object] | None = None) -> Probe:
    """The sign-in to try at ``vendor``, from the stack's own settings (``Target.setting``)."""
    route = _route(vendor, template) or f"/{vendor}/login"
    if vendor == "clickfunnels":
        return Probe(vendor, route, host=(settings("CLICKFUNNELS_WORKSPACE_DOMAIN") or "").strip().lower() or None)
    if vendor == "happyfox":
        return Probe(vendor, route, host=_host(settings("HAPPYFOX_ACCOUNT_URL") or "") or None)
    if vendor == "kustomer":
        # Kustomer sends visitors with the page to return to (kustomerRedirectUri): one of the allowed hosts.
        hosts = [host.strip().lower() for host in (settings("KUSTOMER_REDIRECT_HOSTS") or "").split(",")]
        host = next((host for host in hosts if host), None) or _host(settings("KUSTOMER_PORTAL_URL") or "") or None
        query = {"kustomerRedirectUri": f"https://{host}/"} if host else {}
        return Probe(vendor, route, query, host)
    return Probe(vendor, route)


def _with_query(url: str, query: Mapping[str, str]) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(query)}" if query else url


def _is_token(value: str) -> bool:
    """A JWT by its shape and header (never verified, never printed)."""
    if not _JWT.fullmatch(value):
        return False
    head = value.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (binascii.Error, ValueError):
        return False
    return isinstance(header, dict) and isinstance(header.get("alg"), str) and header["alg"] != "none"


def _reason(answer: Answer) -> str:
    """``answered 503 (vendor_key_unset)``: the status and the bridge's own reason, if it gave one in JSON."""
    payload = answer.json()
    reason = payload.get("reason") or payload.get("message") if isinstance(payload, dict) else None
    if isinstance(reason, str) and re.fullmatch(r"[A-Za-z0-9_ .-]{1,60}", reason):
        return f"answered {answer.status} ({reason})"
    return f"answered {answer.status}"


def redirect_problem(
    answer: Answer, probe: Probe, *, bridge_hosts: Sequence[str], origins: Mapping[str, str]
) -> str | None:
    """Why ``answer`` is not a redirect to ``probe``'s vendor carrying a token; None when it is."""
    if answer.status not in _REDIRECTS:
        return f"{_reason(answer)}, not a redirect"
    location = answer.header("Location") or ""
    parts = urlsplit(location)
    where = f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else "a relative address"
    stand_in = origins.get(probe.host or "")
    if stand_in and f"{parts.scheme}://{parts.netloc}" == stand_in:
        pass  # the local stand-in answering for the vendor's host (make run)
    elif parts.scheme != "https":
        return f"redirects to {where}, not to https://{probe.host or 'the vendor'}"
    elif probe.host and (parts.hostname or "").lower() != probe.host:
        return f"redirects to {where}, not to the vendor's host {probe.host}"
    elif not probe.host and (parts.hostname or "").lower() in bridge_hosts:
        return f"redirects back to the bridge ({where}), not to the vendor: is a login token refused?"
    if not any(_is_token(value) for _, value in parse_qsl(parts.query, keep_blank_values=True)):
        return f"redirects to {where} without a token"
    return None


def head_problem(answer: Answer) -> str | None:
    if answer.header("Location") is not None:
        return f"HEAD {_reason(answer)} with a Location: a HEAD must mint nothing"
    return None


def json_404_problem(answer: Answer) -> str | None:
    if answer.status != 404:
        return f"{_reason(answer)}, not 404"
    if "json" not in (answer.header("Content-Type") or "").lower() or not isinstance(answer.json(), dict):
        return f"404 is {answer.header('Content-Type') or 'untyped'}, not a JSON object"
    return None


def hsts_problem(answers: Mapping[str, Answer]) -> str | None:
    missing = [
        name for name, answer in answers.items() if "max-age=" not in (answer.header("Strict-Transport-Security") or "")
    ]
    return f"no Strict-Transport-Security on the {' and '.join(missing)} answer" if missing else None


def _printable(text: str, limit: int = 120) -> str:
    return "".join(char if char.isprintable() else "?" for char in text)[:limit]


def key_problem(target: Target, vendor: str) -> str | None:
    """Why ``vendor``'s key is not set (the template's placeholder, or empty), with the command that sets it."""
    try:
        secret_id = target.vendor_secret_id(vendor)
        with aws_errors(f"cannot read {vendor}'s key from {target.where}"):
            value = target.secretsmanager().get_secret_value(SecretId=secret_id).get("SecretString") or ""
    except TargetError as exc:
        return str(exc)
    if value and not value.startswith(PLACEHOLDER_PREFIX):
        return None
    hint = value.removeprefix(PLACEHOLDER_PREFIX).strip().removeprefix("with ").strip()
    what = _printable(hint) if hint.startswith("the ") else f"{vendor}'s key"
    state = "the template's placeholder" if value else "nothing"
    region = target.session.region_name or ""
    put = f'put-secret-value --region {shlex.quote(region)} --secret-id {shlex.quote(secret_id)} --secret-string "$KEY"'
    if target.local:
        variable = vendor_secrets().get(vendor, (f"{vendor.upper()}_SECRET_ID", ""))[0]
        seed = variable.removesuffix("_SECRET_ID") + "_JWT_SECRET"  # how `make run` seeds it (local.aws)
        return (
            f'the secret holds {state}; with KEY set to {what}, restart the stack with {seed}="$KEY" make run '
            f"(or: AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local aws --endpoint-url {target.endpoint_url} "
            f"secretsmanager {put})"
        )
    return f"the secret holds {state}; with KEY set to {what}, run: aws secretsmanager {put}"


class _Checks:
    """Collects checks, printing each line as it comes; ``reached`` once any answer came back."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.all: list[Check] = []
        self.reached = False

    def add(self, vendor: str, what: str, problem: str | None) -> None:
        check = Check(vendor, what, problem)
        self.all.append(check)
        print(check.line(), file=self.out, flush=True)


def _call(checks: _Checks, method: str, url: str, **headers: str) -> Answer | str:
    """The answer, or why there is none (never the URL's query: it holds a token)."""
    try:
        answer = fetch(method, url, headers=headers)
    except Unreachable as exc:
        return str(exc)
    checks.reached = True
    return answer


def run_checks(target: Target, out: TextIO, *, template: dict[str, object] | None = None) -> list[Check]:
    """Every check against ``target``, each printed as it completes."""
    checks = _Checks(out)
    key = target.login_token_key()  # TargetError: the caller's exit 3
    vendors = [vendor for vendor in _template_order(template) if vendor in target.vendors]
    api = target.api_url.rstrip("/")
    json_accept = {"Accept": "application/json"}
    bridge_hosts = [_host(url) for url in [api, *target.function_urls.values()] if url]
    if not vendors:
        checks.add(_STACK, "serves a vendor", f"{target.where} has no vendor function URL: deploy a vendor")
    if api:
        answer = _call(checks, "GET", api + PROBE_PATH, **json_accept)
        checks.add(_STACK, "http-api 404 is JSON", answer if isinstance(answer, str) else json_404_problem(answer))
    else:
        checks.add(_STACK, "http-api answers", f"{target.where} has no ApiUrl: deploy the current template.yaml")
    issuer = (target.setting("OIDC_ISSUER") or "").strip().rstrip("/")
    if issuer:
        checks.add(_STACK, "OIDC discovery document reachable", _discovery_problem(checks, issuer))
    for vendor in vendors:
        probe = probe_for(vendor, target.setting, template)

        def token(probe: Probe = probe) -> dict[str, str]:
            return {
                **probe.query,
                "login_token": mint(SMOKE_EMAIL, [probe.vendor], key, name=SMOKE_NAME, ttl=TOKEN_TTL),
            }

        answers: dict[str, Answer] = {}
        if api:
            route = api + probe.route
            answer = _call(checks, "GET", _with_query(route, token()), **json_accept)
            if isinstance(answer, Answer):
                answers["http-api"] = answer
            problem = (
                answer
                if isinstance(answer, str)
                else redirect_problem(answer, probe, bridge_hosts=bridge_hosts, origins=target.vendor_origins)
            )
            checks.add(vendor, "http-api redirect carries a token", problem)
            answer = _call(checks, "HEAD", _with_query(route, token()))
            checks.add(
                vendor, "http-api HEAD mints nothing", answer if isinstance(answer, str) else head_problem(answer)
            )
        url = target.function_urls[vendor]
        url = url if url.endswith("/") else url + "/"
        answer = _call(checks, "GET", _with_query(url, token()), **json_accept)
        if isinstance(answer, str):
            checks.add(vendor, "function URL answers", answer)
        elif answer.status == 403:
            checks.add(
                vendor,
                "function URL answers",
                "403 Forbidden: its public-access permissions are missing (lambda:InvokeFunctionUrl and "
                "lambda:InvokeFunction for everyone, FunctionUrlAuthType NONE): deploy the current template.yaml",
            )
        else:
            answers["function-url"] = answer
            checks.add(vendor, "function URL answers", None)
            problem = redirect_problem(answer, probe, bridge_hosts=bridge_hosts, origins=target.vendor_origins)
            checks.add(vendor, "function-url redirect carries a token", problem)
            head = _call(checks, "HEAD", _with_query(url, token()))
            checks.add(vendor, "function-url HEAD mints nothing", head if isinstance(head, str) else head_problem(head))
            missing = _call(checks, "GET", url.rstrip("/") + PROBE_PATH, **json_accept)
            problem = missing if isinstance(missing, str) else json_404_problem(missing)
            checks.add(vendor, "function-url 404 is JSON", problem)
        if answers:
            checks.add(vendor, "HSTS on every answer", hsts_problem(answers))
        checks.add(vendor, "vendor key is set", key_problem(target, vendor))
    if not checks.reached and not all(check.ok for check in checks.all):
        raise TargetError(f"no answer from {target.where}: is it running, and are its URLs right?")
    return checks.all


def _discovery_problem(checks: _Checks, issuer: str) -> str | None:
    answer = _call(checks, "GET", f"{issuer}/.well-known/openid-configuration", Accept="application/json")
    if isinstance(answer, str):
        return answer
    document = answer.json()
    if answer.status != 200 or not isinstance(document, dict):
        return f"{issuer}/.well-known/openid-configuration {_reason(answer)}, not a JSON document"
    if str(document.get("issuer", "")).rstrip("/") != issuer:
        return f"the discovery document names another issuer than {issuer}"
    if not document.get("authorization_endpoint") or not document.get("jwks_uri"):
        return "the discovery document has no authorization_endpoint or jwks_uri"
    return None


def _template_order(template: dict[str, object] | None) -> list[str]:
    return list(dict.fromkeys(spec.code_uri.rstrip("/").rsplit("/", 1)[-1] for spec in functions(template)))


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    parser = argparse.ArgumentParser(
        prog="python -m ops.smoke",
        description="Prove a bridge works: each vendor's sign-in (redirects never followed), keys, pages.",
        epilog="Exit status: 0 every check passed, 1 a check failed, 2 usage error, 3 the bridge unreachable.",
    )
    add_target_arguments(parser, default_stack="sso-bridge")
    args = parser.parse_args(argv)
    try:
        target = resolve(args.local, args.stack_name)
        print(f"smoke test of {target.where} as {SMOKE_EMAIL}", file=out, flush=True)
        checks = run_checks(target, out)
    except TargetError as exc:
        print(f"{parser.prog}: error: {exc}", file=err)
        return EXIT_TARGET
    failed = [check for check in checks if not check.ok]
    if failed:
        vendors = ", ".join(dict.fromkeys(check.vendor for check in failed))
        print(f"{len(failed)} of {len(checks)} checks failed ({vendors})", file=out)
        return EXIT_FAILED
    print(f"all {len(checks)} checks passed", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
