"""The demo platform: opened on its own it signs in and goes to the index; tokens fit the bridge's 300-s cap."""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlencode, urlsplit

import jwt
import pytest

from local.demo_platform import LOGIN_PATH, TOKEN_TTL, DemoPlatform
from local.server import Request
from tests.helpers import LOGIN_TOKEN_KEY

HOME = "http://localhost:3000/"
PLATFORM = DemoPlatform(key=LOGIN_TOKEN_KEY, audiences=["clickfunnels", "kustomer"], ports={3000, 3001}, home=HOME)


def call(target: str, method: str = "GET", form: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    body = urlencode(form or {}).encode()
    request = Request(method, target, [("Host", "localhost:3000")], body, "127.0.0.1", "HTTP/1.1", 3000)
    reply = PLATFORM(request)
    assert reply is not None
    return reply.status, dict(reply.headers), reply.body.decode()


def test_opened_on_its_own_it_shows_the_form() -> None:
    status, _, page = call(LOGIN_PATH)
    assert status == 200
    assert f'action="{LOGIN_PATH}"' in page
    assert 'name="email"' in page
    assert f'href="{HOME}"' in page


def test_opened_on_its_own_it_signs_in_and_goes_to_the_index_without_a_token() -> None:
    status, headers, _ = call(LOGIN_PATH, "POST", {"email": "jane@example.com"})
    assert status == 302
    assert headers["Location"] == HOME


@pytest.mark.parametrize("query", ["return_to=", "return_to=https%3A%2F%2Fevil.example.net%2F", "return_to=%2F%2Fx"])
def test_a_return_to_that_is_there_must_still_be_on_the_stack(query: str) -> None:
    for method in ("GET", "POST"):
        status, headers, _ = call(f"{LOGIN_PATH}?{query}", method, {"email": "jane@example.com"})
        assert status == 400
        assert "Location" not in headers


def test_tokens_live_two_minutes_within_the_bridges_cap() -> None:
    return_to = "http://localhost:3001/?keep=1"
    status, headers, _ = call(f"{LOGIN_PATH}?return_to={quote(return_to, safe='')}", "POST", {"email": "j@example.com"})
    assert status == 302
    assert headers["Location"].startswith(f"{return_to}&login_token=")
    [token] = parse_qs(urlsplit(headers["Location"]).query)["login_token"]
    claims = jwt.decode(token, LOGIN_TOKEN_KEY, algorithms=["HS256"], options={"verify_aud": False})
    assert claims["exp"] - claims["iat"] == TOKEN_TTL == 120
    assert claims["aud"] == ["clickfunnels", "kustomer"]


def test_other_paths_are_not_its_business() -> None:
    request = Request("GET", "/", [], b"", "127.0.0.1", "HTTP/1.1", 3000)
    assert PLATFORM(request) is None
