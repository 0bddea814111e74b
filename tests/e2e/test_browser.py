"""A real browser, every vendor: the platform round trip, and an email link confirmed once and only once.

Each test ends where a user would: on the vendor stand-in's "Signed in as <email>" page, reached under the
vendor's real host over HTTPS, or back on the platform's sign-in page.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest

from local.demo_platform import LOGIN_PATH
from tests.e2e.conftest import HAPPYFOX_HOST, KUSTOMER_HOST, make_link, start_page
from tests.helpers import WORKSPACE
from tests.integration.stack import RunningStack

VENDOR_HOSTS = {"clickfunnels": WORKSPACE, "kustomer": KUSTOMER_HOST, "happyfox": HAPPYFOX_HOST}


def unique_email(vendor: str) -> str:
    return f"{vendor}.{uuid.uuid4().hex[:8]}@example.com"


def sign_in_on_the_demo_platform(page: Any, email: str, vendor: str) -> None:
    assert urlsplit(page.url).path == LOGIN_PATH, page.url
    page.fill("#email", email)
    page.fill("#name", "Jane Doe")
    with page.expect_navigation(url=f"https://{VENDOR_HOSTS[vendor]}/**"):
        page.click("button[type=submit]")


def assert_signed_in(page: Any, vendor: str, email: str) -> None:
    url = urlsplit(page.url)
    assert (url.scheme, url.hostname) == ("https", VENDOR_HOSTS[vendor])
    assert page.locator("h1").inner_text() == f"Signed in as {email}"


@pytest.mark.parametrize("vendor", sorted(VENDOR_HOSTS))
def test_a_signed_out_user_signs_in_on_the_platform_and_lands_in_the_portal(
    browser: Any, local_stack: RunningStack, vendor: str
) -> None:
    email = unique_email(vendor)
    # Given a signed-out user at the start of the vendor's sign-in
    browser.goto(start_page(local_stack, vendor))
    if vendor != "clickfunnels":
        # (Kustomer and HappyFox: the portal's Log in sends them to the bridge, as the vendor would)
        browser.get_by_role("link", name="Log in").click()

    # When they sign in on the platform
    sign_in_on_the_demo_platform(browser, email, vendor)

    # Then they are in the portal, signed in as themselves
    assert_signed_in(browser, vendor, email)


@pytest.mark.parametrize("vendor", sorted(VENDOR_HOSTS))
def test_an_email_link_is_confirmed_once_and_then_needs_a_sign_in(
    browser: Any, local_stack: RunningStack, vendor: str
) -> None:
    email = unique_email(vendor)
    extra = {"REDIRECT_TO": f"https://{KUSTOMER_HOST}/login"} if vendor == "kustomer" else {}
    # Given a link from `make link`, as it would go out in an email
    link = make_link(local_stack, vendor, email, CAMPAIGN="e2e", **extra)
    assert urlsplit(link).port == local_stack.function_url_ports[vendor]

    # When the reader opens it, they see who it signs in and a button, and are still on the bridge
    browser.goto(link)
    assert browser.locator("h1").inner_text().startswith("Continue to ")
    assert f"{email[0]}***@example.com" in browser.locator("main").inner_text()
    assert urlsplit(browser.url).port == local_stack.function_url_ports[vendor]

    # And when they press it, they land in the portal signed in
    with browser.expect_navigation(url=f"https://{VENDOR_HOSTS[vendor]}/**"):
        browser.click("button[type=submit]")
    assert_signed_in(browser, vendor, email)

    # When the same link is opened again (a second click, another device, a forwardee)
    browser.goto(link)

    # Then it ends on the platform's sign-in, not in the portal
    assert urlsplit(browser.url).path == LOGIN_PATH
    assert browser.locator("#email").is_visible()
