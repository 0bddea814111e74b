"""Canny's SSO redirect as a feedback-board visitor meets it: Canny's request in, Canny's SSO endpoint out, signed in.

Canny sends ``?companyID=...&redirect=...``; the visitor must go to
``https://canny.io/api/redirects/sso?companyID=...&ssoToken=<HS256 {email, id, name, avatarURL?}>&redirect=...`` with
both passed back or, for anything hostile, see a refusal before any sign-in. Tokens are verified with node's
``jose`` (Canny's own sample is node), and by the local stand-in that plays canny.io.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import time
import warnings
from collections.abc import Callable
from html import unescape
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlsplit

import jwt
import pytest

from local.server import App, Reply, Request
from local.vendors import canny as standin
from local.vendors.site import StandInContext
from tests.helpers import (
    CANNY_COMPANY_ID,
    LOGIN_TOKEN_KEY,
    PLATFORM_LOGIN_URL,
    SECRET_IDS,
    VENDOR_KEYS,
    LambdaContext,
    LinkPage,
    load_event,
    make_login_token,
    pressed,
)
from tests.node_jose import JoseRefused, verify_with_jose

CANNY_KEY = VENDOR_KEYS["canny"]
SSO_URL = "https://canny.io/api/redirects/sso"
BOARD = "acme.canny.io"  # CANNY_REDIRECT_HOSTS in the test settings: acme.canny.io and feedback.example.com
CUSTOM_DOMAIN = "feedback.example.com"
REDIRECT = f"https://{BOARD}/feature-requests"  # what events/canny-login-*.json carry
PORTAL_URL = f"https://{BOARD}/"
API_HOST = "abc123.execute-api.eu-west-1.amazonaws.com"
TTL = 300  # the bridge's exp
EMAIL = "jane.doe+vip@example.com"
DAY = 86400


@pytest.fixture
def canny(aws: Any, load_function: Callable[..., ModuleType]) -> ModuleType:
    return load_function("canny")


@pytest.fixture
def with_portal(aws: Any, link_tables: Any, load_function: Callable[..., ModuleType]) -> ModuleType:
    return load_function("canny", CANNY_PORTAL_URL=PORTAL_URL)


def canny_query(
    company: str | None = CANNY_COMPANY_ID, redirect: str | None = REDIRECT, *, token: str | None = None
) -> str:
    """The query Canny sends (as a browser encodes it), plus the login token the platform appends."""
    parts = []
    if company is not None:
        parts.append(f"companyID={quote(company, safe='')}")
    if redirect is not None:
        parts.append(f"redirect={quote(redirect, safe='')}")
    if token is not None:
        parts.append(f"login_token={token}")
    return "&".join(parts)


def invoke(
    module: ModuleType,
    query: str | None = None,
    *,
    event: str = "canny-login-httpapi",
    path: str | None = None,
    method: str = "GET",
    **headers: str,
) -> Any:
    payload = load_event(event, query=query, headers=headers)
    if path is not None:
        payload["rawPath"] = payload["requestContext"]["http"]["path"] = path
    payload["requestContext"]["http"]["method"] = method
    return module.lambda_handler(payload, LambdaContext())


def sso_params(location: str) -> dict[str, str]:
    """Canny's three parameters, each exactly once, on its SSO endpoint; nothing else."""
    url = urlsplit(location)
    assert f"{url.scheme}://{url.netloc}{url.path}" == SSO_URL
    assert not url.fragment
    pairs = parse_qsl(url.query, keep_blank_values=True, strict_parsing=True)
    assert [name for name, _ in pairs] == ["companyID", "ssoToken", "redirect"]
    return dict(pairs)


def jose_claims(location: str, *, key: str = CANNY_KEY) -> dict[str, Any]:
    """The ssoToken as node's jose verifies it: HS256 only, with the company's SSO key, exp checked."""
    header, claims = verify_with_jose(sso_params(location)["ssoToken"], key, algorithms=["HS256"])
    assert header == {"alg": "HS256", "typ": "JWT"}
    return claims


def canny_claims(location: str, *, key: str = CANNY_KEY) -> dict[str, Any]:
    """The same check with PyJWT, explicit algorithm and the claims Canny's sample has, for the many cases."""
    claims: dict[str, Any] = jwt.decode(
        sso_params(location)["ssoToken"], key, algorithms=["HS256"], options={"require": ["email", "id", "name"]}
    )
    return claims


