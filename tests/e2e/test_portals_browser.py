"""Zendesk, Canny, Discourse and Freshworks in Chromium, each ending on its HTTPS stand-in under the vendor's host.

- Zendesk takes its token in a POST: the bridge answers with a form that posts itself (its one script allowed by
  the page's policy), or at the reader's press of Continue when scripts are off.
- Canny, Discourse and Freshworks start sign-in themselves (like Kustomer). A reader who spends an email link is
  sent on by the bridge: to canny.io's SSO endpoint at once (Canny takes a token without asking first), or to the
  portal's own start of sign-in (Discourse makes a nonce, Freshworks a state and nonce), which sends the browser
  back to the bridge; the bridge knows the reader again by its short-lived hand-off cookie and answers the portal.
- A sign-in started at those portals' Log in goes through the platform's sign-in and back to the bridge with the
  portal's own parameters, unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from local.demo_platform import LOGIN_PATH
from local.vendors import SPECS
from local.vendors.canny import CANNY_HOST, SSO_PATH
from local.vendors.freshworks import implicit_path
from tests.e2e.conftest import make_link, vendor_hosts
from tests.integration.stack import RunningStack

[ZENDESK] = vendor_hosts("zendesk")
CANNY_BOARD, CANNY = vendor_hosts("canny")
[DISCOURSE] = vendor_hosts("discourse")
FRESHWORKS_PORTAL, FRESHWORKS_ACCOUNT = vendor_hosts("freshworks")
assert CANNY == CANNY_HOST
SPEC = {spec.vendor: spec for spec in SPECS}
ENTRY = {vendor: spec.entry for vendor, spec in SPEC.items()}  # the stand-in page where a visitor starts
CANNY_SETTINGS = SPEC["canny"].defaults  # as the test stacks run
FRESHWORKS_SETTINGS = SPEC["freshworks"].defaults
HANDOFF_COOKIE = "sso_bridge_handoff_{vendor}"


@dataclass(frozen=True)
class Hop:
    """One navigation: the bridge (``host`` None: the route the test names) or a vendor's host, and its path."""

    host: str | None
    path: str


def unique_email(vendor: str) -> str:
    return f"{vendor}.{uuid.uuid4().hex[:8]}@example.com"


def navigations(page: Any) -> list[Any]:
    """Every request of the page's main frame from now on, redirects included, in order."""
    requests: list[Any] = []
    page.on("request", lambda request: requests.append(request) if request.is_navigation_request() else None)
    return requests


def csp_violations(page: Any) -> list[str]:
    """What Chromium's console says the page's Content Security Policy blocked, from now on."""
    seen: list[str] = []
    page.on("console", lambda message: seen.append(message.text) if "Content Security Policy" in message.text else None)
    return seen


def hops(requests: list[Any], bridge: str) -> list[Hop]:
    """The requests as hops: ``Hop(None, path)`` on ``bridge``'s origin (another localhost port is another hop)."""
    found = []
    for request in requests:
        url = urlsplit(request.url)
        on_bridge = url.hostname == "localhost" and url.port == urlsplit(bridge).port
        found.append(Hop(None if on_bridge else url.hostname, url.path))
    return found


def query_of(request: Any) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request.url).query)


def sign_in_on_the_demo_platform(page: Any, email: str, *, then: str) -> None:
    """The platform's sign-in page: type who you are, submit; ``then``: the URL glob the browser ends on."""
    page.wait_for_url(f"**{LOGIN_PATH}?**")
    page.fill("#email", email)
    page.fill("#name", "Jane Doe")
    with page.expect_navigation(url=then):
        page.click("button[type=submit]")


def assert_signed_in(page: Any, host: str, email: str) -> None:
    url = urlsplit(page.url)
    assert (url.scheme, url.hostname) == ("https", host), page.url
    assert page.locator("h1").inner_text() == f"Signed in as {email}"


# Zendesk: the token in a POST.


