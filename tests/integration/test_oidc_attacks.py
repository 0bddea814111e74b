"""OpenID Connect sign-in (issue 11), attacked: every forged, replayed or misdirected answer is refused.

The vendor functions run in-process, as the unit tests run them (moto for AWS, tables from template.yaml, the
module imported under its environment), with ``OIDC_ISSUER`` pointing at a scripted provider on a real loopback
socket (``tests.oidc_fake_provider``). A small browser plays the user: the signed-out request, the provider's
login page, the callback with the state cookie, the return to the vendor route with a login token, and the
vendor's token, verified as the vendor would (HS256, the vendor's key).

Each refusal is checked for what the user and the attacker see (the status and ``reason`` listed in the
README's Identity provider section, no redirect, no login token and no vendor token anywhere in the response)
and for what the operator sees (one "request refused" line with that reason). The logs of all of it hold no code, token,
state or client secret.
"""

from __future__ import annotations

import base64
import copy
import http.client
import io
import json
import logging
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlencode, urlsplit

import hypothesis.configuration
import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sso_bridge.oidc_state import MAX_RETURN_URL_LENGTH, cookie_name
from sso_bridge.redirects import with_query_param
from tests.helpers import (
    LOGIN_TOKEN_KEY,
    PLATFORM_LOGIN_URL,
    SPENT_LINKS_TABLE_NAME,
    VENDOR_KEYS,
    WORKSPACE,
    LambdaContext,
    LinkPage,
    load_event,
    make_login_token,
    pressed,
)
from tests.oidc_fake_provider import (
    DROP,
    CognitoShape,
    FakeProvider,
    IdTokenScript,
    User,
    iter_secrets,
    new_key,
    sign_jws,
)

OIDC_SECRET_ID = "sso-bridge/oidc-client"
ATTACKER_KEY = "attacker-key-0123456789abcdef0123456789abcdef"
OTHER_PROVIDER = "https://login.other-idp.example.com"
EVIL = "https://evil.example.net/steal"
JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")

# The contract's table: reason -> status.
REASONS = {
    "oidc_provider_error": 400,
    "oidc_callback_malformed": 400,
    "oidc_state_cookie_missing": 400,
    "oidc_state_cookie_empty": 400,
    "oidc_state_cookie_too_large": 414,
    "oidc_state_invalid": 400,
    "oidc_state_mismatch": 400,
    "oidc_issuer_mismatch": 400,
    "oidc_state_used": 400,
    "oidc_code_rejected": 400,
    "oidc_id_token_malformed": 401,
    "oidc_id_token_alg": 401,
    "oidc_id_token_kid": 401,
    "oidc_id_token_signature": 401,
    "oidc_id_token_issuer": 401,
    "oidc_id_token_audience": 401,
    "oidc_id_token_expired": 401,
    "oidc_id_token_iat": 401,
    "oidc_id_token_nonce": 401,
    "oidc_userinfo_subject": 401,
    "oidc_email_missing": 403,
    "oidc_email_unverified": 403,
    "oidc_email_domain": 403,
    "oidc_email_invalid": 403,
    "oidc_provider_unavailable": 503,
}


@dataclass(frozen=True)
class Vendor:
    name: str
    event: str  # the HTTP API route's sample event
    url_event: str  # the function URL's sample event
    token_param: str  # the vendor token's parameter in the final redirect


VENDORS = {
    "clickfunnels": Vendor("clickfunnels", "clickfunnels-sso-httpapi", "clickfunnels-sso-function-url", "token"),
    "kustomer": Vendor("kustomer", "kustomer-login-httpapi", "kustomer-login-function-url", "externalToken"),
    "happyfox": Vendor("happyfox", "happyfox-login-httpapi", "happyfox-login-function-url", "token"),
}


# --- the bridge, the browser -----------------------------------------------------------------------------------


@dataclass
class Bridge:
    """The vendor functions, loaded with OIDC pointed at the fake provider; every log line in one buffer."""

    provider: FakeProvider
    loader: Callable[..., ModuleType]
    env: dict[str, str]
    logs: io.StringIO = field(default_factory=io.StringIO)
    modules: dict[str, ModuleType] = field(default_factory=dict)
    _read: int = 0

    def load(self, name: str = "clickfunnels", **env: str) -> ModuleType:
        """A new cold start of ``name`` with the OIDC settings (and ``env`` on top)."""
        self.env |= env
        module = self.loader(name, **self.env)
        module.logger.registered_handler.setStream(self.logs)
        if self.provider.cognito is not None:  # its published hosts are AWS's: reach them on loopback
            module.flow.oidc.provider._opener = self.provider.opener()
        self.modules[name] = module
        return module

    def function(self, name: str = "clickfunnels") -> ModuleType:
        return self.modules.get(name) or self.load(name)

    def new_lines(self) -> list[dict[str, Any]]:
        text = self.logs.getvalue()
        fresh, self._read = text[self._read :], len(text)
        return [json.loads(line) for line in fresh.splitlines() if line.startswith("{")]

    def advance_clock(self, name: str, seconds: float) -> None:
        """Move the function's provider cache clock forward (the Provider's ``clock`` seam), as time passing
        between two users would; the JWKS refetch is limited to once every 10 s."""
        provider = self.function(name).flow.oidc.provider
        previous = provider._clock
        provider._clock = lambda: previous() + seconds


def invoke(module: ModuleType, event: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = module.lambda_handler(event, LambdaContext())
    return response


def event_for(base: dict[str, Any], path: str, query: str, *, method: str = "GET", **headers: str) -> dict[str, Any]:
    """``base`` (a sample event: its host, headers, ids) asking for ``path?query`` instead."""
    event = copy.deepcopy(base)
    event.pop("queryStringParameters", None)
    event.pop("cookies", None)
    event.pop("body", None)
    event["headers"].pop("content-type", None)
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["rawQueryString"] = query
    event["requestContext"]["http"]["method"] = method
    if event.get("routeKey", "$default") != "$default":
        event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {path}"
    event["headers"] |= {name.replace("_", "-").lower(): value for name, value in headers.items()}
    if method == "POST":
        event["headers"]["content-type"] = "application/x-www-form-urlencoded"
        event["body"] = ""
    return event


def host_of(event: dict[str, Any]) -> str:
    return str(event["requestContext"]["domainName"])


@dataclass
class Started:
    """A signed-out request answered with a redirect to the provider and a state cookie."""

    event: dict[str, Any]
    response: dict[str, Any]
    params: dict[str, str]
    set_cookie: str

    @property
    def location(self) -> str:
        return str(self.response["headers"]["Location"])

    @property
    def cookie(self) -> str:
        """``name=value``, as the browser sends it back."""
        return self.set_cookie.split(";", 1)[0].strip()

    @property
    def cookie_name(self) -> str:
        return self.cookie.partition("=")[0]

    @property
    def cookie_value(self) -> str:
        return self.cookie.partition("=")[2]

    @property
    def sid(self) -> str:
        return self.params["state"]

    @property
    def return_url(self) -> str:
        """What the contract says survives the trip: the request URL, minus any login_token."""
        kept = [p for p in self.event["rawQueryString"].split("&") if p and p.split("=", 1)[0] != "login_token"]
        query = "&".join(kept)
        return f"https://{host_of(self.event)}{self.event['rawPath']}" + (f"?{query}" if query else "")

    def state_claims(self) -> dict[str, Any]:
        claims: dict[str, Any] = jwt.decode(self.cookie_value, options={"verify_signature": False})
        return claims


def start(
    bridge: Bridge, vendor: str = "clickfunnels", *, event: dict[str, Any] | None = None, method: str = "GET"
) -> Started:
    """The signed-out request; asserts the redirect to the provider and the cookie the contract describes."""
    base = event or load_event(VENDORS[vendor].event)
    if method != "GET":
        base = event_for(base, base["rawPath"], base["rawQueryString"], method=method)
    response = invoke(bridge.function(vendor), base)
    expected = 303 if method == "POST" else 302
    assert response["statusCode"] == expected, (response["statusCode"], response.get("body", "")[:300])
    location = response["headers"]["Location"]
    endpoint, _, query = location.partition("?")
    assert endpoint == bridge.provider.authorization_endpoint, location
    params = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=True))
    assert "cookies" in response, "the state cookie must be in the payload v2 response's cookies list"
    cookies = [c for c in response["cookies"] if c.startswith("sso_bridge_oidc_")]
    assert len(cookies) == 1, response["cookies"]
    return Started(base, response, params, cookies[0])