def login_redirect(response: dict[str, Any]) -> str:
    """The return_to of a redirect to the platform's sign-in page."""
    assert response["statusCode"] == 302
    location = urlsplit(response["headers"]["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == PLATFORM_LOGIN_URL
    return parse_qs(location.query)["return_to"][0]


def come_back(module: ModuleType, return_to: str, token: str, *, event: str = "canny-login-httpapi") -> Any:
    """What the platform does after sign-in: send the browser to return_to with &login_token= appended."""
    url = urlsplit(return_to)
    query = f"{url.query}&login_token={token}" if url.query else f"login_token={token}"
    return invoke(module, query, event=event, path=url.path)


def assert_refused_before_sign_in(response: dict[str, Any], status: int = 400) -> None:
    assert response["statusCode"] == status, (response["statusCode"], response["body"][:300])
    assert "Location" not in response["headers"]
    assert "ssoToken" not in response["body"]


# --- the happy path ---------------------------------------------------------------------------------------


def test_signed_in_visitor_goes_to_cannys_sso_endpoint_with_both_parameters_back(canny: ModuleType) -> None:
    # Given Canny's request, as in events/, and a login token with the platform's user id and a picture
    token = make_login_token(EMAIL, aud="canny", name="Jane Doe", sub="user-42", avatar_url="https://img.example.com/j")

    # When the browser arrives with the login token appended
    response = invoke(canny, f"{load_event('canny-login-httpapi')['rawQueryString']}&login_token={token}")

    # Then it goes to Canny's SSO endpoint with companyID and redirect as Canny sent them, and the ssoToken
    assert response["statusCode"] == 302
    location = response["headers"]["Location"]
    params = sso_params(location)
    assert params["companyID"] == CANNY_COMPANY_ID
    assert params["redirect"] == REDIRECT
    assert location == (
        f"{SSO_URL}?companyID={CANNY_COMPANY_ID}&ssoToken={params['ssoToken']}"
        "&redirect=https%3A%2F%2Facme.canny.io%2Ffeature-requests"
    )
    # And node's jose accepts the token with the company's key, HS256 only
    claims = jose_claims(location)
    assert claims == {
        "email": EMAIL,
        "id": "user-42",
        "name": "Jane Doe",
        "avatarURL": "https://img.example.com/j",
        "iat": claims["iat"],
        "exp": claims["iat"] + TTL,
    }
    assert abs(claims["iat"] - time.time()) <= 2
    assert response["headers"]["Cache-Control"] == "no-store"
    assert response["headers"]["Referrer-Policy"] == "no-referrer"


def test_the_token_verifies_with_no_other_key_or_algorithm(canny: ModuleType) -> None:
    location = invoke(canny, canny_query(token=make_login_token(aud="canny")))["headers"]["Location"]
    token = sso_params(location)["ssoToken"]
    with pytest.raises(JoseRefused, match="SIGNATURE"):
        verify_with_jose(token, LOGIN_TOKEN_KEY, algorithms=["HS256"])
    with pytest.raises(JoseRefused):
        verify_with_jose(token, CANNY_KEY, algorithms=["HS512"])


def test_without_a_subject_the_id_is_the_email_and_the_name_is_made_up(canny: ModuleType) -> None:
    # Canny's sample sends a name with every token: a stable id and a non-empty name, always
    response = invoke(canny, canny_query(token=make_login_token("kim.lee@example.com", aud="canny")))
    claims = canny_claims(response["headers"]["Location"])
    assert (claims["id"], claims["name"]) == ("kim.lee@example.com", "kim.lee")
    assert "avatarURL" not in claims
    # One Canny user whatever capitalisation the platform sends the address in
    response = invoke(canny, canny_query(token=make_login_token("Kim.Lee@Example.com", aud="canny")))
    claims = canny_claims(response["headers"]["Location"])
    assert (claims["id"], claims["email"]) == ("kim.lee@example.com", "Kim.Lee@Example.com")


def test_given_and_family_names_make_the_name_when_there_is_no_name(canny: ModuleType) -> None:
    token = make_login_token(aud="canny", given_name="Jane", family_name="Doe")
    assert canny_claims(invoke(canny, canny_query(token=token))["headers"]["Location"])["name"] == "Jane Doe"


def test_an_avatar_that_is_not_https_never_reaches_canny(canny: ModuleType) -> None:
    # Refused by the login token's own checks: an image every visitor of the board would load
    token = make_login_token(aud="canny", avatar_url="http://img.example.com/j")
    response = invoke(canny, canny_query(token=token))
    assert 400 <= response["statusCode"] < 500
    assert "Location" not in response["headers"]


@pytest.mark.parametrize("event", ["canny-login-httpapi", "canny-login-function-url"])
def test_whole_round_trip_through_the_platform(canny: ModuleType, event: str) -> None:
    # Given Canny's request and no login token
    first = invoke(canny, event=event)

    # Then the visitor is sent to sign in, with Canny's parameters carried back unchanged
    return_to = login_redirect(first)
    original = load_event(event)
    assert (
        return_to
        == f"https://{original['requestContext']['domainName']}{original['rawPath']}?{original['rawQueryString']}"
    )

    # When the platform sends them back with a login token
    second = come_back(canny, return_to, make_login_token("amy@example.com", aud="canny"), event=event)

    # Then they go on to Canny, signed in as themselves, back to the page Canny named
    assert second["statusCode"] == 302
    params = sso_params(second["headers"]["Location"])
    assert (params["companyID"], params["redirect"]) == (CANNY_COMPANY_ID, REDIRECT)
    assert jose_claims(second["headers"]["Location"])["email"] == "amy@example.com"


def test_expired_login_token_goes_round_trip_without_the_stale_token(canny: ModuleType) -> None:
    stale = make_login_token(aud="canny", issued=int(time.time()) - 3600, lifetime=600)
    return_to = login_redirect(invoke(canny, canny_query(token=stale)))
    assert return_to == f"https://{API_HOST}/canny/login?{canny_query()}"


def test_head_with_a_login_token_mints_nothing(canny: ModuleType) -> None:
    response = invoke(canny, canny_query(token=make_login_token(aud="canny")), method="HEAD")
    assert response["statusCode"] == 200
    assert response["body"] == ""
    assert "Location" not in response["headers"]


@pytest.mark.parametrize(
    ("redirect", "passed_back"),
    [
        (REDIRECT, REDIRECT),
        (f"https://{BOARD}/", f"https://{BOARD}/"),
        (f"https://{BOARD}", f"https://{BOARD}/"),
        (f"https://{BOARD}/p/dark-mode?sort=top&x=", f"https://{BOARD}/p/dark-mode?sort=top&x="),
        (f"https://{BOARD}/p/dark-mode#comments", f"https://{BOARD}/p/dark-mode#comments"),
        (f"https://{CUSTOM_DOMAIN}/roadmap", f"https://{CUSTOM_DOMAIN}/roadmap"),
        (f"HTTPS://{BOARD.upper()}/roadmap", f"https://{BOARD}/roadmap"),
        (f"https://{BOARD}:443/roadmap", f"https://{BOARD}/roadmap"),
    ],
)
def test_a_redirect_on_the_board_is_passed_back(canny: ModuleType, redirect: str, passed_back: str) -> None:
    response = invoke(canny, canny_query(redirect=redirect, token=make_login_token(aud="canny")))
    assert response["statusCode"] == 302
    assert sso_params(response["headers"]["Location"])["redirect"] == passed_back
    canny_claims(response["headers"]["Location"])


# --- no parameters: the board from CANNY_PORTAL_URL ------------------------------------------------------


def test_without_cannys_parameters_the_visitor_lands_on_the_portal(with_portal: ModuleType) -> None:
    # A "Feedback" link in the platform: /canny/login with nothing from Canny, through sign-in
    return_to = login_redirect(invoke(with_portal, ""))
    assert return_to == f"https://{API_HOST}/canny/login"
    response = come_back(with_portal, return_to, make_login_token("kim@example.com", aud="canny"))
    params = sso_params(response["headers"]["Location"])
    assert (params["companyID"], params["redirect"]) == (CANNY_COMPANY_ID, PORTAL_URL)
    assert jose_claims(response["headers"]["Location"])["email"] == "kim@example.com"


def test_without_parameters_or_portal_it_is_a_page_saying_so(canny: ModuleType) -> None:
    for token in (None, make_login_token(aud="canny")):
        response = invoke(canny, "" if token is None else f"login_token={token}")
        assert_refused_before_sign_in(response)
        assert response["headers"]["Content-Type"].startswith("text/html")
        assert "feedback board" in response["body"]
    response = invoke(canny, "", accept="application/json")
    assert json.loads(response["body"])["reason"] == "canny_portal_url_unset"


def test_the_portals_host_is_allowed_without_listing_it(aws: Any, load_function: Callable[..., ModuleType]) -> None:
    module = load_function("canny", CANNY_PORTAL_URL="https://ideas.example.org/", CANNY_REDIRECT_HOSTS="")
    redirect = "https://ideas.example.org/p/x"
    response = invoke(module, canny_query(redirect=redirect, token=make_login_token(aud="canny")))
    assert sso_params(response["headers"]["Location"])["redirect"] == redirect


# --- email links -------------------------------------------------------------------------------------------


def a_link(**claims: Any) -> str:
    defaults: dict[str, Any] = {"aud": "canny", "lifetime": 7 * DAY, "use": "link", "jti": secrets.token_hex(16)}
    return make_login_token(EMAIL, **{**defaults, **claims})


@pytest.mark.parametrize("event", ["canny-login-httpapi", "canny-login-function-url"])
def test_an_email_link_shows_a_page_then_its_button_signs_the_reader_into_the_board(
    with_portal: ModuleType, link_tables: Any, event: str
) -> None:
    # Given a link to the Canny route (no Canny parameters: Canny did not start this)
    link = a_link(name="Jane Doe")
    opened = load_event(event, query=f"login_token={link}")

    # When a scanner or the reader opens it, nothing is minted: a page with one button
    shown = with_portal.lambda_handler(opened, LambdaContext())
    assert shown["statusCode"] == 200
    assert "Location" not in shown["headers"]
    assert "Continue to the feedback board" in shown["body"]
    assert link_tables.scan(TableName="sso-bridge-spent-links-test")["Items"] == []

    # When the reader presses Continue
    response = with_portal.lambda_handler(pressed(opened, LinkPage.from_response(shown)), LambdaContext())

    # Then the bridge answers Canny's SSO endpoint itself (303: the browser follows with GET), ending on the board
    assert response["statusCode"] == 303
    params = sso_params(response["headers"]["Location"])
    assert (params["companyID"], params["redirect"]) == (CANNY_COMPANY_ID, PORTAL_URL)
    claims = jose_claims(response["headers"]["Location"])
    assert (claims["email"], claims["name"]) == (EMAIL, "Jane Doe")
    [item] = link_tables.scan(TableName="sso-bridge-spent-links-test")["Items"]
    assert item["vendor"] == {"S": "canny"}


def test_a_spent_link_goes_through_sign_in_and_back_to_the_route(with_portal: ModuleType) -> None:
    link = a_link()
    opened = load_event("canny-login-httpapi", query=f"login_token={link}")
    page = LinkPage.from_response(with_portal.lambda_handler(opened, LambdaContext()))
    assert with_portal.lambda_handler(pressed(opened, page), LambdaContext())["statusCode"] == 303
    again = with_portal.lambda_handler(pressed(opened, page), LambdaContext())
    assert again["statusCode"] == 303
    assert again["headers"]["Location"].startswith(f"{PLATFORM_LOGIN_URL}?return_to=")
    assert "ssoToken" not in again["headers"]["Location"]


def test_a_link_without_a_portal_is_refused_before_its_page(canny: ModuleType, link_tables: Any) -> None:
    # Nowhere to land: say so at once rather than spend the link on a dead end
    assert_refused_before_sign_in(invoke(canny, f"login_token={a_link()}"))


# --- hostile companyID -------------------------------------------------------------------------------------

HOSTILE_COMPANIES = {
    "another company": "5f0c1d2e3a4b5c6d7e8f9a0c",
    "upper case": CANNY_COMPANY_ID.upper(),
    "prefix": CANNY_COMPANY_ID[:-1],
    "suffix": f"{CANNY_COMPANY_ID}0",
    "trailing space": f"{CANNY_COMPANY_ID} ",
    "leading space": f" {CANNY_COMPANY_ID}",
    "line break": f"{CANNY_COMPANY_ID}\n",
    "nul": f"{CANNY_COMPANY_ID}\x00",
    "fullwidth digit": "\uff15" + CANNY_COMPANY_ID[1:],
    "zero-width": f"{CANNY_COMPANY_ID}\u200b",
    "markup": "<script>alert(1)</script>",
    "two values": f"{CANNY_COMPANY_ID},{CANNY_COMPANY_ID}",
}


@pytest.mark.parametrize("company", HOSTILE_COMPANIES.values(), ids=HOSTILE_COMPANIES.keys())
def test_another_company_id_is_refused_before_sign_in(canny: ModuleType, company: str) -> None:
    for token in (None, make_login_token(aud="canny")):
        response = invoke(canny, canny_query(company, token=token))
        assert_refused_before_sign_in(response)
        assert "<script>" not in response["body"]
    response = invoke(canny, canny_query(company), accept="application/json")
    assert json.loads(response["body"])["reason"] == "canny_company_mismatch"


def test_an_oversized_company_id_is_refused(canny: ModuleType) -> None:
    assert_refused_before_sign_in(invoke(canny, canny_query("a" * 65, token=make_login_token(aud="canny"))), 414)


@pytest.mark.parametrize(
    "raw_query",
    [
        f"redirect={quote(REDIRECT, safe='')}",  # no companyID
        f"companyID=&redirect={quote(REDIRECT, safe='')}",
        f"companyID={CANNY_COMPANY_ID}",  # no redirect
        f"companyID={CANNY_COMPANY_ID}&redirect=",
        f"companyID={CANNY_COMPANY_ID}&companyID={CANNY_COMPANY_ID}&redirect={quote(REDIRECT, safe='')}",
        f"companyID=x&companyID={CANNY_COMPANY_ID}&redirect={quote(REDIRECT, safe='')}",
        f"companyID={CANNY_COMPANY_ID}&redirect={quote(REDIRECT, safe='')}&redirect=https%3A%2F%2Fevil.net%2F",
    ],
)
def test_half_a_request_or_a_repeated_parameter_is_refused(with_portal: ModuleType, raw_query: str) -> None:
    # Even with CANNY_PORTAL_URL set: one parameter without the other is not "nothing from Canny"
    response = invoke(with_portal, f"{raw_query}&login_token={make_login_token(aud='canny')}")
    assert_refused_before_sign_in(response)


# --- hostile redirect (the redirect corpus of test_redirects.py, on the board's hosts) --------------------------

B = BOARD
HOSTILE_REDIRECTS = {
    "other host": ["https://evil.example.net/", "https://canny.io/", "https://other.canny.io/", "https://example.com/"],
    "suffix trick": [f"https://{B}.evil.net/", f"https://{B}./", f"https://{B}%2eevil.net/", f"https://{B}.:443/"],
    "prefix trick": [f"https://evil{B}/", f"https://x.{B}/", f"https://evil.net/{B}", f"https://evil.net?{B}"],
    "userinfo": [
        f"https://{B}@evil.net/",
        f"https://user:pw@{B}/",
        f"https://evil.net%40{B}/",
        f"https://evil.net\\@{B}/",
    ],
    "backslash": [f"https://evil.net\\{B}/", "https:\\\\evil.net/", f"https://{B}\\.evil.net/"],
    "scheme-relative": ["//evil.net/", "///evil.net/", "/\\evil.net/", f"//{B}/"],
    "relative": ["/feature-requests", "feature-requests", "?x=1"],
    "other schemes": [
        f"http://{B}/",
        f"javascript:alert(1)//https://{B}/",
        "data:text/html,<script>alert(1)</script>",
        f"ftp://{B}/",
        f"https:{B}/",
        f"https:/{B}/",
        f" https://{B}/",
    ],
    "encoded dots": ["https://acme%2ecanny%2eio/", "https://acme.canny%2Eio.evil.net/", f"https://evil.net%2f@{B}/"],
    "unicode dots and look-alikes": [
        "https://acme\u3002canny\u3002io/",
        "https://acme\uff0ecanny\uff0eio/",
        f"https://{B}\u2025evil.net/",
        "https://\u0430cme.canny.io/",
        f"https://{B}\u200b/",
    ],
    "control characters": [
        f"https://{B}/\r\nLocation: https://evil.net/",
        f"https://{B}/\x00",
        f"https://evil.net\t.{B}/",
        f"https://{B}/\x7f",
        f"\x01https://{B}/",
        f"https://{B}/\n",
    ],
    "ports": [f"https://{B}:8443/", f"https://{B}:0/", f"https://{B}:99999/"],
    "ip literals": ["https://127.0.0.1/", "https://[::1]/", "https://0x7f000001/", "https://169.254.169.254/"],
    "path tricks": [f"https://{B}//evil.net/", f"https://{B}/<script>"],
}


@pytest.mark.parametrize(
    "redirect",
    [pytest.param(url, id=f"{kind}: {url[:60]!r}") for kind, urls in HOSTILE_REDIRECTS.items() for url in urls],
)
def test_a_hostile_redirect_is_refused_before_sign_in(canny: ModuleType, redirect: str) -> None:
    for token in (None, make_login_token(aud="canny")):
        response = invoke(canny, canny_query(redirect=redirect, token=token))
        assert_refused_before_sign_in(response)
        assert "evil" not in response["body"]
        assert "<script>" not in response["body"]


def test_an_oversized_redirect_is_refused(canny: ModuleType) -> None:
    response = invoke(canny, canny_query(redirect=f"{REDIRECT}?q=" + "a" * 2100, token=make_login_token(aud="canny")))
    assert_refused_before_sign_in(response, 414)


# --- hostile login tokens ------------------------------------------------------------------------------------

NOW = int(time.time())
HOSTILE_LOGIN_TOKENS: dict[str, Callable[[], str]] = {
    "forged key": lambda: make_login_token(aud="canny", key="forged-key-0123456789abcdef0123456789"),
    "signed with Canny's key": lambda: make_login_token(aud="canny", key=CANNY_KEY),
    "another service": lambda: make_login_token(aud="kustomer"),
    "no audience": lambda: make_login_token(aud="canny", drop=("aud",)),
    "issued in the future": lambda: make_login_token(aud="canny", issued=int(time.time()) + 3600),
    "sub not a string": lambda: make_login_token(aud="canny", sub=42),
    "sub with a line break": lambda: make_login_token(aud="canny", sub="user\n42"),
    "name with markup and a NUL": lambda: make_login_token(aud="canny", name="<b>\x00"),
    "avatar with userinfo": lambda: make_login_token(aud="canny", avatar_url="https://x@evil.net/a.png"),
    "not a jwt": lambda: "not-a-jwt",
}


@pytest.mark.parametrize("make", HOSTILE_LOGIN_TOKENS.values(), ids=HOSTILE_LOGIN_TOKENS.keys())
def test_a_hostile_login_token_never_reaches_canny(canny: ModuleType, make: Callable[[], str]) -> None:
    response = invoke(canny, canny_query(token=quote(make(), safe="")))
    assert 400 <= response["statusCode"] < 500
    assert "Location" not in response["headers"]
    assert "<b>" not in response["body"]


# --- sign-in with an OpenID provider -----------------------------------------------------------------------------


def test_with_openid_the_visitor_signs_in_at_the_provider_and_comes_back_to_canny(
    aws: Any, link_tables: Any, load_function: Callable[..., ModuleType]
) -> None:
    from tests.oidc_in_process import InProcessProvider

    provider = InProcessProvider()
    aws.create_secret(Name="sso-bridge/oidc-client", SecretString=provider.client_secret)
    module = load_function(
        "canny",
        OIDC_ISSUER=provider.issuer,
        OIDC_CLIENT_ID=provider.client_id,
        OIDC_CLIENT_SECRET_ID="sso-bridge/oidc-client",
        OIDC_PACKAGES_PATH="/nonexistent/oidc-packages",
    )
    module.flow.oidc.provider._opener = provider.opener()

    # Canny's request, signed out: to the provider, Canny's parameters kept in the state
    started = invoke(module, canny_query())
    assert started["statusCode"] == 302
    assert started["headers"]["Location"].startswith(provider.issuer)
    [cookie] = started["cookies"]

    # The provider's answer at /oidc/callback: back to the route, with Canny's parameters and a login token
    callback = load_event("canny-login-httpapi", query=provider.authorize_url(started["headers"]["Location"]))
    callback["rawPath"] = callback["requestContext"]["http"]["path"] = "/oidc/callback"
    callback["cookies"] = [cookie.split(";", 1)[0]]
    back = module.lambda_handler(callback, LambdaContext())
    assert back["statusCode"] == 302, back["body"][:300]
    url = urlsplit(back["headers"]["Location"])
    assert url.path == "/canny/login"
    assert url.query.startswith(f"{canny_query()}&login_token=")

    # And on to Canny, signed in as the provider's user, with the provider's sub as Canny's id
    done = invoke(module, url.query)
    claims = jose_claims(done["headers"]["Location"])
    assert sso_params(done["headers"]["Location"])["redirect"] == REDIRECT
    assert claims["email"]
    assert claims["id"] != claims["email"]


# --- configuration ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"CANNY_COMPANY_ID": ""}, "CANNY_COMPANY_ID"),
        ({"CANNY_COMPANY_ID": "acme company"}, "CANNY_COMPANY_ID"),
        ({"CANNY_COMPANY_ID": "a" * 65}, "CANNY_COMPANY_ID"),
        ({"CANNY_REDIRECT_HOSTS": ""}, "CANNY_REDIRECT_HOSTS"),
        ({"CANNY_REDIRECT_HOSTS": "https://acme.canny.io"}, "CANNY_REDIRECT_HOSTS"),
        ({"CANNY_REDIRECT_HOSTS": "*.canny.io"}, "CANNY_REDIRECT_HOSTS"),
        ({"CANNY_PORTAL_URL": "http://acme.canny.io/"}, "CANNY_PORTAL_URL"),
        ({"CANNY_PORTAL_URL": "https://acme.canny.io:8443/"}, "CANNY_PORTAL_URL"),
        ({"CANNY_SECRET_ID": ""}, "CANNY_SECRET_ID"),
        ({"CANNY_SECRET_ID": SECRET_IDS["login"]}, "CANNY_SECRET_ID"),
    ],
)
def test_bad_configuration_names_the_variable(
    load_function: Callable[..., ModuleType], variables: dict[str, str], named: str
) -> None:
    from sso_bridge.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=named):
        load_function("canny", **variables)