def test_zendesk_sign_in_posts_the_token_by_itself_under_the_pages_policy(
    browser: Any, local_stack: RunningStack
) -> None:
    email = unique_email("zendesk")
    trail, violations = navigations(browser), csp_violations(browser)
    # Given a signed-out visitor on the help center, who presses Sign in
    browser.goto(f"https://{ZENDESK}{ENTRY['zendesk']}")
    browser.get_by_role("link", name="Sign in").click()

    # When they sign in on the platform (and press nothing else)
    with browser.expect_response(
        lambda response: urlsplit(response.url).path == "/zendesk/login" and "login_token=" in response.url
    ) as form_page:
        sign_in_on_the_demo_platform(browser, email, then=f"https://{ZENDESK}/access/jwt")

    # Then the bridge's form page posted the token to Zendesk by itself, and Zendesk signed them in
    assert_signed_in(browser, ZENDESK, email)
    assert form_page.value.status == 200
    assert "script-src 'sha256-" in form_page.value.headers["content-security-policy"]
    [post] = [request for request in trail if urlsplit(request.url).path == "/access/jwt"]
    assert post.method == "POST"
    sent = parse_qs(post.post_data)
    assert set(sent) == {"jwt", "return_to"}
    # with the page Zendesk asked to come back to, and the token out of every URL
    started = next(request for request in trail if urlsplit(request.url).path == "/zendesk/login")
    assert sent["return_to"] == query_of(started)["return_to"] == [f"https://{ZENDESK}{ENTRY['zendesk']}"]
    assert not [request.url for request in trail if "jwt" in query_of(request)]
    assert sent["jwt"][0] not in "".join(request.url for request in trail)
    # and the policy blocked nothing on the way
    assert violations == []


def test_zendesk_continue_posts_the_token_when_scripts_are_off(
    browser_without_scripts: Any, local_stack: RunningStack
) -> None:
    page = browser_without_scripts
    email = unique_email("zendesk")
    # Given a visitor whose browser runs no scripts, signed in on the platform from the help center's Sign in
    page.goto(f"https://{ZENDESK}{ENTRY['zendesk']}")
    page.get_by_role("link", name="Sign in").click()
    sign_in_on_the_demo_platform(page, email, then=f"{local_stack.url('/zendesk/login')}?**")

    # Then the bridge's page (the one whose script posts the form) waits on the bridge, with a Continue button
    page.wait_for_load_state("load")
    assert page.locator("h1").inner_text() == "Continue to the help center"
    assert urlsplit(page.url).port == local_stack.port
    assert page.locator("script").count() == 1

    # When they press it, Zendesk signs them in
    with page.expect_navigation(url=f"https://{ZENDESK}/access/jwt"):
        page.get_by_role("button", name="Continue").click()
    assert_signed_in(page, ZENDESK, email)


# Email links: the bridge starts the portal's flow once the link is spent.


@dataclass(frozen=True)
class LinkTrip:
    """How a vendor's email link travels after the reader's press of Continue."""

    variables: dict[str, str]  # for `make link`
    route: str  # the link's route on the bridge: "/" (its function URL) or its HTTP API route
    after_press: Callable[[str], list[Hop]]  # the hops from the press on, given the link's route path
    signed_in_at: str  # the host of the stand-in page that says "Signed in as ..."
    handed_off: bool  # whether the reader came back from the portal, known again by the hand-off cookie
    lands_with: dict[str, list[str]] = field(default_factory=dict)  # query the last hop must carry


LINK_TRIPS = {
    # The form page posts itself to Zendesk.
    "zendesk": LinkTrip({}, "/", lambda route: [Hop(None, route), Hop(ZENDESK, "/access/jwt")], ZENDESK, False),
    # Canny needs no nonce: straight to its SSO endpoint, the board (CANNY_PORTAL_URL) passed as redirect.
    "canny": LinkTrip(
        {},
        "/",
        lambda route: [Hop(None, route), Hop(CANNY, SSO_PATH)],
        CANNY,
        False,
        {"companyID": [CANNY_SETTINGS["CANNY_COMPANY_ID"]], "redirect": [CANNY_SETTINGS["CANNY_PORTAL_URL"]]},
    ),
    # The hand-off cookie is set on the host the link is opened on, and the portal comes back to the route its
    # admin configured (the HTTP API's): so the link goes out on that host (VIA=api). Locally the function URLs
    # and the API share localhost (cookies ignore ports); deployed they do not.
    "discourse": LinkTrip(
        {"VIA": "api"},
        "/discourse/login",
        lambda route: [
            Hop(None, route),
            Hop(DISCOURSE, "/session/sso"),
            Hop(None, route),
            Hop(DISCOURSE, "/session/sso_login"),
        ],
        DISCOURSE,
        True,
    ),
    "freshworks": LinkTrip(
        {"VIA": "api"},
        "/freshworks/login",
        lambda route: [
            Hop(None, route),
            Hop(FRESHWORKS_PORTAL, urlsplit(FRESHWORKS_SETTINGS["FRESHWORKS_PORTAL_URL"]).path),
            Hop(None, route),
            Hop(FRESHWORKS_ACCOUNT, implicit_path(FRESHWORKS_SETTINGS["FRESHWORKS_CLIENT_ID"])),
        ],
        FRESHWORKS_ACCOUNT,
        True,
    ),
}


