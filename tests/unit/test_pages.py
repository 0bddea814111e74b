"""The pages readers see (an email link's confirmation, refusals, signed out): the company's brand under a strict
policy, the reader's language, and always a way forward. Each is read as the browser gets it from the handler.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Callable
from html import unescape
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from sso_bridge.errors import ConfigurationError
from sso_bridge.pages import contrast
from tests.helpers import PLATFORM_LOGIN_URL, LambdaContext, load_event, make_login_token

BRAND = {
    "BRAND_NAME": "Acme Widgets",
    "BRAND_LOGO_URL": "https://cdn.acme.example/brand/logo.png?v=3",
    "BRAND_COLOR": "#0A7D4F",
    "SUPPORT_URL": "https://help.acme.example/contact",
}
FORGED_KEY = "attacker-key-0123456789abcdef0123456789"
# vendor -> (sample event of its HTTP API route, the query the vendor needs)
ROUTES = {
    "clickfunnels": ("clickfunnels-sso-httpapi", ""),
    "kustomer": ("kustomer-login-httpapi", "kustomerRedirectUri=https%3A%2F%2Fyourcompany.kustomer.help%2Flogin"),
    "happyfox": ("happyfox-login-httpapi", ""),
}
API_ORIGIN = "https://abc123.execute-api.eu-west-1.amazonaws.com"


@pytest.fixture
def handlers(jti_table: Any, link_tables: Any, load_function: Callable[..., ModuleType]) -> Callable[..., ModuleType]:
    """A vendor's function at a cold start under ``env`` (on moto's keys and tables)."""
    return load_function


def call(
    module: ModuleType, vendor: str, *, token: str | None = None, method: str = "GET", **headers: str
) -> dict[str, Any]:
    event_name, query = ROUTES[vendor]
    query = "&".join(part for part in (query, f"login_token={token}" if token else "") if part)
    event = load_event(event_name, query=query, headers=headers)
    event["requestContext"]["http"]["method"] = method
    response: dict[str, Any] = module.lambda_handler(event, LambdaContext())
    return response


def page(module: ModuleType, vendor: str, scenario: str, **headers: str) -> dict[str, Any]:
    """What a reader's browser gets in each situation the bridge answers with a page."""
    if scenario == "confirmation":
        link = make_login_token(aud=vendor, use="link", lifetime=86400, jti=secrets.token_hex(16))
        response, status = call(module, vendor, token=link, **headers), 200
    elif scenario == "refused":
        response, status = call(module, vendor, token=make_login_token(aud=vendor, key=FORGED_KEY), **headers), 401
    elif scenario == "not found":
        event = load_event(ROUTES[vendor][0], headers=headers)
        event["rawPath"] = event["requestContext"]["http"]["path"] = "/wp-admin/setup.php"
        response, status = module.lambda_handler(event, LambdaContext()), 404
    else:
        assert scenario == "signed out"
        response = module.lambda_handler(load_event("happyfox-logout-httpapi", headers=headers), LambdaContext())
        status = 200
    assert response["statusCode"] == status, (scenario, response["body"][-600:])
    return response


def links(body: str, where: str = "actions") -> list[tuple[str, str]]:
    """``(href, text)`` of the links in the page's ways forward (``actions``) or its ``footer``."""
    pattern = r'<p class="actions">(.*?)</p>' if where == "actions" else r"<footer>(.*?)</footer>"
    found = re.search(pattern, body, re.S)
    if found is None:
        return []
    return [(unescape(href), unescape(text)) for href, text in re.findall(r'<a href="([^"]*)">([^<]*)</a>', found[1])]


