"""The hand-off cookie: who the reader is, kept while a portal starts its own sign-in, and nothing more.

A flow of its own (``demo``) stands for Discourse and Freshworks: ``/demo/login`` without the portal's parameter
hands the reader off to the portal; with it (the portal sending the browser back), it signs them in.
"""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import jwt
import pytest

from sso_bridge.flow import SIGN_IN_METHODS, SignIn, new_app
from sso_bridge.handoff import HANDOFF_SECONDS, cookie_name
from sso_bridge.http import Response
from sso_bridge.login_token import Profile, read_profile
from sso_bridge.observability import Logger, Metrics
from sso_bridge.request import Query
from sso_bridge.settings import CommonSettings
from tests.helpers import LOGIN_TOKEN_KEY, LambdaContext, load_event, make_login_token

PORTAL_START = "https://portal.example.com/session/sso"
COOKIE = cookie_name("demo")


class Demo:
    def __init__(self) -> None:
        self.app = new_app()
        self.flow = SignIn(
            self.app,
            settings=CommonSettings.from_env(os.environ, portal_name="the demo portal"),
            audience="demo",
            logger=Logger(service="demo"),
            metrics=Metrics(),
        )
        self.signed_in: list[Any] = []

        @self.app.route("/demo/login", method=SIGN_IN_METHODS)
        def login() -> Response:
            query = Query(self.app.current_event.raw_query_string)
            user = self.flow.identify(query)
            if query.get("nonce", max_length=64) is None:
                return self.flow.hand_off(user, PORTAL_START)
            self.signed_in.append(user)
            nonce = query.get("nonce", max_length=64)
            return self.flow.redirect(f"https://portal.example.com/welcome?nonce={nonce}")

    def get(self, query: str, cookies: list[str] | None = None, method: str = "GET") -> dict[str, Any]:
        event = load_event("happyfox-login-httpapi", query=query)
        event["rawPath"] = event["requestContext"]["http"]["path"] = "/demo/login"
        event["requestContext"]["http"]["method"] = method
        if cookies:
            event["cookies"] = cookies
        response: dict[str, Any] = self.app.resolve(event, LambdaContext())
        return response


@pytest.fixture
def demo(aws: Any) -> Demo:
    return Demo()


def cookie_pair(response: dict[str, Any]) -> str:
    [line] = [c for c in response.get("cookies", []) if c.startswith(f"{COOKIE}=")]
    return line.split(";", 1)[0]


def test_a_reader_without_the_portals_parameters_is_sent_to_the_portal_with_a_short_lived_lax_cookie(
    demo: Demo,
) -> None:
    token = make_login_token("jane@example.com", aud="demo", name="Jane", sub="u-42", tags=["vip"])
    response = demo.get(f"login_token={token}")

    assert response["statusCode"] == 302
    assert response["headers"]["Location"] == PORTAL_START
    [line] = response["cookies"]
    attributes = [part.strip() for part in line.split(";")[1:]]
    assert sorted(attributes) == sorted([f"Max-Age={HANDOFF_SECONDS}", "Path=/", "HttpOnly", "Secure", "SameSite=Lax"])
    # The cookie is an interactive login token for this vendor only: no link's rights, two minutes at most
    kept = jwt.decode(cookie_pair(response).split("=", 1)[1], LOGIN_TOKEN_KEY, algorithms=["HS256"], audience="demo")
    assert kept["exp"] - kept["iat"] == HANDOFF_SECONDS
    assert "use" not in kept
    assert (kept["email"], kept["name"], kept["sub"], kept["tags"]) == ("jane@example.com", "Jane", "u-42", ["vip"])


def test_the_portal_sending_the_browser_back_signs_the_reader_in_and_spends_the_cookie(demo: Demo) -> None:
    token = make_login_token("jane@example.com", aud="demo", sub="u-42")
    handed = demo.get(f"login_token={token}")

    back = demo.get("nonce=n0nce", cookies=[cookie_pair(handed)])

    assert back["statusCode"] == 302
    assert back["headers"]["Location"] == "https://portal.example.com/welcome?nonce=n0nce"
    [user] = demo.signed_in
    assert (user.email, user.profile.subject) == ("jane@example.com", "u-42")
    assert back["cookies"] == [f"{COOKIE}=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax"]