@pytest.mark.parametrize("vendor", sorted(LINK_TRIPS))
def test_an_email_link_ends_signed_in_in_the_portal(browser: Any, local_stack: RunningStack, vendor: str) -> None:
    trip = LINK_TRIPS[vendor]
    email = unique_email(vendor)
    # Given a link from `make link`, as it would go out in an email
    link = make_link(local_stack, vendor, email, CAMPAIGN="e2e", **trip.variables)
    route = urlsplit(link).path
    assert route == trip.route, link
    bridge = f"{urlsplit(link).scheme}://{urlsplit(link).netloc}"

    # When the reader opens it, they see who it signs in and a button, and are still on the bridge
    browser.goto(link)
    assert browser.locator("h1").inner_text().startswith("Continue to ")
    assert f"{email[0]}***@example.com" in browser.locator("main").inner_text()
    assert browser.url == link

    # And when they press it
    trail = navigations(browser)
    with browser.expect_navigation(url=f"https://{trip.signed_in_at}/**"):
        browser.click("button[type=submit]")

    # Then the bridge started the vendor's flow, and they end in the portal signed in as themselves
    assert hops(trail, bridge) == trip.after_press(route)
    assert_signed_in(browser, trip.signed_in_at, email)
    assert trail[0].method == "POST"
    landed = query_of(trail[-1])
    assert {name: landed.get(name) for name in trip.lands_with} == trip.lands_with
    # Discourse, Freshworks: the portal sent the reader back without a login token; the bridge knew them by its
    # hand-off cookie, and cleared it once it had answered
    returned = [request for request in trail[1:] if urlsplit(request.url).netloc == urlsplit(bridge).netloc]
    assert len(returned) == int(trip.handed_off)
    cookie = HANDOFF_COOKIE.format(vendor=vendor)
    for request in returned:
        assert "login_token" not in query_of(request)
        assert f"{cookie}=" in (request.header_value("cookie") or "")
    assert cookie not in {stored["name"] for stored in browser.context.cookies()}


# A sign-in started at the portal: the platform's round trip keeps the portal's own parameters.

# vendor: (the stand-in's host and its Log in, the parameters it sends the bridge, where the user ends signed in)
PORTAL_STARTS = {
    "canny": (CANNY_BOARD, {"companyID", "redirect"}, CANNY),
    "discourse": (DISCOURSE, {"sso", "sig"}, DISCOURSE),
    "freshworks": (
        FRESHWORKS_PORTAL,
        {"response_type", "client_id", "scope", "state", "redirect_uri", "nonce"},
        FRESHWORKS_ACCOUNT,
    ),
}


@pytest.mark.parametrize("vendor", sorted(PORTAL_STARTS))
def test_a_sign_in_started_at_the_portal_comes_back_with_its_parameters(
    browser: Any, local_stack: RunningStack, vendor: str
) -> None:
    host, parameters, signed_in_at = PORTAL_STARTS[vendor]
    email = unique_email(vendor)
    trail = navigations(browser)
    # Given a signed-out visitor who presses the portal's Log in
    browser.goto(f"https://{host}{ENTRY[vendor]}")
    browser.get_by_role("link", name="Log in").click()

    # When they sign in on the platform
    sign_in_on_the_demo_platform(browser, email, then=f"https://{signed_in_at}/**")

    # Then they are in the portal as themselves
    assert_signed_in(browser, signed_in_at, email)
    # having come to the bridge with the portal's parameters, and back to it with the same ones and a login token
    route = local_stack.url(f"/{vendor}/login")
    first, back = [query_of(request) for request in trail if request.url.startswith(f"{route}?")]
    assert set(first) == parameters
    assert set(back) == {*parameters, "login_token"}
    assert {name: back[name] for name in parameters} == first
