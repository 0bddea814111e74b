"""Item 10, logs, through the local stack: what `make run` prints never holds a key, a token or a query string.

The stack runs as a process (``start_stack``); its stdout and stderr go to one file (``RunningStack.log``),
which is read whole once the stack has stopped: the banner, one line per request, the handlers' JSON with
``LOCAL_LOGS=json``, tracebacks, and ``stopped``. A few flows are driven over HTTP (sign-in round trips through
the demo platform, an email link shown, spent and re-used, forged and expired tokens, Kustomer with a
``trackingToken``, a bad return address, an unknown path) with ``POWERTOOLS_DEV`` on and off, in both
``LOCAL_LOGS`` modes (the JSON ones at ``POWERTOOLS_LOG_LEVEL=DEBUG``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import jwt
import pytest

from local.lambdas import LOCAL_DEFAULTS
from tests.helpers import LOGIN_TOKEN_KEY, VENDOR_KEYS, WORKSPACE, LinkPage, make_login_token
from tests.integration.client import Client, Response
from tests.integration.stack import RunningStack, start_stack

ACME_KEY = "test-kustomer-acme-key-local-logs-0123456789abcd"
KEYS = {"login-token key": LOGIN_TOKEN_KEY, **{f"{v} key": k for v, k in VENDOR_KEYS.items()}, "acme key": ACME_KEY}
TRACKING = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzZXNzaW9uIjoibG9jYWwtbG9ncy04ODE4In0."
PORTAL = LOCAL_DEFAULTS["KUSTOMER_REDIRECT_HOSTS"].split(",")[0]
KUSTOMER_QUERY = f"trackingToken={TRACKING}&kustomerRedirectUri={quote(f'https://{PORTAL}/login', safe='')}"
ACME_QUERY = f"trackingToken={TRACKING}&kustomerRedirectUri={quote('https://acme.kustomer.help/login', safe='')}"
HAPPYFOX_HOST = urlsplit(LOCAL_DEFAULTS["HAPPYFOX_ACCOUNT_URL"]).hostname
ATTACKER_KEY = "attacker-key-0123456789abcdef0123456789abcdef"
VARIANTS = {
    "dev-off-line": {"POWERTOOLS_DEV": "false"},
    "dev-on-line": {"POWERTOOLS_DEV": "true"},
    "dev-off-json-debug": {"POWERTOOLS_DEV": "false", "LOCAL_LOGS": "json", "POWERTOOLS_LOG_LEVEL": "DEBUG"},
    "dev-on-json-debug": {"POWERTOOLS_DEV": "true", "LOCAL_LOGS": "json", "POWERTOOLS_LOG_LEVEL": "DEBUG"},
}


@dataclass
class Needles:
    """Everything that must never be printed, with where it came from."""

    found: list[tuple[str, str]] = field(default_factory=list)

    def add(self, label: str, value: str | None) -> None:
        if value:
            self.found.append((label, value))

    def token(self, label: str, token: str) -> None:
        self.add(label, token)
        header, _, rest = token.partition(".")
        payload, _, signature = rest.partition(".")
        if payload:
            self.add(f"{label} header.payload", f"{header}.{payload}")
        if len(signature) >= 16:
            self.add(f"{label} signature", signature)

    def url(self, label: str, url: str) -> None:
        """A URL asked for or answered: its query, and every token in it."""
        query = urlsplit(url).query
        self.add(f"{label} query", query)
        for name, values in parse_qs(query).items():
            for value in values:
                if name in ("login_token", "token", "externalToken", "trackingToken"):
                    self.token(f"{label} {name}", value)
                for inner in parse_qs(urlsplit(value).query).get("externalToken", []):
                    self.token(f"{label} {name} externalToken", inner)


@dataclass
class Driver:
    stack: RunningStack
    needles: Needles = field(default_factory=Needles)
    client: Client = field(default_factory=Client)

    def request(self, method: str, url: str, *, expect: int, **headers: str) -> Response:
        self.needles.url(f"{method} {urlsplit(url).path}", url)
        body = b"" if method == "POST" else None
        content = {"Content-Type": "application/x-www-form-urlencoded"} if method == "POST" else {}
        response = self.client.request(method, url, body=body, headers={**content, **headers})
        assert response.status == expect, (method, urlsplit(url).path, response.status, response.body[:200])
        if location := response.headers.get("Location"):
            self.needles.add("Location", location)
            self.needles.url("Location", location)
        return response

    def open_link(self, link: str) -> LinkPage:
        """GET an email link's page (200): its cookie and field may not show up in a log either."""
        self.needles.url(f"GET {urlsplit(link).path}", link)
        page = self.client.open_link(link)
        self.needles.add("link page cookie", page.cookie.partition("=")[2])
        self.needles.add("link page field", page.field)
        return page

    def press(self, link: str, page: LinkPage, *, expect: int) -> Response:
        """The page's button, as Chromium presses it."""
        response = self.client.press(link, page)
        assert response.status == expect, ("press", urlsplit(link).path, response.status, response.body[:200])
        if location := response.headers.get("Location"):
            self.needles.add("Location", location)
            self.needles.url("Location", location)
        return response

    def round_trip(self, link: str, *, host: str, token_param: str, key: str) -> None:
        """A signed-out user follows ``link``, signs in on the demo platform and is sent on to the vendor."""
        self.needles.url("link", link)
        trip = self.client.sign_in(link, email="jane.doe+logs@example.com", name="Jane Doe")
        for response in (trip.login_redirect, trip.platform_redirect, trip.final):
            self.needles.add("Location", response.location)
            self.needles.url("Location", response.location)
        assert trip.final.status == 302, trip.final.body[:200]
        assert urlsplit(trip.final.location).hostname == host
        [vendor_token] = parse_qs(urlsplit(trip.final.location).query)[token_param]
        jwt.decode(vendor_token, key, algorithms=["HS256"], options={"verify_exp": False})

    def link(self, vendor: str) -> str:
        token = make_login_token(
            "reader+logs@example.com", aud=vendor, lifetime=7 * 86400, use="link", jti=secrets.token_hex(16)
        )
        return self.stack.function_url(vendor, f"/?login_token={token}")


