"""`make run` signs jane into all seven stand-ins: each vendor's sign-in as a browser makes it, offline.

One stack per sign-in page, as `make run` starts it (stand-ins on, every vendor, the template's ``Enable*``
defaults notwithstanding): the local OpenID provider (skipped without Node.js, failed in CI), and the demo
platform (``OIDC=off``, as without Node.js). A fresh browser per test: signed out everywhere.

Where the vendor starts the sign-in (Kustomer, HappyFox, Zendesk, Canny, Discourse, Freshworks), the test starts
on the stand-in's own page, at its Log in link, and follows what a browser follows: the redirects, the sign-in
page (typed into), the bridge's auto-posted form (Zendesk); it ends on the stand-in's "Signed in as ...", served
on the port of the vendor host the bridge meant (canny.io for Canny, the account's host for Freshworks).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import unescape
from urllib.parse import urljoin, urlsplit

import pytest

from local.demo_platform import LOGIN_PATH
from local.identity_provider import ACCOUNTS
from tests.helpers import WORKSPACE
from tests.integration.client import Response
from tests.integration.stack import STANDIN_HOSTS, CookieClient, RunningStack, require_provider, start_stack

JANE = ACCOUNTS[0]
EMAIL = JANE.email  # jane@example.com, at the provider and typed at the demo platform alike
# vendor: (where the user starts: a bridge route, or a stand-in's page and its link; the host that signs them in)
FLOWS = {
    "clickfunnels": ("/clickfunnels/sso", None, None, WORKSPACE),
    "kustomer": (None, "yourcompany.kustomer.help", "/login", "yourcompany.kustomer.help"),
    "happyfox": (None, "yourcompany.happyfox.com", "/", "yourcompany.happyfox.com"),
    "zendesk": (None, "yourcompany.zendesk.com", "/hc/en-us", "yourcompany.zendesk.com"),
    "canny": (None, "yourcompany.canny.io", "/feature-requests", "canny.io"),
    "discourse": (None, "yourcompany.discourse.group", "/", "yourcompany.discourse.group"),
    "freshworks": (None, "yourcompany.freshdesk.com", "/", "yourcompany.freshworks.com"),
}
LOCAL_HOSTS = ("localhost", "127.0.0.1")
REDIRECTS = (301, 302, 303, 307, 308)
_LINK = re.compile(r'<a href="([^"]+)">(?:Log in|Sign in)</a>')
_FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S)
_ATTRIBUTE = re.compile(r'\b([a-z-]+)="([^"]*)"')
_INPUT = re.compile(r"<input\b([^>]*)>")


@pytest.fixture(scope="module", params=["provider", "demo platform"])
def stack(request: pytest.FixtureRequest) -> Iterator[RunningStack]:
    oidc = request.param == "provider"
    if oidc:
        require_provider()
    running = start_stack({"VENDOR_STANDINS": "on"}, extra_ports=len(STANDIN_HOSTS), oidc=oidc)
    yield running
    running.stop()


def origins(stack: RunningStack) -> dict[str, str]:
    """Vendor host -> its stand-in's origin, as the running stack tells local commands (its state file)."""
    found: dict[str, str] = json.loads(stack.state_file.read_text())["vendor_origins"]
    return found


def h1(response: Response) -> str:
    found = re.search(r"<h1>(.*?)</h1>", response.text, re.S)
    assert found, response.text
    return unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


def attributes(tag: str) -> dict[str, str]:
    return {name: unescape(value) for name, value in _ATTRIBUTE.findall(tag)}


def form_of(page: Response) -> tuple[str, dict[str, str]]:
    """The page's POST form: its action (empty: the page's own URL) and its fields with their values."""
    for tag, inner in _FORM.findall(page.text):
        form = attributes(tag)
        if form.get("method", "").lower() == "post":
            inputs = [attributes(field) for field in _INPUT.findall(inner)]
            return form.get("action", ""), {
                field["name"]: field.get("value", "") for field in inputs if "name" in field
            }
    raise AssertionError(f"no form to post on this page:\n{page.text[:500]}")


def browse(browser: CookieClient, stack: RunningStack, url: str, *, limit: int = 25) -> tuple[Response, list[str]]:
    """What a browser does from ``url``: follow redirects, sign in as jane where asked (the provider's login page,
    or the demo platform's form), submit a page's auto-posting form; the last page and every URL on the way."""
    trail = [url]
    response = browser.get(url)
    for _ in range(limit):
        if response.status in REDIRECTS:
            url = urljoin(url, response.location)
            response = browser.get(url)
        elif response.status == 200 and "/interaction/" in url:  # the local OpenID provider's login page
            action, _ = form_of(response)
            url = urljoin(url, action)
            fields = {"prompt": "login", "login": JANE.login, "password": "any password"}
            response = browser.post_form(url, fields)
        elif response.status == 200 and urlsplit(url).path == LOGIN_PATH:  # the demo platform
            action, _ = form_of(response)
            url = urljoin(url, action)
            response = browser.post_form(url, {"email": EMAIL, "name": JANE.name})
        elif response.status == 200 and "HTMLFormElement.prototype.submit" in response.text:  # posts itself
            action, fields = form_of(response)
            url = urljoin(url, action)
            response = browser.post_form(url, fields)
        else:
            return response, trail
        trail.append(url)
        assert urlsplit(url).hostname in LOCAL_HOSTS, f"a browser would leave the local stack: {trail}"
    raise AssertionError(f"no end after {limit} steps: {trail}")


def start_url(browser: CookieClient, stack: RunningStack, vendor: str) -> str:
    """Where jane starts: the bridge's link (ClickFunnels), or the vendor's page and its Log in link."""
    route, host, page, _ = FLOWS[vendor]
    if route is not None:
        return stack.url(route)
    assert host is not None
    entry = f"{origins(stack)[host]}{page}"
    home = browser.get(entry)
    assert home.status == 200, home.text
    found = _LINK.search(home.text)
    assert found, home.text
    return urljoin(entry, unescape(found.group(1)))


@pytest.mark.parametrize("vendor", list(FLOWS))
def test_jane_signs_in_to_every_vendor_s_stand_in(stack: RunningStack, vendor: str) -> None:
    browser = CookieClient()
    landing, trail = browse(browser, stack, start_url(browser, stack, vendor))

    assert landing.status == 200, (landing.text, trail)
    assert h1(landing) == f"Signed in as {EMAIL}"
    # on the stand-in of the host the bridge sent her to, through the bridge's own route
    signed_in_at = FLOWS[vendor][3]
    assert trail[-1].startswith(f"{origins(stack)[signed_in_at]}/"), trail
    assert any(url.startswith(stack.url(f"/{vendor}/")) for url in trail), trail


def test_every_vendor_is_served_and_shown_with_where_to_start(stack: RunningStack) -> None:
    assert sorted(origins(stack)) == sorted(STANDIN_HOSTS)
    output = stack.output()
    banner = output[output.index("sso-bridge local stack") : output.index("Ctrl-C to stop")]
    index = unescape(CookieClient().get(stack.url("/")).text)
    for vendor, (route, host, page, _) in FLOWS.items():
        start = stack.url(route) if route is not None else f"{origins(stack)[host or '']}{page}"
        assert start in banner, vendor
        assert f'href="{start}"' in index, vendor
        assert stack.function_url(vendor) in banner
    assert "PRIVATE KEY" not in output  # Freshworks' key (the tests give every key: none is generated)
