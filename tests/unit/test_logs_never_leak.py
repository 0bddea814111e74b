"""Item 10, logs: whatever a flow meets, nothing it prints or logs holds a key, a token or a query string.

Every vendor's flow in template.yaml (and Kustomer's brand route), each sent its portal's own request
(tests/vendor_requests.py), runs every path a request can take: sign-ins, HEAD, email links shown, spent, spent
again and revoked, expired, forged and malformed login tokens, bad destinations in the vendor's own parameter, the
hand-off to a vendor that starts sign-in itself and the way back with its cookie, remote logouts and the vendor's
error callback on them, unknown paths, JSON answers and outages (503). It runs with ``POWERTOOLS_DEV`` on and off,
at INFO and at DEBUG (with event logging asked for). Everything is captured:

- the Powertools logger streams (every logging ``StreamHandler`` is pointed at a buffer, so the layer's child
  loggers are caught too, whichever service they were bound to),
- stdout and stderr at the file-descriptor level (``capfd``: metrics blobs, prints, warnings),
- every Python logging record (``caplog`` at DEBUG, root included), with its arguments and extras.

None of it may hold a key (login-token key, every vendor key, each line of an RSA key), a whole token (login,
link, hand-off and vendor tokens wherever the vendor reads them: a redirect's query, a posted form; the
``externalToken`` planted in a return address) or its ``header.payload`` or signature part, a ``trackingToken``
value, a vendor's own words on its error callback, or a request's query string.

Records from the AWS SDK (botocore) and moto are scanned too, but reported apart: with the root logger at
DEBUG, botocore logs every response body, Secrets Manager's ``SecretString`` included. That is the SDK's
behaviour when someone turns DEBUG on for the root logger, not anything the bridge writes; see
``test_sdk_debug_records_hold_no_key`` (expected to fail while botocore logs them).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import io
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit

import jwt
import pytest
from botocore.exceptions import EndpointConnectionError

from sso_bridge.link_store import LinkStore
from tests.conftest import BASE_ENV
from tests.helpers import (
    LINK_REVOCATIONS_TABLE_NAME,
    LOGIN_TOKEN_KEY,
    PLATFORM_LOGIN_URL,
    SPENT_LINKS_TABLE_NAME,
    LambdaContext,
    LinkPage,
    key_texts,
    load_event,
    make_login_token,
    pressed,
)
from tests.vendor_requests import VENDORS, Portal, deployed, form_posts, portal

DAY = 86400
EMAIL = "jane.doe+vip@example.com"
REVOKED_EMAIL = "revoked.reader@example.com"
# A trackingToken as Kustomer sends it (alg none, unsigned), unique to this file so any sighting is a leak.
TRACKING = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzZXNzaW9uIjoibG9ncy1uZXZlci1sZWFrLTc3NzEifQ."
PORTAL_LOGIN = "https://yourcompany.kustomer.help/login?referralUrl=https%3A%2F%2Fyourcompany.kustomer.help"
ACME_KEY = "test-kustomer-acme-key-logs-0123456789abcdef0123"
ACME_SECRET_ID = "sso-bridge/kustomer/acme"
ACME_BRANDS = json.dumps(
    {
        "acme": {
            "secret_id": ACME_SECRET_ID,
            "redirect_hosts": ["acme.kustomer.help"],
            "portal_url": "https://acme.kustomer.help/login",
        }
    }
)
ATTACKER_KEY = "attacker-key-0123456789abcdef0123456789abcdef"
KEYS = {**key_texts(), "kustomer acme key": ACME_KEY}
# Loggers that are the SDK or its emulator, not the bridge: reported apart (see the module docstring).
SDK_LOGGERS = ("botocore", "boto3", "urllib3", "moto", "s3transfer", "werkzeug")
# Where output was found; the bridge's own lines are the "logger stream" (sso_bridge.observability writes them
# itself), the EMF metrics are on stdout, and other libraries' logging records are "log records" (at DEBUG).
REQUIRED_SOURCES = ("logger stream", "stdout/stderr")


@dataclass(frozen=True)
class Route:
    """One flow as a client reaches it: which function, what its vendor sends and how it reads the answer."""

    module: str
    portal: Portal
    query: str  # what the vendor (or the platform's link) puts in the query before login_token
    path: str | None = None  # rawPath, when not the sample event's

    @property
    def event(self) -> str:  # the HTTP API route's sample event
        return deployed(self.module).event

    @property
    def url_event(self) -> str:  # the function URL's sample event
        return deployed(self.module).url_event


def kustomer_query(uri: str) -> str:
    return f"trackingToken={TRACKING}&kustomerRedirectUri={quote(uri, safe='')}"


# Every vendor in template.yaml, and Kustomer's brand route (another key, another portal, a path parameter).
ROUTES = [*VENDORS, *(["kustomer-brand"] if "kustomer" in VENDORS else [])]


def route_for(name: str) -> Route:
    """Made when the test runs, so a vendor without a request shape fails its own tests, naming it."""
    if name == "kustomer-brand":
        brand = portal("kustomer", {**BASE_ENV, "KUSTOMER_BRANDS": ACME_BRANDS}, {"kustomer": ACME_KEY})
        acme = "https://acme.kustomer.help/login?referralUrl=https%3A%2F%2Facme.kustomer.help"
        return Route("kustomer", brand, kustomer_query(acme), path="/kustomer/brands/acme/login")
    signs_in = portal(name)
    if name == "kustomer":
        return Route(name, signs_in, kustomer_query(PORTAL_LOGIN))
    # A trackingToken unique to this file wherever a vendor sends one, so any sighting of it is a leak.
    return Route(
        name, signs_in, signs_in.query(**({"trackingToken": TRACKING} if "trackingToken" in signs_in.params else {}))
    )


# (POWERTOOLS_DEV, POWERTOOLS_LOG_LEVEL): what an operator might switch on while debugging.
SWITCHES = [("false", "INFO"), ("true", "INFO"), ("false", "DEBUG"), ("true", "DEBUG")]
SWITCH_IDS = ["dev-off-info", "dev-on-info", "dev-off-debug", "dev-on-debug"]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_signed(header: dict[str, Any], payload: dict[str, Any], key: str = LOGIN_TOKEN_KEY) -> str:
    """An HS256 token with any header (PyJWT refuses to make a numeric kid)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


