"""Prove a bridge works, deployed or local: ``make smoke [STACK_NAME=...] [LOCAL=1]``.

    python -m ops.smoke [--local] [--stack-name NAME]

For each vendor the stack serves, it mints a one-minute login token for the reserved address ``SMOKE_EMAIL``
with the stack's current login-token key, and calls the vendor's HTTP API route and its function URL as the
vendor would send a browser there, never following a redirect: the answer must take a token to the vendor, and
it is never delivered, so no vendor account is ever made. What the vendor sends and what its answer must look
like is each vendor's own (``StandInSpec.probe``, beside its stand-in in ``local/vendors/``): a redirect to the
vendor's host with a JWT (the default: HappyFox, ClickFunnels), with the page to return to (Kustomer, Canny), a
page whose form posts the JWT (Zendesk), a DiscourseConnect request signed with the vendor key and answered with
Discourse's own signature, or Freshworks' implicit-flow request answered with its state and an RS256 id_token.

Around that: HEAD mints nothing, every answer carries HSTS, an unknown path is a JSON 404 when JSON is asked for,
the function URL is public (a 403 means its public-access permissions are missing), the vendor key is no longer
the template's placeholder, and the OpenID provider's discovery document answers when OpenID Connect is on.

One line per check, ``ok`` or ``FAIL`` with the reason and what to do. Nothing secret is printed: no token,
no key, no redirect's query, no form's fields. HappyFox and Zendesk record each token they sign; a smoke sign-in's
record says ``smoke``.

Exit status: 0 every check passed, 1 a check failed, 2 usage error, 3 the bridge cannot be reached.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from typing import TextIO
from urllib.parse import parse_qsl, urlencode, urlsplit

from local.mint_login_token import mint
from local.template import functions
from local.vendors.operations import Probe, Settings, default_probe, vendor_spec
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
from sso_bridge.handoff import cookie_name
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
    "form_problem",
    "key_problem",
    "main",
    "probe_for",
    "redirect_problem",
    "run_checks",
    "sign_in_problem",
]

EXIT_FAILED = 1
TOKEN_TTL = 60  # seconds: long enough for a cold start, too short to be worth stealing from a log
PROBE_PATH = "/sso-bridge-smoke/no-such-page"  # no route serves it
SMOKE_NAME = "sso-bridge smoke"
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


def _host(url: str) -> str:
    return (urlsplit(url.strip()).hostname or "").lower()


def _route(vendor: str, template: dict[str, object] | None = None, prefer: str | None = None) -> str | None:
    """The vendor function's sign-in route on the HTTP API: ``prefer`` (its stand-in's ``login_path``) when the
    function has it, else its first GET route without a path parameter."""
    for spec in functions(template):
        if spec.code_uri.rstrip("/").rsplit("/", 1)[-1] != vendor:
            continue
        paths = [
            route.path
            for route in spec.routes
            if route.method in ("GET", "ANY") and "{" not in route.path and route.path != CALLBACK_PATH
        ]
        return prefer if prefer in paths else next(iter(paths), None)
    return None


def probe_for(
    vendor: str, settings: Settings, template: dict[str, object] | None = None, *, key: str | None = None
) -> Probe:
    """The sign-in to try at ``vendor``: its stand-in's declaration (``StandInSpec.probe``, else the simplest
    portal's), made from the stack's own settings (``Target.setting``) and the vendor key (None when unreadable),
    on the vendor's sign-in route in template.yaml."""
    spec = vendor_spec(vendor)
    route = _route(vendor, template, spec.login_path if spec is not None else None) or f"/{vendor}/login"
    factory = spec.probe if spec is not None and spec.probe is not None else None
    if factory is None:
        factory = default_probe(vendor, spec.host_setting if spec is not None else None)
    return replace(factory(settings, key), vendor=vendor, route=route)


def _with_query(url: str, query: Mapping[str, str]) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(query)}" if query else url


