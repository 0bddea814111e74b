"""The Freshworks JWT SSO flow as the portal's visitor meets it, and as Freshworks checks what comes back.

Freshworks starts an OAuth implicit flow (``response_type=id_token``, ``client_id``, ``scope``, ``state``,
``redirect_uri``, ``nonce``); the visitor must come back to ``{redirect_uri}?state=...&id_token=<RS256 JWT>``
(Freshworks reads the query: article 11000000028109), verified here with node's ``jose`` and the public key only,
or, for anything hostile, see a refusal before the sign-in round trip.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, quote, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from local.server import Reply, Request
from local.vendors import freshworks as standin
from tests.helpers import (
    FRESHWORKS_CLIENT_ID,
    FRESHWORKS_PORTAL_URL,
    LOGIN_TOKEN_KEY,
    PLATFORM_LOGIN_URL,
    ROOT,
    SECRET_IDS,
    VENDOR_KEYS,
    LambdaContext,
    LinkPage,
    load_event,
    make_login_token,
    pressed,
)
from tests.node_jose import JoseRefused, verify_with_jose

PRIVATE_PEM = VENDOR_KEYS["freshworks"]
PUBLIC_PEM = standin.public_key_pem(PRIVATE_PEM)
HOST = "acme.freshworks.com"  # FRESHWORKS_REDIRECT_HOSTS in the tests' settings
REDIRECT_URI = f"https://{HOST}/sp/OIDC/100000000000000001/implicit"
# Freshworks' own shape: base64 (with + / =) of its host, a digest and the nonce.
STATE = "YWNtZS5mcmVzaHdvcmtzLmNvbTtBVHkxSERKd2tjenZzempEU3haMStvbWVlYWlPa2lZTEZ5dUVtU2ZYUVZNPTt4YjJDZTVBR1NER2hXWVFJ=="
NONCE = "xb2Ce5AGSDGhWYQI"
API_HOST = "abc123.execute-api.eu-west-1.amazonaws.com"
TTL = 300  # the id_token's lifetime (functions/freshworks/app.py TOKEN_TTL_SECONDS)
EMAIL = "jane.doe+vip@example.com"


@pytest.fixture
def freshworks(aws: Any, link_tables: Any, load_function: Callable[..., ModuleType]) -> ModuleType:
    return load_function("freshworks")


def freshworks_query(
    *,
    redirect_uri: str | None = REDIRECT_URI,
    state: str | None = STATE,
    nonce: str | None = NONCE,
    client_id: str | None = FRESHWORKS_CLIENT_ID,
    response_type: str | None = "id_token",
    token: str | None = None,
) -> str:
    """What Freshworks sends (redirect_uri unencoded, as in its sample request), plus the platform's login token."""
    pairs = [
        ("response_type", response_type and quote(response_type, safe="")),
        ("client_id", client_id and quote(client_id, safe="")),
        ("scope", "openid%20email%20profile"),
        ("state", state and quote(state, safe="")),
        ("redirect_uri", redirect_uri),
        ("nonce", nonce and quote(nonce, safe="")),
        ("login_token", token),
    ]
    return "&".join(f"{name}={value}" for name, value in pairs if value is not None)


def invoke(
    module: ModuleType,
    query: str | None = None,
    *,
    event: str = "freshworks-login-httpapi",
    path: str | None = None,
    method: str = "GET",
    cookies: list[str] | None = None,
    **headers: str,
) -> Any:
    payload = load_event(event, query=query, headers=headers)
    if path is not None:
        payload["rawPath"] = payload["requestContext"]["http"]["path"] = path
    payload["requestContext"]["http"]["method"] = method
    if cookies:
        payload["cookies"] = cookies
    return module.lambda_handler(payload, LambdaContext())


def answer(location: str, *, redirect_uri: str = REDIRECT_URI, state: str = STATE) -> str:
    """The id_token of Freshworks' redirect URL, once the URL is exactly ``{redirect_uri}?state=...&id_token=...``."""
    prefix = f"{redirect_uri}?state={quote(state, safe='')}&id_token="
    assert location.startswith(prefix), location[:200]
    params = parse_qs(urlsplit(location).query)
    assert params["state"] == [state]
    [token] = params["id_token"]
    assert location == prefix + token
    return token


def freshworks_claims(location: str, *, nonce: str = NONCE, **expected: str) -> dict[str, Any]:
    """Verify as Freshworks does: RS256 with the public key pasted into it, then the nonce it sent."""
    header, claims = verify_with_jose(answer(location, **expected), PUBLIC_PEM, algorithms=["RS256"])
    assert header == {"alg": "RS256", "typ": "JWT"}
    assert claims["nonce"] == nonce
    assert isinstance(claims["sub"], str)
    assert isinstance(claims["email"], str)
    assert abs(claims["iat"] - time.time()) <= 5
    return claims


def reason(response: dict[str, Any]) -> str:
    value: str = json.loads(response["body"])["reason"]
    return value