# --- outages, pages, logs --------------------------------------------------------------------------------------


def test_secrets_manager_outage_is_a_503_with_retry_after_and_no_token(canny: ModuleType, aws: Any) -> None:
    aws.delete_secret(SecretId=SECRET_IDS["canny"], ForceDeleteWithoutRecovery=True)
    response = invoke(canny, canny_query(token=make_login_token(aud="canny")), accept="application/json")
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"].isdigit()
    assert "Location" not in response["headers"]
    assert "ssoToken" not in response["body"]


def test_placeholder_key_is_never_used_to_sign(canny: ModuleType, aws: Any) -> None:
    aws.put_secret_value(SecretId=SECRET_IDS["canny"], SecretString="REPLACE_ME with the key")
    response = invoke(canny, canny_query(token=make_login_token(aud="canny")))
    assert response["statusCode"] == 503
    assert "Location" not in response["headers"]


def test_unknown_path_on_the_function_url_is_a_404_page(canny: ModuleType) -> None:
    response = invoke(canny, event="canny-login-function-url", path="/wp-admin")
    assert response["statusCode"] == 404
    assert "Page not found" in response["body"]


def test_logs_name_the_outcome_but_never_a_token_or_the_query(
    canny: ModuleType, log_stream: Callable[[ModuleType], io.StringIO]
) -> None:
    logs = log_stream(canny)
    token = make_login_token(aud="canny", jti="login-321")
    invoke(canny, canny_query())  # round trip
    invoke(canny, canny_query("5f0c1d2e3a4b5c6d7e8f9a0c"))  # refusal: another company
    issued = invoke(canny, canny_query(token=token))
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert [line.get("outcome") for line in lines] == ["login_redirect", "refused", "issued"]
    # The refused id is named for the operator (it is in every Canny login URL, not a secret)
    assert (lines[1]["reason"], lines[1]["detail"]) == ("canny_company_mismatch", "5f0c1d2e3a4b5c6d7e8f9a0c")
    assert (lines[2]["login_jti"], lines[2]["service"]) == ("login-321", "canny")
    out = logs.getvalue()
    sso_token = sso_params(issued["headers"]["Location"])["ssoToken"]
    for secret in (token, sso_token, CANNY_KEY, LOGIN_TOKEN_KEY, canny_query(), quote(REDIRECT, safe="")):
        assert secret not in out


