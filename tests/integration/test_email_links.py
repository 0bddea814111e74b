"""Email links through the local stack over HTTP: scanners, double clicks, racing clicks, revocation, and
another site's POST (its Origin against the local stack's own, on the HTTP API and the function URLs).

Every vendor in template.yaml gets a reader in once, each link carrying what its portal sends
(tests/vendor_requests.py, under the stack's settings)."""

from __future__ import annotations

import secrets
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest

from local.demo_platform import LOGIN_PATH
from tests.helpers import ROOT, VENDOR_KEYS, WORKSPACE, make_login_token
from tests.integration.client import Client, Response, query_param
from tests.integration.stack import STACK_ENV, RunningStack
from tests.vendor_requests import VENDORS, Portal, form_posts, local_portal

CONCURRENT_CLICKS = 50


def side(vendor: str) -> Portal:
    """The vendor's side under the local stack's settings."""
    return local_portal(vendor, STACK_ENV)


def link_for(stack: RunningStack, vendor: str, email: str, **claims: Any) -> str:
    """A link to the vendor's function URL, with what the vendor's portal sends."""
    token = make_login_token(email, aud=vendor, lifetime=3 * 86400, use="link", jti=secrets.token_hex(16), **claims)
    return stack.function_url(vendor, f"/?{side(vendor).sign_in(token)}")


def unique_email() -> str:
    return f"link-{uuid.uuid4().hex[:12]}@example.com"


def reaches_vendor(response: Response, vendor: str) -> bool:
    """Sent on to the vendor's allowed hosts, a redirect or a page posting a form, with credentials the vendor
    accepts (verified with its key; a forged one fails the test)."""
    signs_in = side(vendor)
    location = response.headers.get("Location", "") if response.status in (302, 303) else ""
    body = response.text if signs_in.posts_form and response.status == 200 else ""
    targets = [location] if location else [action for action, _ in form_posts(body)]
    if not targets or any(urlsplit(target).hostname not in signs_in.hosts for target in targets):
        return False
    if not signs_in.found(location, body):  # a hand-off to the vendor's start page signs nobody in yet
        return False
    assert signs_in.claims(location, body)
    return True


def goes_to_sign_in(response: Response, stack: RunningStack) -> bool:
    return response.status in (302, 303) and response.location.startswith(stack.url(f"{LOGIN_PATH}?return_to="))


@pytest.mark.parametrize("vendor", VENDORS)
def test_scanners_get_a_page_and_the_reader_gets_in_once(
    client: Client, local_stack: RunningStack, vendor: str
) -> None:
    link = link_for(local_stack, vendor, unique_email())

    # A scanner's HEAD and GET: a page, no redirect, no token
    head = client.request("HEAD", link)
    get = client.get(link)
    assert (head.status, get.status) == (200, 200)
    assert head.body == b""
    assert "Location" not in head.headers
    assert "Location" not in get.headers
    assert '<form method="post">' in get.text

    # The reader's click: signed in
    page = client.open_link(link)
    assert reaches_vendor(client.press(link, page), vendor)

    # Again: the platform's sign-in
    assert goes_to_sign_in(client.press(link, page), local_stack)
    assert goes_to_sign_in(client.get(link), local_stack)


def test_racing_clicks_on_one_link_give_exactly_one_vendor_token(client: Client, local_stack: RunningStack) -> None:
    # Given one link, its page open in 50 browsers, pressed in all of them at once (impatient reader, a scanner
    # that presses buttons, forwardees)
    link = link_for(local_stack, "happyfox", unique_email())
    pages = [client.open_link(link) for _ in range(CONCURRENT_CLICKS)]

    with ThreadPoolExecutor(max_workers=CONCURRENT_CLICKS) as pool:
        responses = list(pool.map(lambda page: Client().press(link, page), pages))

    # Then exactly one got a HappyFox token; every other one was sent to sign in
    signed_in = [response for response in responses if reaches_vendor(response, "happyfox")]
    assert len(signed_in) == 1
    assert all(goes_to_sign_in(response, local_stack) for response in responses if response not in signed_in)


def test_the_api_route_serves_links_too(client: Client, local_stack: RunningStack) -> None:
    token = make_login_token(unique_email(), lifetime=86400, use="link", jti=secrets.token_hex(16))
    link = local_stack.url(f"/clickfunnels/sso?login_token={token}")
    assert client.request("HEAD", link).status == 200
    assert client.get(link).status == 200
    assert reaches_vendor(client.press(link), "clickfunnels")