def _reason(answer: Answer) -> str:
    """``answered 503 (vendor_key_unset)``: the status and the bridge's own reason, if it gave one in JSON."""
    payload = answer.json()
    reason = payload.get("reason") or payload.get("message") if isinstance(payload, dict) else None
    if isinstance(reason, str) and re.fullmatch(r"[A-Za-z0-9_ .-]{1,60}", reason):
        return f"answered {answer.status} ({reason})"
    return f"answered {answer.status}"


def _place_problem(
    url: str, probe: Probe, verb: str, *, bridge_hosts: Sequence[str], origins: Mapping[str, str]
) -> tuple[str, str | None]:
    """Where ``url`` goes, without its query (``https://host/path``), and why it is not the vendor's; None if it is."""
    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else "a relative address"
    host = (parts.hostname or "").lower()
    stand_in = origins.get(probe.host or "")
    if stand_in and f"{parts.scheme}://{parts.netloc}" == stand_in:
        pass  # the local stand-in answering for the vendor's host (make run)
    elif parts.scheme != "https":
        return where, f"{verb} to {where}, not to https://{probe.host or 'the vendor'}"
    elif probe.host and host != probe.host:
        return where, f"{verb} to {where}, not to the vendor's host {probe.host}"
    elif not probe.host and host in bridge_hosts:
        return where, f"{verb} back to the bridge ({where}), not to the vendor: is a login token refused?"
    if probe.path is not None and parts.path != probe.path:
        return where, f"{verb} to {where}, not to {probe.path} there"
    return where, None


def _parameters(query: str) -> dict[str, str] | None:
    """A query's parameters; None when one appears twice (no vendor picks one for you)."""
    pairs = parse_qsl(query, keep_blank_values=True)
    found = dict(pairs)
    return found if len(found) == len(pairs) else None


def _handoff_problem(answer: Answer, vendor: str) -> str | None:
    name = cookie_name(vendor)
    for cookie in answer.headers.get_all("Set-Cookie") or []:
        value, *attributes = (part.strip() for part in str(cookie).split(";"))
        flags = {attribute.lower() for attribute in attributes}
        if value.startswith(f"{name}=") and len(value) > len(name) + 1 and {"httponly", "secure"} <= flags:
            return None
    return f"without the hand-off cookie ({name}, HttpOnly, Secure)"


def redirect_problem(
    answer: Answer, probe: Probe, *, bridge_hosts: Sequence[str], origins: Mapping[str, str]
) -> str | None:
    """Why ``answer`` is not a redirect to ``probe``'s vendor carrying a token; None when it is."""
    if answer.status not in _REDIRECTS:
        return f"{_reason(answer)}, not a redirect"
    where, problem = _place_problem(
        answer.header("Location") or "", probe, "redirects", bridge_hosts=bridge_hosts, origins=origins
    )
    if problem:
        return problem
    parameters = _parameters(urlsplit(answer.header("Location") or "").query)
    if parameters is None:
        return f"redirects to {where} with a parameter twice"
    problem = probe.carries(parameters)
    if problem is None and probe.handoff:
        problem = _handoff_problem(answer, probe.vendor)
    return f"redirects to {where} {problem}" if problem else None


class _FormPage(HTMLParser):
    """The first form that posts, its hidden fields, and whether the page has a script (to send it at once)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.repeated = False
        self.scripted = False
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "script":
            self.scripted = True
        elif tag == "form" and self.action is None and values.get("method", "").lower() == "post":
            self.action, self._in_form = values.get("action", ""), True
        elif tag == "input" and self._in_form and values.get("name"):
            self.repeated = self.repeated or values["name"] in self.fields
            self.fields[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


def form_problem(
    answer: Answer, probe: Probe, *, bridge_hosts: Sequence[str], origins: Mapping[str, str]
) -> str | None:
    """Why ``answer`` is not a page whose form posts a token to ``probe``'s vendor at once; None when it is."""
    if answer.status != 200:
        return f"{_reason(answer)}, not a page that posts to the vendor"
    content_type = answer.header("Content-Type") or ""
    if "text/html" not in content_type.lower():
        return f"answered 200 with {_printable(content_type, 60) or 'no Content-Type'}, not an HTML page"
    page = _FormPage()
    page.feed(answer.body.decode("utf-8", "replace"))
    page.close()
    if page.action is None:
        return "answered 200 without a form that posts"
    where, problem = _place_problem(page.action, probe, "posts", bridge_hosts=bridge_hosts, origins=origins)
    if problem:
        return problem
    problem = "with a field twice" if page.repeated else probe.carries(page.fields)
    if problem:
        return f"posts to {where} {problem}"
    if not page.scripted:
        return f"posts to {where} only when pressed: the page has no script that sends the form"
    return None