def drive(driver: Driver) -> None:
    stack = driver.stack
    # Sign-in round trips through the demo platform, Kustomer's with its trackingToken, the brand's too.
    driver.round_trip(
        stack.url("/clickfunnels/sso"), host=WORKSPACE, token_param="token", key=VENDOR_KEYS["clickfunnels"]
    )
    driver.round_trip(
        stack.function_url("happyfox", "/"), host=HAPPYFOX_HOST, token_param="token", key=VENDOR_KEYS["happyfox"]
    )
    driver.round_trip(
        stack.url(f"/kustomer/login?{KUSTOMER_QUERY}"),
        host=PORTAL,
        token_param="externalToken",
        key=VENDOR_KEYS["kustomer"],
    )
    driver.round_trip(
        stack.url(f"/kustomer/brands/acme/login?{ACME_QUERY}"),
        host="acme.kustomer.help",
        token_param="externalToken",
        key=ACME_KEY,
    )
    # Email links: shown to a scanner and the reader, spent, re-used.
    for vendor in ("clickfunnels", "kustomer", "happyfox"):
        link = driver.link(vendor)
        driver.request("HEAD", link, expect=200)
        page = driver.open_link(link)
        driver.request("POST", link, expect=403)  # another site's form: no cookie, no field
        driver.press(link, page, expect=303)
        driver.press(link, page, expect=303)  # spent: to sign-in
    # Refusals: forged and expired tokens, a bad return address, an unknown path.
    forged = make_login_token(aud=["clickfunnels", "kustomer", "happyfox"], key=ATTACKER_KEY)
    driver.request("GET", stack.url(f"/clickfunnels/sso?login_token={forged}"), expect=401)
    driver.request("GET", stack.url(f"/happyfox/login?login_token={forged}"), expect=401, Accept="application/json")
    driver.request("GET", stack.url(f"/kustomer/login?{KUSTOMER_QUERY}&login_token={forged}"), expect=401)
    expired = make_login_token(aud="kustomer", issued=1_700_000_000)
    driver.request("GET", stack.url(f"/kustomer/login?{KUSTOMER_QUERY}&login_token={expired}"), expect=302)
    evil = quote("https://evil.example.net/login?externalToken=planted", safe="")
    valid = make_login_token(aud="kustomer")
    driver.request(
        "GET",
        stack.url(f"/kustomer/login?trackingToken={TRACKING}&kustomerRedirectUri={evil}&login_token={valid}"),
        expect=400,
    )
    driver.request("GET", stack.function_url("happyfox", f"/wp-admin/setup.php?login_token={valid}"), expect=404)
    driver.request("GET", stack.url(f"/happyfox/logout?login_token={valid}"), expect=200)


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def stopped_stack_output(request: pytest.FixtureRequest) -> tuple[str, str, Needles]:
    """Drive a stack started with one variant's switches, stop it, and hand back all it printed."""
    variant = request.param
    stack = start_stack({**VARIANTS[variant], "KUSTOMER_ACME_JWT_SECRET": ACME_KEY})
    driver = Driver(stack)
    try:
        drive(driver)
    finally:
        stack.stop()
    log = Path(stack.log.name)
    output = log.read_text(errors="replace")
    log.unlink(missing_ok=True)
    return variant, output, driver.needles


def test_the_local_stack_prints_no_key_no_token_and_no_query(stopped_stack_output: tuple[str, str, Needles]) -> None:
    variant, output, needles = stopped_stack_output

    # The stack ran, printed its lines, and with LOCAL_LOGS=json the handlers' JSON too
    assert "sso-bridge local stack" in output
    assert "GET /clickfunnels/sso 401" in output
    assert "POST / 303" in output
    assert "POST / 403" in output  # another site's POST of a link, refused
    assert output.rstrip().endswith("stopped")
    assert "Generated keys" not in output  # every key came from the environment, so none is shown
    if "json" in variant:
        assert '"outcome"' in output

    # Nothing it printed holds a key, a token or a part of one, a trackingToken, or a query string
    secrets_: list[tuple[str, str]] = [*needles.found, *KEYS.items(), ("trackingToken", TRACKING)]
    secrets_ += [("trackingToken (no dot)", TRACKING.rstrip("."))]
    secrets_ += [("parameter", name) for name in ("login_token=", "externalToken=", "trackingToken=")]
    leaks = []
    for label, value in secrets_:
        if value in output:
            at = output.index(value)
            leaks.append(f"{label}: ...{output[max(0, at - 80) : at + 40]!r}...")
    assert not leaks, "\n".join(leaks[:30])


def test_every_request_line_names_no_query(stopped_stack_output: tuple[str, str, Needles]) -> None:
    _, output, _ = stopped_stack_output
    lines = [line for line in output.splitlines() if line[:2].isdigit() and line[2:3] == ":"]
    assert len(lines) > 20
    assert not [line for line in lines if "?" in line or "=" in line]
