"""What the local stack adds around the handlers: API Gateway's edges, the demo platform, the index, the CLI."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import quote, urlsplit

import jwt
import pytest

from local.demo_platform import LOGIN_PATH, TOKEN_TTL
from local.template import functions, has_default_route
from tests.helpers import LOGIN_TOKEN_KEY, ROOT, VENDOR_KEYS, WORKSPACE
from tests.integration.client import Client, query_param
from tests.integration.stack import RunningStack


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/no/such/route"), ("GET", "/clickfunnels/sso/"), ("POST", "/happyfox/logout"), ("GET", "/favicon.ico")],
)
def test_what_no_route_matches_is_the_first_vendor_s_404_as_deployed(
    client: Client, local_stack: RunningStack, method: str, path: str
) -> None:
    # template.yaml's $default route: paths no route matches go to the first enabled vendor's function
    assert has_default_route()
    body = b"" if method == "POST" else None
    response = client.request(method, local_stack.url(path), body=body, headers={"Accept": "application/json"})
    assert response.status == 404
    assert response.json()["reason"] == "not_found"
    assert response.headers["Strict-Transport-Security"]
    page = client.request(method, local_stack.url(path), body=body)  # a browser gets the bridge's page
    assert page.status == 404
    assert page.headers["Content-Type"].startswith("text/html")


def test_head_on_a_get_only_route_is_a_404_without_body(client: Client, local_stack: RunningStack) -> None:
    response = client.request("HEAD", local_stack.url("/happyfox/logout"))
    assert response.status == 404
    assert response.body == b""


def test_head_on_a_sign_in_route_answers_without_body(client: Client, local_stack: RunningStack) -> None:
    response = client.request("HEAD", local_stack.url("/clickfunnels/sso"))
    assert response.status == 302
    assert response.body == b""


def test_index_lists_every_get_route_and_function_url(client: Client, local_stack: RunningStack) -> None:
    response = client.get(local_stack.url("/"))
    assert response.status == 200
    expected = [
        local_stack.url(route.path.replace("{brand}", "acme"))  # the demo brand stands for {brand}
        for spec in functions()
        for route in spec.routes
        if route.method == "GET" and route.path != "/oidc/callback"  # the provider's way back, not a page to open
    ] + [local_stack.function_url(name) for name in local_stack.function_url_ports]
    assert expected
    for url in expected:
        assert f'href="{url}"' in response.text
    assert "{brand}" not in response.text
    # moto is an endpoint for SDKs, not a page: shown, not linked
    assert f'href="http://127.0.0.1:{local_stack.aws_port}' not in response.text
    assert f"<code>http://127.0.0.1:{local_stack.aws_port}</code>" in response.text


def test_demo_platform_opened_on_its_own_signs_in_and_goes_to_the_index(
    client: Client, local_stack: RunningStack
) -> None:
    form = client.get(local_stack.url(LOGIN_PATH))
    assert form.status == 200
    assert 'name="email"' in form.text

    submitted = client.post_form(local_stack.url(LOGIN_PATH), {"email": "a@example.com"})

    assert submitted.status == 302
    assert submitted.location == local_stack.url("/")  # no token: there is no link to hand it to


def test_demo_platform_shows_a_sign_in_form(client: Client, local_stack: RunningStack) -> None:
    return_to = local_stack.url("/clickfunnels/sso")
    response = client.get(local_stack.url(f"{LOGIN_PATH}?return_to={quote(return_to, safe='')}"))
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert 'name="email"' in response.text
    assert 'name="name"' in response.text


def test_demo_login_token_is_for_every_vendor_in_the_template(client: Client, local_stack: RunningStack) -> None:
    return_to = local_stack.url("/clickfunnels/sso?keep=1")
    response = client.post_form(
        local_stack.url(f"{LOGIN_PATH}?return_to={quote(return_to, safe='')}"), {"email": "a@example.com"}
    )
    assert response.status == 302
    assert response.location.startswith(f"{return_to}&login_token=")
    claims = jwt.decode(
        query_param(response.location, "login_token"),
        LOGIN_TOKEN_KEY,
        algorithms=["HS256"],
        options={"require": ["email", "aud", "iat", "exp", "jti"], "verify_aud": False},
    )
    vendors = {spec.code_uri.rsplit("/", 1)[-1] for spec in functions()}
    assert set(claims["aud"]) == vendors
    assert claims["exp"] - claims["iat"] == TOKEN_TTL == 120  # within the bridge's LOGIN_TOKEN_MAX_TTL (300)


@pytest.mark.parametrize(
    "return_to",
    [
        "https://evil.example.net/",
        "http://evil.example.net/",
        "http://localhost:1/",
        "http://localhost.evil.example.net/",
        "http://localhost:{port}@evil.example.net/",
        "//evil.example.net/",
        "javascript:alert(1)",
        "",
    ],
)
def test_demo_platform_is_not_an_open_redirect(client: Client, local_stack: RunningStack, return_to: str) -> None:
    return_to = return_to.replace("{port}", str(local_stack.port))
    login = local_stack.url(f"{LOGIN_PATH}?return_to={quote(return_to, safe='')}")

    form = client.get(login)
    submitted = client.post_form(login, {"email": "a@example.com"})

    for response in (form, submitted):
        assert response.status == 400
        assert "Location" not in response.headers
        assert "login_token" not in response.text


def test_demo_platform_asks_again_for_a_bad_email(client: Client, local_stack: RunningStack) -> None:
    login = local_stack.url(f"{LOGIN_PATH}?return_to={quote(local_stack.url('/clickfunnels/sso'), safe='')}")
    response = client.post_form(login, {"email": "not an email"})
    assert response.status == 400
    assert "Location" not in response.headers
    assert 'name="email"' in response.text


def test_make_login_token_mints_a_token_the_stack_accepts(client: Client, local_stack: RunningStack) -> None:
    # Given a token from the CLI behind `make login-token`, with the key the stack was seeded with
    minted = subprocess.run(
        [sys.executable, "-m", "local.mint_login_token", "--email", "cli@example.com", "--aud", "clickfunnels"],
        cwd=ROOT,
        env={"LOGIN_TOKEN_SECRET": LOGIN_TOKEN_KEY, "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    )
    token = minted.stdout.strip()

    # When it is used on the ClickFunnels link
    response = client.get(local_stack.url(f"/clickfunnels/sso?login_token={token}"))

    # Then the user reaches ClickFunnels as that email
    assert response.status == 302
    assert urlsplit(response.location).hostname == WORKSPACE
    claims = jwt.decode(
        query_param(response.location, "token"),
        VENDOR_KEYS["clickfunnels"],
        algorithms=["HS256"],
        options={"require": ["sub", "exp"]},
    )
    assert claims["sub"] == f"cli@example.com:{WORKSPACE}"


def test_login_token_cli_refuses_to_run_without_a_key() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "local.mint_login_token", "--email", "cli@example.com", "--aud", "clickfunnels"],
        cwd=ROOT,
        env={"PATH": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "LOGIN_TOKEN_SECRET" in result.stderr
    assert result.stdout == ""