def test_an_odd_company_id_is_not_logged_as_sent(
    canny: ModuleType, log_stream: Callable[[ModuleType], io.StringIO]
) -> None:
    logs = log_stream(canny)
    invoke(canny, canny_query("<script>\u202e"))
    [line] = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert line["detail"] == "unexpected characters"


# --- the stand-in that plays Canny ---------------------------------------------------------------------------------


def call(app: App, url: str) -> Reply:
    """``url``'s path and query, as the stand-in receives them (on a local port: the host is never read)."""
    parts = urlsplit(url)
    target = f"{parts.path}?{parts.query}" if parts.query else parts.path
    request = Request("GET", target, [("Host", "127.0.0.1:8443")], b"", "127.0.0.1", "HTTP/1.1", 8443)
    return app(request)


def page_h1(reply: Reply) -> str:
    body = reply.body.decode()
    return unescape(body.split("<h1>", 1)[1].split("</h1>", 1)[0])


def canny_io(company: str = CANNY_COMPANY_ID) -> App:
    return standin.canny_sso(key=CANNY_KEY, company_id=company, hosts=(BOARD, CUSTOM_DOMAIN))


def test_the_stand_in_signs_in_whom_the_bridge_signed_for(canny: ModuleType) -> None:
    token = make_login_token(EMAIL, aud="canny", name="Jane Doe", sub="user-42")
    location = invoke(canny, canny_query(token=token))["headers"]["Location"]
    reply = call(canny_io(), location)
    assert reply.status == 200
    assert page_h1(reply) == f"Signed in as {EMAIL}"
    body = unescape(reply.body.decode())
    assert "user-42" in body
    assert REDIRECT in body
    assert sso_params(location)["ssoToken"] not in reply.body.decode()