def policy(response: dict[str, Any]) -> dict[str, str]:
    header = response["headers"]["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


SCENARIOS = [
    ("clickfunnels", "confirmation"),
    ("kustomer", "confirmation"),
    ("happyfox", "refused"),
    ("kustomer", "not found"),
    ("happyfox", "signed out"),
]


# --- the brand ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("vendor", "scenario"), SCENARIOS)
def test_every_page_carries_the_brand_under_a_strict_policy(
    handlers: Callable[..., ModuleType], vendor: str, scenario: str
) -> None:
    # Given a company that set its brand
    module = handlers(vendor, **BRAND)

    # When a reader meets a page
    response = page(module, vendor, scenario)
    body = response["body"]

    # Then it carries the company's name, logo and colour, and its support page
    assert re.search(r"<title>Acme Widgets · [^<]+</title>", body)
    assert '<header><img src="https://cdn.acme.example/brand/logo.png?v=3" alt=""><span>Acme Widgets</span>' in body
    [style] = re.findall(r"<style>(.*?)</style>", body, re.S)
    assert "background:#0a7d4f" in style
    assert links(body, "footer")[0] == ("https://help.acme.example/contact", "Contact support")
    # And the policy allows exactly that stylesheet (by its hash) and images from the logo's origin; no script
    csp = policy(response)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert csp == {
        "default-src": "'none'",
        "style-src": f"'sha256-{digest}'",
        "img-src": "https://cdn.acme.example",
        "base-uri": "'none'",
        "frame-ancestors": "'none'",
    }
    assert "<script" not in body.lower()
    assert " style=" not in body  # a style attribute is not covered by the hash


@pytest.mark.parametrize(("vendor", "scenario"), SCENARIOS)
def test_an_unbranded_page_looks_finished_under_the_same_policy(
    handlers: Callable[..., ModuleType], vendor: str, scenario: str
) -> None:
    response = page(handlers(vendor), vendor, scenario)
    body = response["body"]
    assert "<header>" not in body
    assert "<img" not in body
    assert re.search(r"<title>(?!.* · )[^<]+</title>", body)
    csp = policy(response)
    assert set(csp) == {"default-src", "style-src", "base-uri", "frame-ancestors"}  # no images at all
    assert csp["style-src"].startswith("'sha256-")
    assert "unsafe" not in response["headers"]["Content-Security-Policy"]
    assert "Contact support" not in body


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BRAND_COLOR", "green"),
        ("BRAND_COLOR", "#0a7d4"),
        ("BRAND_COLOR", "#0a7d4g"),
        ("BRAND_COLOR", "#0a7d4f;}body{display:none"),  # CSS injection
        ("BRAND_COLOR", "#0a7d4f</style><script>alert(1)</script>"),
        ("BRAND_LOGO_URL", "http://cdn.acme.example/logo.png"),  # plain http
        ("BRAND_LOGO_URL", "https://cdn.acme.example;script-src *"),  # a second CSP directive
        ("BRAND_LOGO_URL", 'https://cdn.acme.example/logo.png"onerror="alert(1)'),
        ("BRAND_LOGO_URL", "javascript:alert(1)"),
        ("BRAND_LOGO_URL", "https://user@cdn.acme.example/logo.png"),
        ("BRAND_LOGO_URL", "https://cdn.acme.example:44x3/logo.png"),
        ("SUPPORT_URL", "http://help.acme.example/"),
        ("SUPPORT_URL", "https://help.acme.example/a b"),
        ("PLATFORM_HOME_URL", "ftp://acme.example/"),
        ("BRAND_NAME", "Acme\nWidgets"),
        ("BRAND_NAME", "A" * 81),
    ],
)
def test_a_bad_brand_stops_the_cold_start_naming_the_variable(
    load_function: Callable[..., ModuleType], variable: str, value: str
) -> None:
    with pytest.raises(ConfigurationError, match=f"^{variable} must"):
        load_function("happyfox", **{variable: value})


@pytest.mark.parametrize("color", ["#ffdd00", "#0a7d4f", "#000000", "#ffffff", "#3056d3", "#e11d48"])
def test_the_button_and_links_stay_readable_in_any_brand_colour(
    handlers: Callable[..., ModuleType], color: str
) -> None:
    module = handlers("clickfunnels", BRAND_COLOR=color)
    [style] = re.findall(r"<style>(.*?)</style>", page(module, "clickfunnels", "confirmation")["body"], re.S)
    button = re.search(r"button,\.actions a:first-child\{[^}]*background:(#\w{6});color:(#\w{6})", style)
    link = re.search(r"a\{color:(#\w{6})\}", style)
    assert button
    assert link
    assert button[1] == color
    assert contrast(button[1], button[2]) >= 4.5  # WCAG AA for the button's text
    assert contrast(link[1], "#ffffff") >= 4.5  # and for links on the white card