def login_redirect(response: dict[str, Any]) -> str:
    """The return_to of a redirect to the platform's sign-in page."""
    assert response["statusCode"] == 302
    location = urlsplit(response["headers"]["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == PLATFORM_LOGIN_URL
    return parse_qs(location.query)["return_to"][0]


def come_back(module: ModuleType, return_to: str, token: str, **kwargs: Any) -> Any:
    """What the platform does after sign-in: send the browser to return_to with &login_token= appended."""
    url = urlsplit(return_to)
    query = f"{url.query}&login_token={token}" if url.query else f"login_token={token}"
    return invoke(module, query, path=url.path, **kwargs)


def rsa_pem(bits: int = 2048) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()


# --- the happy path ---------------------------------------------------------------------------------------------


def test_a_signed_in_visitor_goes_back_to_freshworks_with_an_id_token(freshworks: ModuleType) -> None:
    # Given Freshworks' request as in events/, and the platform's login token for someone with a name
    query = load_event("freshworks-login-httpapi")["rawQueryString"]
    token = make_login_token(EMAIL, aud="freshworks", name="Jane Doe")

    # When the browser arrives with both
    response = invoke(freshworks, f"{query}&login_token={token}")

    # Then it goes to Freshworks' implicit endpoint with the state it sent and an id_token Freshworks accepts
    assert response["statusCode"] == 302
    claims = freshworks_claims(response["headers"]["Location"])
    assert claims == {
        "sub": EMAIL,  # no stable id in the login token: the email
        "email": EMAIL,
        "iat": claims["iat"],
        "nonce": NONCE,
        "exp": claims["iat"] + TTL,
        "aud": FRESHWORKS_CLIENT_ID,
        "given_name": "Jane Doe",  # a full name is not cut in two
    }
    assert response["headers"]["Cache-Control"] == "no-store"
    assert response["headers"]["Referrer-Policy"] == "no-referrer"
    assert "cookies" not in response  # no hand-off cookie to clear: none was sent


def test_the_function_url_root_serves_the_login(freshworks: ModuleType) -> None:
    query = freshworks_query(token=make_login_token(aud="freshworks"))
    response = invoke(freshworks, query, event="freshworks-login-function-url")
    assert freshworks_claims(response["headers"]["Location"])["email"] == EMAIL


def test_the_id_token_verifies_with_this_public_key_only(freshworks: ModuleType) -> None:
    location = invoke(freshworks, freshworks_query(token=make_login_token(aud="freshworks")))["headers"]["Location"]
    token = answer(location)
    other_public = standin.public_key_pem(rsa_pem())
    with pytest.raises(JoseRefused) as refused:
        verify_with_jose(token, other_public, algorithms=["RS256"])
    assert refused.value.code == "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"
    # And the public key used as an HMAC secret (the algorithm-confusion attack) verifies nothing
    with pytest.raises(JoseRefused):
        verify_with_jose(token, PUBLIC_PEM, algorithms=["HS256"])


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        (
            {"sub": "user-42", "given_name": "Jane", "family_name": "Doe"},
            {"sub": "user-42", "given_name": "Jane", "family_name": "Doe"},
        ),
        ({"name": "Jane van der Berg", "given_name": "Jane"}, {"sub": EMAIL, "given_name": "Jane"}),
        ({"family_name": "Doe"}, {"sub": EMAIL, "family_name": "Doe"}),
        ({"name": "山田 太郎"}, {"sub": EMAIL, "given_name": "山田 太郎"}),
        ({}, {"sub": EMAIL}),
    ],
    ids=["stable id and names", "given name wins over name", "family name only", "name only", "email only"],
)
def test_sub_and_names_come_from_the_login_tokens_profile(
    freshworks: ModuleType, claims: dict[str, str], expected: dict[str, str]
) -> None:
    token = make_login_token(EMAIL, aud="freshworks", **claims)
    got = freshworks_claims(invoke(freshworks, freshworks_query(token=token))["headers"]["Location"])
    assert {name: got[name] for name in ("sub", "given_name", "family_name") if name in got} == expected


def test_freshworks_state_comes_back_byte_for_byte(freshworks: ModuleType) -> None:
    # Base64's + / = and anything printable Freshworks might put in its state survive the round trip
    for state in (STATE, "a+b/c=d==", "x%2Fy", "!$&'()*,;:@~"):
        response = invoke(freshworks, freshworks_query(state=state, token=make_login_token(aud="freshworks")))
        freshworks_claims(response["headers"]["Location"], state=state)


def test_each_sign_in_signs_its_own_nonce(freshworks: ModuleType) -> None:
    token = make_login_token(aud="freshworks")
    for nonce in ("n1", "another-nonce_0123456789", "a" * 255):
        location = invoke(freshworks, freshworks_query(nonce=nonce, token=token))["headers"]["Location"]
        freshworks_claims(location, nonce=nonce)


def test_a_head_request_mints_nothing(freshworks: ModuleType) -> None:
    response = invoke(freshworks, freshworks_query(token=make_login_token(aud="freshworks")), method="HEAD")
    assert response["statusCode"] == 200
    assert "Location" not in response["headers"]
    assert response["body"] == ""


# --- the sign-in round trips ------------------------------------------------------------------------------------


@pytest.mark.parametrize("event", ["freshworks-login-httpapi", "freshworks-login-function-url"])
def test_signed_out_the_visitor_goes_through_the_platform_with_freshworks_parameters_kept(
    freshworks: ModuleType, event: str
) -> None:
    # Given Freshworks' request and no login token
    return_to = login_redirect(invoke(freshworks, event=event))

    # Then the platform brings them back with everything Freshworks sent
    original = load_event(event)
    host = original["requestContext"]["domainName"]
    assert return_to == f"https://{host}{original['rawPath']}?{original['rawQueryString']}"

    # And from there to Freshworks, signed in as themselves
    response = come_back(freshworks, return_to, make_login_token("amy@example.com", aud="freshworks"), event=event)
    assert freshworks_claims(response["headers"]["Location"])["email"] == "amy@example.com"


def test_an_expired_login_token_goes_round_trip_without_the_stale_token(freshworks: ModuleType) -> None:
    stale = make_login_token(aud="freshworks", issued=int(time.time()) - 3600, lifetime=600)
    return_to = login_redirect(invoke(freshworks, freshworks_query(token=stale)))
    assert return_to == f"https://{API_HOST}/freshworks/login?{freshworks_query()}"


