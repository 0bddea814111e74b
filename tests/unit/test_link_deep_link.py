"""A ClickFunnels link's deep link survives the sign-in its reader must go through (issue 17, item 8).

`make link PROVIDER=clickfunnels REDIRECT_TO=...` signs the destination into the link (``redirect_to``). A link
that can no longer sign anyone in (spent, expired, revoked) sends its reader through the platform's sign-in; the
return URL used to drop the link's token, and the destination with it: the reader landed on ClickFunnels'
default page. Now the destination comes back as the route's ``redirect_to`` parameter, checked against the same
allow-list before the reader leaves. (The OpenID round trip: tests/integration/test_oidc_attacks.py.)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from sso_bridge.link_store import LinkStore
from tests.helpers import (
    LINK_REVOCATIONS_TABLE_NAME,
    PLATFORM_LOGIN_URL,
    SPENT_LINKS_TABLE_NAME,
    VENDOR_KEYS,
    WORKSPACE,
    LambdaContext,
    load_event,
    make_login_token,
)
from tests.link_flows import DAY, EMAIL, Flow
from tests.vendor_requests import deployed

DEEP_LINK = f"https://{WORKSPACE}/customers/orders?tab=recent&page=2"


@pytest.fixture(params=["clickfunnels-sso-function-url", "clickfunnels-sso-httpapi"])
def clickfunnels(
    request: pytest.FixtureRequest, jti_table: Any, link_tables: Any, load_function: Callable[..., ModuleType]
) -> Flow:
    """ClickFunnels on the function URL (where `make link` points) and on the HTTP API."""
    return Flow("clickfunnels", load_function("clickfunnels"), request.param)


def return_to(response: dict[str, Any]) -> str:
    """The bridge sending the reader to the platform's sign-in: where it asks to be brought back."""
    assert response["statusCode"] in (302, 303), (response["statusCode"], response.get("body", "")[:300])
    location = str(response["headers"]["Location"])
    assert location.startswith(f"{PLATFORM_LOGIN_URL}?return_to="), location
    [url] = parse_qs(urlsplit(location).query)["return_to"]
    return url


def platform_sends_back(flow: Flow, url: str) -> dict[str, Any]:
    """The platform, once the reader signed in: ``url`` with a fresh interactive login token, on the same host."""
    base = load_event(flow.event)
    parts = urlsplit(url)
    assert parts.netloc == base["requestContext"]["domainName"]
    event = load_event(flow.event, query=f"{parts.query}&login_token={make_login_token(EMAIL)}")
    event["rawPath"] = event["requestContext"]["http"]["path"] = parts.path
    result: dict[str, Any] = flow.module.lambda_handler(event, LambdaContext())
    return result


def clickfunnels_claims(response: dict[str, Any], *, status: int = 302) -> dict[str, Any]:
    """The ClickFunnels token in a redirect, verified as ClickFunnels would."""
    assert response["statusCode"] == status, (response["statusCode"], response.get("body", "")[:300])
    [token] = parse_qs(urlsplit(response["headers"]["Location"]).query)["token"]
    claims: dict[str, Any] = jwt.decode(token, VENDOR_KEYS["clickfunnels"], algorithms=["HS256"])
    return claims


def spent_link(flow: Flow) -> dict[str, Any]:
    link = flow.link(redirect_to=DEEP_LINK)
    page = flow.open(link)
    first = flow.press(link, page)
    assert clickfunnels_claims(first, status=303)["redirect_to"] == DEEP_LINK  # the first click goes straight there
    return flow.press(link, page)  # the second: through sign-in


def expired_link(flow: Flow) -> dict[str, Any]:
    return flow.call("GET", flow.link(redirect_to=DEEP_LINK, issued=int(time.time()) - 8 * DAY, lifetime=7 * DAY))


def revoked_link(flow: Flow) -> dict[str, Any]:
    link = flow.link(redirect_to=DEEP_LINK, issued=int(time.time()) - 60)
    LinkStore(SPENT_LINKS_TABLE_NAME, LINK_REVOCATIONS_TABLE_NAME).revoke(EMAIL, now=int(time.time()))
    return flow.call("GET", link)


@pytest.mark.parametrize("arrive", [spent_link, expired_link, revoked_link], ids=["spent", "expired", "revoked"])
def test_a_link_that_needs_a_sign_in_still_lands_where_it_pointed(
    clickfunnels: Flow, arrive: Callable[[Flow], dict[str, Any]]
) -> None:
    # Given a ClickFunnels link to a deep page that can no longer sign its reader in
    # When the reader follows it, they are sent to sign in, with the destination in the return URL (and no token)
    url = return_to(arrive(clickfunnels))
    params = parse_qs(urlsplit(url).query)
    assert params["redirect_to"] == [DEEP_LINK]  # once, even where the link's URL had a redirect_to of its own
    assert "login_token" not in params

    # And once signed in on the platform, they land on that page
    assert clickfunnels_claims(platform_sends_back(clickfunnels, url))["redirect_to"] == DEEP_LINK


def test_a_link_to_a_page_off_the_allow_list_is_refused_before_the_sign_in(clickfunnels: Flow) -> None:
    link = clickfunnels.link(
        redirect_to="https://evil.example.net/phish", issued=int(time.time()) - 8 * DAY, lifetime=7 * DAY
    )
    response = clickfunnels.call("GET", link, accept="application/json")
    assert response["statusCode"] == 400
    assert "Location" not in response["headers"]
    assert json.loads(response["body"])["error"] == "redirect_not_allowed"


def test_an_expired_token_with_a_bad_signature_carries_no_destination(clickfunnels: Flow) -> None:
    forged = make_login_token(
        EMAIL,
        key="attacker-key-0123456789abcdef0123456789abcdef",
        use="link",
        jti="forged-link-jti-0123456789",
        redirect_to=DEEP_LINK,
        issued=int(time.time()) - 8 * DAY,
        lifetime=7 * DAY,
    )
    response = clickfunnels.call("GET", forged)
    assert response["statusCode"] == 401
    assert "Location" not in response["headers"]


@pytest.mark.parametrize("vendor", ["kustomer", "happyfox"])
def test_vendors_without_a_deep_link_parameter_get_no_redirect_to(
    vendor: str, jti_table: Any, link_tables: Any, load_function: Callable[..., ModuleType]
) -> None:
    # Kustomer's destination rides in its own parameter (kept byte for byte); HappyFox's JWT has none
    flow = Flow(vendor, load_function(vendor), deployed(vendor).url_event)
    response = flow.call("GET", flow.link(redirect_to=DEEP_LINK, issued=int(time.time()) - 8 * DAY, lifetime=7 * DAY))
    url = return_to(response)
    assert "redirect_to" not in parse_qs(urlsplit(url).query)
    assert flow.query in url