# --- the language ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept_language", "lang", "title", "button"),
    [
        ("de-CH,de;q=0.9,en;q=0.8", "de", "Weiter zu dem Kundencenter", "Weiter"),
        ("fr-FR,fr;q=0.9", "fr", "Continuer vers le centre client", "Continuer"),
        ("es-ES,es;q=0.9,en;q=0.5", "es", "Continuar hacia el centro de clientes", "Continuar"),
        ("it-IT,it;q=0.9", "en", "Continue to the customer center", "Continue"),
        ("", "en", "Continue to the customer center", "Continue"),
    ],
)
def test_the_confirmation_page_speaks_the_readers_language(
    handlers: Callable[..., ModuleType], accept_language: str, lang: str, title: str, button: str
) -> None:
    module = handlers("clickfunnels", **BRAND)
    response = page(module, "clickfunnels", "confirmation", **{"accept-language": accept_language})
    body = response["body"]
    assert f'<html lang="{lang}">' in body
    assert f"<h1>{title}</h1>" in body
    assert f"<title>Acme Widgets · {title}</title>" in body
    assert re.search(rf'<button type="submit">{button}</button></form>', body)
    assert response["headers"]["Content-Language"] == lang
    assert response["headers"]["Vary"] == "Accept-Language"


def test_a_refusal_speaks_the_readers_language_with_its_way_forward(handlers: Callable[..., ModuleType]) -> None:
    module = handlers("happyfox", **BRAND)
    body = page(module, "happyfox", "refused", **{"accept-language": "fr"})["body"]
    assert '<html lang="fr">' in body
    assert "<h1>Nous n\u2019avons pas pu vous connecter</h1>" in body
    assert [text for _, text in links(body)] == ["Se reconnecter", "Retour à Acme Widgets"]
    assert [text for _, text in links(body, "footer")] == ["Contacter l\u2019assistance"]
    assert "Référence\u00a0: <code>" in body


def test_the_signed_out_page_speaks_the_readers_language(handlers: Callable[..., ModuleType]) -> None:
    body = page(handlers("happyfox"), "happyfox", "signed out", **{"accept-language": "de"})["body"]
    assert "<h1>Sie sind abgemeldet</h1>" in body
    assert "Sie haben sich von dem Support-Center abgemeldet." in body
    assert [text for _, text in links(body)] == ["Zurück zur Startseite", "Zurück zu dem Support-Center"]


def test_a_portal_name_of_the_companys_own_is_shown_as_it_is(handlers: Callable[..., ModuleType]) -> None:
    module = handlers("clickfunnels", PORTAL_NAME="Acme Kundenportal")
    body = page(module, "clickfunnels", "confirmation", **{"accept-language": "de"})["body"]
    assert "<h1>Weiter zu Acme Kundenportal</h1>" in body


# --- a way forward ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", sorted(ROUTES))
def test_a_refused_login_token_offers_signing_in_again_and_back_to_the_same_place(
    handlers: Callable[..., ModuleType], vendor: str
) -> None:
    # Given a reader whose sign-in link was refused (forged, damaged, for another service)
    module = handlers(vendor)
    response = page(module, vendor, "refused")
    assert response["statusCode"] == 401

    # Then the page offers signing in again at the platform, which brings them back to the same route and query,
    # without the refused token
    [(href, text), home] = links(response["body"])
    assert text == "Sign in again"
    assert href.startswith(f"{PLATFORM_LOGIN_URL}?return_to=")
    [return_to] = parse_qs(urlsplit(href).query)["return_to"]
    event_name, query = ROUTES[vendor]
    route = load_event(event_name)["rawPath"]
    assert return_to == f"{API_ORIGIN}{route}" + (f"?{query}" if query else "")
    # And the way back to the platform's home
    assert home == ("https://platform.example.com/", "Back to the home page")
    assert "from the start" not in response["body"]