def sign_in_problem(
    answer: Answer, probe: Probe, *, bridge_hosts: Sequence[str], origins: Mapping[str, str]
) -> str | None:
    """Why ``answer`` does not take a token to ``probe``'s vendor as that vendor takes it; None when it does."""
    check = form_problem if probe.form else redirect_problem
    return check(answer, probe, bridge_hosts=bridge_hosts, origins=origins)


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


def _vendor_key(target: Target, vendor: str) -> tuple[str | None, str | None]:
    """``vendor``'s key from its secret, or why there is none usable (the template's placeholder, or empty), with
    the command that sets it. The key signs Discourse's request and checks Freshworks' answer; it is never shown."""
    try:
        secret_id = target.vendor_secret_id(vendor)
        with aws_errors(f"cannot read {vendor}'s key from {target.where}"):
            value = target.secretsmanager().get_secret_value(SecretId=secret_id).get("SecretString") or ""
    except TargetError as exc:
        return None, str(exc)
    if value and not value.startswith(PLACEHOLDER_PREFIX):
        return value, None
    hint = value.removeprefix(PLACEHOLDER_PREFIX).strip().removeprefix("with ").strip()
    what = _printable(hint) if hint.startswith("the ") else f"{vendor}'s key"
    state = "the template's placeholder" if value else "nothing"
    region = target.session.region_name or ""
    put = f'put-secret-value --region {shlex.quote(region)} --secret-id {shlex.quote(secret_id)} --secret-string "$KEY"'
    if target.local:
        spec = vendor_spec(vendor)
        variable = vendor_secrets().get(vendor, (f"{vendor.upper()}_SECRET_ID", ""))[0]
        # How `make run` seeds it (the stand-in's seed_var; the first vendors' rule without one).
        seed = spec.seed_var if spec is not None else variable.removesuffix("_SECRET_ID") + "_JWT_SECRET"
        return None, (
            f'the secret holds {state}; with KEY set to {what}, restart the stack with {seed}="$KEY" make run '
            f"(or: AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local aws --endpoint-url {target.endpoint_url} "
            f"secretsmanager {put})"
        )
    return None, f"the secret holds {state}; with KEY set to {what}, run: aws secretsmanager {put}"


def key_problem(target: Target, vendor: str) -> str | None:
    """Why ``vendor``'s key is not set (the template's placeholder, or empty), with the command that sets it."""
    return _vendor_key(target, vendor)[1]


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
        vendor_key, key_missing = _vendor_key(target, vendor)
        probe = probe_for(vendor, target.setting, template, key=vendor_key)
        carries = f"{probe.answer} carries a token"  # redirect, form or hand-off

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
                else sign_in_problem(answer, probe, bridge_hosts=bridge_hosts, origins=target.vendor_origins)
            )
            checks.add(vendor, f"http-api {carries}", problem)
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
            problem = sign_in_problem(answer, probe, bridge_hosts=bridge_hosts, origins=target.vendor_origins)
            checks.add(vendor, f"function-url {carries}", problem)
            head = _call(checks, "HEAD", _with_query(url, token()))
            checks.add(vendor, "function-url HEAD mints nothing", head if isinstance(head, str) else head_problem(head))
            missing = _call(checks, "GET", url.rstrip("/") + PROBE_PATH, **json_accept)
            problem = missing if isinstance(missing, str) else json_404_problem(missing)
            checks.add(vendor, "function-url 404 is JSON", problem)
        if answers:
            checks.add(vendor, "HSTS on every answer", hsts_problem(answers))
        checks.add(vendor, "vendor key is set", key_missing)
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