def test_with_openid_the_visitor_signs_in_at_the_provider_and_comes_back_to_freshworks(
    aws: Any, link_tables: Any, load_function: Callable[..., ModuleType]
) -> None:
    from tests.oidc_in_process import InProcessProvider

    provider = InProcessProvider()
    aws.create_secret(Name="sso-bridge/oidc-client", SecretString=provider.client_secret)
    module = load_function(
        "freshworks",
        OIDC_ISSUER=provider.issuer,
        OIDC_CLIENT_ID=provider.client_id,
        OIDC_CLIENT_SECRET_ID="sso-bridge/oidc-client",
        OIDC_PACKAGES_PATH="/nonexistent/oidc-packages",
    )
    module.flow.oidc.provider._opener = provider.opener()

    # Freshworks' request, signed out: to the provider, Freshworks' parameters kept in the state
    started = invoke(module, freshworks_query())
    assert started["statusCode"] == 302
    assert started["headers"]["Location"].startswith(provider.issuer)
    [cookie] = started["cookies"]

    # The provider's answer at /oidc/callback: back to the route with Freshworks' parameters and a login token
    callback = load_event("freshworks-login-httpapi", query=provider.authorize_url(started["headers"]["Location"]))
    callback["rawPath"] = callback["requestContext"]["http"]["path"] = "/oidc/callback"
    callback["cookies"] = [cookie.split(";", 1)[0]]
    back = module.lambda_handler(callback, LambdaContext())
    assert back["statusCode"] == 302, back["body"][:300]
    url = urlsplit(back["headers"]["Location"])
    assert url.path == "/freshworks/login"
    assert url.query.startswith(f"{freshworks_query()}&login_token=")

    # And on to Freshworks, with the provider's sub as the stable id
    claims = freshworks_claims(invoke(module, url.query)["headers"]["Location"])
    assert claims["email"]
    assert claims["sub"] != claims["email"]


# --- email links and the hand-off: Freshworks must start the flow ------------------------------------------------


def link_token(**claims: Any) -> str:
    defaults: dict[str, Any] = {"aud": "freshworks", "lifetime": 7 * 86400, "use": "link", "jti": os.urandom(8).hex()}
    return make_login_token(EMAIL, **{**defaults, **claims})


