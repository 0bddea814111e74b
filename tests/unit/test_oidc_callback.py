"""OpenID sign-in through a flow's routes, in-process and in milliseconds: what the browser, the provider and the
operator see at each step, every refusal with its status, reason, "Try again" link and log line.

tests/integration/test_oidc_attacks.py plays the same attacks against the vendor functions over a loopback
provider; these run the same ``SignIn`` flow and ``OidcSignIn`` with the scripted provider answered in-process
(``tests.oidc_in_process``), keys and spent states held in memory, so `make mutate` can run them once per mutant.
"""

from __future__ import annotations

import copy
import io
import json
import re
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from unittest import mock
from urllib.parse import parse_qsl, quote, urlsplit

import jwt
import pytest

from sso_bridge.errors import DependencyUnavailable
from sso_bridge.flow import SIGN_IN_METHODS, SignIn, new_app
from sso_bridge.http import App, Event, Response
from sso_bridge.link_store import LinkStore
from sso_bridge.observability import Logger, Metrics
from sso_bridge.oidc_state import STATE_TTL, SignInState, StateSigner, cookie_name
from sso_bridge.request import Query
from sso_bridge.secrets import CURRENT, KeyCache, SecretVersion
from sso_bridge.settings import CommonSettings
from tests.helpers import LOGIN_TOKEN_KEY, PLATFORM_LOGIN_URL, load_event, make_login_token
from tests.oidc_fake_provider import DROP, CognitoShape, User
from tests.oidc_in_process import ISSUER, InProcessProvider

LOGIN_SECRET_ID = "sso-bridge/login-token"
CLIENT_SECRET_ID = "sso-bridge/oidc-client"
HOST = "abc123.execute-api.eu-west-1.amazonaws.com"
SAMPLE = load_event("clickfunnels-sso-httpapi")
RETURN_URL = f"https://{HOST}/clickfunnels/sso?{SAMPLE['rawQueryString']}"
CALLBACK = f"https://{HOST}/oidc/callback"
EVIL = "https://evil.example.net/steal"
OTHER_PROVIDER = "https://login.other-idp.example.com"
NOW = int(time.time())
JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


# --- the bridge's side, in memory ----------------------------------------------------------------------------------


class MemorySecrets(KeyCache):
    """Secrets Manager as a dict: the cache's own logic runs, its fetch reads here."""

    def __init__(self, values: dict[str, str], logger: Logger) -> None:
        super().__init__(max_age=300, max_stale=900, previous_grace=0, logger=logger)
        self.values = values

    def _fetch(self, secret_id: str, stage: str) -> SecretVersion | None:
        if stage != CURRENT:
            return None
        if secret_id not in self.values:
            raise DependencyUnavailable("secret_unavailable", detail=f"{secret_id} {stage}: ResourceNotFound")
        return SecretVersion(self.values[secret_id], created_at=0.0)


class MemoryStates(LinkStore):
    """The spent-links table's sign-in states: each ``sid`` spent once; every spend recorded as written."""

    def __init__(self) -> None:
        super().__init__("spent", "revocations")
        self.spent: list[dict[str, Any]] = []

    def spend_sign_in_state(self, *, sid: str, vendor: str, expires_at: int, spent_at: int, request_id: str) -> bool:
        first = all(item["sid"] != sid for item in self.spent)
        self.spent.append(
            {"sid": sid, "vendor": vendor, "expires_at": expires_at, "spent_at": spent_at, "request_id": request_id}
        )
        return first


@dataclass
class Started:
    """A signed-out request's answer: the redirect to the provider and the state cookie."""

    response: dict[str, Any]
    set_cookie: str

    @property
    def location(self) -> str:
        return str(self.response["headers"]["Location"])

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.location).query, keep_blank_values=True, strict_parsing=True))

    @property
    def sid(self) -> str:
        return self.params["state"]

    @property
    def cookie(self) -> str:
        """``name=value``, as the browser sends it back."""
        return self.set_cookie.split(";", 1)[0]

    def claims(self) -> dict[str, Any]:
        value = self.cookie.partition("=")[2]
        claims: dict[str, Any] = jwt.decode(value, options={"verify_signature": False})
        return claims


