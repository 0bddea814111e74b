"""Chromium against login CSRF on email links (issue 17, item 1): another site cannot spend a link.

A page on another origin (served here from a loopback port) auto-submits a link's form, as an attacker's page
would, with a hidden field the attacker got from the link's page in their own browser, and also POSTs it with
``fetch(..., {mode: "no-cors"})``. The reader's browser gets the bridge's 403 page, no request reaches a vendor,
and the link is not spent: the reader then opens it and presses Continue, and lands in the portal signed in.

Two other origins: ``127.0.0.1`` (another site than ``localhost``: Chromium sends no ``SameSite=Strict`` cookie and
``Sec-Fetch-Site: cross-site``) and ``localhost`` on another port (the same site, another origin:
``Sec-Fetch-Site: same-site``, the cookie is sent, and the bridge still refuses).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from html import escape
from typing import Any
from urllib.parse import urlsplit

import pytest

from local.server import Reply, Request, Server, serve
from tests.e2e.conftest import HAPPYFOX_HOST, KUSTOMER_HOST
from tests.helpers import WORKSPACE, make_login_token
from tests.integration.client import Client
from tests.integration.stack import RunningStack

VENDOR_HOSTS = (WORKSPACE, KUSTOMER_HOST, HAPPYFOX_HOST)

ATTACK_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Win a prize</title></head><body>
<form id="csrf" method="post" action="{action}"><input type="hidden" name="link_form" value="{field}"></form>
<script>
fetch({action_js}, {{method: "POST", mode: "no-cors", credentials: "include",
  body: new URLSearchParams({{link_form: {field_js}}})}})
  .catch(() => null)
  .finally(() => document.getElementById("csrf").submit());
</script></body></html>
"""


@pytest.fixture
def attacker(request: pytest.FixtureRequest) -> Iterator[tuple[Server, dict[str, bytes]]]:
    """Another site's page on a loopback port: whatever HTML the test puts in ``pages["/"]``."""
    pages: dict[str, bytes] = {}

    def app(req: Request) -> Reply:
        body = pages.get(req.path)
        if body is None:
            return Reply(404, [("Content-Type", "text/plain")], b"not here")
        return Reply(200, [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")], body)

    server = serve("127.0.0.1", 0, app, access_log=False)
    try:
        yield server, pages
    finally:
        server.stop()


def js_string(value: str) -> str:
    """A JavaScript string literal for a URL or a base64url field (no quotes, backslashes or angle brackets)."""
    assert all(char not in value for char in "\"'\\<>"), value
    return f'"{value}"'


@pytest.mark.parametrize("attacker_host", ["127.0.0.1", "localhost"], ids=["cross-site", "same-site-other-port"])
def test_another_sites_page_cannot_spend_a_link_and_the_readers_button_still_works(
    browser: Any,
    local_stack: RunningStack,
    attacker: tuple[Server, dict[str, bytes]],
    attacker_host: str,
) -> None:
    email = f"csrf.{uuid.uuid4().hex[:8]}@example.com"
    token = make_login_token(email, aud="clickfunnels", lifetime=86400, use="link", jti=secrets.token_hex(16))
    link = local_stack.function_url("clickfunnels", f"/?login_token={token}")
    # The attacker opens the link's page in their own browser: a field bound to their cookie, not the reader's
    field = Client().open_link(link).field

    # Given a page on another origin that auto-submits the link's form and fetches it too
    server, pages = attacker
    pages["/"] = ATTACK_PAGE.format(
        action=escape(link, quote=True), field=escape(field), action_js=js_string(link), field_js=js_string(field)
    ).encode()
    seen: list[str] = []
    browser.context.on("request", lambda req: seen.append(req.url))
    logged = len(local_stack.output())

    # When the reader's browser visits it
    with browser.expect_navigation(url=f"{link.split('?')[0]}**") as landed:
        browser.goto(f"http://{attacker_host}:{server.port}/")

    # Then the bridge refuses the POST, says so, and no request reaches a vendor
    assert landed.value.status == 403
    assert browser.locator("h1").inner_text() == "Nothing happened"
    assert not [url for url in seen if urlsplit(url).hostname in VENDOR_HOSTS], seen
    # (the stack's console: the fetch's POST and the form's, each refused for coming from another site)
    posts = [line for line in local_stack.output()[logged:].splitlines() if "POST / " in line]
    assert len(posts) == 2, posts
    assert all("POST / 403 refused link_post_cross_site" in line for line in posts), posts

    # When the reader then opens the link and presses Continue
    browser.goto(link)
    assert browser.locator("h1").inner_text().startswith("Continue to ")
    with browser.expect_navigation(url=f"https://{WORKSPACE}/**"):
        browser.click("button[type=submit]")

    # Then the link was not spent: they land in the portal, signed in as the link's reader
    url = urlsplit(browser.url)
    assert (url.scheme, url.hostname) == ("https", WORKSPACE)
    assert browser.locator("h1").inner_text() == f"Signed in as {email}"