def handoff_cookie(response: dict[str, Any]) -> str:
    """The hand-off cookie as the browser sends it back, after checking how it was set."""
    [cookie] = [raw for raw in response.get("cookies", []) if raw.startswith("sso_bridge_handoff_freshworks=")]
    attributes = {part.strip().split("=", 1)[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite", "max-age"} <= attributes
    assert "SameSite=Lax" in cookie  # Freshworks sends the browser back with a top-level GET from its own site
    return cookie.split(";", 1)[0]


def test_opening_an_email_link_shows_a_page_and_mints_nothing(freshworks: ModuleType, link_tables: Any) -> None:
    response = invoke(freshworks, f"login_token={link_token()}", event="freshworks-login-function-url")
    assert response["statusCode"] == 200
    assert "Location" not in response["headers"]
    assert "Continue to" in response["body"]
    assert "id_token" not in response["body"]
    assert not any(raw.startswith("sso_bridge_handoff_") for raw in response.get("cookies", []))
    assert link_tables.scan(TableName="sso-bridge-spent-links-test")["Items"] == []


def test_an_email_link_is_spent_then_freshworks_starts_the_flow_and_the_reader_ends_signed_in(
    freshworks: ModuleType, link_tables: Any
) -> None:
    # Given a link to the function URL, opened in a browser
    link = link_token()
    opened = load_event("freshworks-login-function-url", query=f"login_token={link}")
    page = LinkPage.from_response(freshworks.lambda_handler(opened, LambdaContext()))

    # When the reader presses Continue
    handed = freshworks.lambda_handler(pressed(opened, page), LambdaContext())

    # Then the link is spent and the browser goes to the portal's login page, which starts Freshworks' SSO
    assert handed["statusCode"] == 303
    assert handed["headers"]["Location"] == FRESHWORKS_PORTAL_URL
    assert "id_token" not in handed["headers"]["Location"]
    cookie = handoff_cookie(handed)
    assert len(link_tables.scan(TableName="sso-bridge-spent-links-test")["Items"]) == 1

    # When Freshworks sends the browser back with its request (no login token: the cookie says who it is)
    back = invoke(freshworks, freshworks_query(), event="freshworks-login-function-url", cookies=[cookie])

    # Then the reader lands in Freshworks signed in, and the cookie is spent
    assert back["statusCode"] == 302
    assert freshworks_claims(back["headers"]["Location"])["email"] == EMAIL
    assert any(raw.startswith("sso_bridge_handoff_freshworks=;") and "Max-Age=0" in raw for raw in back["cookies"])


def test_the_platform_sending_a_user_straight_in_hands_them_to_freshworks(freshworks: ModuleType) -> None:
    # The platform's "Support" link: a login token, no Freshworks request
    handed = invoke(freshworks, f"login_token={make_login_token('kim@example.com', aud='freshworks', sub='u-7')}")
    assert handed["statusCode"] == 302
    assert handed["headers"]["Location"] == FRESHWORKS_PORTAL_URL
    back = invoke(freshworks, freshworks_query(), cookies=[handoff_cookie(handed)])
    claims = freshworks_claims(back["headers"]["Location"])
    assert (claims["email"], claims["sub"]) == ("kim@example.com", "u-7")  # the profile survives the hand-off


def test_the_route_alone_goes_through_sign_in_then_to_freshworks(freshworks: ModuleType) -> None:
    return_to = login_redirect(invoke(freshworks, ""))
    assert return_to == f"https://{API_HOST}/freshworks/login"
    handed = come_back(freshworks, return_to, make_login_token(aud="freshworks"))
    assert handed["headers"]["Location"] == FRESHWORKS_PORTAL_URL


def test_a_hand_off_cookie_for_another_vendor_or_forged_signs_nobody_in(freshworks: ModuleType) -> None:
    now = int(time.time())
    forged = jwt.encode({"email": EMAIL, "aud": "freshworks", "iat": now, "exp": now + 60}, "x" * 40)
    other = make_login_token(aud="canny")
    for value in (forged, other, "garbage"):
        response = invoke(freshworks, freshworks_query(), cookies=[f"sso_bridge_handoff_freshworks={value}"])
        assert 300 <= response["statusCode"] < 500
        assert "id_token" not in response["headers"].get("Location", "")


def test_without_a_portal_url_a_bare_visit_is_a_page_saying_so(
    aws: Any, link_tables: Any, load_function: Callable[..., ModuleType]
) -> None:
    module = load_function("freshworks", FRESHWORKS_PORTAL_URL="")
    for token in (None, make_login_token(aud="freshworks")):
        response = invoke(module, f"login_token={token}" if token else "", accept="application/json")
        assert response["statusCode"] == 400  # before any round trip: signing in would not help
        assert reason(response) == "freshworks_request_missing"
        assert "Location" not in response["headers"]


# --- refusals before the sign-in round trip ---------------------------------------------------------------------

H = HOST
PATH = urlsplit(REDIRECT_URI).path
# The redirect corpus of test_redirects.py, on Freshworks' implicit endpoint and its allowed host.
HOSTILE_REDIRECT_URIS = {
    "other host": [
        f"https://evil.example.net{PATH}",
        f"https://freshworks.com{PATH}",
        f"https://other.freshworks.com{PATH}",
    ],
    "suffix trick": [f"https://{H}.evil.net{PATH}", f"https://{H}.{PATH}", f"https://{H}%2eevil.net{PATH}"],
    "prefix trick": [f"https://evil{H}{PATH}", f"https://x.{H}{PATH}", f"https://evil.net/{H}{PATH}"],
    "userinfo": [f"https://{H}@evil.net{PATH}", f"https://user:pw@{H}{PATH}", f"https://evil.net%40{H}{PATH}"],
    "backslash": [f"https://evil.net\\{H}{PATH}", f"https://evil.net\\@{H}{PATH}", f"https:\\\\evil.net{PATH}"],
    "scheme-relative": [f"//evil.net{PATH}", f"///evil.net{PATH}", f"/\\evil.net{PATH}", f"//{H}{PATH}"],
    "relative": [PATH, "implicit", f"?redirect_uri={REDIRECT_URI}"],
    "other schemes": [
        f"http://{H}{PATH}",
        f"javascript:alert(1)//https://{H}{PATH}",
        "data:text/html,<script>alert(1)</script>",
        f"https:{H}{PATH}",
        f"https:/{H}{PATH}",
        f" https://{H}{PATH}",
    ],
    "encoded dots": ["https://acme%2efreshworks%2ecom" + PATH, f"https://evil.net%2f@{H}{PATH}"],
    "unicode look-alikes": [
        "https://acme\u3002freshworks\u3002com" + PATH,
        "https://acme\uff0efreshworks\uff0ecom" + PATH,
        "https://\u0430cme.freshworks.com" + PATH,
        f"https://{H}\u200b{PATH}",
    ],
    "control characters": [
        f"{REDIRECT_URI}\r\nLocation: https://evil.net/",
        f"{REDIRECT_URI}\x00",
        f"{REDIRECT_URI}\n",
    ],
    "ports": [f"https://{H}:8443{PATH}", f"https://{H}:0{PATH}", f"https://{H}:99999{PATH}"],
    "ip literals": [f"https://127.0.0.1{PATH}", f"https://[::1]{PATH}", f"https://169.254.169.254{PATH}"],
    "not the implicit endpoint": [
        f"https://{H}/",
        f"https://{H}/support/login",
        f"https://{H}/sp/OIDC/100000000000000001/implicit/",
        f"https://{H}/sp/OIDC/100000000000000001/implicit/../../../logout",
        f"https://{H}/sp/oidc/100000000000000001/implicit",
        f"https://{H}/sp/OIDC/abc/implicit",
        f"https://{H}/sp/OIDC//implicit",
        f"https://{H}//sp/OIDC/1/implicit",
        f"https://{H}/sp/OIDC/1%2Fimplicit",
    ],
    "a query or fragment of its own": [
        f"{REDIRECT_URI}?",
        f"{REDIRECT_URI}?state=attacker",
        f"{REDIRECT_URI}?id_token=attacker.jwt.value",
        f"{REDIRECT_URI}#",
        f"{REDIRECT_URI}#id_token=x",
    ],
    "too long": [f"{REDIRECT_URI}?a=" + "a" * 2100],
}


@pytest.mark.parametrize(
    "uri",
    [pytest.param(uri, id=f"{kind}: {uri[:60]!r}") for kind, uris in HOSTILE_REDIRECT_URIS.items() for uri in uris],
)
def test_a_hostile_redirect_uri_is_never_followed(freshworks: ModuleType, uri: str) -> None:
    # With or without a login token: refused at once, no redirect anywhere, nothing echoed
    for token in (None, make_login_token(aud="freshworks")):
        response = invoke(freshworks, freshworks_query(redirect_uri=quote(uri, safe=""), token=token))
        assert response["statusCode"] in (400, 414), response["statusCode"]
        assert "Location" not in response["headers"]
        assert "evil" not in response["body"]
        assert "attacker" not in response["body"]


def test_the_implicit_endpoint_on_each_allowed_host_is_followed(
    aws: Any, link_tables: Any, load_function: Callable[..., ModuleType]
) -> None:
    module = load_function("freshworks", FRESHWORKS_REDIRECT_HOSTS="acme.freshworks.com, acme.myfreshworks.com")
    for uri in (REDIRECT_URI, "https://ACME.myfreshworks.com:443/sp/OIDC/1/implicit"):
        response = invoke(
            module, freshworks_query(redirect_uri=quote(uri, safe=""), token=make_login_token(aud="freshworks"))
        )
        expected = uri.replace("ACME", "acme").replace(":443", "")
        freshworks_claims(response["headers"]["Location"], redirect_uri=expected)


# (query change, expected status, expected reason)
BAD_REQUESTS = {
    "no response_type": ({"response_type": None}, 400, "freshworks_response_type"),
    "response_type token": ({"response_type": "token"}, 400, "freshworks_response_type"),
    "response_type code": ({"response_type": "code"}, 400, "freshworks_response_type"),
    "response_type id_token token": ({"response_type": "id_token token"}, 400, "freshworks_response_type"),
    "response_type in capitals": ({"response_type": "ID_TOKEN"}, 400, "freshworks_response_type"),
    "no client_id": ({"client_id": None}, 400, "freshworks_client_id"),
    "another client_id": ({"client_id": "100000000000000001"}, 400, "freshworks_client_id"),
    "client_id in capitals": ({"client_id": FRESHWORKS_CLIENT_ID.upper()}, 400, "freshworks_client_id"),
    "no redirect_uri": ({"redirect_uri": None}, 400, "freshworks_redirect_uri_missing"),
    "redirect_uri elsewhere": ({"redirect_uri": "https://evil.example.net/"}, 400, "url_host"),
    "redirect_uri on another path": ({"redirect_uri": f"https://{HOST}/"}, 400, "freshworks_redirect_uri_path"),
    "no state": ({"state": None}, 400, "freshworks_state_missing"),
    "empty state": ({"state": ""}, 400, "freshworks_state_missing"),
    "state with a space": ({"state": "a b"}, 400, "freshworks_state_invalid"),
    "state with a line break": ({"state": "a\r\nSet-Cookie: x=y"}, 400, "freshworks_state_invalid"),
    "state with markup and non-ASCII": ({"state": "<script>é"}, 400, "freshworks_state_invalid"),
    "state too long": ({"state": "s" * 1025}, 414, "state_too_long"),
    "no nonce": ({"nonce": None}, 400, "freshworks_nonce_missing"),
    "nonce with a quote and a NUL": ({"nonce": 'n"\x00'}, 400, "freshworks_nonce_invalid"),
    "nonce too long": ({"nonce": "n" * 256}, 414, "nonce_too_long"),
}


@pytest.mark.parametrize(("change", "status", "why"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_a_request_freshworks_would_not_send_is_refused_before_sign_in(
    freshworks: ModuleType, change: dict[str, str | None], status: int, why: str
) -> None:
    values: dict[str, Any] = {
        name: (quote(value, safe="") if name == "redirect_uri" and value else value) for name, value in change.items()
    }
    for token in (None, make_login_token(aud="freshworks")):
        response = invoke(freshworks, freshworks_query(token=token, **values), accept="application/json")
        assert (response["statusCode"], reason(response)) == (status, why)
        assert "Location" not in response["headers"]


@pytest.mark.parametrize("name", ["redirect_uri", "state", "nonce", "client_id", "response_type"])
def test_a_repeated_parameter_is_refused(freshworks: ModuleType, name: str) -> None:
    query = freshworks_query(token=make_login_token(aud="freshworks")) + f"&{name}=x"
    response = invoke(freshworks, query, accept="application/json")
    assert (response["statusCode"], reason(response)) == (400, "query_repeated")
    assert "Location" not in response["headers"]


def test_a_refusal_page_names_the_way_forward_and_echoes_nothing(freshworks: ModuleType) -> None:
    response = invoke(freshworks, freshworks_query(client_id="<script>alert(1)</script>"))
    assert response["statusCode"] == 400
    assert response["headers"]["Content-Type"].startswith("text/html")
    assert "another sign-in configuration" in response["body"]
    assert "<script>" not in response["body"]
    assert "Kq7vHgTYjoEEJ1A=" in response["body"]  # the request id, for support


def test_refusals_are_in_the_readers_language(freshworks: ModuleType) -> None:
    response = invoke(freshworks, freshworks_query(state=None), **{"accept-language": "de-DE,de;q=0.9"})
    assert "Diese Anmeldeanfrage kann nicht verwendet werden" in response["body"]


# --- hostile login tokens ---------------------------------------------------------------------------------------

HOSTILE_LOGIN_TOKENS: dict[str, Callable[[], str]] = {
    "forged key": lambda: make_login_token(aud="freshworks", key="forged-key-0123456789abcdef0123456789"),
    "made for another portal": lambda: make_login_token(aud="canny"),
    "no email": lambda: make_login_token(aud="freshworks", drop=("email",)),
    "issued in the future": lambda: make_login_token(aud="freshworks", issued=int(time.time()) + 3600),
    "sub with a line break": lambda: make_login_token(aud="freshworks", sub="user\n42"),
    "given_name with markup and a NUL": lambda: make_login_token(aud="freshworks", given_name="<b>\x00"),
    "not a jwt": lambda: "not-a-jwt",
}


@pytest.mark.parametrize("make", HOSTILE_LOGIN_TOKENS.values(), ids=HOSTILE_LOGIN_TOKENS.keys())
def test_a_hostile_login_token_never_reaches_freshworks(freshworks: ModuleType, make: Callable[[], str]) -> None:
    response = invoke(freshworks, freshworks_query(token=quote(make(), safe="")))
    assert 400 <= response["statusCode"] < 500
    assert "Location" not in response["headers"]
    assert "<b>" not in response["body"]


# --- the key ----------------------------------------------------------------------------------------------------


def test_a_secrets_manager_outage_is_a_503_with_retry_after_and_no_token(freshworks: ModuleType, aws: Any) -> None:
    aws.delete_secret(SecretId=SECRET_IDS["freshworks"], ForceDeleteWithoutRecovery=True)
    response = invoke(freshworks, freshworks_query(token=make_login_token(aud="freshworks")))
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"]
    assert "Location" not in response["headers"]


def _ec_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


UNUSABLE_KEYS: dict[str, tuple[Callable[[], str], str]] = {
    "the template's placeholder": (lambda: "REPLACE_ME with an RSA private key", "secret_not_set"),
    "not PEM": (lambda: "0123456789abcdef" * 4, "freshworks_key_invalid"),
    "the public key": (lambda: PUBLIC_PEM, "freshworks_key_invalid"),
    "a 1024-bit key (Freshworks' own example)": (lambda: rsa_pem(1024), "freshworks_key_invalid"),
    "an EC key": (_ec_pem, "freshworks_key_invalid"),
}


@pytest.mark.parametrize(("make_key", "why"), UNUSABLE_KEYS.values(), ids=UNUSABLE_KEYS.keys())
def test_a_key_that_cannot_sign_safely_is_a_503_and_never_a_token(
    freshworks: ModuleType, aws: Any, make_key: Callable[[], str], why: str
) -> None:
    aws.put_secret_value(SecretId=SECRET_IDS["freshworks"], SecretString=make_key())
    response = invoke(freshworks, freshworks_query(token=make_login_token(aud="freshworks")), accept="application/json")
    assert (response["statusCode"], reason(response)) == (503, why)
    assert response["headers"]["Retry-After"]
    assert "Location" not in response["headers"]


def test_the_key_is_parsed_once_per_value_and_a_new_one_is_used_after_rotation(
    freshworks: ModuleType, aws: Any
) -> None:
    from joserfc.jwk import RSAKey

    token = make_login_token(aud="freshworks")
    with mock.patch.object(RSAKey, "import_key", side_effect=RSAKey.import_key) as parsed:
        for _ in range(3):
            freshworks_claims(invoke(freshworks, freshworks_query(token=token))["headers"]["Location"])
        assert parsed.call_count == 1
        # A rotation: the new key is fetched once the cache expires (a new container here) and parsed once
        new_pem = rsa_pem()
        aws.put_secret_value(SecretId=SECRET_IDS["freshworks"], SecretString=new_pem)
        freshworks.flow.keys.clear()
        location = invoke(freshworks, freshworks_query(token=token))["headers"]["Location"]
        assert parsed.call_count == 2
    _, claims = verify_with_jose(answer(location), standin.public_key_pem(new_pem), algorithms=["RS256"])
    assert claims["email"] == EMAIL


def test_a_cold_start_does_not_load_the_signing_library() -> None:
    # joserfc (and, in Lambda, cryptography: PyJWT imports it only where it is installed) waits for the first token
    script = "import sys, json; import functions.freshworks.app; print(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'layers' / 'signing'}"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    loaded = set(json.loads(result.stdout))
    assert "functions.freshworks.app" in loaded
    assert not {name for name in loaded if name.startswith("joserfc")}


def test_signing_works_without_the_oidc_layers_folder_where_the_packages_are_installed(
    aws: Any, link_tables: Any, load_function: Callable[..., ModuleType]
) -> None:
    module = load_function("freshworks", OIDC_PACKAGES_PATH="/nonexistent/oidc-packages")
    freshworks_claims(invoke(module, freshworks_query(token=make_login_token(aud="freshworks")))["headers"]["Location"])


def test_without_the_oidc_layer_it_is_a_503_not_a_crash(freshworks: ModuleType) -> None:
    with mock.patch.object(freshworks, "load_jose", side_effect=ModuleNotFoundError(name="joserfc")):
        response = invoke(
            freshworks, freshworks_query(token=make_login_token(aud="freshworks")), accept="application/json"
        )
    assert (response["statusCode"], reason(response)) == (503, "signing_library_missing")


# --- logout -----------------------------------------------------------------------------------------------------


def test_logout_goes_to_the_platform_logout_url(
    aws: Any, link_tables: Any, load_function: Callable[..., ModuleType]
) -> None:
    module = load_function("freshworks", PLATFORM_LOGOUT_URL="https://platform.example.com/logout")
    response = module.lambda_handler(load_event("freshworks-logout-httpapi"), LambdaContext())
    assert response["statusCode"] == 302
    assert response["headers"]["Location"] == "https://platform.example.com/logout"


def test_logout_without_a_logout_url_shows_a_signed_out_page_back_to_the_portal(freshworks: ModuleType) -> None:
    response = freshworks.lambda_handler(load_event("freshworks-logout-httpapi"), LambdaContext())
    assert response["statusCode"] == 200
    assert "You are signed out" in response["body"]
    assert f'href="{FRESHWORKS_PORTAL_URL}"' in response["body"]


# --- configuration ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"FRESHWORKS_CLIENT_ID": ""}, "FRESHWORKS_CLIENT_ID"),
        ({"FRESHWORKS_CLIENT_ID": "acme client"}, "FRESHWORKS_CLIENT_ID"),
        ({"FRESHWORKS_CLIENT_ID": "c" * 256}, "FRESHWORKS_CLIENT_ID"),
        ({"FRESHWORKS_REDIRECT_HOSTS": ""}, "FRESHWORKS_REDIRECT_HOSTS"),
        ({"FRESHWORKS_REDIRECT_HOSTS": "https://acme.freshworks.com"}, "FRESHWORKS_REDIRECT_HOSTS"),
        ({"FRESHWORKS_REDIRECT_HOSTS": "*.freshworks.com"}, "FRESHWORKS_REDIRECT_HOSTS"),
        ({"FRESHWORKS_PORTAL_URL": "http://acme.freshdesk.com/support/login"}, "FRESHWORKS_PORTAL_URL"),
        ({"FRESHWORKS_PORTAL_URL": "https://acme.freshdesk.com:8443/support/login"}, "FRESHWORKS_PORTAL_URL"),
        ({"FRESHWORKS_PORTAL_URL": "https://x@acme.freshdesk.com/"}, "FRESHWORKS_PORTAL_URL"),
        ({"FRESHWORKS_SECRET_ID": ""}, "FRESHWORKS_SECRET_ID"),
        ({"FRESHWORKS_SECRET_ID": SECRET_IDS["login"]}, "FRESHWORKS_SECRET_ID"),
        ({"PLATFORM_LOGOUT_URL": "http://platform.example.com/logout"}, "PLATFORM_LOGOUT_URL"),
    ],
)
def test_bad_configuration_names_the_variable(
    load_function: Callable[..., ModuleType], variables: dict[str, str], named: str
) -> None:
    from sso_bridge.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=named):
        load_function("freshworks", **variables)


# --- logs -------------------------------------------------------------------------------------------------------


def test_logs_name_the_outcome_but_never_a_token_state_or_nonce(
    freshworks: ModuleType, log_stream: Callable[[ModuleType], io.StringIO]
) -> None:
    logs = log_stream(freshworks)
    token = make_login_token(aud="freshworks", jti="login-77")
    invoke(freshworks, freshworks_query())  # round trip
    invoke(freshworks, freshworks_query(client_id="other"))  # refusal
    issued = invoke(freshworks, freshworks_query(token=token))
    handed = invoke(freshworks, f"login_token={token}")  # hand-off
    out = logs.getvalue()
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line.get("outcome") for line in lines] == ["login_redirect", "refused", "issued", "handed_off"]
    assert lines[1]["reason"] == "freshworks_client_id"
    assert (lines[2]["login_jti"], lines[2]["vendor"], lines[2]["service"]) == ("login-77", "freshworks", "freshworks")
    id_token = answer(issued["headers"]["Location"])
    cookie = handoff_cookie(handed).split("=", 1)[1]
    for secret in (token, id_token, id_token.split(".")[2], STATE, NONCE, cookie, LOGIN_TOKEN_KEY, "PRIVATE KEY"):
        assert secret not in out