def visit_provider(url: str) -> tuple[int, dict[str, str]]:
    """The browser at the provider's login page (the user is already signed in there): redirects not followed."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        connection.request("GET", f"{parts.path}?{parts.query}")
        answer = connection.getresponse()
        answer.read()
        return answer.status, dict(answer.getheaders())
    finally:
        connection.close()


def authorize(started: Started) -> str:
    """The provider's redirect back to the bridge: the callback's raw query."""
    status, headers = visit_provider(started.location)
    assert status == 302, (status, headers)
    target, _, query = headers["Location"].partition("?")
    assert target == started.params["redirect_uri"]
    return query


def callback(
    module: ModuleType,
    started: Started,
    query: str,
    *,
    cookies: list[str] | None = None,
    base: dict[str, Any] | None = None,
    accept: str | None = None,
) -> dict[str, Any]:
    """GET /oidc/callback on the host the sign-in started on (or ``base``'s), with the browser's cookies."""
    event = event_for(base or started.event, "/oidc/callback", query)
    event.pop("queryStringParameters", None)
    event["headers"].pop("referer", None)
    if accept:
        event["headers"]["accept"] = accept
    event["cookies"] = [started.cookie] if cookies is None else cookies
    return invoke(module, event)


def follow_to_vendor(module: ModuleType, started: Started, location: str) -> dict[str, Any]:
    """The browser back at the return URL (same host) with its login token: the vendor route."""
    parts = urlsplit(location)
    assert parts.netloc == host_of(started.event), location
    return invoke(module, event_for(started.event, parts.path, parts.query))


def login_token_in(location: str) -> str:
    [token] = parse_qs(urlsplit(location).query)["login_token"]
    return token


def vendor_claims(vendor: str, response: dict[str, Any]) -> dict[str, Any]:
    """The vendor token in the final redirect, verified as the vendor does."""
    assert response["statusCode"] == 302, response.get("body", "")[:300]
    [token] = parse_qs(urlsplit(response["headers"]["Location"]).query)[VENDORS[vendor].token_param]
    claims: dict[str, Any] = jwt.decode(token, VENDOR_KEYS[vendor], algorithms=["HS256"], options={"verify_aud": False})
    return claims


@dataclass
class Journey:
    started: Started
    callback_query: str
    callback: dict[str, Any]
    login_token: str
    login_claims: dict[str, Any]
    final: dict[str, Any]
    vendor_claims: dict[str, Any]


def sign_in(
    bridge: Bridge,
    vendor: str = "clickfunnels",
    *,
    event: dict[str, Any] | None = None,
    callback_by: str | None = None,
    cookies: Callable[[Started], list[str]] | None = None,
) -> Journey:
    """The whole round trip, asserted at each hop; ``callback_by`` serves the callback from another function
    (the HTTP API routes GET /oidc/callback to the ClickFunnels function)."""
    started = start(bridge, vendor, event=event)
    query = authorize(started)
    module = bridge.function(callback_by or vendor)
    back = callback(module, started, query, cookies=cookies(started) if cookies else None)
    assert back["statusCode"] == 302, (back["statusCode"], back.get("body", "")[:400])
    location = back["headers"]["Location"]
    token = login_token_in(location)
    # The return URL, byte for byte, with the login token appended.
    assert location == f"{started.return_url}{'&' if '?' in started.return_url else '?'}login_token={token}"
    claims: dict[str, Any] = jwt.decode(token, LOGIN_TOKEN_KEY, algorithms=["HS256"], audience=vendor)
    final = follow_to_vendor(bridge.function(vendor), started, location)
    return Journey(started, query, back, token, claims, final, vendor_claims(vendor, final))


def refused(response: dict[str, Any], reason: str, *, bridge: Bridge | None = None, allowed: str = "") -> None:
    """A 4xx (or 503) with the contract's reason, no redirect, and no login or vendor token anywhere in it.

    ``allowed``: text whose JWT-shaped parts may show up (the request's own URL, e.g. Kustomer's trackingToken,
    in the "Try again" link)."""
    body = response.get("body", "")
    assert response["statusCode"] == REASONS[reason], (reason, response["statusCode"], body[:400])
    assert "Location" not in response["headers"]
    dumped = json.dumps(response)
    assert "login_token" not in dumped
    for token in JWT_LIKE.findall(dumped):
        assert token in allowed, f"a token in the refusal: {token[:40]}..."
    assert response["headers"]["Cache-Control"] == "no-store"
    if response["headers"].get("Content-Type", "").startswith("application/json"):
        answer = json.loads(body)
        assert answer["reason"] == reason, answer
        assert {"error", "reason", "message", "request_id"} <= set(answer) <= {*answer, "retry_url"}
    if reason == "oidc_provider_unavailable":
        assert int(response["headers"]["Retry-After"]) > 0
    if bridge is not None:
        lines = [line for line in bridge.new_lines() if line.get("message") == "request refused"]
        assert [line["reason"] for line in lines] == [reason], lines
        if REASONS[reason] < 500:
            assert lines[0]["level"] == "WARNING"


def json_callback(bridge: Bridge, started: Started, query: str, **kwargs: Any) -> dict[str, Any]:
    return callback(bridge.function(), started, query, accept="application/json", **kwargs)


# --- fixtures -------------------------------------------------------------------------------------------------


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    with FakeProvider() as fake:
        yield fake


@pytest.fixture
def bridge(
    aws: Any,
    jti_table: Any,
    link_tables: Any,
    provider: FakeProvider,
    load_function: Callable[..., ModuleType],
) -> Bridge:
    aws.create_secret(Name=OIDC_SECRET_ID, SecretString=provider.client_secret)
    env = {
        "OIDC_ISSUER": provider.issuer,
        "OIDC_CLIENT_ID": provider.client_id,
        "OIDC_CLIENT_SECRET_ID": OIDC_SECRET_ID,
    }
    return Bridge(provider, load_function, env)


# --- happy paths ----------------------------------------------------------------------------------------------


def test_a_signed_out_user_signs_in_at_the_provider_and_lands_in_clickfunnels(bridge: Bridge) -> None:
    provider = bridge.provider
    journey = sign_in(bridge)
    started = journey.started

    # The authorization request: the code flow with PKCE S256, state = sid, a nonce, this host's callback
    params = started.params
    assert params["response_type"] == "code"
    assert params["client_id"] == provider.client_id
    assert params["redirect_uri"] == "https://abc123.execute-api.eu-west-1.amazonaws.com/oidc/callback"
    assert params["scope"].split() == ["openid", "email", "profile"]
    assert params["code_challenge_method"] == "S256"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", params["code_challenge"])
    assert len(params["nonce"]) >= 22
    assert len(params["state"]) >= 22
    # The cookie that binds the sign-in to this browser
    name, _, rest = started.set_cookie.partition("=")
    assert name == f"sso_bridge_oidc_{started.sid[:16]}"
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in rest.split(";")[1:]}
    assert set(attributes) >= {"httponly", "secure", "samesite", "path", "max-age"}
    assert attributes["samesite"] == "SameSite=Lax"
    assert attributes["path"] == "Path=/oidc/callback"
    assert attributes["max-age"] == "Max-Age=600"
    assert "domain" not in attributes  # host-only: never sent to sibling hosts
    # The state cookie holds the return URL, signed, and it is not the login-token key that signs it
    assert started.state_claims()["exp"] - time.time() <= 600
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(started.cookie_value, LOGIN_TOKEN_KEY, algorithms=["HS256"], options={"verify_aud": False})

    # The code exchange: client_secret_basic, the same redirect_uri, the PKCE verifier (the provider checks)
    [exchange] = provider.token_requests
    assert exchange.outcome == "issued"
    assert exchange.auth_method == "client_secret_basic"
    assert "client_secret" not in exchange.form
    assert exchange.form["redirect_uri"] == params["redirect_uri"]
    assert provider.userinfo_requests == []  # the ID token had every claim

    # The callback: back to the return URL with a login token for ClickFunnels, the state cookie cleared
    assert any(
        c.startswith(f"{started.cookie_name}=") and ("Max-Age=0" in c or "Expires=Thu, 01 Jan 1970" in c)
        for c in journey.callback.get("cookies", [])
    ), journey.callback.get("cookies")
    claims = journey.login_claims
    assert claims["email"] == provider.user.email
    assert claims["name"] == provider.user.name
    assert claims["exp"] - claims["iat"] == 60
    assert claims["jti"]
    # And ClickFunnels gets its token, with the deep link the user first asked for
    assert journey.vendor_claims["sub"] == f"{provider.user.email}:{WORKSPACE}"
    assert journey.vendor_claims["redirect_to"] == f"https://{WORKSPACE}/customers/orders"
    signed_in = [line for line in bridge.new_lines() if line.get("outcome") == "oidc_signed_in"]
    assert len(signed_in) == 1
    assert signed_in[0]["message"] == "oidc sign-in"
    assert str(provider.user.email) not in json.dumps(signed_in)


def test_claims_only_from_userinfo_as_panvas_provider_sends_them(bridge: Bridge) -> None:
    bridge.provider.id_token.user_claims_in_id_token = False
    journey = sign_in(bridge)
    assert journey.login_claims["email"] == bridge.provider.user.email
    assert journey.login_claims["name"] == bridge.provider.user.name
    [header] = bridge.provider.userinfo_requests
    assert header == f"Bearer {bridge.provider.token_requests[0].access_token}"


def test_cognitos_string_true_from_userinfo_is_accepted(bridge: Bridge) -> None:
    bridge.provider.id_token.user_claims_in_id_token = False
    bridge.provider.userinfo_claims["email_verified"] = "true"
    assert sign_in(bridge).login_claims["email"] == bridge.provider.user.email


def test_es256_id_tokens_are_accepted(bridge: Bridge) -> None:
    bridge.provider.id_token.alg = "ES256"
    journey = sign_in(bridge)
    assert jwt.get_unverified_header(bridge.provider.issued_id_tokens[0])["alg"] == "ES256"
    assert journey.login_claims["email"] == bridge.provider.user.email


def test_client_secret_post(bridge: Bridge) -> None:
    bridge.provider.client_auth = "client_secret_post"
    bridge.load("clickfunnels", OIDC_CLIENT_AUTH="client_secret_post")
    sign_in(bridge)
    [exchange] = bridge.provider.token_requests
    assert exchange.auth_method == "client_secret_post"
    assert exchange.authorization_header is None


def test_a_json_client_secret_with_no_client_id_setting_as_the_template_cognito_stores_it(
    bridge: Bridge, aws: Any
) -> None:
    secret = json.dumps({"client_id": bridge.provider.client_id, "client_secret": bridge.provider.client_secret})
    aws.put_secret_value(SecretId=OIDC_SECRET_ID, SecretString=secret)
    bridge.load("clickfunnels", OIDC_CLIENT_ID="")
    sign_in(bridge)
    assert bridge.provider.authorizations[0].client_id == bridge.provider.client_id


def test_kustomers_tracking_token_and_redirect_uri_survive_the_detour_byte_for_byte(bridge: Bridge) -> None:
    sample = load_event("kustomer-login-httpapi")
    journey = sign_in(bridge, "kustomer", event=sample)
    # The return URL carried the query exactly as Kustomer sent it (checked in sign_in), and Kustomer's target
    # gets the externalToken appended to its own query, unchanged
    target = parse_qs(sample["rawQueryString"])["kustomerRedirectUri"][0]
    location = journey.final["headers"]["Location"]
    assert location.startswith(f"{target}&externalToken=")
    assert journey.vendor_claims["email"] == bridge.provider.user.email
    # The bridge never told the provider what the user was doing: no Kustomer parameter left the bridge
    assert "trackingToken" not in journey.started.location
    assert "kustomer" not in journey.started.location.lower()


def test_kustomer_on_the_http_api_is_brought_back_by_the_clickfunnels_function(bridge: Bridge) -> None:
    """The template routes the HTTP API's GET /oidc/callback to the ClickFunnels function."""
    bridge.load("kustomer")
    bridge.load("clickfunnels")
    journey = sign_in(bridge, "kustomer", callback_by="clickfunnels")
    assert journey.login_claims["aud"] == "kustomer"
    assert journey.vendor_claims["email"] == bridge.provider.user.email


def test_happyfox(bridge: Bridge) -> None:
    journey = sign_in(bridge, "happyfox")
    assert journey.vendor_claims["email"] == bridge.provider.user.email
    assert journey.vendor_claims["name"] == bridge.provider.user.name


def test_on_a_function_url_the_callback_is_that_hosts(bridge: Bridge) -> None:
    sample = load_event("happyfox-login-function-url")
    journey = sign_in(bridge, "happyfox", event=sample)
    assert journey.started.params["redirect_uri"] == f"https://{host_of(sample)}/oidc/callback"


def test_a_spent_email_link_goes_to_the_provider_and_its_owner_gets_in(bridge: Bridge) -> None:
    module = bridge.function("clickfunnels")
    link = make_login_token(
        "jane.doe@example.com", aud="clickfunnels", use="link", jti="link-jti-0123456789abcdef", lifetime=86400
    )
    sample = load_event("clickfunnels-sso-httpapi")
    query = f"{sample['rawQueryString']}&login_token={link}"
    # Spent once (the button's POST, from the page the GET showed)...
    page = LinkPage.from_response(invoke(module, event_for(sample, sample["rawPath"], query)))
    assert invoke(module, pressed(event_for(sample, sample["rawPath"], query), page))["statusCode"] == 303
    # ...then opened again: GET and POST both go to the provider, not to a platform
    again = start(bridge, event=event_for(sample, sample["rawPath"], query))
    assert link not in again.location
    assert link not in json.dumps(again.response)
    assert link not in again.state_claims()["rt"]
    posted = invoke(module, pressed(event_for(sample, sample["rawPath"], query), page))
    assert posted["statusCode"] == 303
    assert posted["headers"]["Location"].startswith(f"{bridge.provider.authorization_endpoint}?")
    # And the owner, signing in at the provider, gets in with the link's deep link intact
    journey = sign_in(bridge, event=event_for(sample, sample["rawPath"], query))
    assert journey.login_claims["email"] == bridge.provider.user.email
    assert "login_token=" + link not in journey.callback["headers"]["Location"]
    assert journey.vendor_claims["redirect_to"] == f"https://{WORKSPACE}/customers/orders"


def test_a_spent_links_deep_link_survives_the_providers_round_trip(bridge: Bridge) -> None:
    """Issue 17, item 8: a link whose destination is signed into it (`make link REDIRECT_TO=...`), spent, then
    opened again: through the provider and back to that destination (it rides in the state's return URL)."""
    module = bridge.function("clickfunnels")
    deep_link = f"https://{WORKSPACE}/customers/orders?tab=recent"
    link = make_login_token(
        "jane.doe@example.com",
        aud="clickfunnels",
        use="link",
        jti="link-jti-deep-0123456789ab",
        lifetime=86400,
        redirect_to=deep_link,
    )
    sample = load_event("clickfunnels-sso-function-url")
    query = f"login_token={link}"
    page = LinkPage.from_response(invoke(module, event_for(sample, "/", query)))
    assert invoke(module, pressed(event_for(sample, "/", query), page))["statusCode"] == 303

    started = start(bridge, event=event_for(sample, "/", query))
    assert parse_qs(urlsplit(started.state_claims()["rt"]).query) == {"redirect_to": [deep_link]}
    back = callback(module, started, authorize(started))
    assert back["statusCode"] == 302, back.get("body", "")[:300]
    final = follow_to_vendor(module, started, back["headers"]["Location"])
    assert vendor_claims("clickfunnels", final)["redirect_to"] == deep_link


def test_login_tokens_keep_working_beside_oidc(bridge: Bridge) -> None:
    sample = load_event("clickfunnels-sso-httpapi")
    query = f"{sample['rawQueryString']}&login_token={make_login_token(aud='clickfunnels')}"
    response = invoke(bridge.function(), event_for(sample, sample["rawPath"], query))
    assert vendor_claims("clickfunnels", response)
    assert bridge.provider.hits == {}  # the provider is not even asked


def test_oidc_alone_with_no_platform_login_url(bridge: Bridge, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLATFORM_LOGIN_URL")
    bridge.load("clickfunnels")
    assert sign_in(bridge).vendor_claims


def test_two_tabs_signing_in_at_once_both_get_in(bridge: Bridge) -> None:
    first, second = start(bridge), start(bridge)
    assert first.cookie_name != second.cookie_name
    jar = [first.cookie, second.cookie, "_ga=GA1.2.3.4"]
    for started in (second, first):
        back = callback(bridge.function(), started, authorize(started), cookies=jar)
        assert back["statusCode"] == 302, back.get("body", "")[:300]


@pytest.mark.parametrize(
    ("path", "trailing_slash"), [("", True), ("/realms/acme", False)], ids=["auth0-trailing-slash", "keycloak-realm"]
)
def test_issuers_with_a_trailing_slash_or_a_path(
    aws: Any,
    jti_table: Any,
    link_tables: Any,
    load_function: Callable[..., ModuleType],
    path: str,
    trailing_slash: bool,
) -> None:
    with FakeProvider(path=path, trailing_slash=trailing_slash) as provider:
        aws.create_secret(Name=OIDC_SECRET_ID, SecretString=provider.client_secret)
        env = {"OIDC_ISSUER": provider.issuer, "OIDC_CLIENT_ID": provider.client_id}
        bridge = Bridge(provider, load_function, env | {"OIDC_CLIENT_SECRET_ID": OIDC_SECRET_ID})
        journey = sign_in(bridge)
        assert jwt.decode(provider.issued_id_tokens[0], options={"verify_signature": False})["iss"] == provider.issuer
        assert journey.vendor_claims


def test_a_provider_that_does_not_advertise_rfc_9207_need_not_send_iss(bridge: Bridge) -> None:
    bridge.provider.advertise_iss = False
    bridge.provider.send_iss = False
    assert sign_in(bridge).vendor_claims


def test_allowed_domains_compare_case_insensitively(bridge: Bridge) -> None:
    bridge.provider.user = User(email="Jane.Doe@EXAMPLE.COM")
    bridge.load("clickfunnels", OIDC_ALLOWED_EMAIL_DOMAINS="example.com,example.org")
    assert sign_in(bridge).login_claims["email"] == "Jane.Doe@EXAMPLE.COM"


# --- attacks: what the provider (or someone posing as it) answers -----------------------------------------------


def _now() -> int:
    return int(time.time())


def _claims(**claims: Any) -> Callable[[FakeProvider], None]:
    def arrange(provider: FakeProvider) -> None:
        provider.id_token.claims |= {name: value() if callable(value) else value for name, value in claims.items()}

    return arrange


def _script(**fields: Any) -> Callable[[FakeProvider], None]:
    def arrange(provider: FakeProvider) -> None:
        for name, value in fields.items():
            setattr(provider.id_token, name, value)

    return arrange


def _user(**fields: Any) -> Callable[[FakeProvider], None]:
    def arrange(provider: FakeProvider) -> None:
        provider.user = User(**fields)

    return arrange


def _userinfo(**claims: Any) -> Callable[[FakeProvider], None]:
    def arrange(provider: FakeProvider) -> None:
        provider.id_token.user_claims_in_id_token = False
        provider.userinfo_claims |= claims

    return arrange


def _provider(**fields: Any) -> Callable[[FakeProvider], None]:
    def arrange(provider: FakeProvider) -> None:
        for name, value in fields.items():
            setattr(provider, name, value)

    return arrange


def _unpublished_key(provider: FakeProvider) -> None:
    provider.id_token.key = new_key("RS256")


def _impostor_key_with_the_real_kid(provider: FakeProvider) -> None:
    provider.id_token.key = new_key("RS256", kid=provider.current_key("RS256").kid)


def _payload_swapped(provider: FakeProvider) -> None:
    """A genuine token whose payload is swapped for one naming someone else (signature kept)."""
    original = provider.make_id_token

    def tampered(*args: Any, **kwargs: Any) -> str:
        token = original(*args, **kwargs)
        header, payload, signature = token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["email"] = "ceo@example.com"
        forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return f"{header}.{forged}.{signature}"

    provider.make_id_token = tampered  # type: ignore[method-assign]


def _hs256_with(secret: Callable[[FakeProvider], bytes]) -> Callable[[FakeProvider], None]:
    def arrange(provider: FakeProvider) -> None:
        provider.id_token.alg = "HS256"
        provider.id_token.hmac_secret = secret(provider)

    return arrange


def _header(**members: Any) -> Callable[[FakeProvider], None]:
    def arrange(provider: FakeProvider) -> None:
        provider.id_token.header |= members

    return arrange


def _public_pem(provider: FakeProvider) -> bytes:
    return provider.current_key().public_pem()


PROVIDER_ATTACKS: list[tuple[str, Callable[[FakeProvider], None], str, dict[str, str]]] = [
    ("provider-says-access-denied", _provider(authorize_error="access_denied"), "oidc_provider_error", {}),
    ("iss-parameter-of-another-provider", _provider(send_iss=OTHER_PROVIDER), "oidc_issuer_mismatch", {}),
    ("iss-parameter-missing-though-advertised", _provider(send_iss=False), "oidc_issuer_mismatch", {}),
    (
        "iss-parameter-wrong-though-not-advertised",
        _provider(advertise_iss=False, send_iss=OTHER_PROVIDER),
        "oidc_issuer_mismatch",
        {},
    ),
    ("id-token-for-another-client", _claims(aud="another-client"), "oidc_id_token_audience", {}),
    ("id-token-for-other-clients-only", _claims(aud=["another-client", "x"]), "oidc_id_token_audience", {}),
    (
        "azp-of-another-client",
        _claims(aud=["sso-bridge-client", "another-client"], azp="another-client"),
        "oidc_id_token_audience",
        {},
    ),
    ("azp-of-another-client-single-aud", _claims(azp="another-client"), "oidc_id_token_audience", {}),
    ("wrong-issuer-in-id-token", _claims(iss=OTHER_PROVIDER), "oidc_id_token_issuer", {}),
    ("issuer-missing-in-id-token", _claims(iss=DROP), "oidc_id_token_issuer", {}),
    ("expired", _claims(exp=lambda: _now() - 120, iat=lambda: _now() - 420), "oidc_id_token_expired", {}),
    ("iat-in-the-future", _claims(iat=lambda: _now() + 600, exp=lambda: _now() + 900), "oidc_id_token_iat", {}),
    ("iat-a-day-old", _claims(iat=lambda: _now() - 86400, exp=lambda: _now() + 300), "oidc_id_token_iat", {}),
    ("nonce-mismatch", _claims(nonce="an-attackers-own-nonce-0123456789"), "oidc_id_token_nonce", {}),
    ("nonce-missing", _claims(nonce=DROP), "oidc_id_token_nonce", {}),
    ("alg-none", _script(alg="none"), "oidc_id_token_alg", {}),
    (
        "hs256-with-the-providers-public-key",
        _hs256_with(lambda p: p.current_key().public_pem()),
        "oidc_id_token_alg",
        {},
    ),
    ("hs256-with-the-client-secret", _hs256_with(lambda p: p.client_secret.encode()), "oidc_id_token_alg", {}),
    ("alg-not-offered-ps256", _header(alg="PS256"), "oidc_id_token_alg", {}),
    ("unknown-kid", _unpublished_key, "oidc_id_token_kid", {}),
    ("another-key-claiming-the-real-kid", _impostor_key_with_the_real_kid, "oidc_id_token_signature", {}),
    ("payload-swapped-after-signing", _payload_swapped, "oidc_id_token_signature", {}),
    ("not-a-jwt", _script(raw="not-a-jwt"), "oidc_id_token_malformed", {}),
    ("no-id-token-at-all", _script(omit=True), "oidc_id_token_malformed", {}),
    ("userinfo-about-another-subject", _userinfo(sub="someone-else-42"), "oidc_userinfo_subject", {}),
    ("email-unverified", _user(email_verified=False), "oidc_email_unverified", {}),
    ("email-verified-string-false", _user(email_verified="false"), "oidc_email_unverified", {}),
    ("email-verified-number-1", _user(email_verified=1), "oidc_email_unverified", {}),
    ("email-verified-missing-everywhere", _user(email_verified=None), "oidc_email_unverified", {}),
    ("email-unverified-in-userinfo", _userinfo(email_verified=False), "oidc_email_unverified", {}),
    ("email-missing-everywhere", _user(email=None), "oidc_email_missing", {}),
    ("email-not-an-address", _user(email="jane doe@example.com"), "oidc_email_invalid", {}),
    ("email-with-a-bidi-override", _user(email="jane\u202e@example.com"), "oidc_email_invalid", {}),
    # "Kate" with the Kelvin sign: the vendor, or a lower-casing key, would take it for kate@example.com
    ("email-with-a-look-alike-kelvin-sign", _user(email="\u212aate@example.com"), "oidc_email_invalid", {}),
    (
        "disallowed-domain",
        _user(email="mallory@evil.example.net"),
        "oidc_email_domain",
        {"OIDC_ALLOWED_EMAIL_DOMAINS": "example.com"},
    ),
    (
        "subdomain-of-an-allowed-domain",
        _user(email="jane@mail.example.com"),
        "oidc_email_domain",
        {"OIDC_ALLOWED_EMAIL_DOMAINS": "example.com"},
    ),
    (
        "allowed-domain-as-a-prefix",
        _user(email="jane@example.com.evil.net"),
        "oidc_email_domain",
        {"OIDC_ALLOWED_EMAIL_DOMAINS": "example.com"},
    ),
]


@pytest.mark.parametrize(
    ("arrange", "reason", "env"),
    [case[1:] for case in PROVIDER_ATTACKS],
    ids=[case[0] for case in PROVIDER_ATTACKS],
)
def test_provider_side_attacks_are_refused(
    bridge: Bridge, arrange: Callable[[FakeProvider], None], reason: str, env: dict[str, str]
) -> None:
    if env:
        bridge.load("clickfunnels", **env)
    started = start(bridge)
    arrange(bridge.provider)
    bridge.new_lines()
    response = json_callback(bridge, started, authorize(started))
    refused(response, reason, bridge=bridge)
    # The state verified, so "Try again" leads back where the user was going; after a refused account, asking
    # the provider for a fresh sign-in, else its session would bring the same account straight back
    retry = with_query_param(started.return_url, "oidc_prompt", "login") if response["statusCode"] == 403 else None
    assert json.loads(response["body"]).get("retry_url") == (retry or started.return_url)


def test_a_provider_error_page_has_a_try_again_link_to_where_the_user_was_going(bridge: Bridge) -> None:
    started = start(bridge)
    bridge.provider.authorize_error = "access_denied"
    response = callback(bridge.function(), started, authorize(started))
    refused(response, "oidc_provider_error", bridge=bridge)
    assert response["headers"]["Content-Type"].startswith("text/html")
    assert "Try again" in response["body"]
    assert f'href="{escape(started.return_url, quote=True)}"' in response["body"]
    assert bridge.provider.token_requests == []  # nothing was exchanged


def test_a_refused_kustomer_sign_in_offers_kustomers_own_request_again(bridge: Bridge) -> None:
    started = start(bridge, "kustomer")
    bridge.provider.user = User(email_verified=False)
    response = callback(bridge.function("kustomer"), started, authorize(started))
    refused(response, "oidc_email_unverified", allowed=started.return_url)
    retry = with_query_param(started.return_url, "oidc_prompt", "login")
    assert f'href="{escape(retry, quote=True)}"' in response["body"]


def test_try_again_after_a_refused_account_asks_the_provider_for_a_fresh_sign_in(bridge: Bridge) -> None:
    """Given mallory refused (unverified email) while her provider session lives on,
    when she follows "Try again", the provider is asked to sign someone in afresh (prompt=login),
    and the request that comes back is the original one: the marker does not ride along."""
    started = start(bridge, "kustomer")
    bridge.provider.user = User(email_verified=False)
    refusal = callback(bridge.function("kustomer"), started, authorize(started), accept="application/json")
    retry = urlsplit(json.loads(refusal["body"])["retry_url"])

    again = start(bridge, "kustomer", event=event_for(started.event, retry.path, retry.query))

    assert again.params["prompt"] == "login"
    assert "prompt" not in started.params
    assert again.state_claims()["rt"] == started.return_url
    bridge.provider.user = User()
    back = callback(bridge.function("kustomer"), again, authorize(again))
    assert back["headers"]["Location"].startswith(f"{started.return_url}&login_token=")


# --- attacks: what arrives at the callback ------------------------------------------------------------------------


def _forged_cookie(started: Started, *, key: str, **changes: Any) -> str:
    claims = started.state_claims() | changes
    return f"{started.cookie_name}={jwt.encode(claims, key, algorithm='HS256')}"


def _bridge_signed_cookie(started: Started, *, rt: str | None = None, expired: bool = False) -> str:
    """A state the bridge's own signer made (what the later checks must hold against even then)."""
    from sso_bridge.oidc_state import SignInState, StateSigner

    claims = started.state_claims()
    now = _now() - 700 if expired else _now()
    state = SignInState(
        sid=claims["sid"],
        audience=claims["vendor"],
        return_to=rt or claims["rt"],
        redirect_uri=claims["ru"],
        issuer=claims["op"],
        expires_at=now + 600,
    )
    return StateSigner(LOGIN_TOKEN_KEY).cookie(state, now=now).split(";", 1)[0]


def _with_query(query: str, **changes: str | None) -> str:
    params = dict(parse_qsl(query, keep_blank_values=True))
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    return urlencode(params)


# (id, how the browser's callback is changed, reason)
BROWSER_ATTACKS: list[tuple[str, Callable[[Bridge, Started, str], tuple[str, list[str]]], str]] = [
    ("no-cookie-other-browser", lambda b, s, q: (q, []), "oidc_state_cookie_missing"),
    ("only-unrelated-cookies", lambda b, s, q: (q, ["_ga=GA1.2.3.4", "session=abc"]), "oidc_state_cookie_missing"),
    ("no-state-parameter", lambda b, s, q: (_with_query(q, state=None), [s.cookie]), "oidc_callback_malformed"),
    ("no-code", lambda b, s, q: (_with_query(q, code=None), [s.cookie]), "oidc_callback_malformed"),
    (
        "state-parameter-altered-after-16-chars",
        lambda b, s, q: (_with_query(q, state=s.sid[:16] + "A" * (len(s.sid) - 16)), [s.cookie]),
        "oidc_state_mismatch",
    ),
    (
        "another-sign-ins-state-under-this-cookie-name",
        lambda b, s, q: (q, [f"{s.cookie_name}={start(b).cookie_value}"]),
        "oidc_state_mismatch",
    ),
    (
        "login-csrf-attackers-callback-in-a-browser-with-its-own-sign-in",
        lambda b, s, q: (q, [start(b).cookie]),
        "oidc_state_mismatch",  # this browser is signing in, but not with this state: someone else's callback
    ),
    (
        "cookie-signed-with-another-key-to-another-host",
        lambda b, s, q: (q, [_forged_cookie(s, key=ATTACKER_KEY, rt=EVIL)]),
        "oidc_state_invalid",
    ),
    (
        "cookie-signed-with-the-login-token-key-itself",
        lambda b, s, q: (q, [_forged_cookie(s, key=LOGIN_TOKEN_KEY, rt=EVIL)]),
        "oidc_state_invalid",
    ),
    (
        "cookie-payload-changed-signature-kept",
        lambda b, s, q: (q, [_tampered_cookie(s)]),
        "oidc_state_invalid",
    ),
    (
        "cookie-alg-none",
        lambda b, s, q: (q, [f"{s.cookie_name}={sign_jws({'alg': 'none'}, s.state_claims() | {'rt': EVIL})}"]),
        "oidc_state_invalid",
    ),
    (
        "cookie-expired",
        lambda b, s, q: (q, [_bridge_signed_cookie(s, expired=True)]),
        "oidc_state_invalid",
    ),
    (
        "bridge-signed-state-returning-to-another-host",
        lambda b, s, q: (q, [_bridge_signed_cookie(s, rt=EVIL)]),
        "oidc_state_invalid",
    ),
    (
        "bridge-signed-state-returning-to-a-lookalike-host",
        lambda b, s, q: (
            q,
            [_bridge_signed_cookie(s, rt="https://abc123.execute-api.eu-west-1.amazonaws.com.evil.net/")],
        ),
        "oidc_state_invalid",
    ),
    (
        "bridge-signed-state-returning-over-http",
        lambda b, s, q: (q, [_bridge_signed_cookie(s, rt=s.return_url.replace("https://", "http://", 1))]),
        "oidc_state_invalid",
    ),
]


def _tampered_cookie(started: Started) -> str:
    header, _, rest = started.cookie_value.partition(".")
    _, _, signature = rest.partition(".")
    claims = started.state_claims() | {"rt": EVIL}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{started.cookie_name}={header}.{payload}.{signature}"


@pytest.mark.parametrize(
    ("tamper", "reason"), [case[1:] for case in BROWSER_ATTACKS], ids=[case[0] for case in BROWSER_ATTACKS]
)
def test_callback_side_attacks_are_refused(
    bridge: Bridge, tamper: Callable[[Bridge, Started, str], tuple[str, list[str]]], reason: str
) -> None:
    started = start(bridge)
    query, cookies = tamper(bridge, started, authorize(started))
    bridge.new_lines()
    response = json_callback(bridge, started, query, cookies=cookies)
    refused(response, reason, bridge=bridge)
    # Refused before the code was ever spent: the provider saw no exchange
    assert bridge.provider.token_requests == []
    if reason != "oidc_callback_malformed":
        assert EVIL not in response["body"]


def test_a_refusal_without_a_state_to_trust_offers_the_platforms_sign_in(bridge: Bridge) -> None:
    """Each failure is a page with a "Try again" link: the return URL when the state verified, else the
    platform's sign-in page (PLATFORM_LOGIN_URL), never a URL the request brought."""
    started = start(bridge)
    response = callback(bridge.function(), started, authorize(started), cookies=[])
    refused(response, "oidc_state_cookie_missing")
    assert f'<a href="{PLATFORM_LOGIN_URL}">Try again</a>' in response["body"]
    assert EVIL not in response["body"]


def _b64_json(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


# (id, the value the browser sends back under this sign-in's cookie name, reason). Nothing a browser or a bot puts
# there is the bridge's fault: never a 5xx (an alarm anyone could trip), never an exchange of the code.
ODD_STATE_COOKIES: list[tuple[str, Callable[[Started], str], str]] = [
    ("empty", lambda s: "", "oidc_state_cookie_empty"),
    ("blanks-only", lambda s: "   ", "oidc_state_cookie_empty"),
    ("quoted-empty", lambda s: '""', "oidc_state_invalid"),
    ("the-real-value-quoted", lambda s: f'"{s.cookie_value}"', "oidc_state_invalid"),
    ("an-equals-sign", lambda s: "=", "oidc_state_invalid"),
    ("dots-only", lambda s: "..", "oidc_state_invalid"),
    ("three-empty-segments-and-more", lambda s: "...", "oidc_state_invalid"),
    ("not-base64", lambda s: "a.b.c", "oidc_state_invalid"),
    ("non-ascii", lambda s: "\u00e9.\u00e9.\u00e9", "oidc_state_invalid"),
    ("non-ascii-after-the-real-value", lambda s: s.cookie_value + "\u212a", "oidc_state_invalid"),
    ("a-lone-surrogate", lambda s: "\ud800", "oidc_state_invalid"),
    (
        "a-lone-surrogate-in-the-real-value",
        lambda s: s.cookie_value[:20] + "\udfff" + s.cookie_value[21:],
        "oidc_state_invalid",
    ),
    ("nul", lambda s: "\x00", "oidc_state_invalid"),
    ("the-real-value-truncated", lambda s: s.cookie_value[:-1], "oidc_state_invalid"),
    ("the-real-value-and-more", lambda s: s.cookie_value + "A", "oidc_state_invalid"),
    ("over-4-kb", lambda s: "A" * 5000, "oidc_state_invalid"),
    ("header-not-an-object", lambda s: f"{_b64_json([])}.{_b64_json({})}.", "oidc_state_invalid"),
    ("payload-not-an-object", lambda s: f"{_b64_json({'alg': 'HS256'})}.{_b64_json([1])}.sig", "oidc_state_invalid"),
    (
        "a-kid-that-is-not-text",
        lambda s: f"{_b64_json({'alg': 'HS256', 'kid': 1})}.{_b64_json({})}.x",
        "oidc_state_invalid",
    ),
]


def _metric_reasons(stdout: str, metric: str) -> list[str]:
    blobs = [json.loads(line) for line in stdout.splitlines() if line.startswith("{") and '"_aws"' in line]
    return [blob["reason"] for blob in blobs if metric in blob]


@pytest.mark.parametrize(
    ("value", "reason"), [case[1:] for case in ODD_STATE_COOKIES], ids=[case[0] for case in ODD_STATE_COOKIES]
)
def test_an_odd_state_cookie_is_a_4xx_refusal_with_a_way_back(
    bridge: Bridge, capsys: pytest.CaptureFixture[str], value: Callable[[Started], str], reason: str
) -> None:
    """Given a sign-in in flight, when the callback comes back with its cookie emptied or mangled (by a proxy, an
    extension, a bot), then the browser gets the callback's usual refusal page: a 4xx, no redirect, a "Try again"
    link to the platform's sign-in (no state to trust), logged once and counted in Refused; and nothing is
    exchanged with the provider."""
    started = start(bridge)
    query = authorize(started)
    bridge.new_lines()
    capsys.readouterr()
    response = callback(bridge.function(), started, query, cookies=[f"{started.cookie_name}={value(started)}"])
    refused(response, reason, bridge=bridge)
    assert response["headers"]["Content-Type"].startswith("text/html")
    assert f'<a href="{PLATFORM_LOGIN_URL}">Try again</a>' in response["body"]
    assert _metric_reasons(capsys.readouterr().out, "Refused") == [reason]
    assert bridge.provider.token_requests == []


def test_an_empty_state_cookie_answers_json_clients_with_its_own_reason(bridge: Bridge) -> None:
    started = start(bridge)
    response = json_callback(bridge, started, authorize(started), cookies=[f"{started.cookie_name}="])
    refused(response, "oidc_state_cookie_empty")
    assert json.loads(response["body"])["retry_url"] == PLATFORM_LOGIN_URL


def test_a_state_started_on_one_host_is_refused_on_another(bridge: Bridge) -> None:
    """The state the function URL host wrote, brought back to the HTTP API's callback (or the other way)."""
    module = bridge.function("clickfunnels")
    started = start(bridge, event=load_event("clickfunnels-sso-function-url"))
    query = authorize(started)
    response = callback(module, started, query, base=load_event("clickfunnels-sso-httpapi"), accept="application/json")
    refused(response, "oidc_state_invalid")
    assert bridge.provider.token_requests == []


def test_a_replayed_code_is_refused_by_the_provider_and_then_by_the_bridge(bridge: Bridge) -> None:
    module = bridge.function()
    first, second = start(bridge), start(bridge)
    first_query, second_query = authorize(first), authorize(second)
    assert callback(module, first, first_query)["statusCode"] == 302
    # The first sign-in's code, under the second sign-in's state and cookie
    stolen_code = dict(parse_qsl(first_query))["code"]
    bridge.new_lines()
    response = json_callback(bridge, second, _with_query(second_query, code=stolen_code))
    refused(response, "oidc_code_rejected", bridge=bridge)
    assert bridge.provider.token_requests[-1].outcome == "code_reused"


def test_a_code_from_another_sign_in_is_refused(bridge: Bridge) -> None:
    """A code issued for one sign-in (its PKCE challenge) under another's state: PKCE says no."""
    first, second = start(bridge), start(bridge)
    first_query = authorize(first)
    second_query = authorize(second)
    code = dict(parse_qsl(first_query))["code"]
    response = json_callback(bridge, second, _with_query(second_query, code=code))
    refused(response, "oidc_code_rejected", bridge=bridge)
    assert bridge.provider.token_requests[-1].outcome == "pkce_mismatch"


def test_a_replayed_state_is_refused_even_on_another_function(bridge: Bridge, link_tables: Any) -> None:
    bridge.load("kustomer")
    module = bridge.load("clickfunnels")
    started = start(bridge)
    query = authorize(started)
    assert callback(module, started, query)["statusCode"] == 302
    exchanges = len(bridge.provider.token_requests)
    bridge.new_lines()
    # The same callback again (browser history, a leaked URL with the cookie still in the jar)
    refused(json_callback(bridge, started, query), "oidc_state_used", bridge=bridge)
    # and on another function of the stack (the spent-links table is shared)
    again = callback(bridge.function("kustomer"), started, query, accept="application/json")
    refused(again, "oidc_state_used", bridge=bridge)
    assert len(bridge.provider.token_requests) == exchanges  # never exchanged again
    # recorded in the spent-links table, beside the links, without the cookie, the code or any token
    items = link_tables.scan(TableName=SPENT_LINKS_TABLE_NAME)["Items"]
    dumped = json.dumps(items)
    assert len(items) == 1
    for secret in (started.cookie_value, dict(parse_qsl(query))["code"]):
        assert secret not in dumped


def test_rotated_provider_keys_are_fetched_again_once_and_never_for_a_made_up_kid(bridge: Bridge) -> None:
    provider = bridge.provider
    sign_in(bridge)
    assert provider.hits["jwks"] == 1

    # The provider rotates: the old kid leaves the key set, tokens carry the new one
    old, new = provider.rotate("RS256")
    bridge.advance_clock("clickfunnels", 60)  # a minute later
    journey = sign_in(bridge)
    assert jwt.get_unverified_header(provider.issued_id_tokens[-1])["kid"] == new.kid
    assert journey.vendor_claims
    assert provider.hits["jwks"] == 2  # fetched again once, for the new kid

    # A token under the old, withdrawn key is refused
    provider.id_token.key = old
    started = start(bridge)
    bridge.new_lines()
    refused(json_callback(bridge, started, authorize(started)), "oidc_id_token_kid", bridge=bridge)
    # and so is a flood of made-up kids, without a key-set fetch each
    provider.id_token.key = None
    provider.id_token.header["kid"] = "never-published"
    for _ in range(5):
        started = start(bridge)
        refused(json_callback(bridge, started, authorize(started)), "oidc_id_token_kid", bridge=bridge)
    assert provider.hits["jwks"] == 2
    bridge.advance_clock("clickfunnels", 11)
    for _ in range(3):
        started = start(bridge)
        refused(json_callback(bridge, started, authorize(started)), "oidc_id_token_kid", bridge=bridge)
    assert provider.hits["jwks"] == 3  # at most once per 10 s


def test_a_kid_the_provider_never_published_is_refused_in_a_fresh_container(bridge: Bridge) -> None:
    bridge.provider.id_token.key = new_key("ES256")
    bridge.provider.id_token.alg = "ES256"
    started = start(bridge)
    refused(json_callback(bridge, started, authorize(started)), "oidc_id_token_kid", bridge=bridge)
    assert bridge.provider.hits["jwks"] <= 2


# --- the provider down ------------------------------------------------------------------------------------------

OUTAGES = [
    ("discovery", "hang"),
    ("discovery", "500"),
    ("discovery", "not_json"),
    ("token", "hang"),
    ("token", "500"),
    ("token", "close"),
    ("token", "not_json"),
    ("jwks", "hang"),
    ("jwks", "502"),
    ("userinfo", "hang"),
    ("userinfo", "500"),
]


@pytest.mark.parametrize(("endpoint", "kind"), OUTAGES, ids=[f"{e}-{k}" for e, k in OUTAGES])
def test_a_provider_that_does_not_answer_is_a_503_within_seconds(bridge: Bridge, endpoint: str, kind: str) -> None:
    provider = bridge.provider
    provider.id_token.user_claims_in_id_token = endpoint != "userinfo"  # so userinfo is asked
    provider.fail(endpoint, kind, seconds=8)  # type: ignore[arg-type]
    module = bridge.function()
    bridge.new_lines()
    began = time.monotonic()
    if endpoint == "discovery":  # a fresh container: the sign-in redirect itself needs the discovery document
        sample = load_event("clickfunnels-sso-httpapi")
        response = invoke(module, event_for(sample, sample["rawPath"], sample["rawQueryString"], accept="text/html"))
    else:
        started = start(bridge)
        query = authorize(started)
        bridge.new_lines()
        began = time.monotonic()
        response = callback(module, started, query)
    elapsed = time.monotonic() - began
    refused(response, "oidc_provider_unavailable", bridge=bridge)
    assert elapsed < 4.5, f"{elapsed:.1f} s"
    assert response["headers"]["Content-Type"].startswith("text/html")


def test_a_provider_refusing_the_bridges_own_credentials_is_an_outage_not_the_users_fault(bridge: Bridge) -> None:
    """invalid_client (a rotated or mistyped client secret, the wrong OIDC_CLIENT_AUTH): nobody can sign in until
    the operator fixes it, so a 503, not the 400 a bad code gets. The contract names no reason for it."""
    bridge.provider.client_auth = "client_secret_post"  # the bridge sends client_secret_basic
    started = start(bridge)
    response = json_callback(bridge, started, authorize(started))
    refused(response, "oidc_provider_unavailable", bridge=bridge)
    assert bridge.provider.token_requests[-1].outcome == "unexpected_client_secret_basic"


def test_an_unreachable_provider_is_a_503(
    aws: Any, jti_table: Any, link_tables: Any, load_function: Callable[..., ModuleType]
) -> None:
    provider = FakeProvider().start()
    issuer = provider.issuer
    provider.stop()  # the port is closed now: connection refused
    aws.create_secret(Name=OIDC_SECRET_ID, SecretString="secret")
    module = load_function("clickfunnels", OIDC_ISSUER=issuer, OIDC_CLIENT_ID="x", OIDC_CLIENT_SECRET_ID=OIDC_SECRET_ID)
    sample = load_event("clickfunnels-sso-httpapi", headers={"accept": "application/json"})
    began = time.monotonic()
    response = invoke(module, sample)
    refused(response, "oidc_provider_unavailable")
    assert time.monotonic() - began < 4.5


# --- logs -----------------------------------------------------------------------------------------------------

SDK_LOGGERS = ("botocore", "boto3", "urllib3", "moto", "s3transfer", "werkzeug")


def _render(record: logging.LogRecord) -> str:
    try:
        message = record.getMessage()
    except Exception:
        message = f"{record.msg!r} % {record.args!r}"
    text = f"{record.name} {record.levelname} {message} {record.__dict__!r}"
    if record.exc_info:
        text += logging.Formatter().formatException(record.exc_info)
    return text


def test_no_log_holds_a_code_a_token_a_state_or_the_client_secret(
    bridge: Bridge, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bridge.load("clickfunnels", POWERTOOLS_LOG_LEVEL="DEBUG")
    bridge.load("kustomer", POWERTOOLS_LOG_LEVEL="DEBUG")
    provider = bridge.provider
    handed_out: list[tuple[str, str]] = []

    def keep(label: str, value: str | None) -> None:
        if value:
            handed_out.append((label, value))

    def remember(started: Started, query: str, response: dict[str, Any] | None = None) -> None:
        keep("state cookie", started.cookie_value)
        keep("state", started.sid)
        keep("callback query", query)
        location = (response or {}).get("headers", {}).get("Location", "")
        if "login_token=" in location:
            keep("login token", login_token_in(location))

    # Sign-ins that work: both client authentications, userinfo, two vendors
    for vendor in ("clickfunnels", "kustomer"):
        journey = sign_in(bridge, vendor)
        remember(journey.started, journey.callback_query, journey.callback)
        token = parse_qs(urlsplit(journey.final["headers"]["Location"]).query)[VENDORS[vendor].token_param][0]
        keep("vendor token", token)
    provider.id_token.user_claims_in_id_token = False
    journey = sign_in(bridge)
    remember(journey.started, journey.callback_query, journey.callback)
    # Refusals of every stage: state, code replay, ID token, email, provider down
    module = bridge.function()
    started = start(bridge)
    query = authorize(started)
    remember(started, query)
    callback(module, started, query, cookies=[])
    callback(module, started, _with_query(query, state=started.sid[:16] + "x" * 16))
    callback(module, started, query, cookies=[_forged_cookie(started, key=ATTACKER_KEY, rt=EVIL)])
    callback(module, started, journey.callback_query, cookies=[journey.started.cookie])  # state replayed
    for arrange in (_script(alg="none"), _claims(nonce="wrong"), _claims(aud="other"), _user(email_verified=False)):
        provider.id_token = IdTokenScript()
        provider.user = User()
        arrange(provider)
        started = start(bridge)
        query = authorize(started)
        remember(started, query)
        assert callback(module, started, query)["statusCode"] in (401, 403)
    provider.id_token = IdTokenScript()
    provider.user = User()
    provider.fail("token", "500")
    started = start(bridge)
    query = authorize(started)
    remember(started, query)
    assert callback(module, started, query)["statusCode"] == 503
    provider.heal()

    needles = [*iter_secrets(provider), *handed_out]
    printed = capfd.readouterr()
    records = caplog.records
    sources = {
        "logger stream": bridge.logs.getvalue(),
        "stdout/stderr": printed.out + printed.err,
        "log records": "\n".join(_render(r) for r in records if not r.name.startswith(SDK_LOGGERS)),
    }
    sdk = "\n".join(_render(r) for r in records if r.name.startswith(SDK_LOGGERS))
    leaks = [f"{source}: {label}" for source, text in sources.items() for label, value in needles if value in text]
    # The SDK's own DEBUG records carry Secrets Manager's answers (see tests/unit/test_logs_never_leak.py); they
    # must still never carry anything the provider or the browser handed over.
    leaks += [f"sdk records: {label}" for label, value in needles if label != "client secret" and value in sdk]
    assert not leaks, "\n".join(sorted(set(leaks)))
    assert '"outcome":"oidc_signed_in"' in sources["logger stream"]
    assert "request refused" in sources["logger stream"]
    assert quote(provider.client_secret, safe="") not in sources["logger stream"]


# --- the state cookie's size --------------------------------------------------------------------------------------

# Chromium ignores a Set-Cookie whose name and value together exceed 4,096 bytes (RFC 6265bis's rule; Chromium's
# ParsedCookie::kMaxCookieNamePlusValueSize), and Chromium before that refused a whole Set-Cookie line over 4,096;
# the bridge measures the whole line, name, value and attributes, the stricter of the two.
BROWSER_COOKIE_LIMIT = 4096


def _signed_out(pad: str, **headers: str) -> dict[str, Any]:
    """A signed-out ClickFunnels request whose URL carries ``pad`` in a parameter of its own, which the return URL
    keeps byte for byte."""
    sample = load_event(VENDORS["clickfunnels"].event)
    return event_for(sample, sample["rawPath"], f"{sample['rawQueryString']}&pad={pad}", **headers)


def _longest_that_starts(bridge: Bridge, unit: str) -> int:
    """The most repetitions of ``unit`` a sign-in still starts with (the redirect to the provider): bisected, as
    the state cookie only grows with the URL."""
    low, high = 0, MAX_RETURN_URL_LENGTH
    while low < high:
        middle = (low + high + 1) // 2
        if invoke(bridge.function(), _signed_out(unit * middle))["statusCode"] == 302:
            low = middle
        else:
            high = middle - 1
    return low


@pytest.mark.parametrize("unit", ["\\", "\u00e9", "\u4e2d"], ids=["backslash", "e-acute", "cjk"])
def test_the_state_cookie_always_fits_a_browser_and_a_character_more_is_a_414(bridge: Bridge, unit: str) -> None:
    """A return URL under the 2,000-character cap can still make a state cookie a browser drops (JSON doubles a
    backslash and writes a non-ASCII character as six): the user would type a password at the provider and come
    back to oidc_state_cookie_missing. The bridge measures the Set-Cookie it would send: at the edge the cookie
    fits and the user gets in; one character more is refused before anyone is sent to the provider."""
    longest = _longest_that_starts(bridge, unit)

    journey = sign_in(bridge, event=_signed_out(unit * longest))
    size = len(journey.started.set_cookie.encode())
    assert BROWSER_COOKIE_LIMIT - 8 < size <= BROWSER_COOKIE_LIMIT  # one more character adds at most 8 bytes
    assert len(journey.started.return_url) < MAX_RETURN_URL_LENGTH  # the character cap alone let more through
    assert journey.vendor_claims["sub"] == f"{bridge.provider.user.email}:{WORKSPACE}"

    bridge.new_lines()
    over = invoke(bridge.function(), _signed_out(unit * (longest + 1), accept="application/json"))
    refused(over, "oidc_state_cookie_too_large", bridge=bridge)
    assert "cookies" not in over
    page = invoke(bridge.function(), _signed_out(unit * (longest + 1)))
    assert (page["statusCode"], page["headers"]["Content-Type"]) == (414, "text/html; charset=utf-8")
    assert "Location" not in page["headers"]


# --- noise at the callback ----------------------------------------------------------------------------------------

# As in tests/unit/test_hostile_events.py: Hypothesis's cache outside the repo, no example database.
hypothesis.configuration.set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "sso-bridge-hypothesis")

_NOISE = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80)
_QUERY_PART = st.one_of(
    _NOISE,
    st.sampled_from(["code=", "state=", "iss=", "error=", "%", "%zz", "&&", "==", "state=" + "A" * 64, "code=x" * 40]),
)
# What lands in a cookie's value: noise, and the odd values a proxy, an extension or a bot leaves there (empty,
# blanks, quotes, lone surrogates from an escaped event, a value too big to be ours).
_ODD = st.sampled_from(["", " ", '""', '"', "=", ".", "..", "...", "a.b.c", "\x00", "\ud800", "\udfff", "A" * 5000])
_COOKIE_VALUE = st.one_of(_ODD, _NOISE, st.builds(lambda noise, odd: noise + odd, _NOISE, _ODD))
_SID = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=64)


@settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    parts=st.lists(_QUERY_PART, max_size=6),
    cookies=st.lists(st.tuples(st.sampled_from(["sso_bridge_oidc_", "", "x"]), _NOISE, _COOKIE_VALUE), max_size=4),
)
def test_noise_at_the_callback_is_a_4xx_and_never_reaches_the_provider(
    bridge: Bridge, parts: list[str], cookies: list[tuple[str, str, str]]
) -> None:
    """Whatever a browser or a bot sends to /oidc/callback (odd parameters, broken escapes, cookies named like
    ours with any value): a well-formed 4xx, never a 5xx or an exception, and no code exchanged."""
    event = event_for(load_event(VENDORS["clickfunnels"].event), "/oidc/callback", "&".join(parts))
    event["cookies"] = [f"{prefix}{name}={value}" for prefix, name, value in cookies]
    response = invoke(bridge.function(), event)
    assert 400 <= response["statusCode"] < 500, (response["statusCode"], response.get("body", "")[:200])
    assert "Location" not in response["headers"]
    assert bridge.provider.token_requests == []


@settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sid=_SID, value=_COOKIE_VALUE, parts=st.lists(_QUERY_PART, max_size=3))
def test_any_value_under_the_cookie_named_for_the_state_is_a_4xx(
    bridge: Bridge, sid: str, value: str, parts: list[str]
) -> None:
    """The cookie the callback looks up (named for the ``state`` in the query), holding anything at all: a 4xx
    and no code exchanged. Random cookie names (above) almost never hit that name."""
    query = "&".join([f"state={sid}", "code=some-code", *parts])
    event = event_for(load_event(VENDORS["clickfunnels"].event), "/oidc/callback", query)
    event["cookies"] = [f"{cookie_name(sid)}={value}"]
    response = invoke(bridge.function(), event)
    assert 400 <= response["statusCode"] < 500, (response["statusCode"], response.get("body", "")[:200])
    assert "Location" not in response["headers"]
    assert bridge.provider.token_requests == []


# --- logout ---------------------------------------------------------------------------------------------------------

PLATFORM_LOGOUT = "https://platform.example.com/signed-out"


def _logout(bridge: Bridge) -> dict[str, Any]:
    sample = load_event("happyfox-logout-httpapi")
    return invoke(bridge.function("happyfox"), event_for(sample, "/happyfox/logout", ""))


def test_logout_ends_the_provider_session_then_lands_on_the_platform(bridge: Bridge) -> None:
    """RP-initiated logout: the provider's end_session_endpoint, with our client id and where to go next."""
    bridge.load("happyfox", OIDC_LOGOUT="true", PLATFORM_LOGOUT_URL=PLATFORM_LOGOUT)
    response = _logout(bridge)
    assert response["statusCode"] == 302
    target = urlsplit(response["headers"]["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == bridge.provider.url("end_session")
    assert dict(parse_qsl(target.query)) == {
        "client_id": bridge.provider.client_id,
        "post_logout_redirect_uri": PLATFORM_LOGOUT,
    }
    assert response["headers"]["Location"] == (
        f"{bridge.provider.url('end_session')}?client_id={bridge.provider.client_id}"
        f"&post_logout_redirect_uri={quote(PLATFORM_LOGOUT, safe='')}"
    )


def test_logout_without_a_platform_logout_url_ends_the_provider_session_and_stays_there(bridge: Bridge) -> None:
    """RP-Initiated Logout 1.0 makes post_logout_redirect_uri optional: the provider shows its own page."""
    bridge.load("happyfox", OIDC_LOGOUT="true")
    response = _logout(bridge)
    expected = f"{bridge.provider.url('end_session')}?client_id={bridge.provider.client_id}"
    assert (response["statusCode"], response["headers"]["Location"]) == (302, expected)


@pytest.fixture
def cognito(aws: Any, jti_table: Any, link_tables: Any, load_function: Callable[..., ModuleType]) -> Iterator[Bridge]:
    """The bridge with an Amazon Cognito-shaped provider, its client secret stored as the template stores it."""
    with FakeProvider(cognito=CognitoShape()) as fake:
        stored = json.dumps({"client_id": fake.client_id, "client_secret": fake.client_secret})
        aws.create_secret(Name=OIDC_SECRET_ID, SecretString=stored)
        yield Bridge(fake, load_function, {"OIDC_ISSUER": fake.issuer, "OIDC_CLIENT_SECRET_ID": OIDC_SECRET_ID})


def test_cognito_logout_sends_client_id_and_logout_uri(cognito: Bridge) -> None:
    """Cognito's /logout (on the pool's domain, as its discovery document says) takes client_id and logout_uri,
    one of the app client's sign-out URLs; post_logout_redirect_uri would land the user on Cognito's error page."""
    cognito.load("happyfox", OIDC_LOGOUT="true", PLATFORM_LOGOUT_URL=PLATFORM_LOGOUT)
    response = _logout(cognito)
    assert response["statusCode"] == 302
    assert response["headers"]["Location"] == (
        "https://sso-bridge-test.auth.eu-west-1.amazoncognito.com/logout"
        f"?client_id={cognito.provider.client_id}&logout_uri={quote(PLATFORM_LOGOUT, safe='')}"
    )
    assert cognito.provider.hits["discovery"] == 1  # read from the pool's discovery document


def test_cognito_logout_without_a_platform_logout_url_signs_out_of_the_portal_only(cognito: Bridge) -> None:
    """Without a logout_uri Cognito shows an error page: the provider's part is skipped, and the log says why."""
    cognito.load("happyfox", OIDC_LOGOUT="true")
    cognito.new_lines()
    response = _logout(cognito)
    assert response["statusCode"] == 200
    assert "Location" not in response["headers"]
    assert "You are signed out" in response["body"]
    skipped = [line for line in cognito.new_lines() if line.get("message") == "provider logout skipped"]
    assert [line["reason"] for line in skipped] == ["logout_uri_missing"]
    assert "PLATFORM_LOGOUT_URL" in skipped[0]["detail"]
    assert cognito.provider.hits["discovery"] == 0


def test_without_oidc_logout_only_the_portal_signs_out(bridge: Bridge) -> None:
    bridge.load("happyfox", PLATFORM_LOGOUT_URL=PLATFORM_LOGOUT)
    response = _logout(bridge)
    assert (response["statusCode"], response["headers"]["Location"]) == (302, PLATFORM_LOGOUT)


def test_a_provider_down_at_logout_still_signs_the_user_out_of_the_portal(bridge: Bridge) -> None:
    """Signing out never fails: the provider's part is skipped (and logged), the user still reaches the platform."""
    bridge.provider.fail("discovery", "500")
    bridge.load("happyfox", OIDC_LOGOUT="true", PLATFORM_LOGOUT_URL=PLATFORM_LOGOUT)
    bridge.new_lines()
    response = _logout(bridge)
    assert (response["statusCode"], response["headers"]["Location"]) == (302, PLATFORM_LOGOUT)
    assert "provider logout skipped" in bridge.logs.getvalue()


# --- the public host (PUBLIC_HOST: a custom domain, CloudFront) ----------------------------------------------------

PUBLIC_HOST = "sso.example.com"


@pytest.mark.parametrize("callback_on", ["execute-api", "custom domain"])
def test_with_a_public_host_the_round_trip_stays_on_it(bridge: Bridge, callback_on: str) -> None:
    """Behind CloudFront the API's events name its own execute-api host, and on a custom domain they name the
    custom domain: either way the redirect URI and the return URL are on the public host, where the browser keeps
    the state cookie, and the callback accepts the state made there."""
    module = bridge.load("clickfunnels", PUBLIC_HOST=PUBLIC_HOST)
    started = start(bridge)
    sample = load_event(VENDORS["clickfunnels"].event)
    return_to = f"https://{PUBLIC_HOST}{sample['rawPath']}?{sample['rawQueryString']}"
    assert started.params["redirect_uri"] == f"https://{PUBLIC_HOST}/oidc/callback"
    assert (started.state_claims()["rt"], started.state_claims()["ru"]) == (return_to, started.params["redirect_uri"])
    assert "domain=" not in started.set_cookie.lower()  # host-only: the host the browser asked, the public one

    base = copy.deepcopy(started.event)
    if callback_on == "custom domain":
        base["requestContext"]["domainName"] = base["headers"]["host"] = PUBLIC_HOST
    back = callback(module, started, authorize(started), base=base)
    assert back["statusCode"] == 302, back.get("body", "")[:300]
    location = back["headers"]["Location"]
    assert location == f"{return_to}&login_token={login_token_in(location)}"
    final = invoke(module, event_for(base, sample["rawPath"], urlsplit(location).query))
    assert vendor_claims("clickfunnels", final)["sub"] == f"{bridge.provider.user.email}:{WORKSPACE}"


def test_with_a_public_host_a_function_url_keeps_its_own(bridge: Bridge) -> None:
    """Email links live on function URLs, which CloudFront does not front: their round trip stays there."""
    bridge.load("happyfox", PUBLIC_HOST=PUBLIC_HOST)
    sample = load_event("happyfox-login-function-url")
    journey = sign_in(bridge, "happyfox", event=sample)
    assert journey.started.params["redirect_uri"] == f"https://{host_of(sample)}/oidc/callback"


def test_a_state_made_on_the_public_host_is_refused_on_a_function_url(bridge: Bridge) -> None:
    module = bridge.load("clickfunnels", PUBLIC_HOST=PUBLIC_HOST)
    started = start(bridge)
    base = load_event("clickfunnels-sso-function-url")
    response = callback(module, started, authorize(started), base=base, accept="application/json")
    refused(response, "oidc_state_invalid")
    assert bridge.provider.token_requests == []


# --- the Unavailable metric ---------------------------------------------------------------------------------------


def _unavailable(stdout: str) -> list[str]:
    blobs = [json.loads(line) for line in stdout.splitlines() if line.startswith("{") and '"_aws"' in line]
    return [blob["reason"] for blob in blobs if "Unavailable" in blob]


def test_a_provider_outage_counts_once_in_unavailable(bridge: Bridge, capsys: pytest.CaptureFixture[str]) -> None:
    bridge.provider.fail("discovery", "500")
    module = bridge.function()
    capsys.readouterr()
    response = invoke(module, load_event(VENDORS["clickfunnels"].event, headers={"accept": "application/json"}))
    refused(response, "oidc_provider_unavailable")
    assert _unavailable(capsys.readouterr().out) == ["oidc_provider_unavailable"]


def test_a_provider_down_at_logout_is_no_503_and_counts_nothing(
    bridge: Bridge, capsys: pytest.CaptureFixture[str]
) -> None:
    bridge.provider.fail("discovery", "500")
    bridge.load("happyfox", OIDC_LOGOUT="true", PLATFORM_LOGOUT_URL=PLATFORM_LOGOUT)
    capsys.readouterr()
    assert _logout(bridge)["statusCode"] == 302
    assert _unavailable(capsys.readouterr().out) == []
