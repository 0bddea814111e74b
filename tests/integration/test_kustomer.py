"""Kustomer custom sign-on through the local stack: Kustomer's request, platform sign-in, back to the portal."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import boto3
import jwt
import pytest

from local.demo_platform import LOGIN_PATH
from tests.helpers import VENDOR_KEYS, make_login_token
from tests.integration.client import Client, Response, query_param
from tests.integration.stack import RunningStack, start_stack

KB_KEY = VENDOR_KEYS["kustomer"]
EMAIL = "jane.doe+vip@example.com"
PORTAL = "yourcompany.kustomer.help"  # the local stack's default KUSTOMER_REDIRECT_HOSTS
PORTAL_LOGIN = f"https://{PORTAL}/login?referralUrl=https%3A%2F%2F{PORTAL}"
TRACKING = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzZXNzaW9uIjoibG9jYWwtNDI0MiJ9."
KUSTOMER_QUERY = f"trackingToken={TRACKING}&kustomerRedirectUri={quote(PORTAL_LOGIN, safe='')}"


def kustomer_claims(response: Response, *, target: str = PORTAL_LOGIN, key: str = KB_KEY) -> dict[str, Any]:
    """The redirect back to the portal, and its externalToken verified as Kustomer would (15 minutes from iat)."""
    assert response.status == 302, response.text
    token = query_param(response.location, "externalToken")
    assert response.location == f"{target}&externalToken={token}"
    claims: dict[str, Any] = jwt.decode(token, key, algorithms=["HS256"], options={"require": ["email", "iat"]})
    assert 0 <= time.time() - claims["iat"] <= 15 * 60 + 1
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    return claims


@pytest.fixture(params=["http-api", "function-url-root", "function-url-path"])
def login_url(request: pytest.FixtureRequest, local_stack: RunningStack) -> str:
    """The Redirect URI configured in Kustomer: on the HTTP API, or the function URL at / and at the API's path."""
    return {
        "http-api": local_stack.url("/kustomer/login"),
        "function-url-root": local_stack.function_url("kustomer", "/"),
        "function-url-path": local_stack.function_url("kustomer", "/kustomer/login"),
    }[request.param]


def test_portal_visitor_signs_in_and_returns_to_the_portal(
    client: Client, local_stack: RunningStack, login_url: str
) -> None:
    # Given Kustomer sends a signed-out portal visitor to the Redirect URI
    link = f"{login_url}?{KUSTOMER_QUERY}"

    # When they follow it and sign in on the (demo) platform
    trip = client.sign_in(link, email=EMAIL)

    # Then the bridge sent them to sign in with Kustomer's request, unchanged, as return_to
    assert trip.login_redirect.location.startswith(local_stack.url(LOGIN_PATH))
    assert query_param(trip.login_redirect.location, "return_to") == link
    assert trip.platform_redirect.location.startswith(f"{link}&login_token=")
    # and, back with a login token, to kustomerRedirectUri&externalToken=... without anything in between
    assert kustomer_claims(trip.final)["email"] == EMAIL
    assert trip.final.headers["Cache-Control"] == "no-store"
    assert trip.final.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize(
    "uri",
    [
        f"https://{PORTAL}.evil.example.net/login",
        f"https://{PORTAL}@evil.example.net/",
        "https://evil.example.net\\@yourcompany.kustomer.help/",
        "//evil.example.net/",
        "https://yourcompany%2ekustomer%2ehelp/",
        "https://yourcompany\u3002kustomer\u3002help/",
        f"https://{PORTAL}/login\r\nLocation: https://evil.example.net/",
        f"http://{PORTAL}/login",
        "javascript:alert(1)",
    ],
)
def test_hostile_redirect_uri_is_refused_before_sign_in(client: Client, local_stack: RunningStack, uri: str) -> None:
    response = client.get(local_stack.url(f"/kustomer/login?trackingToken={TRACKING}&kustomerRedirectUri={quote(uri)}"))
    assert response.status == 400
    assert "Location" not in response.headers
    assert "This destination is not allowed" in response.text
    assert TRACKING not in response.text


def test_forged_login_token_never_reaches_kustomer(client: Client, local_stack: RunningStack) -> None:
    forged = make_login_token(EMAIL, aud="kustomer", key=KB_KEY)  # the knowledge base key is not the login key
    response = client.get(local_stack.url(f"/kustomer/login?{KUSTOMER_QUERY}&login_token={forged}"))
    assert response.status == 401
    assert "Location" not in response.headers


def test_missing_redirect_uri_lands_on_the_configured_portal(client: Client, local_stack: RunningStack) -> None:
    # The local stack sets KUSTOMER_PORTAL_URL (the unit tests cover a deployment without one: a 400 page)
    trip = client.sign_in(local_stack.url(f"/kustomer/login?trackingToken={TRACKING}"), email=EMAIL)
    assert trip.final.status == 302
    assert trip.final.location.startswith("https://yourcompany.kustomer.help/login?externalToken=")


def test_unknown_brand_is_not_found(client: Client, local_stack: RunningStack) -> None:
    token = make_login_token(EMAIL, aud="kustomer")
    response = client.get(local_stack.url(f"/kustomer/brands/nobody/login?{KUSTOMER_QUERY}&login_token={token}"))
    assert response.status == 404
    assert "Location" not in response.headers


ACME_KEY = "test-kustomer-acme-key-0123456789abcdef01234567"
ACME_HOST = "acme.kustomer.help"
ACME_SECRET = "sso-bridge/kustomer/acme"


@pytest.fixture(scope="module")
def branded_stack() -> Iterator[RunningStack]:
    """A second stack with an extra brand whose secret the operator created under sso-bridge/kustomer/."""
    brands = {"acme": {"secret_id": ACME_SECRET, "redirect_hosts": [ACME_HOST]}}
    stack = start_stack({"KUSTOMER_BRANDS": json.dumps(brands)})
    try:
        secrets = boto3.client(
            "secretsmanager",
            endpoint_url=f"http://127.0.0.1:{stack.aws_port}",
            region_name="eu-west-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        secrets.create_secret(Name=ACME_SECRET, SecretString=ACME_KEY)
        yield stack
    finally:
        stack.stop()


def test_each_brand_signs_with_its_own_knowledge_base_secret(client: Client, branded_stack: RunningStack) -> None:
    acme_login = f"https://{ACME_HOST}/login?referralUrl=https%3A%2F%2F{ACME_HOST}"
    link = branded_stack.url(
        f"/kustomer/brands/acme/login?trackingToken={TRACKING}&kustomerRedirectUri={quote(acme_login, safe='')}"
    )
    trip = client.sign_in(link, email=EMAIL)
    assert query_param(trip.login_redirect.location, "return_to") == link
    assert kustomer_claims(trip.final, target=acme_login, key=ACME_KEY)["email"] == EMAIL

    # The default brand, on the same stack, keeps its own key and its own portal only
    default = client.sign_in(branded_stack.url(f"/kustomer/login?{KUSTOMER_QUERY}"), email=EMAIL)
    kustomer_claims(default.final)
    crossed = client.get(branded_stack.url(f"/kustomer/login?kustomerRedirectUri={quote(acme_login, safe='')}"))
    assert crossed.status == 400