def test_without_the_cookie_the_portals_return_goes_through_sign_in(demo: Demo) -> None:
    back = demo.get("nonce=n0nce")
    assert back["statusCode"] == 302
    location = back["headers"]["Location"]
    assert location.startswith("https://platform.example.com/login?")
    # The platform brings the reader back to the portal's own request, parameters and all
    assert parse_qs(urlsplit(location).query)["return_to"][0].endswith("/demo/login?nonce=n0nce")
    assert demo.signed_in == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("forged", lambda: make_login_token("eve@example.com", aud="demo", key="not-the-login-key-0123456789abcdef")),
        ("another vendor's", lambda: make_login_token("jane@example.com", aud="happyfox")),
        ("a link's", lambda: make_login_token("jane@example.com", aud="demo", use="link", jti="j" * 22, lifetime=900)),
        ("not a jwt", lambda: "not-a-token"),
    ],
)
def test_a_cookie_the_bridge_did_not_make_for_this_vendor_signs_nobody_in(demo: Demo, name: str, value: Any) -> None:
    back = demo.get("nonce=n0nce", cookies=[f"{COOKIE}={value()}"])
    assert back["statusCode"] in (400, 401, 403)
    assert demo.signed_in == []
    assert "login_token" not in back["body"]


def test_an_expired_cookie_is_a_new_sign_in_not_an_error(demo: Demo) -> None:
    stale = make_login_token("jane@example.com", aud="demo", issued=int(time.time()) - 600, lifetime=120)
    back = demo.get("nonce=n0nce", cookies=[f"{COOKIE}={stale}"])
    assert back["statusCode"] == 302
    assert back["headers"]["Location"].startswith("https://platform.example.com/login?")
    assert demo.signed_in == []


def test_a_login_token_in_the_query_wins_over_the_cookie(demo: Demo) -> None:
    handed = demo.get(f"login_token={make_login_token('eve@example.com', aud='demo')}")
    token = make_login_token("jane@example.com", aud="demo")
    demo.get(f"nonce=n0nce&login_token={quote(token)}", cookies=[cookie_pair(handed)])
    assert [user.email for user in demo.signed_in] == ["jane@example.com"]


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"sub": 42}, "claim_type"),
        ({"tags": "vip,beta"}, "claim_type"),
        ({"tags": ["a b"]}, "claim_characters"),
        ({"tags": ["ok"] * 51}, "claim_too_long"),
        ({"tags": ["x\u202e"]}, "claim_characters"),
        ({"locale_id": True}, "claim_type"),
        ({"locale_id": "1"}, "claim_type"),
        ({"locale_id": 0}, "claim_characters"),
        ({"avatar_url": "http://img.example.com/a.png"}, "claim_characters"),
        ({"avatar_url": "https://user@img.example.com/a.png"}, "claim_characters"),
        ({"avatar_url": "javascript:alert(1)"}, "claim_characters"),
        ({"external_id": "x" * 256}, "claim_too_long"),
        ({"given_name": "Jane\u0000"}, "claim_characters"),
    ],
)
def test_hostile_profile_claims_are_refused(claims: dict[str, Any], reason: str) -> None:
    from sso_bridge.errors import BridgeError

    with pytest.raises(BridgeError) as refused:
        read_profile(claims)
    assert refused.value.reason == reason
    assert refused.value.status in (400, 401)


def test_profile_claims_read_as_given() -> None:
    claims = {
        "sub": "u-42",
        "external_id": "crm-7",
        "organization": "Acme",
        "tags": ["vip", "beta", "vip"],
        "locale_id": 1176,
        "avatar_url": "https://img.example.com/jane.png",
        "given_name": "Jane",
        "family_name": "Doe",
    }
    assert read_profile(claims) == Profile(
        subject="u-42",
        external_id="crm-7",
        organization="Acme",
        tags=("vip", "beta"),
        locale_id=1176,
        avatar_url="https://img.example.com/jane.png",
        given_name="Jane",
        family_name="Doe",
    )