@dataclass
class Bridge:
    provider: InProcessProvider
    app: App
    flow: SignIn
    secrets: dict[str, str]
    states: MemoryStates
    logs: io.StringIO
    _read: int = 0
    signed_in: list[dict[str, Any]] = field(default_factory=list)

    def request(
        self,
        path: str,
        query: str = "",
        *,
        method: str = "GET",
        cookies: list[str] | None = None,
        accept: str = "application/json",
        stage: str = "$default",
        host: str = HOST,
    ) -> dict[str, Any]:
        event = copy.deepcopy(SAMPLE)
        event.pop("queryStringParameters", None)
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["rawQueryString"] = query
        event["requestContext"]["http"]["method"] = method
        event["requestContext"]["stage"] = stage
        event["requestContext"]["domainName"] = event["headers"]["host"] = host
        event["headers"]["accept"] = accept
        if cookies is not None:
            event["cookies"] = cookies
        return self.app.resolve(event)

    def start(self, query: str = SAMPLE["rawQueryString"], **kwargs: Any) -> Started:
        response = self.request(kwargs.pop("path", "/clickfunnels/sso"), query, **kwargs)
        assert response["statusCode"] in (302, 303), response
        [cookie] = response["cookies"]
        return Started(response, cookie)

    def callback(self, started: Started, query: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """The browser back at /oidc/callback with the provider's answer (``query``, else the provider's own for
        ``started``) and its state cookie (unless ``cookies`` says otherwise)."""
        kwargs.setdefault("cookies", [started.cookie])
        if query is None:
            query = self.provider.authorize_url(started.location)
        return self.request(kwargs.pop("path", "/oidc/callback"), query, **kwargs)

    def lines(self, message: str) -> list[dict[str, Any]]:
        text = self.logs.getvalue()
        fresh, self._read = text[self._read :], len(text)
        return [line for line in map(json.loads, fresh.splitlines()) if line.get("message") == message]


def make_bridge(provider: InProcessProvider | None = None, **env: str) -> Bridge:
    provider = provider or InProcessProvider()
    settings = CommonSettings.from_env(
        {
            "LOGIN_TOKEN_SECRET_ID": LOGIN_SECRET_ID,
            "PLATFORM_LOGIN_URL": PLATFORM_LOGIN_URL,
            "SPENT_LINKS_TABLE_NAME": "spent",
            "LINK_REVOCATIONS_TABLE_NAME": "revocations",
            "OIDC_ISSUER": provider.issuer,
            "OIDC_CLIENT_ID": provider.client_id,
            "OIDC_CLIENT_SECRET_ID": CLIENT_SECRET_ID,
            "OIDC_PACKAGES_PATH": "/nonexistent/oidc-packages",
            **env,
        }
    )
    logs = io.StringIO()
    logger = Logger("test", stream=logs)
    secrets = {LOGIN_SECRET_ID: LOGIN_TOKEN_KEY, CLIENT_SECRET_ID: provider.client_secret}
    states = MemoryStates()
    app = new_app()
    # The provider's own opener is replaced below: not built, as it loads the system's CA certificates (50 ms)
    with mock.patch.object(urllib.request, "build_opener"):
        flow = SignIn(
            app,
            settings=settings,
            audience="clickfunnels",
            logger=logger,
            metrics=Metrics(namespace="test", service="test"),
            links=states,
            keys=MemorySecrets(secrets, logger),
        )
    assert flow.oidc is not None
    flow.oidc.provider._opener = provider.opener()
    bridge = Bridge(provider, app, flow, secrets, states, logs)

    def vendor() -> Response:
        """The vendor's route as far as the bridge's side goes: who the login token vouches for."""
        user = flow.identify(Query(app.current_event.raw_query_string))
        bridge.signed_in.append({"email": user.email, "name": user.name})
        return Response(200, body="signed in", content_type="text/plain")

    app.route("/clickfunnels/sso", SIGN_IN_METHODS)(vendor)
    return bridge


@pytest.fixture
def bridge() -> Bridge:
    return make_bridge()


def refused(bridge: Bridge, response: dict[str, Any], status: int, reason: str, detail: str | None = None) -> Any:
    """A refusal as the browser and the operator see it: the status, the JSON reason, no redirect and no token
    anywhere, one "request refused" line with the reason (and ``detail``); returns the JSON's ``retry_url``."""
    assert response["statusCode"] == status, response
    assert "Location" not in response["headers"]
    dumped = json.dumps(response)
    assert "login_token" not in dumped
    assert not JWT_LIKE.findall(dumped)
    answer = json.loads(response["body"])
    assert answer["reason"] == reason, answer
    [line] = bridge.lines("request refused")
    assert line["reason"] == reason
    if detail is not None:
        assert line["detail"] == detail
    return answer.get("retry_url")


def login_token_of(location: str) -> dict[str, Any]:
    [token] = [value for name, value in parse_qsl(urlsplit(location).query) if name == "login_token"]
    claims: dict[str, Any] = jwt.decode(token, LOGIN_TOKEN_KEY, algorithms=["HS256"], audience="clickfunnels")
    return claims


def login_token_in(response: dict[str, Any]) -> str:
    return dict(parse_qsl(urlsplit(response["headers"]["Location"]).query))["login_token"]


def signed_in(bridge: Bridge, started: Started, response: dict[str, Any]) -> dict[str, Any]:
    """The callback's redirect back to the return URL with a login token, and the vendor route accepting it."""
    assert response["statusCode"] == 302, response
    location = response["headers"]["Location"]
    assert location.startswith(started.claims()["rt"] + "&login_token=")
    parts = urlsplit(location)
    assert bridge.request(parts.path, parts.query)["statusCode"] == 200
    return login_token_of(location)


# --- the way out: the redirect to the provider -----------------------------------------------------------------


def test_a_signed_out_user_is_sent_to_the_provider_with_the_code_flow_pkce_and_a_state_cookie(bridge: Bridge) -> None:
    before = int(time.time())
    started = bridge.start()
    signer = StateSigner(LOGIN_TOKEN_KEY)
    sid = started.sid
    assert started.location.startswith(f"{ISSUER}/authorize?response_type=code&")
    assert started.params == {
        "response_type": "code",
        "client_id": bridge.provider.client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid email profile",
        "state": sid,
        "nonce": signer.nonce(sid),
        "code_challenge": StateSigner.code_challenge(signer.code_verifier(sid)),
        "code_challenge_method": "S256",
    }
    assert started.response["statusCode"] == 302
    assert started.cookie.startswith(f"{cookie_name(sid)}=")
    state = signer.verify(started.cookie.partition("=")[2])
    assert (state.sid, state.audience, state.return_to, state.redirect_uri, state.issuer) == (
        sid,
        "clickfunnels",
        RETURN_URL,
        CALLBACK,
        ISSUER,
    )
    assert before + STATE_TTL <= state.expires_at <= int(time.time()) + STATE_TTL
    assert started.claims()["iat"] in range(before, int(time.time()) + 1)
    [line] = bridge.lines("login required")
    assert (line["outcome"], line["destination"]) == ("login_redirect", "oidc")


def test_a_posted_sign_in_goes_to_the_provider_with_a_303(bridge: Bridge) -> None:
    started = bridge.start(method="POST")
    assert started.response["statusCode"] == 303
    assert started.location.startswith(f"{ISSUER}/authorize?")


def test_an_authorization_endpoint_with_a_query_keeps_it(bridge: Bridge) -> None:
    """Some providers (Azure B2C's policies) publish an endpoint that already has a query."""
    bridge.provider.discovery_overrides["authorization_endpoint"] = f"{ISSUER}/authorize?p=b2c_1_signin"
    started = bridge.start()
    assert started.location.startswith(f"{ISSUER}/authorize?p=b2c_1_signin&response_type=code&")
    signed_in(bridge, started, bridge.callback(started))


def test_the_stale_login_token_and_the_prompt_marker_stay_out_of_the_return_url(bridge: Bridge) -> None:
    expired = make_login_token(issued=int(time.time()) - 3600)
    started = bridge.start(f"a=1&login_token={expired}&oidc_prompt=login&b={quote('x y')}")
    assert started.params["prompt"] == "login"
    assert started.claims()["rt"] == f"https://{HOST}/clickfunnels/sso?a=1&b=x%20y"
    plain = bridge.start("a=1&oidc_prompt=relogin")
    assert "prompt" not in plain.params
    assert plain.claims()["rt"] == f"https://{HOST}/clickfunnels/sso?a=1"


def test_a_prompt_marker_longer_than_16_characters_is_refused(bridge: Bridge) -> None:
    assert "prompt" not in bridge.start("oidc_prompt=" + "x" * 16).params
    response = bridge.request("/clickfunnels/sso", "oidc_prompt=" + "x" * 17)
    refused(bridge, response, 414, "oidc_prompt_too_long")


@pytest.mark.parametrize(
    ("stage", "path", "callback"),
    [
        ("prod", "/prod/clickfunnels/sso", f"https://{HOST}/prod/oidc/callback"),  # the API's own URL, its stage
        ("prod", "/clickfunnels/sso", CALLBACK),  # a custom domain's mapping: no stage in the path
    ],
)
def test_the_callback_is_on_the_stage_the_browser_used(bridge: Bridge, stage: str, path: str, callback: str) -> None:
    started = bridge.start(path=path, stage=stage)
    assert started.params["redirect_uri"] == callback
    assert started.claims()["rt"] == f"https://{HOST}{path}?{SAMPLE['rawQueryString']}"
    back = bridge.callback(started, path=urlsplit(callback).path, stage=stage)
    assert signed_in_at(back) == started.claims()["rt"]


def signed_in_at(response: dict[str, Any]) -> str:
    assert response["statusCode"] == 302, response
    return str(response["headers"]["Location"]).partition("&login_token=")[0]


def test_with_a_public_host_the_round_trip_is_on_it() -> None:
    bridge = make_bridge(PUBLIC_HOST="sso.example.com")
    started = bridge.start()
    assert started.params["redirect_uri"] == "https://sso.example.com/oidc/callback"
    assert started.claims()["rt"] == f"https://sso.example.com/clickfunnels/sso?{SAMPLE['rawQueryString']}"
    # API Gateway names its own host in the event; the browser is on the public one
    assert signed_in_at(bridge.callback(started)) == started.claims()["rt"]


# --- back from the provider: a sign-in that works ------------------------------------------------------------------


def test_the_callback_returns_the_user_where_they_were_going_with_a_fresh_login_token(
    bridge: Bridge, capsys: pytest.CaptureFixture[str]
) -> None:
    provider = bridge.provider
    started = bridge.start()
    bridge.lines("login required")
    before = int(time.time())
    response = bridge.callback(started)
    claims = signed_in(bridge, started, response)
    after = int(time.time())

    assert set(claims) == {"email", "name", "aud", "iat", "exp", "jti", "sub"}
    assert (claims["email"], claims["name"], claims["aud"]) == (provider.user.email, provider.user.name, "clickfunnels")
    # The provider's subject rides along: portals that map users by a stable id (Canny, Discourse) take it
    assert claims["sub"] == provider.user.sub
    assert claims["iat"] in range(before, after + 1)
    assert claims["exp"] - claims["iat"] == 60
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", claims["jti"])  # 128 random bits
    assert bridge.signed_in == [{"email": provider.user.email, "name": provider.user.name}]
    # The state cookie is cleared, the state spent (recorded as the table keeps it)
    assert response["cookies"] == [StateSigner.clear(started.sid)]
    [spent] = bridge.states.spent
    assert spent == {
        "sid": started.sid,
        "vendor": "clickfunnels",
        "expires_at": started.claims()["exp"],
        "spent_at": spent["spent_at"],
        "request_id": SAMPLE["requestContext"]["requestId"],
    }
    assert spent["spent_at"] in range(before, after + 1)
    # The code was exchanged as the provider insists: the same redirect_uri, PKCE, client_secret_basic
    [exchange] = provider.token_requests
    assert (exchange.outcome, exchange.auth_method) == ("issued", "client_secret_basic")
    assert provider.userinfo_requests == []  # the ID token had every claim
    # One line and one count for the operator
    [line] = bridge.lines("oidc sign-in")
    assert (line["outcome"], line["vendor"], line["level"]) == ("oidc_signed_in", "clickfunnels", "INFO")
    counted = [json.loads(blob) for blob in capsys.readouterr().out.splitlines() if '"OidcSignIn"' in blob]
    assert [blob["OidcSignIn"] for blob in counted] == [[1.0]]


def test_an_email_links_destination_takes_the_place_of_the_requests_own_in_the_return_url(bridge: Bridge) -> None:
    """A spent link's reader signs in and lands where the link pointed (its signed ``redirect_to``)."""
    assert bridge.flow.oidc is not None
    destination = "https://yourworkspace.myclickfunnels.com/courses/1"
    response = bridge.flow.oidc.start(
        Event(SAMPLE), audience="clickfunnels", status=302, add={"redirect_to": destination}
    )
    started = Started(response.to_payload(), response.cookies[0])
    assert started.claims()["rt"] == f"https://{HOST}/clickfunnels/sso?redirect_to={quote(destination, safe='')}"


def _login_token_length(email: str, name: str) -> int:
    """The length of the login token the callback makes for this identity (its claims' values are fixed-size)."""
    claims = {"email": email, "name": name, "aud": "clickfunnels", "iat": NOW, "exp": NOW + 60, "jti": "j" * 22}
    claims["sub"] = User().sub
    return len(jwt.encode(claims, LOGIN_TOKEN_KEY, algorithm="HS256"))


def test_the_longest_login_token_is_4096_characters_and_a_longer_identity_is_refused(bridge: Bridge) -> None:
    """An email and a name each within their limits can still make a login token longer than the vendor routes
    read (emoji are 12 characters each in JSON): refused as an unusable address, never a 500."""
    email = "\U0001f600" * 238 + "@example.com"
    names = ["a" * count + "\u00e9" * accents for accents in range(3) for count in range(40)]
    longest = next(name for name in names if _login_token_length(email, name) == 4096)
    too_long = next(name for name in names if _login_token_length(email, name) == 4097)

    bridge.provider.user = User(email=email, name=longest)
    started = bridge.start()
    response = bridge.callback(started)
    assert len(login_token_in(response)) == 4096
    assert signed_in(bridge, started, response)["email"] == email

    bridge.provider.user = User(email=email, name=too_long)
    started = bridge.start()
    bridge.lines("oidc sign-in")
    retry = refused(bridge, bridge.callback(started), 403, "oidc_email_invalid", "login token too long")
    assert retry == f"{RETURN_URL}&oidc_prompt=login"


def test_a_login_token_ttl_below_a_minute_bounds_the_callbacks_token() -> None:
    bridge = make_bridge(LOGIN_TOKEN_MAX_TTL="30")
    started = bridge.start()
    claims = signed_in(bridge, started, bridge.callback(started))
    assert claims["exp"] - claims["iat"] == 30


def test_client_secret_post() -> None:
    provider = InProcessProvider()
    provider.client_auth = "client_secret_post"
    bridge = make_bridge(provider, OIDC_CLIENT_AUTH="client_secret_post")
    started = bridge.start()
    signed_in(bridge, started, bridge.callback(started))
    assert provider.token_requests[0].auth_method == "client_secret_post"


def test_an_id_token_a_little_past_its_expiry_is_within_the_leeway(bridge: Bridge) -> None:
    now = int(time.time())
    bridge.provider.id_token.claims |= {"exp": now - 20, "iat": now - 320}
    started = bridge.start()
    signed_in(bridge, started, bridge.callback(started))


def test_an_issuer_with_a_path_and_no_iss_parameter_when_not_advertised() -> None:
    provider = InProcessProvider(f"{ISSUER}/realms/acme")
    provider.advertise_iss = provider.send_iss = False
    bridge = make_bridge(provider)
    started = bridge.start()
    assert started.location.startswith(f"{ISSUER}/realms/acme/authorize?")
    signed_in(bridge, started, bridge.callback(started))


# --- where the email comes from ---------------------------------------------------------------------------------


def test_claims_only_in_userinfo_are_read_there_with_the_access_token(bridge: Bridge) -> None:
    bridge.provider.id_token.user_claims_in_id_token = False
    bridge.provider.user = User(email="kate@example.com", name="Kate")
    started = bridge.start()
    claims = signed_in(bridge, started, bridge.callback(started))
    assert (claims["email"], claims["name"]) == ("kate@example.com", "Kate")
    assert bridge.provider.userinfo_requests == [f"Bearer {bridge.provider.token_requests[0].access_token}"]


@pytest.mark.parametrize("missing", ["email", "email_verified"])
def test_an_id_token_without_the_email_or_its_verification_asks_userinfo_for_both(bridge: Bridge, missing: str) -> None:
    """Email and verification from one source: never a verified flag from one and an address from the other."""
    bridge.provider.id_token.claims[missing] = DROP
    bridge.provider.userinfo_claims |= {"email": "from-userinfo@example.com", "email_verified": "true"}
    started = bridge.start()
    assert signed_in(bridge, started, bridge.callback(started))["email"] == "from-userinfo@example.com"
    assert len(bridge.provider.userinfo_requests) == 1


def test_the_name_falls_back_to_the_id_tokens_when_userinfo_has_none(bridge: Bridge) -> None:
    bridge.provider.id_token.claims["email_verified"] = DROP
    bridge.provider.userinfo_claims["name"] = DROP
    started = bridge.start()
    assert signed_in(bridge, started, bridge.callback(started))["name"] == bridge.provider.user.name


def test_an_odd_display_name_is_dropped_not_a_refusal(bridge: Bridge) -> None:
    bridge.provider.user = User(name="Jane\u202eDoe")
    started = bridge.start()
    claims = signed_in(bridge, started, bridge.callback(started))
    assert "name" not in claims
    assert bridge.signed_in == [{"email": "jane.doe@example.com", "name": None}]


def test_without_an_access_token_userinfo_is_not_asked(bridge: Bridge) -> None:
    bridge.provider.id_token.claims["email_verified"] = DROP
    bridge.provider.token_response_overrides["access_token"] = DROP
    started = bridge.start()
    retry = refused(bridge, bridge.callback(started), 403, "oidc_email_unverified")
    assert retry == f"{RETURN_URL}&oidc_prompt=login"
    assert bridge.provider.userinfo_requests == []


def test_without_a_userinfo_endpoint_the_id_tokens_claims_decide(bridge: Bridge) -> None:
    bridge.provider.discovery_overrides["userinfo_endpoint"] = DROP
    bridge.provider.id_token.claims["email"] = DROP
    started = bridge.start()
    refused(bridge, bridge.callback(started), 403, "oidc_email_missing")


def test_userinfo_about_another_subject_is_refused(bridge: Bridge) -> None:
    bridge.provider.id_token.user_claims_in_id_token = False
    bridge.provider.userinfo_claims["sub"] = "someone-else"
    started = bridge.start()
    assert refused(bridge, bridge.callback(started), 401, "oidc_userinfo_subject") == RETURN_URL


@pytest.mark.parametrize(
    ("user", "reason"),
    [
        (User(email_verified=False), "oidc_email_unverified"),
        (User(email_verified="false"), "oidc_email_unverified"),
        (User(email_verified="True"), "oidc_email_unverified"),
        (User(email_verified=1), "oidc_email_unverified"),
        (User(email_verified=None), "oidc_email_unverified"),
        (User(email=None), "oidc_email_missing"),
        (User(email=""), "oidc_email_missing"),
        (User(email=42), "oidc_email_missing"),  # type: ignore[arg-type]
        (User(email="jane doe@example.com"), "oidc_email_invalid"),
        (User(email="jane\u202e@example.com"), "oidc_email_invalid"),
    ],
)
def test_only_a_verified_valid_email_gets_in(bridge: Bridge, user: User, reason: str) -> None:
    bridge.provider.user = user
    started = bridge.start()
    retry = refused(bridge, bridge.callback(started), 403, reason)
    # "Try again" asks the provider for a fresh sign-in: its session would bring the same account straight back
    assert retry == f"{RETURN_URL}&oidc_prompt=login"
    assert bridge.signed_in == []


@pytest.mark.parametrize(
    ("email", "allowed"),
    [("jane@EXAMPLE.com", True), ("jane@mail.example.com", False), ("jane@example.com.evil.net", False)],
)
def test_allowed_email_domains(email: str, allowed: bool) -> None:
    bridge = make_bridge(OIDC_ALLOWED_EMAIL_DOMAINS="example.com,example.org")
    bridge.provider.user = User(email=email)
    started = bridge.start()
    response = bridge.callback(started)
    if allowed:
        assert signed_in(bridge, started, response)["email"] == email
    else:
        refused(bridge, response, 403, "oidc_email_domain")


# --- back from the provider: refusals ---------------------------------------------------------------------------


@dataclass
class Trip:
    """A started sign-in and the provider's answer to it, replayed at the callback with changes."""

    bridge: Bridge
    started: Started
    query: str

    def __call__(self, cookies: list[str] | None = None, **changes: str | None) -> dict[str, Any]:
        """The callback with the provider's query changed (``name=None`` drops it) and the browser's cookies
        (default: its state cookie)."""
        params = dict(parse_qsl(self.query, keep_blank_values=True))
        for name, value in changes.items():
            if value is None:
                params.pop(name, None)
            else:
                params[name] = value
        query = "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in params.items())
        return self.bridge.callback(self.started, query, cookies=[self.started.cookie] if cookies is None else cookies)


@pytest.fixture
def trip(bridge: Bridge) -> Trip:
    started = bridge.start()
    bridge.lines("login required")
    return Trip(bridge, started, bridge.provider.authorize_url(started.location))


@pytest.mark.parametrize(
    ("error", "detail"),
    [("access_denied", "access_denied"), ("Access Denied!", "other"), ("x" * 41, "other"), ("e" * 256, "other")],
)
def test_the_providers_own_refusal_is_logged_by_its_code(bridge: Bridge, trip: Trip, error: str, detail: str) -> None:
    retry = refused(bridge, trip(code=None, error=error), 400, "oidc_provider_error", detail)
    assert retry == RETURN_URL
    assert bridge.provider.token_requests == []


def test_an_error_longer_than_256_characters_is_too_large(bridge: Bridge, trip: Trip) -> None:
    refused(bridge, trip(code=None, error="e" * 257), 414, "error_too_long")


@pytest.mark.parametrize("dropped", ["code", "state"])
def test_a_callback_without_code_or_state_is_malformed(bridge: Bridge, trip: Trip, dropped: str) -> None:
    refused(bridge, trip(**{dropped: None}), 400, "oidc_callback_malformed")
    assert bridge.provider.token_requests == []


def test_a_state_longer_than_64_characters_is_too_large(bridge: Bridge, trip: Trip) -> None:
    refused(bridge, trip(state="s" * 65), 414, "state_too_long")
    # 64 is a state, just not this browser's
    refused(bridge, trip(state="s" * 64), 400, "oidc_state_mismatch", "no cookie for this state")


def test_a_code_longer_than_2048_characters_is_too_large(bridge: Bridge, trip: Trip) -> None:
    refused(bridge, trip(code="c" * 2049), 414, "code_too_long")
    assert bridge.provider.token_requests == []
    refused(bridge, trip(code="c" * 2048), 400, "oidc_code_rejected", "invalid_grant")  # asked, and refused


def test_without_a_state_cookie_the_refusal_offers_the_platforms_sign_in(bridge: Bridge, trip: Trip) -> None:
    assert refused(bridge, trip(cookies=["_ga=GA1.2.3.4"]), 400, "oidc_state_cookie_missing") == PLATFORM_LOGIN_URL


def test_without_a_state_and_without_a_platform_the_refusal_has_no_retry_link() -> None:
    bridge = make_bridge(PLATFORM_LOGIN_URL="")
    started = bridge.start()
    bridge.lines("login required")
    assert refused(bridge, bridge.callback(started, cookies=[]), 400, "oidc_state_cookie_missing") is None


def test_an_empty_state_cookie_is_a_400(bridge: Bridge, trip: Trip) -> None:
    """``Cookie: sso_bridge_oidc_<sid>=``: the bridge never sets that; a proxy or a bot may (issue 17, item 2)."""
    name = trip.started.cookie.partition("=")[0]
    assert refused(bridge, trip(cookies=[f"{name}="]), 400, "oidc_state_cookie_empty") == PLATFORM_LOGIN_URL
    assert bridge.provider.token_requests == []


def test_another_sign_ins_cookie_in_this_browser_is_login_csrf(bridge: Bridge, trip: Trip) -> None:
    other = bridge.start()
    bridge.lines("login required")
    response = trip(cookies=[other.cookie])
    assert refused(bridge, response, 400, "oidc_state_mismatch", "no cookie for this state") == PLATFORM_LOGIN_URL
    # Under this sign-in's cookie name, another sign-in's state: the state verifies, the sid does not match
    name = trip.started.cookie.partition("=")[0]
    response = trip(cookies=[f"{name}={other.cookie.partition('=')[2]}"])
    assert refused(bridge, response, 400, "oidc_state_mismatch", "") == RETURN_URL


def _cookie(started: Started, key: str = LOGIN_TOKEN_KEY, **changes: Any) -> str:
    """A state cookie made by the bridge's own signer (or one with another key), with claims changed."""
    claims = started.claims()
    state = SignInState(
        sid=changes.get("sid", claims["sid"]),
        audience=claims["vendor"],
        return_to=changes.get("rt", claims["rt"]),
        redirect_uri=changes.get("ru", claims["ru"]),
        issuer=changes.get("op", claims["op"]),
        expires_at=int(time.time()) + 600,
    )
    return StateSigner(key).cookie(state, now=int(time.time())).split(";", 1)[0]


@pytest.mark.parametrize(
    ("changes", "detail", "retry"),
    [
        ({"rt": EVIL}, "another host", PLATFORM_LOGIN_URL),
        ({"rt": f"https://{HOST}.evil.net/"}, "another host", PLATFORM_LOGIN_URL),
        ({"rt": RETURN_URL.replace("https:", "http:")}, "another host", PLATFORM_LOGIN_URL),
        ({"ru": f"https://{HOST}/elsewhere"}, "another host", RETURN_URL),
        ({"op": OTHER_PROVIDER}, "another provider", RETURN_URL),
    ],
    ids=["other-host", "lookalike-host", "http", "other-redirect-uri", "other-provider"],
)
def test_a_bridge_signed_state_for_another_host_or_provider_is_refused(
    bridge: Bridge, trip: Trip, changes: dict[str, str], detail: str, retry: str
) -> None:
    response = trip(cookies=[_cookie(trip.started, **changes)])
    # "Try again" never leads off this host: to the platform when the return URL is elsewhere
    assert refused(bridge, response, 400, "oidc_state_invalid", detail) == retry
    assert EVIL not in json.dumps(response)
    assert bridge.provider.token_requests == []


def test_a_state_cookie_signed_with_another_key_is_refused(bridge: Bridge, trip: Trip) -> None:
    cookie = _cookie(trip.started, key="attacker-key-0123456789abcdef0123456789", rt=EVIL)
    response = trip(cookies=[cookie])
    assert refused(bridge, response, 400, "oidc_state_invalid", "InvalidSignatureError") == PLATFORM_LOGIN_URL


@pytest.mark.parametrize(
    ("send_iss", "detail"),
    [(OTHER_PROVIDER, ""), (False, "missing"), (ISSUER + "/", "")],
    ids=["other", "none", "slash"],
)
def test_the_iss_parameter_must_name_our_provider(
    bridge: Bridge, trip: Trip, send_iss: str | bool, detail: str
) -> None:
    """RFC 9207: the provider advertises it, so it must come, and name our issuer exactly."""
    response = trip(iss=send_iss or None)
    assert refused(bridge, response, 400, "oidc_issuer_mismatch", detail) == RETURN_URL
    assert bridge.provider.token_requests == []


def test_an_iss_parameter_is_checked_even_when_not_advertised() -> None:
    provider = InProcessProvider()
    provider.advertise_iss, provider.send_iss = False, OTHER_PROVIDER
    bridge = make_bridge(provider)
    started = bridge.start()
    bridge.lines("login required")
    refused(bridge, bridge.callback(started), 400, "oidc_issuer_mismatch")


def test_an_iss_parameter_longer_than_2048_characters_is_too_large(bridge: Bridge, trip: Trip) -> None:
    refused(bridge, trip(iss="i" * 2049), 414, "iss_too_long")
    refused(bridge, trip(iss="i" * 2048), 400, "oidc_issuer_mismatch")


def test_a_callback_works_once(bridge: Bridge, trip: Trip) -> None:
    assert trip()["statusCode"] == 302
    bridge.lines("oidc sign-in")
    assert refused(bridge, trip(), 400, "oidc_state_used") == RETURN_URL
    assert len(bridge.provider.token_requests) == 1  # never exchanged again


def test_a_code_the_provider_refuses(bridge: Bridge, trip: Trip) -> None:
    refused(bridge, trip(code="not-a-code-the-provider-issued"), 400, "oidc_code_rejected", "invalid_grant")


def test_the_provider_down_at_the_exchange_is_a_503(bridge: Bridge, trip: Trip) -> None:
    bridge.provider.fail("token", "hang")
    response = trip()
    assert refused(bridge, response, 503, "oidc_provider_unavailable", "token: TimeoutError") == RETURN_URL
    assert int(response["headers"]["Retry-After"]) > 0


# --- the client's credentials (read at the start, so a missing secret is a 503 before any password) -------------


@pytest.mark.parametrize(
    ("client_id", "secret", "detail"),
    [
        ("", "plain-secret", "OIDC_CLIENT_ID unset and the secret is not JSON"),
        ("", "{not json", "OIDC client secret: not JSON"),
        ("", '{"client_secret": "s"}', "OIDC client secret: client_id/client_secret"),
        ("", '{"client_id": 7, "client_secret": "s"}', "OIDC client secret: client_id/client_secret"),
        ("id", '{"client_id": "id"}', "OIDC client secret: client_id/client_secret"),
        ("id", '{"client_id": "id", "client_secret": ""}', "OIDC client secret: client_id/client_secret"),
        ("id", '{"client_id": "id", "client_secret": 7}', "OIDC client secret: client_id/client_secret"),
    ],
)
def test_a_client_secret_the_bridge_cannot_use_is_a_503_before_the_provider(
    client_id: str, secret: str, detail: str
) -> None:
    bridge = make_bridge(OIDC_CLIENT_ID=client_id)
    bridge.secrets[CLIENT_SECRET_ID] = secret
    response = bridge.request("/clickfunnels/sso", SAMPLE["rawQueryString"])
    refused(bridge, response, 503, "secret_not_set", detail)


@pytest.mark.parametrize(
    ("client_id", "stored"),
    [
        ("", {"client_id": "sso-bridge-client"}),
        ("sso-bridge-client", {"client_id": "stale"}),
        ("sso-bridge-client", {}),
    ],
    ids=["id-from-the-secret", "the-setting-wins", "setting-and-secret-only"],
)
def test_a_json_client_secret(client_id: str, stored: dict[str, str]) -> None:
    bridge = make_bridge(OIDC_CLIENT_ID=client_id)
    bridge.secrets[CLIENT_SECRET_ID] = json.dumps({**stored, "client_secret": bridge.provider.client_secret})
    started = bridge.start()
    assert started.params["client_id"] == "sso-bridge-client"
    signed_in(bridge, started, bridge.callback(started))
    assert bridge.provider.token_requests[0].outcome == "issued"


# --- logout ---------------------------------------------------------------------------------------------------


SIGNED_OUT = "https://platform.example.com/signed-out"


def test_logout_is_the_providers_only_when_enabled(bridge: Bridge) -> None:
    assert bridge.flow.oidc is not None
    assert bridge.flow.oidc.logout_url(SIGNED_OUT) is None
    assert bridge.provider.hits["discovery"] == 0


@pytest.mark.parametrize(
    ("signed_out", "expected"),
    [
        (
            SIGNED_OUT,
            f"{ISSUER}/logout?client_id=sso-bridge-client&post_logout_redirect_uri={quote(SIGNED_OUT, safe='')}",
        ),
        (None, f"{ISSUER}/logout?client_id=sso-bridge-client"),
    ],
)
def test_logout_ends_the_providers_session(signed_out: str | None, expected: str) -> None:
    bridge = make_bridge(OIDC_LOGOUT="true")
    assert bridge.flow.oidc is not None
    assert bridge.flow.oidc.logout_url(signed_out) == expected


def test_cognito_logout_needs_a_signed_out_url() -> None:
    provider = InProcessProvider(cognito=CognitoShape())
    bridge = make_bridge(provider, OIDC_LOGOUT="true")
    assert bridge.flow.oidc is not None
    assert bridge.flow.oidc.logout_url(None) is None
    [line] = bridge.lines("provider logout skipped")
    assert (line["level"], line["reason"]) == ("WARNING", "logout_uri_missing")
    assert line["detail"] == "Cognito's /logout needs a logout_uri: set PLATFORM_LOGOUT_URL"
    assert provider.hits["discovery"] == 0
    domain = CognitoShape().domain
    expected = f"https://{domain}/logout?client_id=sso-bridge-client&logout_uri={quote(SIGNED_OUT, safe='')}"
    assert bridge.flow.oidc.logout_url(SIGNED_OUT) == expected


@pytest.mark.parametrize("down", ["provider", "secret"])
def test_logout_with_the_provider_or_its_secret_down_skips_the_provider(down: str) -> None:
    bridge = make_bridge(OIDC_LOGOUT="true")
    if down == "provider":
        bridge.provider.fail("discovery", "500")
    else:
        del bridge.secrets[CLIENT_SECRET_ID]
    assert bridge.flow.oidc is not None
    assert bridge.flow.oidc.logout_url(SIGNED_OUT) is None
    [line] = bridge.lines("provider logout skipped")
    expected = (
        ("oidc_provider_unavailable", "discovery: HTTP 500")
        if down == "provider"
        else ("secret_unavailable", f"{CLIENT_SECRET_ID} AWSCURRENT: ResourceNotFound")
    )
    assert (line["level"], line["reason"], line["detail"]) == ("WARNING", *expected)
