"""ClickFunnels through the local stack, as a browser meets it: link, sign in, customer center."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote, urlsplit

import jwt
import pytest

from local.demo_platform import LOGIN_PATH
from tests.helpers import LOGIN_TOKEN_KEY, VENDOR_KEYS, WORKSPACE, make_login_token
from tests.integration.client import Client, Response, query_param
from tests.integration.stack import RunningStack

CF_KEY = VENDOR_KEYS["clickfunnels"]
EMAIL = "jane.doe+vip@example.com"


def clickfunnels_claims(response: Response) -> dict[str, Any]:
    """The ClickFunnels token in a redirect, verified as ClickFunnels would."""
    location = urlsplit(response.location)
    assert (location.scheme, location.hostname, location.path) == ("https", WORKSPACE, "/sso")
    assert query_param(response.location, "identifier") == EMAIL
    assert query_param(response.location, "strategy") == "email"
    token = query_param(response.location, "token")
    claims: dict[str, Any] = jwt.decode(
        token, CF_KEY, algorithms=["HS256"], options={"require": ["sub", "nbf", "exp", "iat"]}
    )
    return claims


@pytest.fixture(params=["http-api", "function-url-root", "function-url-path"])
def sso_link(request: pytest.FixtureRequest, local_stack: RunningStack) -> str:
    """The ClickFunnels link on the HTTP API, and on the function URL at / and at the API's path."""
    return {
        "http-api": local_stack.url("/clickfunnels/sso"),
        "function-url-root": local_stack.function_url("clickfunnels", "/"),
        "function-url-path": local_stack.function_url("clickfunnels", "/clickfunnels/sso"),
    }[request.param]


def test_signed_out_user_signs_in_and_lands_in_the_customer_center(
    client: Client, local_stack: RunningStack, sso_link: str
) -> None:
    # When a signed-out user follows the link and signs in on the demo platform
    trip = client.sign_in(sso_link, email=EMAIL, name="Jane Doe")

    # Then the bridge sent them to sign in, with the link they opened as return_to
    login = urlsplit(trip.login_redirect.location)
    assert f"{login.scheme}://{login.netloc}{login.path}" == local_stack.url(LOGIN_PATH)
    assert query_param(trip.login_redirect.location, "return_to") == sso_link
    # and the platform sent them back there with a login token for ClickFunnels
    assert trip.platform_redirect.location.startswith(f"{sso_link}?login_token=")
    login_token = query_param(trip.platform_redirect.location, "login_token")
    login_claims = jwt.decode(
        login_token, LOGIN_TOKEN_KEY, algorithms=["HS256"], audience="clickfunnels", options={"require": ["exp"]}
    )
    assert login_claims["email"] == EMAIL
    # and the bridge redirected them to ClickFunnels with a token signed with the ClickFunnels key
    assert trip.final.status == 302
    claims = clickfunnels_claims(trip.final)
    assert claims["sub"] == f"{EMAIL}:{WORKSPACE}"
    assert abs(claims["iat"] - time.time()) < 60
    assert claims["nbf"] <= claims["iat"] < claims["exp"]


def test_token_redirect_is_never_cached_nor_leaked_through_referer(client: Client, local_stack: RunningStack) -> None:
    response = client.get(local_stack.url(f"/clickfunnels/sso?login_token={make_login_token(EMAIL)}"))
    assert response.status == 302
    clickfunnels_claims(response)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_deep_link_survives_the_sign_in_round_trip(client: Client, local_stack: RunningStack) -> None:
    target = f"https://{WORKSPACE}/customers/orders?tab=recent"
    link = local_stack.url(f"/clickfunnels/sso?redirect_to={quote(target, safe='')}")
    trip = client.sign_in(link, email=EMAIL)
    assert query_param(trip.login_redirect.location, "return_to") == link
    assert clickfunnels_claims(trip.final)["redirect_to"] == target


def test_expired_login_token_sends_the_user_to_sign_in_without_it(client: Client, local_stack: RunningStack) -> None:
    stale = make_login_token(EMAIL, issued=int(time.time()) - 3600, lifetime=600)
    response = client.get(local_stack.url(f"/clickfunnels/sso?login_token={stale}"))
    assert response.status == 302
    assert query_param(response.location, "return_to") == local_stack.url("/clickfunnels/sso")


@pytest.mark.parametrize(
    "token",
    [
        make_login_token(EMAIL, key="forged-key-0123456789abcdef0123456789abcdef"),
        make_login_token(EMAIL)[:-4] + "AAAA",
    ],
    ids=["forged-key", "tampered-signature"],
)
def test_forged_login_token_gets_an_error_page_never_clickfunnels(
    client: Client, local_stack: RunningStack, token: str
) -> None:
    response = client.get(local_stack.url(f"/clickfunnels/sso?login_token={token}"))
    assert response.status == 401
    assert "Location" not in response.headers
    assert response.headers["Content-Type"].startswith("text/html")
    assert "We could not sign you in" in response.text
    assert WORKSPACE not in response.text


def test_api_clients_get_json_errors(client: Client, local_stack: RunningStack) -> None:
    forged = make_login_token(EMAIL, key="forged-key-0123456789abcdef0123456789abcdef")
    response = client.get(local_stack.url(f"/clickfunnels/sso?login_token={forged}"), Accept="application/json")
    assert response.status == 401
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == "invalid_login_token"
    assert "signature" in body["reason"]
    assert body["message"]
    assert body["request_id"] == response.headers["apigw-requestid"]


def test_wrong_audience_is_refused(client: Client, local_stack: RunningStack) -> None:
    token = make_login_token(EMAIL, aud="kustomer")
    response = client.get(local_stack.url(f"/clickfunnels/sso?login_token={token}"), Accept="application/json")
    assert response.status == 403
    assert response.json()["error"] == "wrong_audience"