# --- the stand-in: Freshworks' side, checking what the bridge signs ----------------------------------------------

AUTHORIZATION_URL = f"https://{API_HOST}/freshworks/login"


def call(app: Any, target: str) -> Reply:
    request = Request("GET", target, [("Host", "127.0.0.1:8443")], b"", "127.0.0.1", "HTTP/1.1", 8443)
    reply: Reply = app(request)
    return reply


@pytest.fixture
def portal() -> Any:
    """The stand-in for acme's portal and account, with the bridge's route as its Authorization URL."""
    return standin.freshworks(
        host="acme.freshdesk.com",
        account_host=HOST,
        public_key=PUBLIC_PEM,
        client_id=FRESHWORKS_CLIENT_ID,
        authorization_url=AUTHORIZATION_URL,
        login_path="/support/login",
    )


def started(portal: Any, account_host: str = HOST) -> tuple[str, dict[str, str]]:
    """The portal's Log in: the bridge's authorization URL, and the parameters of Freshworks' request."""
    reply = call(portal, "/support/login")
    assert reply.status == 302
    location = dict(reply.headers)["Location"]
    assert location.startswith(f"{AUTHORIZATION_URL}?response_type=id_token&client_id=")
    params = {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}
    assert params["redirect_uri"] == f"https://{account_host}{standin.implicit_path(FRESHWORKS_CLIENT_ID)}"
    assert params["scope"] == "openid email profile"
    return location, params