def test_the_stand_in_signs_in_a_reader_who_came_from_an_email_link(with_portal: ModuleType) -> None:
    opened = load_event("canny-login-function-url", query=f"login_token={a_link()}")
    page = LinkPage.from_response(with_portal.lambda_handler(opened, LambdaContext()))
    location = with_portal.lambda_handler(pressed(opened, page), LambdaContext())["headers"]["Location"]
    assert page_h1(call(canny_io(), location)) == f"Signed in as {EMAIL}"


def _signed(claims: dict[str, Any], key: str = CANNY_KEY, algorithm: str = "HS256") -> str:
    with warnings.catch_warnings():  # the right key, the wrong algorithm: that a 48-byte key is short for HS512 aside
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        return jwt.encode(claims, key, algorithm=algorithm)


def _sso(token: str, company: str = CANNY_COMPANY_ID, redirect: str = REDIRECT) -> str:
    return f"{SSO_URL}?companyID={quote(company, safe='')}&ssoToken={token}&redirect={quote(redirect, safe='')}"


GOOD = {"email": EMAIL, "id": "user-42", "name": "Jane Doe"}
STANDIN_REFUSES: dict[str, tuple[Callable[[], str], int, str]] = {
    "another company": (lambda: _sso(_signed(GOOD), company="5f0c1d2e3a4b5c6d7e8f9a0c"), 400, "companyID"),
    "redirect off the board": (lambda: _sso(_signed(GOOD), redirect="https://evil.example.net/"), 400, "redirect"),
    "redirect over http": (lambda: _sso(_signed(GOOD), redirect=f"http://{BOARD}/"), 400, "redirect"),
    "another key": (lambda: _sso(_signed(GOOD, key=LOGIN_TOKEN_KEY)), 401, "signature"),
    "HS512": (lambda: _sso(_signed(GOOD, algorithm="HS512")), 401, "HS256"),
    "no email": (lambda: _sso(_signed({"id": "1", "name": "J"})), 401, "email"),
    "no id": (lambda: _sso(_signed({"email": EMAIL, "name": "J"})), 401, "id"),
    "no name": (lambda: _sso(_signed({"email": EMAIL, "id": "1"})), 401, "name"),
    "empty name": (lambda: _sso(_signed({**GOOD, "name": " "})), 401, "name"),
    "expired": (lambda: _sso(_signed({**GOOD, "exp": int(time.time()) - 3600})), 401, "expired"),
    "exp as a string": (lambda: _sso(_signed({**GOOD, "exp": str(int(time.time()) + 60)})), 401, "exp"),
    "no token": (
        lambda: f"{SSO_URL}?companyID={CANNY_COMPANY_ID}&redirect={quote(REDIRECT, safe='')}",
        400,
        "ssoToken",
    ),
}