# --- capturing everything ------------------------------------------------------------------------------------


def _stream_handlers() -> Iterator[logging.StreamHandler[Any]]:
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for candidate in loggers:
        for handler in getattr(candidate, "handlers", []):
            # pytest's own handlers (caplog, live logging) are StreamHandlers too: they are captured as records.
            if isinstance(handler, logging.StreamHandler) and not type(handler).__module__.startswith("_pytest"):
                yield handler


def _swap_stream(handler: logging.StreamHandler[Any], stream: Any) -> Any:
    """``setStream`` without its flush: a handler made in an earlier test may hold that test's closed stdout."""
    with handler.lock or contextlib.nullcontext():
        previous, handler.stream = handler.stream, stream
    return previous


@dataclass
class Capture:
    """What was written since the last ``take``, per source; each chunk is kept with the scenario it belongs to."""

    capfd: pytest.CaptureFixture[str]
    caplog: pytest.LogCaptureFixture
    stream: io.StringIO = field(default_factory=io.StringIO)
    chunks: list[tuple[str, str, str]] = field(default_factory=list)  # (scenario, source, text)
    sdk_chunks: list[tuple[str, str]] = field(default_factory=list)  # (scenario, text) of SDK/moto records
    _offset: int = 0
    _records: int = 0
    _redirected: list[tuple[logging.StreamHandler[Any], Any]] = field(default_factory=list)
    _quiet: list[logging.Logger] = field(default_factory=list)

    def redirect_streams(self) -> None:
        """Point every logging StreamHandler (the Powertools loggers' included) at this capture's buffer."""
        for handler in _stream_handlers():
            if handler.stream is not self.stream:
                self._redirected.append((handler, _swap_stream(handler, self.stream)))

    def restore_streams(self) -> None:
        for handler, previous in reversed(self._redirected):
            _swap_stream(handler, previous)
        self._redirected.clear()

    def begin(self) -> None:
        """In the test's body: caplog's handler for this phase also on loggers that do not propagate
        (Powertools' own package logger), which would otherwise hide their records from the root."""
        self._quiet = [
            logger
            for logger in logging.Logger.manager.loggerDict.values()
            if isinstance(logger, logging.Logger) and not logger.propagate
        ]
        for logger in self._quiet:
            logger.addHandler(self.caplog.handler)

    def detach_quiet(self) -> None:
        for logger in self._quiet:
            logger.removeHandler(self.caplog.handler)

    def take(self, scenario: str) -> None:
        self.redirect_streams()  # a logger configured during the scenario (a cold start) is caught next time
        text = self.stream.getvalue()
        self.chunks.append((scenario, "logger stream", text[self._offset :]))
        self._offset = len(text)
        printed = self.capfd.readouterr()
        self.chunks.append((scenario, "stdout/stderr", printed.out + printed.err))
        records = self.caplog.records[self._records :]
        self._records = len(self.caplog.records)
        bridge = [record for record in records if not record.name.startswith(SDK_LOGGERS)]
        sdk = [record for record in records if record.name.startswith(SDK_LOGGERS)]
        self.chunks.append((scenario, "log records", "\n".join(map(render, bridge))))
        self.sdk_chunks.append((scenario, "\n".join(map(render, sdk))))

    def text(self, source: str) -> str:
        return "".join(text for _, kind, text in self.chunks if kind == source)