def through_the_bridge(module: ModuleType, authorization_url: str, token: str) -> str:
    """The browser at the bridge's route with Freshworks' request and a login token: where the bridge sends it."""
    response = invoke(module, f"{urlsplit(authorization_url).query}&login_token={token}")
    assert response["statusCode"] == 302, response["body"][:300]
    location: str = response["headers"]["Location"]
    return location


def at_the_portal(portal: Any, location: str) -> Reply:
    parts = urlsplit(location)
    assert parts.netloc == HOST
    return call(portal, f"{parts.path}?{parts.query}")


def text_of(reply: Reply) -> str:
    return reply.body.decode()


def test_the_stand_in_signs_in_who_the_bridge_vouches_for(freshworks: ModuleType, portal: Any) -> None:
    authorization_url, _ = started(portal)
    location = through_the_bridge(freshworks, authorization_url, make_login_token(EMAIL, aud="freshworks", name="Jane"))
    reply = at_the_portal(portal, location)
    assert reply.status == 200
    assert f"Signed in as {EMAIL}" in text_of(reply)
    assert "Name: <strong>Jane</strong>" in text_of(reply)


def test_the_stand_in_takes_an_answer_once(freshworks: ModuleType, portal: Any) -> None:
    authorization_url, _ = started(portal)
    location = through_the_bridge(freshworks, authorization_url, make_login_token(aud="freshworks"))
    assert at_the_portal(portal, location).status == 200
    again = at_the_portal(portal, location)
    assert again.status == 400
    assert "completed already" in text_of(again)