@pytest.mark.parametrize(("make", "status", "says"), STANDIN_REFUSES.values(), ids=STANDIN_REFUSES.keys())
def test_the_stand_in_refuses_what_canny_would(make: Callable[[], str], status: int, says: str) -> None:
    url = make()
    reply = call(canny_io(), url)
    assert reply.status == status, reply.body.decode()
    assert page_h1(reply) == "Sign-in refused"
    assert says in unescape(reply.body.decode())
    token = parse_qs(urlsplit(url).query).get("ssoToken", [""])[0]
    assert not token or token not in reply.body.decode()


def test_the_stand_in_takes_a_numeric_id_and_no_exp_as_cannys_sample_does() -> None:
    reply = call(canny_io(), _sso(_signed({**GOOD, "id": 42})))
    assert page_h1(reply) == f"Signed in as {EMAIL}"


def test_the_boards_log_in_goes_to_the_bridge_as_canny_does(canny: ModuleType) -> None:
    # Given the board's stand-in, its SSO redirect set to the bridge's route
    login_url = f"https://{API_HOST}/canny/login"
    board = standin.canny_board(board_host=BOARD, company_id=CANNY_COMPANY_ID, login_url=login_url)
    page = call(board, f"https://{BOARD}/feature-requests").body.decode()
    [href] = [unescape(found) for found in re.findall(r'href="([^"]*)"', page) if "/canny/login" in found]

    # Then Log in is the route with Canny's two parameters, coming back to the page
    url = urlsplit(href)
    assert f"{url.scheme}://{url.netloc}{url.path}" == login_url
    assert dict(parse_qsl(url.query)) == {"companyID": CANNY_COMPANY_ID, "redirect": REDIRECT}

    # And the bridge takes that request; the SSO endpoint's stand-in signs the visitor in
    location = invoke(canny, f"{url.query}&login_token={make_login_token(aud='canny')}")["headers"]["Location"]
    assert page_h1(call(canny_io(), location)) == f"Signed in as {EMAIL}"


def test_the_spec_builds_one_app_per_host_and_its_defaults_start_the_function(
    aws: Any, load_function: Callable[..., ModuleType]
) -> None:
    spec = standin.SPEC
    defaults = dict(spec.defaults)
    assert spec.hosts_in(defaults) == ("yourcompany.canny.io", "canny.io")
    login_url = f"http://localhost:3000{spec.login_path}"
    context = StandInContext(host="canny.io", key=CANNY_KEY, login_url=login_url, env=defaults)
    sso_app = spec.make(context)
    board_app = spec.make(StandInContext(host="yourcompany.canny.io", key=CANNY_KEY, login_url=login_url, env=defaults))
    assert "Log in" in call(board_app, spec.entry).body.decode()
    # The function starts with the same placeholders, and what it signs the SSO stand-in accepts
    module = load_function("canny", **defaults)
    query = f"companyID={defaults['CANNY_COMPANY_ID']}&redirect={quote(defaults['CANNY_PORTAL_URL'], safe='')}"
    location = invoke(module, f"{query}&login_token={make_login_token(aud='canny')}")["headers"]["Location"]
    assert page_h1(call(sso_app, location)) == f"Signed in as {EMAIL}"