def render(record: logging.LogRecord) -> str:
    """Everything a handler could write from a record: message, arguments, extras, exception and stack."""
    try:
        message = record.getMessage()
    except Exception:  # a record whose arguments do not fit its format: keep both as they are
        message = f"{record.msg!r} % {record.args!r}"
    parts = [record.name, record.levelname, message, repr(record.__dict__)]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        parts.append(record.stack_info)
    return " ".join(parts)


@pytest.fixture
def capture(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Iterator[Capture]:
    caplog.set_level(logging.DEBUG)  # the root logger: every library's records, at every level
    found = Capture(capfd, caplog)
    found.redirect_streams()
    try:
        yield found
    finally:
        found.restore_streams()
        found.detach_quiet()


@pytest.fixture
def powertools_debug() -> Iterator[Callable[[], None]]:
    """What ``POWERTOOLS_DEBUG`` does at Powertools' import (long done here): its package logger at DEBUG."""
    package = logging.getLogger("aws_lambda_powertools")
    level = package.level
    yield lambda: package.setLevel(logging.DEBUG)
    package.setLevel(level)


# --- running the flows ---------------------------------------------------------------------------------------


@dataclass
class Needle:
    label: str
    value: str
    scenario: str


@dataclass
class Run:
    """One flow's handler, driven through every scenario, remembering every secret it handed out or received."""

    route: Route
    module: ModuleType
    capture: Capture
    needles: list[Needle] = field(default_factory=list)

    def secret(self, scenario: str, label: str, value: str | None) -> None:
        if value:
            self.needles.append(Needle(label, value, scenario))

    def token(self, scenario: str, label: str, token: str) -> None:
        """A token, its ``header.payload`` part and its signature: none of them may show up anywhere."""
        self.secret(scenario, label, token)
        header, _, rest = token.partition(".")
        payload, _, signature = rest.partition(".")
        if payload:
            self.secret(scenario, f"{label} header.payload", f"{header}.{payload}")
        if len(signature) >= 16:
            self.secret(scenario, f"{label} signature", signature)

    def call(
        self,
        scenario: str,
        token: str | None = None,
        *,
        expect: int | tuple[int, ...],
        method: str = "GET",
        query: str | None = None,
        extra: str = "",
        accept: str | None = None,
        url: bool = False,
        path: str | None = None,
        page: LinkPage | None = None,
        cookies: list[str] | None = None,
    ) -> dict[str, Any]:
        """``page``: the POST of that link's page's button (its cookie and field, as a browser sends them);
        ``cookies``: sent as a browser sends back what it was given (``name=value``)."""
        base = self.route.query if query is None else query
        parts = [base, extra, f"login_token={token}" if token is not None else ""]
        raw_query = "&".join(part for part in parts if part)
        event = load_event(self.route.url_event if url else self.route.event, query=raw_query)
        path = path or (None if url else self.route.path)
        if path:
            event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["requestContext"]["http"]["method"] = method
        if accept:
            event["headers"]["accept"] = accept
        if method == "POST":
            event["headers"]["content-type"] = "application/x-www-form-urlencoded"
            event["body"] = ""
        if page is not None:
            event = pressed(event, page)
            self.secret(scenario, "link page cookie", page.cookie.partition("=")[2])
            self.secret(scenario, "link page field", page.field)
        if cookies:
            event["cookies"] = [*event.get("cookies", []), *cookies]
        if token:
            self.token(scenario, "login token", token)
        if raw_query:
            self.secret(scenario, "query string", raw_query)
            self.secret(scenario, "query string (decoded)", unquote_plus(raw_query))
        response: dict[str, Any] = self.module.lambda_handler(event, LambdaContext())
        self.capture.take(scenario)

        expected = expect if isinstance(expect, tuple) else (expect,)
        assert response["statusCode"] in expected, (scenario, response["statusCode"], response.get("body", "")[:300])
        location = response["headers"].get("Location")
        if location:
            self.secret(scenario, "Location", location)
            self.secret(scenario, "Location query", urlsplit(location).query)
        # The vendor's credentials wherever it reads them: the Location's query, a form the page posts.
        for name, value in self.route.portal.found(location or "", response.get("body", "")).items():
            self.token(scenario, f"vendor {name}", value)
        for action, fields in form_posts(response.get("body", "")):
            self.secret(scenario, "posted form's action query", urlsplit(action).query)
            for name, value in fields.items():
                self.secret(scenario, f"posted field {name}", value if len(value) >= 16 else None)
        for cookie in response.get("cookies") or []:  # the link page's, a hand-off's login token
            self.token(scenario, "Set-Cookie value", cookie.split(";", 1)[0].partition("=")[2])
        return response

    def vendor_token(self, response: dict[str, Any]) -> dict[str, Any]:
        """The vendor's credentials in an answer, verified as the vendor would: the flow really signed someone in."""
        return self.route.portal.claims(response["headers"].get("Location", ""), response.get("body", ""))

    def signed_in(self, method: str = "GET") -> int:
        return self.route.portal.signed_in_status(method)

    def link(self, email: str = EMAIL, **claims: Any) -> str:
        defaults: dict[str, Any] = {
            "aud": self.audience,
            "lifetime": 7 * DAY,
            "use": "link",
            "jti": secrets.token_hex(16),
        }
        return make_login_token(email, **{**defaults, **claims})

    @property
    def audience(self) -> str:
        return self.route.module

    def login_token(self, email: str = EMAIL, **claims: Any) -> str:
        return make_login_token(email, **{"aud": self.audience, "name": "Jane Doe", **claims})


def goes_to_sign_in(response: dict[str, Any]) -> bool:
    location = response["headers"].get("Location", "")
    return location.startswith(f"{PLATFORM_LOGIN_URL}?return_to=") and "login_token" not in location


def failing(**_: Any) -> Any:
    raise EndpointConnectionError(endpoint_url="https://aws.invalid")


def run_every_scenario(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    name = run.route.module
    signs_in = run.route.portal
    now = int(time.time())

    # Signing in: a browser, a JSON client, a scanner's HEAD, and a login token with a jti and a deep link.
    assert run.vendor_token(run.call("interactive sign-in", run.login_token(), expect=run.signed_in()))
    run.call("interactive sign-in, JSON accept", run.login_token(), expect=run.signed_in(), accept="application/json")
    run.call("HEAD", run.login_token(), expect=200, method="HEAD")
    interactive_post = run.login_token(jti="platform-jti-1234")
    run.call("POST with an interactive token", interactive_post, expect=run.signed_in("POST"), method="POST")
    if name == "clickfunnels":
        target = f"https://{run.module.settings.workspace_domain}/members/area?session=abc"
        response = run.call("signed deep link", run.login_token(redirect_to=target), expect=302)
        assert run.vendor_token(response)["redirect_to"] == target

    # Email links: shown (GET, HEAD), spent (POST), spent again, revoked, expired, on the function URL.
    link = run.link(campaign="spring-sale")
    page = LinkPage.from_response(run.call("link GET", link, expect=200))
    run.call("link HEAD", link, expect=200, method="HEAD")
    run.call("link POST from another site's form", link, expect=403, method="POST")
    run.call("link POST from another site, JSON", link, expect=403, method="POST", accept="application/json")
    assert run.vendor_token(run.call("link POST", link, expect=run.signed_in("POST"), page=page))
    assert goes_to_sign_in(run.call("link re-used (POST)", link, expect=303, page=page))
    assert goes_to_sign_in(run.call("link re-used (GET)", link, expect=302))
    revoked = run.link(REVOKED_EMAIL, issued=now - 60)
    revoked_page = LinkPage.from_response(run.call("revoked link's page, shown before", revoked, expect=200))
    LinkStore(SPENT_LINKS_TABLE_NAME, LINK_REVOCATIONS_TABLE_NAME).revoke(REVOKED_EMAIL, now=now)
    assert goes_to_sign_in(run.call("revoked link (GET)", revoked, expect=302))
    assert goes_to_sign_in(run.call("revoked link (POST)", revoked, expect=303, page=revoked_page))
    assert goes_to_sign_in(run.call("expired link", run.link(issued=now - 8 * DAY), expect=302))
    url_link = run.link()
    if run.route.path is None:
        url_page = LinkPage.from_response(run.call("link GET on the function URL", url_link, expect=200, url=True))
        run.call("link POST on the function URL", url_link, expect=run.signed_in("POST"), url=True, page=url_page)

    # The sign-in round trip: no token, an expired one.
    assert goes_to_sign_in(run.call("no login token", expect=302))
    assert goes_to_sign_in(run.call("expired token", run.login_token(issued=now - 3600), expect=302))

    # Refusals.
    forged = run.login_token(key=ATTACKER_KEY)
    run.call("forged token", forged, expect=401)
    for accept in ("application/json", "application/json;q=0.9", "*/*", "text/html"):
        run.call(f"forged token, Accept: {accept}", run.login_token(key=ATTACKER_KEY), expect=401, accept=accept)
    other = next(vendor for vendor in VENDORS if vendor != name)
    run.call("wrong audience", run.login_token(aud=other), expect=403, accept="application/json")
    alg_none = jwt.encode({"email": EMAIL, "aud": name, "iat": now, "exp": now + 120}, "", algorithm="none")
    run.call("alg none", alg_none, expect=401, accept="application/json")
    odd_header = hand_signed(
        {"alg": "HS256", "typ": "JWT", "kid": 7}, {"email": EMAIL, "aud": name, "iat": now, "exp": now + 120}
    )
    run.call("odd header (numeric kid)", odd_header, expect=401)
    run.call("hidden characters in name", run.login_token(name="Jane\u202eeoD"), expect=401)
    run.call("bad email", run.login_token("jane doe@example.com"), expect=400)
    run.call("not a JWT", "nonsense-login-token-value-1234567890", expect=400)
    repeated = run.login_token()
    run.call("repeated login_token", repeated, expect=400, extra=f"login_token={repeated}")
    oversized = run.login_token(padding="x" * 5000)
    run.call("oversized token", oversized, expect=414, accept="application/json")
    run.call("unknown path", run.login_token(), expect=404, url=True, path="/wp-admin/setup.php")
    run.call("unknown path, JSON", run.login_token(), expect=404, url=True, path="/.env", accept="application/json")

    # Where the user would be sent: never anywhere but the vendor's allowed hosts, whoever names it.
    evil = "https://evil.example.net/steal?login_token=planted-value-abcdef0123456789"
    if signs_in.destination is not None and run.route.path is None:
        elsewhere = signs_in.query(**{signs_in.destination: evil})
        run.call(f"{signs_in.destination} to another host", run.login_token(), expect=400, query=elsewhere)
    claimed = run.call(
        "redirect_to claim to another host", run.login_token(redirect_to=evil), expect=(400, run.signed_in())
    )
    assert "evil.example.net" not in claimed["headers"].get("Location", "")
    assert all("evil.example.net" not in action for action, _ in form_posts(claimed["body"]))
    if name == "clickfunnels":
        run.call(
            "redirect_to to another host (query)",
            run.login_token(),
            expect=400,
            extra=f"redirect_to={quote(evil, safe='')}",
        )
        run.call("redirect_to to another host (claim)", run.login_token(redirect_to=evil), expect=400)
    elif name == "kustomer":
        run.call("kustomerRedirectUri to another host", run.login_token(), expect=400, query=kustomer_query(evil))
        planted = make_login_token("attacker@example.net", aud="kustomer", key=ATTACKER_KEY)
        run.token("externalToken in kustomerRedirectUri", "planted externalToken", planted)
        carrying = f"https://yourcompany.kustomer.help/login?externalToken={planted}"
        run.call(
            "kustomerRedirectUri carrying externalToken", run.login_token(), expect=400, query=kustomer_query(carrying)
        )
        # The default brand has no portal URL here (400); acme's portal is its fallback (302).
        expect = 400 if run.route.path is None else 302
        run.call("no kustomerRedirectUri", run.login_token(), expect=expect, query=f"trackingToken={TRACKING}")
        run.call("unknown brand", run.login_token(), expect=404, path="/kustomer/brands/umbrella/login")

    # A vendor that must start the sign-in itself: the platform sends the user straight in, the bridge hands them
    # to the vendor with a short-lived cookie holding a login token, and the vendor sends them back with its request.
    if signs_in.hands_off and run.route.path is None:
        started = run.call("platform sends the user straight in", run.login_token(), expect=302, query="")
        handed = [cookie.split(";", 1)[0] for cookie in started.get("cookies") or []]
        assert handed, "a hand-off sets its cookie"
        assert run.vendor_token(run.call("back from the vendor with the hand-off cookie", expect=302, cookies=handed))

    # The vendor's remote logout, with what it may add: a next address, a login token, its error callback (Zendesk's
    # kind=error&message=..., whose words may name the user).
    for logout in deployed(name).get_only_paths if run.route.path is None else ():
        run.call("logout", expect=200, query=f"next={quote(evil, safe='')}", path=logout)
        run.call("logout with a login token", run.login_token(), expect=200, path=logout)
        words = f"Users with the email address {REVOKED_EMAIL} are not allowed to sign up"
        run.secret("vendor's error callback", "vendor's words", words)
        error = f"kind=error&message={quote(words, safe='')}"
        run.call("vendor's error callback on logout", expect=(200, 400), query=error, path=logout)

    # Outages: a 503 and no token, whatever failed.
    with monkeypatch.context() as patch:
        patch.setattr(run.module.flow.links._client(), "batch_get_item", failing)
        run.call("link table unreachable", run.link(), expect=503, accept="application/json")
    if deployed(name).records_jti:
        with monkeypatch.context() as patch:
            patch.setattr(run.module.jti_store._client(), "put_item", failing)
            run.call("jti table unreachable", run.login_token(), expect=503)
    with monkeypatch.context() as patch:
        run.module.flow.keys.clear()
        patch.setattr(run.module.flow.keys._client(), "get_secret_value", failing)
        run.call("Secrets Manager unreachable", run.login_token(), expect=503)
        run.call("Secrets Manager unreachable, JSON", run.login_token(), expect=503, accept="application/json")
    run.module.flow.keys.clear()


def leaks_in(chunks: list[tuple[str, str, str]], needles: list[Needle]) -> list[str]:
    found = []
    for scenario, source, text in chunks:
        for needle in needles:
            if needle.value in text:
                at = text.index(needle.value)
                context = text[max(0, at - 80) : at + 40].replace("\n", "\\n")
                found.append(f"[{scenario}] {source}: {needle.label} (from {needle.scenario!r}) ...{context}...")
    return found


@pytest.fixture
def acme_secret(aws: Any) -> None:
    """The demo brand's key, seeded before anything is captured."""
    aws.create_secret(Name=ACME_SECRET_ID, SecretString=ACME_KEY)


@pytest.fixture
def run_route(
    acme_secret: None,
    jti_table: Any,
    link_tables: Any,
    load_function: Callable[..., ModuleType],
    capture: Capture,
    powertools_debug: Callable[[], None],
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[str, str, str], Run]:
    def start(route_name: str, dev: str, level: str) -> Run:
        capture.begin()
        route = route_for(route_name)
        env = {"POWERTOOLS_DEV": dev, "POWERTOOLS_LOG_LEVEL": level, "KUSTOMER_BRANDS": ACME_BRANDS}
        if level == "DEBUG":  # what an operator debugging would switch on as well
            env |= {"POWERTOOLS_LOGGER_LOG_EVENT": "true", "POWERTOOLS_DEBUG": "true"}
            powertools_debug()
        module = load_function(route.module, **env)
        assert module.logger.level == logging.getLevelName(level)
        module.logger.registered_handler.setStream(capture.stream)
        run = Run(route, module, capture)
        capture.take("cold start")
        run_every_scenario(run, monkeypatch)
        # The switches did take: DEBUG was the level. The bridge's lines stay one JSON object each, POWERTOOLS_DEV
        # or not (the local console and Logs Insights read them line by line).
        logged = capture.text("logger stream")
        assert '"outcome"' in logged
        assert all(line.startswith("{") and line.endswith("}") for line in logged.splitlines()), logged[:300]
        return run

    return start


@pytest.mark.parametrize(("dev", "level"), SWITCHES, ids=SWITCH_IDS)
@pytest.mark.parametrize("route_name", ROUTES)
def test_no_flow_logs_a_key_a_token_or_a_query(
    run_route: Callable[[str, str, str], Run], capture: Capture, route_name: str, dev: str, level: str
) -> None:
    # Given every flow of one route, run with the operator's switches
    run = run_route(route_name, dev, level)

    # Then nothing any of them printed or logged holds a key, a token, a part of one, or a query string
    tokens = [*run.needles, Needle("trackingToken", TRACKING, "-")]
    tokens += [Needle("trackingToken (no dot)", TRACKING.rstrip("."), "-")]
    tokens += [Needle("parameter", name, "-") for name in ("login_token=", "externalToken=", "trackingToken=")]
    keys = [Needle(label, key, "-") for label, key in KEYS.items()]
    leaks = leaks_in(capture.chunks, [*tokens, *keys])
    # And the SDK's and moto's own DEBUG records hold no token or query either: none is ever sent to AWS
    # (their keys are test_sdk_debug_records_hold_no_key's)
    leaks += leaks_in([(scenario, "sdk records", text) for scenario, text in capture.sdk_chunks], tokens)
    assert not leaks, "\n".join(leaks[:40])
    for source in REQUIRED_SOURCES:  # each source was really captured
        assert capture.text(source), source
    assert any(text for _, text in capture.sdk_chunks)


@pytest.mark.parametrize("route_name", ROUTES)
def test_sdk_debug_records_hold_no_key(
    acme_secret: None,
    jti_table: Any,
    load_function: Callable[..., ModuleType],
    capture: Capture,
    route_name: str,
) -> None:
    # Given the root logger at DEBUG (the capture fixture), a user signs in: the flow fetches its keys
    capture.begin()
    route = route_for(route_name)
    run = Run(route, load_function(route.module, KUSTOMER_BRANDS=ACME_BRANDS), capture)
    assert run.vendor_token(run.call("interactive sign-in", run.login_token(), expect=run.signed_in()))

    # Then no key is in any record, botocore's included
    needles = [Needle(label, key, "-") for label, key in KEYS.items()]
    leaks = leaks_in([(scenario, "sdk records", text) for scenario, text in capture.sdk_chunks], needles)
    assert not leaks, "\n".join(leaks[:20])
