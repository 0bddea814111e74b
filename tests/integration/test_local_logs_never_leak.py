"""Item 10, logs, through the local stack: what `make run` prints never holds a key, a token or a query string.

The stack runs as a process (``start_stack``); its stdout and stderr go to one file (``RunningStack.log``),
which is read whole once the stack has stopped: the banner, one line per request, the handlers' JSON with
``LOCAL_LOGS=json``, tracebacks, and ``stopped``. Every vendor in template.yaml (`make run` serves them all) is
driven over HTTP with its portal's own request (tests/vendor_requests.py, under the stack's settings): sign-in round
trips through the demo platform on the HTTP API and the function URL, Kustomer's brand too; an email link shown,
spent (for a vendor that starts sign-in itself, a hand-off) and re-used; forged and expired tokens; a destination on
another host in the vendor's own parameter; an unknown path; remote logouts and Zendesk's error callback. All with
``POWERTOOLS_DEV`` on and off, in both ``LOCAL_LOGS`` modes (the JSON ones at ``POWERTOOLS_LOG_LEVEL=DEBUG``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tests.helpers import LinkPage, key_texts, make_login_token
from tests.integration.client import Client, Response
from tests.integration.stack import STACK_ENV, RunningStack, start_stack
from tests.vendor_requests import PORTALS, VENDORS, Portal, deployed, form_posts, local_portal, portal

ACME_KEY = "test-kustomer-acme-key-local-logs-0123456789abcd"
KEYS = {**key_texts(), "acme key": ACME_KEY}
TRACKING = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzZXNzaW9uIjoibG9jYWwtbG9ncy04ODE4In0."
ACME_URI = "https://acme.kustomer.help/login"
ATTACKER_KEY = "attacker-key-0123456789abcdef0123456789abcdef"
EVIL = "https://evil.example.net/login?externalToken=planted"
# Parameters that carry a token in a URL: the platform's, Kustomer's trackingToken, and every vendor's credentials.
TOKEN_PARAMS = {"login_token", "trackingToken", *(name for vendor in PORTALS for name in portal(vendor).credentials)}


def vendor(name: str, **keys: str) -> Portal:
    """The vendor's side under the stack's settings: `make run`'s placeholders and the test stack's own."""
    return local_portal(name, STACK_ENV, keys)


def vendor_query(signs_in: Portal, **overrides: str) -> str:
    """The vendor's request, with the file's own trackingToken wherever the vendor sends one."""
    tracking = {"trackingToken": TRACKING} if "trackingToken" in signs_in.params else {}
    return signs_in.query(**tracking, **overrides)


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
                if name in TOKEN_PARAMS:
                    self.token(f"{label} {name}", value)
                for inner in parse_qs(urlsplit(value).query).get("externalToken", []):
                    self.token(f"{label} {name} externalToken", inner)


@dataclass
class Driver:
    stack: RunningStack
    needles: Needles = field(default_factory=Needles)
    client: Client = field(default_factory=Client)

    def request(self, method: str, url: str, *, expect: int | tuple[int, ...], **headers: str) -> Response:
        self.needles.url(f"{method} {urlsplit(url).path}", url)
        body = b"" if method == "POST" else None
        content = {"Content-Type": "application/x-www-form-urlencoded"} if method == "POST" else {}
        response = self.client.request(method, url, body=body, headers={**content, **headers})
        expected = expect if isinstance(expect, tuple) else (expect,)
        assert response.status in expected, (method, urlsplit(url).path, response.status, response.body[:200])
        self.answer(response)
        return response

    def answer(self, response: Response) -> None:
        """What an answer hands out: its Location, a form it posts (Zendesk's token), the cookies it sets."""
        if location := response.headers.get("Location"):
            self.needles.add("Location", location)
            self.needles.url("Location", location)
        for action, fields in form_posts(response.body.decode(errors="replace")):
            self.needles.url("posted form", action)
            for name, value in fields.items():
                if len(value) >= 16:
                    self.needles.token(f"posted field {name}", value)
        for cookie in response.headers.get_all("Set-Cookie") or []:
            self.needles.token("Set-Cookie value", cookie.split(";", 1)[0].partition("=")[2])

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
        self.answer(response)
        return response

    def round_trip(self, link: str, signs_in: Portal) -> None:
        """A signed-out user follows ``link``, signs in on the demo platform and is sent on to the vendor, which
        finds the user signed in (its credentials checked as the vendor checks them)."""
        self.needles.url("link", link)
        trip = self.client.sign_in(link, email="jane.doe+logs@example.com", name="Jane Doe")
        for response in (trip.login_redirect, trip.platform_redirect, trip.final):
            self.answer(response)
        assert trip.final.status == signs_in.signed_in_status(), (signs_in.vendor, trip.final.body[:200])
        location = trip.final.headers.get("Location", "")
        targets = [location] if location else [action for action, _ in form_posts(trip.final.text)]
        assert targets, signs_in.vendor
        assert all(urlsplit(target).hostname in signs_in.hosts for target in targets), targets
        assert signs_in.email(location, trip.final.text) == "jane.doe+logs@example.com"

    def link(self, vendor: str) -> str:
        token = make_login_token(
            "reader+logs@example.com", aud=vendor, lifetime=7 * 86400, use="link", jti=secrets.token_hex(16)
        )
        return self.stack.function_url(vendor, f"/?login_token={token}")


def drive(driver: Driver) -> None:
    stack = driver.stack
    forged = make_login_token(aud=list(VENDORS), key=ATTACKER_KEY)
    for name in VENDORS:
        signs_in = vendor(name)
        path = deployed(name).sign_in_path
        query = vendor_query(signs_in)
        # Sign-in round trips through the demo platform, on the HTTP API and on the function URL.
        driver.round_trip(stack.url(f"{path}?{query}" if query else path), signs_in)
        driver.round_trip(stack.function_url(name, f"/?{vendor_query(signs_in)}"), signs_in)
        # Email links: shown to a scanner and the reader, spent (a hand-off to a vendor that starts sign-in itself),
        # re-used.
        link = driver.link(name)
        driver.request("HEAD", link, expect=200)
        page = driver.open_link(link)
        driver.request("POST", link, expect=403)  # another site's form: no cookie, no field
        driver.press(link, page, expect=signs_in.signed_in_status("POST"))
        driver.press(link, page, expect=303)  # spent: to sign-in
        # Refusals: forged and expired tokens, a destination on another host, an unknown path.
        with_query = f"{path}?{query}&" if query else f"{path}?"
        driver.request("GET", stack.url(f"{with_query}login_token={forged}"), expect=401)
        driver.request("GET", stack.url(f"{with_query}login_token={forged}"), expect=401, Accept="application/json")
        expired = make_login_token(aud=name, issued=1_700_000_000)
        driver.request("GET", stack.url(f"{with_query}login_token={expired}"), expect=302)
        valid = make_login_token(aud=name)
        if signs_in.destination is not None:
            elsewhere = vendor_query(signs_in, **{signs_in.destination: EVIL})
            driver.request("GET", stack.url(f"{path}?{elsewhere}&login_token={valid}"), expect=400)
        driver.request("GET", stack.function_url(name, f"/wp-admin/setup.php?login_token={valid}"), expect=404)
        # The vendor's remote logout, and its error callback (Zendesk's words may name the user).
        for logout in deployed(name).get_only_paths:
            driver.request("GET", stack.url(f"{logout}?login_token={valid}"), expect=200)
            words = quote("Users with the email address reader+logs@example.com are not allowed", safe="")
            driver.request("GET", stack.url(f"{logout}?kind=error&message={words}"), expect=(200, 400))
    # Kustomer's brand: its own key and portal.
    if "kustomer" in VENDORS:
        acme = vendor("kustomer", kustomer=ACME_KEY)
        driver.round_trip(
            stack.url(f"/kustomer/brands/acme/login?{vendor_query(acme, kustomerRedirectUri=ACME_URI)}"), acme
        )


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
    for name in VENDORS:
        assert f"GET {deployed(name).sign_in_path} 401" in output
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
