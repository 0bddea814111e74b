"""The pages readers see, in Chromium: the company's brand and the reader's language, under the bridge's policy.

A stack of its own, started as `make run` would be with the brand's variables set (``BRAND_NAME`` ...). The logo is
served over HTTPS under the company's own host name (Chromium maps it to a local port), so the policy's
``img-src`` is met as it would be in production. Chromium asks for German, then French (``locale`` sets its
``Accept-Language``). Each page is kept as a screenshot in ``.e2e-screenshots/`` for a person to look at.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from local.demo_platform import LOGIN_PATH
from local.server import Reply, Request, Server, serve
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, make_link
from tests.integration.stack import RunningStack, start_stack
from tests.tls import self_signed

LOGO_HOST = "assets.acme.example"
BRAND = {
    "BRAND_NAME": "Acme Widgets",
    "BRAND_LOGO_URL": f"https://{LOGO_HOST}/brand/logo.svg",
    "BRAND_COLOR": "#0a7d4f",
    "SUPPORT_URL": "https://help.acme.example/contact",
}
BRAND_RGB = "rgb(10, 125, 79)"
LOGO = b"""<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40" viewBox="0 0 40 40">
<rect width="40" height="40" rx="9" fill="#0a7d4f"/><path d="M11 29 20 10l9 19h-5l-4-9-4 9z" fill="#fff"/></svg>"""

# language -> (what the reader sees: the heading, the button, the heading and link of a refused sign-in link)
PAGES = {
    "de-DE": ("de", "Weiter zu dem Kundencenter", "Weiter", "Wir konnten Sie nicht anmelden", "Erneut anmelden"),
    "fr-FR": (
        "fr",
        "Continuer vers le centre client",
        "Continuer",
        "Nous n\u2019avons pas pu vous connecter",
        "Se reconnecter",
    ),
}


@contextlib.contextmanager
def _logo_site(tls_dir: Path) -> Iterator[Server]:
    def app(request: Request) -> Reply:
        if request.path != urlsplit(BRAND["BRAND_LOGO_URL"]).path:
            return Reply(404, [("Content-Type", "text/plain")], b"not found")
        return Reply(200, [("Content-Type", "image/svg+xml"), ("Cache-Control", "no-store")], LOGO)

    server = serve("127.0.0.1", 0, app, tls=self_signed(tls_dir, [LOGO_HOST]))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def branded_stack() -> Iterator[RunningStack]:
    """`make run` with the brand set in the shell, ClickFunnels only."""
    stack = start_stack({**BRAND, "VENDORS": "clickfunnels"})
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def chromium(playwright: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with _logo_site(tmp_path_factory.mktemp("logo-tls")) as logo:
        resolver = f"--host-resolver-rules=MAP {LOGO_HOST} 127.0.0.1:{logo.port}"
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=[*CHROMIUM_ARGS, resolver]
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(params=sorted(PAGES))
def reader(chromium: Any, request: pytest.FixtureRequest) -> Iterator[tuple[Any, str, list[str]]]:
    """A page in a fresh context whose browser asks for one language; the policy violations it reports."""
    locale = request.param
    context = chromium.new_context(locale=locale, ignore_https_errors=True, viewport={"width": 1000, "height": 760})
    page = context.new_page()
    page.set_default_timeout(15_000)
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    try:
        yield page, locale, violations
    finally:
        context.close()


def shoot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_the_branded_confirmation_page_in_the_readers_language(
    reader: tuple[Any, str, list[str]], branded_stack: RunningStack
) -> None:
    page, locale, violations = reader
    lang, heading, button, _, _ = PAGES[locale]
    # Given a link from `make link`, opened by a reader whose browser asks for their language
    link = make_link(branded_stack, "clickfunnels", "jane.doe@example.com")
    page.goto(link)

    # Then the page is in that language, carries the company's name and logo, and its button is the brand's colour
    assert page.locator("html").get_attribute("lang") == lang
    assert page.locator("h1").inner_text() == heading
    assert page.title() == f"Acme Widgets · {heading}"
    assert page.locator("header").inner_text().strip() == "Acme Widgets"
    logo = page.locator("header img")
    assert urlsplit(logo.get_attribute("src")).hostname == LOGO_HOST
    assert logo.evaluate("img => img.complete && img.naturalWidth > 0")  # loaded from its origin under the policy
    continue_button = page.get_by_role("button", name=button)
    assert continue_button.evaluate("b => getComputedStyle(b).backgroundColor") == BRAND_RGB  # the stylesheet applied
    assert "j***@example.com" in page.locator("main").inner_text()
    assert page.get_by_role("link", name={"de": "Support kontaktieren", "fr": "Contacter l\u2019assistance"}[lang])
    # And the policy blocked nothing the page needs
    assert violations == []
    shoot(page, f"branded-confirmation-{lang}")


def test_a_refused_link_offers_signing_in_again_in_the_readers_language(
    reader: tuple[Any, str, list[str]], branded_stack: RunningStack
) -> None:
    page, locale, violations = reader
    lang, _, _, heading, sign_in_again = PAGES[locale]
    # Given a link whose token is damaged (cut short in the email)
    link = make_link(branded_stack, "clickfunnels", "jane.doe@example.com")
    page.goto(link[:-12])

    # Then the page says so in the reader's language, branded, with a way forward
    assert page.locator("h1").inner_text() == heading
    assert page.locator("header").inner_text().strip() == "Acme Widgets"
    assert violations == []
    shoot(page, f"branded-refusal-{lang}")

    # And signing in again leads to the platform's sign-in page
    page.get_by_role("link", name=sign_in_again).click()
    page.wait_for_url(f"**{LOGIN_PATH}?**")
    assert urlsplit(page.url).path == LOGIN_PATH