def test_with_openid_sign_in_again_starts_at_the_route_itself(
    handlers: Callable[..., ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a bridge that signs people in at the company's OpenID provider only
    monkeypatch.setenv("PLATFORM_LOGIN_URL", "")
    module = handlers(
        "kustomer",
        OIDC_ISSUER="https://login.acme.example/tenant",
        OIDC_CLIENT_ID="bridge",
        OIDC_CLIENT_SECRET_ID="sso/oidc-client",
    )
    # When a sign-in link is refused, the way forward is the route without the token: it starts the provider's sign-in
    response = page(module, "kustomer", "refused")
    assert links(response["body"]) == [(f"{API_ORIGIN}/kustomer/login?{ROUTES['kustomer'][1]}", "Sign in again")]


def test_a_refused_query_offers_signing_in_to_the_route_alone(handlers: Callable[..., ModuleType]) -> None:
    # A query the bridge refuses (a repeated parameter) is not carried into the way forward
    module = handlers("clickfunnels")
    event = load_event("clickfunnels-sso-httpapi", query="redirect_to=a&redirect_to=b")
    response = module.lambda_handler(event, LambdaContext())
    assert response["statusCode"] == 400
    [(href, text), _] = links(response["body"])
    assert (text, parse_qs(urlsplit(href).query)["return_to"]) == ("Sign in again", [f"{API_ORIGIN}/clickfunnels/sso"])


def test_a_missing_page_offers_the_way_back_to_the_platform(handlers: Callable[..., ModuleType]) -> None:
    module = handlers("kustomer", BRAND_NAME="Acme Widgets", PLATFORM_HOME_URL="https://www.acme.example/")
    response = page(module, "kustomer", "not found")
    assert response["statusCode"] == 404
    assert links(response["body"]) == [("https://www.acme.example/", "Back to Acme Widgets")]


def test_the_signed_out_page_links_back_to_the_platform_and_the_portal(handlers: Callable[..., ModuleType]) -> None:
    body = page(handlers("happyfox", **BRAND), "happyfox", "signed out")["body"]
    assert "<h1>You are signed out</h1>" in body
    assert "You have signed out of the support centre." in body
    assert links(body) == [
        ("https://platform.example.com/", "Back to Acme Widgets"),
        ("https://acme.happyfox.com/", "Back to the support centre"),
    ]
    assert links(body, "footer") == [("https://help.acme.example/contact", "Contact support")]


@pytest.mark.parametrize(
    "query",
    [
        "login_token=x&login_token=y",  # repeated
        "redirect_to=https%3A%2F%2Fevil.example%2F&login_token={token}",  # not an allowed destination
        "login_token=" + "a" * 9000,  # too long
        "login_token=not-a-jwt",  # damaged
        "login_token={forged}",
        "login_token={other}",  # for another service
    ],
)
def test_every_refusal_offers_a_way_forward_and_the_support_page(
    handlers: Callable[..., ModuleType], query: str
) -> None:
    module = handlers("clickfunnels", **BRAND)
    query = query.format(
        token=make_login_token(),
        forged=make_login_token(key=FORGED_KEY),
        other=make_login_token(aud="happyfox"),
    )
    response = module.lambda_handler(load_event("clickfunnels-sso-httpapi", query=query), LambdaContext())
    assert 400 <= response["statusCode"] < 500
    ways = links(response["body"])
    assert ways
    assert ways[0][1] == "Sign in again"
    assert all(urlsplit(href).scheme == "https" for href, _ in ways)
    assert links(response["body"], "footer") == [("https://help.acme.example/contact", "Contact support")]


def test_the_request_in_the_way_forward_is_escaped(handlers: Callable[..., ModuleType]) -> None:
    # A refused token with the rest of the query kept in "Sign in again": the query is written into the page escaped
    module = handlers("happyfox")
    forged = make_login_token(aud="happyfox", key=FORGED_KEY)
    query = f'x=%22%3E%3Cscript%3E&y="><script>alert(1)</script>&login_token={forged}'
    body = module.lambda_handler(load_event("happyfox-login-httpapi", query=query), LambdaContext())["body"]
    assert "<script" not in body
    [(href, _), _] = links(body)
    [return_to] = parse_qs(urlsplit(href).query)["return_to"]
    assert return_to.endswith('/happyfox/login?x=%22%3E%3Cscript%3E&y="><script>alert(1)</script>')


def test_a_json_client_gets_the_way_forward_too(handlers: Callable[..., ModuleType]) -> None:
    module = handlers("happyfox")
    response = page(module, "happyfox", "refused", accept="application/json")
    answer = json.loads(response["body"])
    assert answer["error"] == "invalid_login_token"
    route = "https%3A%2F%2Fabc123.execute-api.eu-west-1.amazonaws.com%2Fhappyfox%2Flogin"
    assert answer["retry_url"] == f"{PLATFORM_LOGIN_URL}?return_to={route}"
