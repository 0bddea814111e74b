"""A real browser through the local OpenID provider (panva's oidc-provider), every vendor.

A signed-out user is sent to the provider, logs in there, and comes back through the bridge's
``/oidc/callback`` to the vendor's stand-in, under the vendor's real host over HTTPS, with a vendor token that
the vendor's rules accept (checked here once more with PyJWT and the vendor's key). The provider's unverified
user is refused with a 403 and never gets near a vendor. Also: an email link already spent, and HappyFox's
logout ending the provider's session (``OIDC_LOGOUT`` is on in ``oidc_stack``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from local.identity_provider import ACCOUNTS, CALLBACK_PATH
from tests.e2e.conftest import HAPPYFOX_HOST, KUSTOMER_HOST, make_link, start_page
from tests.helpers import VENDOR_KEYS, WORKSPACE
from tests.integration.stack import RunningStack

VENDOR_HOSTS = {"clickfunnels": WORKSPACE, "kustomer": KUSTOMER_HOST, "happyfox": HAPPYFOX_HOST}
JANE, MALLORY = ACCOUNTS
assert JANE.email_verified
assert not MALLORY.email_verified
# Where each vendor's token travels back, and the claims its docs require.
TOKEN_PARAM = {"clickfunnels": "token", "kustomer": "externalToken", "happyfox": "token"}
REQUIRED = {
    "clickfunnels": ["sub", "nbf", "exp", "iat"],
    "kustomer": ["email", "iat"],
    "happyfox": ["iat", "jti", "name", "email"],
}


def navigations(page: Any) -> list[str]:
    """Every URL the page's main frame requests from now on, redirects included, in order."""
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url) if request.is_navigation_request() else None)
    return urls


def begin(page: Any, stack: RunningStack, vendor: str) -> None:
    page.goto(start_page(stack, vendor))
    if vendor != "clickfunnels":
        # (Kustomer and HappyFox: the portal's Log in sends them to the bridge, as the vendor would)
        page.get_by_role("link", name="Log in").click()


def at_the_provider_login(page: Any, stack: RunningStack) -> bool:
    url = urlsplit(page.url)
    return f"{url.scheme}://{url.netloc}" == stack.issuer and url.path.startswith("/interaction/")


def log_in_at_the_provider(page: Any, stack: RunningStack, login: str, *, then: str) -> None:
    """The provider's development login page: any password; ``then``: the URL glob the browser ends on."""
    page.wait_for_url(f"{stack.issuer}/interaction/**")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any password")
    with page.expect_navigation(url=then):
        page.click("button[type=submit]")


def vendor_claims(page: Any, vendor: str) -> dict[str, Any]:
    """The vendor token the browser brought, verified as the vendor would: HS256 with the vendor's key."""
    url = urlsplit(page.url)
    assert (url.scheme, url.hostname) == ("https", VENDOR_HOSTS[vendor])
    [token] = parse_qs(url.query)[TOKEN_PARAM[vendor]]
    claims: dict[str, Any] = jwt.decode(
        token, VENDOR_KEYS[vendor], algorithms=["HS256"], options={"require": REQUIRED[vendor]}
    )
    return claims


def assert_signed_in(page: Any, vendor: str, email: str) -> None:
    assert page.locator("h1").inner_text() == f"Signed in as {email}"
    claims = vendor_claims(page, vendor)
    if vendor == "clickfunnels":
        assert claims["sub"] == f"{email}:{WORKSPACE}"
    else:
        assert claims["email"] == email


def only(urls: list[str], predicate: Callable[[str], bool]) -> list[str]:
    return [url for url in urls if predicate(url)]


def path_is(path: str) -> Callable[[str], bool]:
    return lambda url: urlsplit(url).path == path


# Signed in at the provider, in the portal.


@pytest.mark.parametrize("vendor", sorted(VENDOR_HOSTS))
def test_a_signed_out_user_signs_in_at_the_provider_and_lands_in_the_portal(
    oidc_browser: Any, oidc_stack: RunningStack, vendor: str
) -> None:
    trail = navigations(oidc_browser)
    # Given a signed-out user at the start of the vendor's sign-in
    begin(oidc_browser, oidc_stack, vendor)

    # Then they are at the company's OpenID provider, not the platform
    oidc_browser.wait_for_url(f"{oidc_stack.issuer}/interaction/**")
    assert at_the_provider_login(oidc_browser, oidc_stack)

    # When they sign in there as the verified user
    log_in_at_the_provider(oidc_browser, oidc_stack, JANE.login, then=f"https://{VENDOR_HOSTS[vendor]}/**")

    # Then they are in the portal as themselves, with a token the vendor accepts
    assert_signed_in(oidc_browser, vendor, JANE.email)
    if vendor == "happyfox":
        assert vendor_claims(oidc_browser, vendor)["name"] == JANE.name
    # having come back through the bridge's callback on the HTTP API, exactly once
    [callback] = only(trail, path_is(CALLBACK_PATH))
    assert callback.startswith(oidc_stack.url(f"{CALLBACK_PATH}?"))