def test_an_interactive_token_still_redirects_straight_away(client: Client, local_stack: RunningStack) -> None:
    response = client.get(local_stack.function_url("clickfunnels", f"/?login_token={make_login_token()}"))
    assert response.status == 302
    assert reaches_vendor(response, "clickfunnels")


def test_a_function_url_404_is_json_when_asked(client: Client, local_stack: RunningStack) -> None:
    response = client.get(local_stack.function_url("clickfunnels", "/no/such/page"), Accept="application/json")
    assert response.status == 404
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"] == "not_found"


def test_make_revoke_withdraws_links_already_sent(client: Client, local_stack: RunningStack) -> None:
    # Given two links sent to one address, their pages open
    email = unique_email()
    first, second = link_for(local_stack, "clickfunnels", email), link_for(local_stack, "kustomer", email)
    pages = {first: client.open_link(first), second: client.open_link(second)}
    time.sleep(1)  # a revocation withdraws links issued up to and including its second

    # When an operator revokes the address on the local stack
    result = subprocess.run(
        ["make", "-s", "--no-print-directory", "revoke", "LOCAL=1", f"EMAIL={email.upper()}"],
        cwd=ROOT,
        env=local_stack.command_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr

    # Then neither link signs anyone in any more, but a link minted afterwards does
    time.sleep(1)
    for link in (first, second):
        assert goes_to_sign_in(client.get(link), local_stack)
        assert goes_to_sign_in(client.press(link, pages[link]), local_stack)
    assert reaches_vendor(client.press(link_for(local_stack, "clickfunnels", email)), "clickfunnels")


@pytest.mark.parametrize("where", ["function-url", "http-api"])
def test_another_sites_post_spends_nothing_and_the_readers_button_still_works(
    client: Client, local_stack: RunningStack, where: str
) -> None:
    email = unique_email()
    if where == "function-url":
        link = link_for(local_stack, "clickfunnels", email)
    else:
        token = make_login_token(email, lifetime=86400, use="link", jti=secrets.token_hex(16))
        link = local_stack.url(f"/clickfunnels/sso?login_token={token}")
    own = f"http://{urlsplit(link).netloc}"
    page = client.open_link(link)
    # The page's cookie: for this route only, and Secure even on the local stack's http (Chromium keeps it there)
    cookie = client.get(link).headers["Set-Cookie"]
    assert f"; Path={urlsplit(link).path}; " in cookie
    assert "; Secure; SameSite=Strict" in cookie

    # Another origin on this machine (another port is another origin), even with this browser's cookie and field
    for headers in (
        {"origin": "http://127.0.0.1:9", "sec_fetch_site": "cross-site"},
        {"origin": "http://localhost:9", "sec_fetch_site": "same-site"},
        {"origin": "http://localhost:9", "sec_fetch_site": ""},
    ):
        refused = client.press(link, page, **headers, accept="application/json")
        assert refused.status == 403, (headers, refused.text[:300])
        assert refused.json()["error"] == "link_post_refused"
        assert "Location" not in refused.headers
    # A bare POST (a form of another site's page, without the cookie or field)
    assert client.post_form(link, {}).status == 403

    # The stack's own origin is the request's own: the reader's button, with or without Chromium's Origin null
    assert reaches_vendor(client.press(link, page, origin=own, sec_fetch_site=""), "clickfunnels")


def test_a_spent_clickfunnels_links_deep_link_survives_the_platforms_sign_in(
    client: Client, local_stack: RunningStack
) -> None:
    # Given a ClickFunnels link to a deep page (as `make link REDIRECT_TO=...` signs it in), spent once
    email, target = unique_email(), f"https://{WORKSPACE}/customers/orders?tab=recent"
    link = link_for(local_stack, "clickfunnels", email, redirect_to=target)
    assert reaches_vendor(client.press(link), "clickfunnels")

    # When it is opened again, and the reader signs in on the demo platform
    trip = client.sign_in(link, email=email)

    # Then the platform was asked to bring them back with the destination, and they land on it
    assert query_param(query_param(trip.login_redirect.location, "return_to"), "redirect_to") == target
    assert reaches_vendor(trip.final, "clickfunnels")
    claims = jwt.decode(query_param(trip.final.location, "token"), VENDOR_KEYS["clickfunnels"], algorithms=["HS256"])
    assert claims["redirect_to"] == target