def _parts(location: str) -> tuple[str, str, str]:
    """(the implicit endpoint, state, id_token) of the bridge's answer."""
    parts = urlsplit(location)
    params = {name: values[0] for name, values in parse_qs(parts.query).items()}
    return f"{parts.scheme}://{parts.netloc}{parts.path}", params["state"], params["id_token"]


def _with_token(location: str, token: str, *, state: str | None = None) -> str:
    endpoint, sent_state, _ = _parts(location)
    return f"{endpoint}?state={quote(state or sent_state, safe='')}&id_token={token}"


def _resigned(location: str, key: str, *, algorithm: str = "RS256", **changes: Any) -> str:
    """``location`` with its id_token's claims changed (None: removed) and signed again with ``key``."""
    claims = jwt.decode(_parts(location)[2], options={"verify_signature": False})
    claims.update(changes)
    for name in [name for name, value in changes.items() if value is None]:
        claims.pop(name)
    return _with_token(location, jwt.encode(claims, key, algorithm=algorithm))


def _confused(location: str) -> str:
    """HS256 with the public key as the secret: what a verifier taking the token's own alg would accept."""
    import hashlib
    import hmac

    payload = _parts(location)[2].split(".")[1]
    header = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT"}').decode()
    digest = hmac.new(PUBLIC_PEM.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return _with_token(location, f"{header}.{payload}.{jwt.utils.base64url_encode(digest).decode()}")


STANDIN_REFUSES: dict[str, tuple[Callable[[str], str], str]] = {
    "signed with another key": (lambda loc: _resigned(loc, rsa_pem()), "does not match the public key"),
    "HS256 with the public key as secret": (_confused, "not signed with RS256"),
    "alg none": (lambda loc: _resigned(loc, "", algorithm="none"), "not signed with RS256"),
    "another nonce": (lambda loc: _resigned(loc, PRIVATE_PEM, nonce="other"), "nonce is not the one"),
    "no sub": (lambda loc: _resigned(loc, PRIVATE_PEM, sub=None), "has no sub claim"),
    "no email": (lambda loc: _resigned(loc, PRIVATE_PEM, email=None), "has no email claim"),
    "expired": (lambda loc: _resigned(loc, PRIVATE_PEM, exp=int(time.time()) - 120), "expired"),
    "issued in the future": (lambda loc: _resigned(loc, PRIVATE_PEM, iat=int(time.time()) + 600), "in the future"),
    "iat as text": (lambda loc: _resigned(loc, PRIVATE_PEM, iat="1700000000"), "whole number"),
    "state altered": (lambda loc: loc.replace("state=", "state=QU", 1), "not issued by this portal"),
    "token in the fragment": (lambda loc: loc.replace("&id_token=", "#id_token=", 1), "no id_token"),
}


@pytest.mark.parametrize(("tamper", "said"), STANDIN_REFUSES.values(), ids=STANDIN_REFUSES.keys())
def test_the_stand_in_refuses_what_freshworks_would(
    freshworks: ModuleType, portal: Any, tamper: Callable[[str], str], said: str
) -> None:
    authorization_url, _ = started(portal)
    location = through_the_bridge(freshworks, authorization_url, make_login_token(aud="freshworks"))
    reply = at_the_portal(portal, tamper(location))
    assert reply.status in (400, 401)
    assert said in text_of(reply)
    assert "Signed in" not in text_of(reply)


def test_the_stand_in_refuses_a_state_another_portal_issued(freshworks: ModuleType, portal: Any) -> None:
    other = standin.freshworks(
        host="other.freshdesk.com",
        account_host="other.freshworks.com",
        public_key=PUBLIC_PEM,
        client_id=FRESHWORKS_CLIENT_ID,
        authorization_url=AUTHORIZATION_URL,
        login_path="/support/login",
    )
    _, params = started(other, "other.freshworks.com")
    # The bridge would refuse other.freshworks.com; a token made for acme with other's state is refused by acme
    authorization_url, _ = started(portal)
    location = through_the_bridge(freshworks, authorization_url, make_login_token(aud="freshworks"))
    forged = _with_token(location, _parts(location)[2], state=params["state"])
    assert at_the_portal(portal, forged).status == 400


def test_the_stand_in_spec_is_an_rsa_vendor_on_the_portal_and_account_hosts() -> None:
    spec = standin.SPEC
    assert (spec.vendor, spec.key_kind, spec.login_path) == ("freshworks", "rsa", "/freshworks/login")
    assert spec.hosts_in(spec.defaults) == ("yourcompany.freshdesk.com", "yourcompany.freshworks.com")
    # The defaults are settings the function itself accepts
    env = {**os.environ, **spec.defaults}
    from functions.freshworks.app import Settings

    settings = Settings.from_env(env)
    assert settings.portal_url == "https://yourcompany.freshdesk.com/support/login"
    assert settings.redirect_hosts == {"yourcompany.freshworks.com"}


def test_the_stand_in_never_prints_or_shows_a_token(
    freshworks: ModuleType, portal: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    authorization_url, _ = started(portal)
    location = through_the_bridge(freshworks, authorization_url, make_login_token(aud="freshworks"))
    token = parse_qs(urlsplit(location).query)["id_token"][0]
    reply = at_the_portal(portal, location)
    assert token not in text_of(reply)
    assert token not in capsys.readouterr().out