def test_kustomers_round_trip_survives_the_detour_through_the_provider(
    oidc_browser: Any, oidc_stack: RunningStack
) -> None:
    trail = navigations(oidc_browser)
    # Given the portal's Log in, which carries Kustomer's trackingToken and kustomerRedirectUri
    begin(oidc_browser, oidc_stack, "kustomer")
    [first, *_] = only(trail, path_is("/kustomer/login"))
    sent = parse_qs(urlsplit(first).query)
    assert set(sent) == {"trackingToken", "kustomerRedirectUri"}

    # When the user signs in at the provider
    log_in_at_the_provider(oidc_browser, oidc_stack, JANE.login, then=f"https://{KUSTOMER_HOST}/**")

    # Then the bridge saw both parameters again, unchanged, beside the login token
    back = only(trail, lambda url: path_is("/kustomer/login")(url) and "login_token=" in url)
    assert len(back) == 1
    returned = parse_qs(urlsplit(back[0]).query)
    assert returned["trackingToken"] == sent["trackingToken"]
    assert returned["kustomerRedirectUri"] == sent["kustomerRedirectUri"]
    # and the portal took the user where kustomerRedirectUri said, signed in
    assert_signed_in(oidc_browser, "kustomer", JANE.email)
    landing = urlsplit(oidc_browser.url)
    [redirect_uri] = sent["kustomerRedirectUri"]
    assert f"https://{landing.hostname}{landing.path}" == redirect_uri.split("?")[0]
    [referral] = parse_qs(urlsplit(redirect_uri).query)["referralUrl"]
    assert parse_qs(landing.query)["referralUrl"] == [referral]


# The unverified user.


def test_an_unverified_email_is_refused_with_a_403_and_no_vendor_token(
    oidc_browser: Any, oidc_stack: RunningStack
) -> None:
    # (The refusal is the callback's, the same for every vendor: Kustomer's, whose link carries the most.)
    trail = navigations(oidc_browser)
    begin(oidc_browser, oidc_stack, "kustomer")
    [start] = only(trail, path_is("/kustomer/login"))

    # When the provider vouches for a user whose email it has not verified
    with oidc_browser.expect_response(lambda response: urlsplit(response.url).path == CALLBACK_PATH) as callback:
        log_in_at_the_provider(oidc_browser, oidc_stack, MALLORY.login, then=f"{oidc_stack.url(CALLBACK_PATH)}?**")

    # Then the bridge refuses: a 403 page on the bridge, and "Try again" leads to the link the user started from,
    # asking for a fresh sign-in at the provider
    assert callback.value.status == 403
    assert urlsplit(oidc_browser.url).path == CALLBACK_PATH
    assert "cannot be used" in oidc_browser.locator("h1").inner_text()
    retry = oidc_browser.get_by_role("link", name="Try again")
    assert retry.is_visible()
    assert retry.get_attribute("href") == f"{start}&oidc_prompt=login"
    # and nothing went to a vendor after the portal's own Log in page, no login token was minted
    since = trail[trail.index(start) :]
    assert only(since, lambda url: urlsplit(url).hostname in VENDOR_HOSTS.values()) == []
    assert not only(since, lambda url: "login_token=" in url)
    assert MALLORY.email not in oidc_browser.content()

    # When she tries again, the provider asks who is signing in (its session would have sent mallory straight back
    # to the same 403), and signing in as jane there takes her into the portal
    retry.click()
    log_in_at_the_provider(oidc_browser, oidc_stack, JANE.login, then=f"https://{VENDOR_HOSTS['kustomer']}/**")
    assert_signed_in(oidc_browser, "kustomer", JANE.email)


# An email link already spent.


def test_a_spent_email_link_signs_in_at_the_provider_through_the_function_url(
    oidc_browser: Any, oidc_stack: RunningStack
) -> None:
    # Given a link that was confirmed once already
    link = make_link(oidc_stack, "clickfunnels", JANE.email, CAMPAIGN="e2e-oidc")
    assert urlsplit(link).port == oidc_stack.function_url_ports["clickfunnels"]
    oidc_browser.goto(link)
    with oidc_browser.expect_navigation(url=f"https://{WORKSPACE}/**"):
        oidc_browser.click("button[type=submit]")
    assert_signed_in(oidc_browser, "clickfunnels", JANE.email)

    # When it is opened again, by someone signed out of the provider
    oidc_browser.context.clear_cookies()
    trail = navigations(oidc_browser)
    oidc_browser.goto(link)

    # Then they sign in at the provider, come back to the function URL, and land in the portal
    log_in_at_the_provider(oidc_browser, oidc_stack, JANE.login, then=f"https://{WORKSPACE}/**")
    assert_signed_in(oidc_browser, "clickfunnels", JANE.email)
    [callback] = only(trail, path_is(CALLBACK_PATH))
    assert callback.startswith(oidc_stack.function_url("clickfunnels", f"{CALLBACK_PATH}?"))


# Logout.


def test_happyfox_logout_ends_the_provider_session_too(oidc_browser: Any, oidc_stack: RunningStack) -> None:
    # Given a user signed in to HappyFox through the provider
    begin(oidc_browser, oidc_stack, "happyfox")
    log_in_at_the_provider(oidc_browser, oidc_stack, JANE.login, then=f"https://{HAPPYFOX_HOST}/**")
    assert_signed_in(oidc_browser, "happyfox", JANE.email)
    # (while the provider's session lasts, the next Log in needs no login page)
    trail = navigations(oidc_browser)
    begin(oidc_browser, oidc_stack, "happyfox")
    oidc_browser.wait_for_url(f"https://{HAPPYFOX_HOST}/jwt/**")
    assert not only(trail, lambda url: urlsplit(url).path.startswith("/interaction/"))

    # When they log out of HappyFox (its Remote Logout URL is the bridge's /happyfox/logout)
    oidc_browser.goto(oidc_stack.url("/happyfox/logout"))

    # Then the provider asks to end its session, and ends it
    assert oidc_browser.url.startswith(f"{oidc_stack.issuer}/session/end")
    with oidc_browser.expect_navigation():
        oidc_browser.get_by_role("button", name="Yes, sign me out").click()
    assert "Sign-out Success" in oidc_browser.content()

    # And the next Log in asks them to sign in at the provider again
    begin(oidc_browser, oidc_stack, "happyfox")
    oidc_browser.wait_for_url(f"{oidc_stack.issuer}/interaction/**")
    assert oidc_browser.locator("input[name=login]").is_visible()
