"""`make link` / `make links` against a stack that switched vendors off, and `VIA=api` links on the API's host.

The target is a ``Target`` built here (as ``ops.target.resolve`` would return it) with moto's Secrets Manager
holding the key: what matters is which vendors it has and its public API URL. A target whose key must not be
read raises if it is.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import jwt
import pytest

from local.vendors.operations import link_rules
from ops import link as link_cli
from ops.target import Target
from sso_bridge.handoff import cookie_name
from sso_bridge.login_token import TokenKind, verify_login_token
from tests.helpers import LOGIN_TOKEN_KEY, SECRET_IDS, WORKSPACE, LambdaContext, load_event, make_login_token
from tests.unit.test_target import FUNCTION_URLS, KUSTOMER_HOST, STACK
from tests.vendor_requests import deployed

DAY = 86400
API_URL = "https://sso.example.com"  # the stack's ApiUrl output: its custom domain
# Each vendor's sign-in route on the HTTP API (template.yaml's POST routes): what VIA=api links open.
SIGN_IN_PATHS = {
    "clickfunnels": "/clickfunnels/sso",
    "kustomer": "/kustomer/login",
    "happyfox": "/happyfox/login",
    "zendesk": "/zendesk/login",
    "canny": "/canny/login",
    "discourse": "/discourse/login",
    "freshworks": "/freshworks/login",
}
# The portals that start sign-in themselves and return to the route pasted in their admin (the hand-off).
HANDED_OFF = {"discourse", "freshworks"}
# The first three's (tests/unit/test_target.py), and the portals added after them.
ALL_FUNCTION_URLS = {
    **FUNCTION_URLS,
    "zendesk": "https://zd0123456789abcdef.lambda-url.eu-west-1.on.aws/",
    "canny": "https://ca0123456789abcdef.lambda-url.eu-west-1.on.aws/",
    "discourse": "https://di0123456789abcdef.lambda-url.eu-west-1.on.aws/",
    "freshworks": "https://fw0123456789abcdef.lambda-url.eu-west-1.on.aws/",
}
SETTINGS = {
    "CLICKFUNNELS_WORKSPACE_DOMAIN": WORKSPACE,
    "CLICKFUNNELS_REDIRECT_HOSTS": "",
    "KUSTOMER_REDIRECT_HOSTS": KUSTOMER_HOST,
    "KUSTOMER_PORTAL_URL": f"https://{KUSTOMER_HOST}/login",
    "ZENDESK_ACCOUNT_URL": "https://acme.zendesk.com",
    "ZENDESK_HOSTS": "",
    "CANNY_COMPANY_ID": "5f0c1d2e3a4b5c6d7e8f9a0b",
    "CANNY_REDIRECT_HOSTS": "acme.canny.io",
    "CANNY_PORTAL_URL": "https://acme.canny.io/",
    "DISCOURSE_URL": "https://community.example.com",
    "FRESHWORKS_CLIENT_ID": "100000000000000001",
    "FRESHWORKS_REDIRECT_HOSTS": "acme.freshworks.com",
    "FRESHWORKS_PORTAL_URL": "https://acme.freshdesk.com/support/login",
    "LINK_TOKEN_MAX_TTL": str(7 * DAY),
}


class KeylessTarget(Target):
    """A target whose key must not be read: refusals come before it."""

    def login_token_key(self) -> str:
        raise AssertionError("the login-token key was read")


def bridge(
    *, vendors: tuple[str, ...] = tuple(ALL_FUNCTION_URLS), local: bool = False, keyless: bool = False, **fields: Any
) -> Target:
    """The stack ``resolve`` would find: ``vendors`` switched on; ``keyless``: its key must not be read."""
    values: dict[str, Any] = {
        "where": "the local stack at http://localhost:3000" if local else f"stack {STACK} in eu-west-1",
        "local": local,
        "session": boto3.session.Session(region_name="eu-west-1"),
        "endpoint_url": None,
        "function_urls": {vendor: ALL_FUNCTION_URLS[vendor] for vendor in vendors},
        "resources": {"LOGIN_TOKEN_SECRET_ID": SECRET_IDS["login"]},
        "settings": SETTINGS,
        "api_url": API_URL,
    }
    return (KeylessTarget if keyless else Target)(**{**values, **fields})


def run(monkeypatch: pytest.MonkeyPatch, target: Target | None, *argv: str) -> tuple[int, str, str]:
    """``python -m ops.link ARGV`` with ``target`` as the stack it finds (``None``: finding it fails the test)."""

    def resolve(local: bool, stack_name: str) -> Target:
        assert target is not None, "the target was looked up"
        return target

    monkeypatch.setattr(link_cli, "resolve", resolve)
    out, err = io.StringIO(), io.StringIO()
    status = link_cli.main(list(argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def token_of(url: str) -> str:
    [token] = parse_qs(urlsplit(url).query)["login_token"]
    return token


# --- not a vendor, and a vendor the stack does not have -------------------------------------------------


@pytest.mark.parametrize("name", ["nolt", "", "ClickFunnels", "zendesk ", "site", "$(touch x)\x1b[2J"])
def test_a_name_that_is_no_vendor_is_one_usage_line_listing_the_vendors(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # The stack is never looked up: the name is wrong whatever it has
    status, out, err = run(monkeypatch, None, "--provider", name, "--email", "jane@example.com")
    assert (status, out) == (2, "")
    assert err.count("\n") == 1
    assert err.startswith("python -m ops.link: error: --provider ")
    assert err.endswith("clickfunnels, kustomer, happyfox, zendesk, canny, discourse, freshworks\n")
    assert ("is required: the vendor portal, one of" if not name else "is not a vendor portal:") in err
    assert "\x1b" not in err


def test_a_vendor_the_stack_was_deployed_without_names_the_switch_before_any_key_is_read(
    monkeypatch: pytest.MonkeyPatch, aws: Any
) -> None:
    # Given a stack deployed with EnableHappyFox=false (no HappyFox function URL)
    target = bridge(vendors=("clickfunnels", "kustomer"), keyless=True)

    # When an operator mints a HappyFox link
    status, out, err = run(monkeypatch, target, "--provider", "happyfox", "--email", "jane@example.com")

    # Then it is a usage error saying which switch left HappyFox out, and no key was read
    assert (status, out) == (2, "")
    assert err == (
        f"python -m ops.link: error: stack {STACK} in eu-west-1 has no happyfox: "
        "it was deployed with EnableHappyFox=false (redeploy with EnableHappyFox=true)\n"
    )
    # And the vendors it has still get links
    status, out, err = run(
        monkeypatch, bridge(vendors=("clickfunnels", "kustomer")), "--provider", "kustomer", "--email", "j@example.com"
    )
    assert (status, err) == (0, "")
    assert out.startswith(FUNCTION_URLS["kustomer"] + "?login_token=")


@pytest.mark.parametrize(("vendor", "switch"), [("zendesk", "EnableZendesk"), ("freshworks", "EnableFreshworks")])
def test_a_new_portal_the_stack_was_deployed_without_names_its_own_switch(
    monkeypatch: pytest.MonkeyPatch, vendor: str, switch: str
) -> None:
    # The four new portals default to off: a stack deployed before them, or without them, has none
    target = bridge(vendors=("clickfunnels", "kustomer", "happyfox"), keyless=True)
    status, out, err = run(monkeypatch, target, "--provider", vendor, "--email", "jane@example.com")
    assert (status, out) == (2, "")
    assert err == (
        f"python -m ops.link: error: stack {STACK} in eu-west-1 has no {vendor}: "
        f"it was deployed with {switch}=false (redeploy with {switch}=true)\n"
    )


def test_a_vendor_the_local_stack_runs_without_says_how_to_restart_it(monkeypatch: pytest.MonkeyPatch) -> None:
    target = bridge(vendors=("kustomer",), local=True, keyless=True)
    status, out, err = run(monkeypatch, target, "--provider", "clickfunnels", "--email", "jane@example.com")
    assert (status, out) == (2, "")
    assert err == (
        "python -m ops.link: error: the local stack runs without clickfunnels: "
        "restart `make run` with VENDORS=clickfunnels,kustomer\n"
    )


def test_a_mailing_for_a_vendor_the_stack_lacks_writes_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    source, dest = tmp_path / "contacts.csv", tmp_path / "links.csv"
    source.write_text("email\njane@example.com\n")
    target = bridge(vendors=("clickfunnels",), keyless=True)
    status, _, err = run(monkeypatch, target, "--provider", "kustomer", "--in", str(source), "--out", str(dest))
    assert status == 2
    assert "has no kustomer: it was deployed with EnableKustomer=false" in err
    assert not dest.exists()


# --- VIA=api ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", list(SIGN_IN_PATHS))
def test_via_api_puts_the_same_link_on_the_apis_public_host_and_sign_in_route(
    monkeypatch: pytest.MonkeyPatch, aws: Any, vendor: str
) -> None:
    # When an operator mints the same link through the function URL and through the API
    argv = ("--provider", vendor, "--email", "jane@example.com", "--name", "Jane Doe", "--campaign", "spring")
    status, by_url, err = run(monkeypatch, bridge(), *argv, "--via", "url")
    assert status == 0
    # A portal that sends readers back to its configured route: the function URL works, with one more sign-in
    assert ("signs in once more" in err or "sign in once more" in err) == (vendor in HANDED_OFF)
    status, by_api, err = run(monkeypatch, bridge(), *argv, "--via", "api")
    assert (status, err) == (0, "")

    # Then the API link is on the stack's public host and the vendor's sign-in route, with only the token
    api_link = by_api.strip()
    assert by_api.count("\n") == 1
    assert api_link.startswith(f"{API_URL}{SIGN_IN_PATHS[vendor]}?login_token=")
    assert list(parse_qs(urlsplit(api_link).query)) == ["login_token"]
    # And its token is the function URL link's in every respect but its own jti and times
    url_token, api_token = token_of(by_url.strip()), token_of(api_link)
    assert (
        jwt.get_unverified_header(api_token) == jwt.get_unverified_header(url_token) == {"alg": "HS256", "typ": "JWT"}
    )
    url_claims = jwt.decode(url_token, LOGIN_TOKEN_KEY, algorithms=["HS256"], audience=vendor)
    api_claims = jwt.decode(api_token, LOGIN_TOKEN_KEY, algorithms=["HS256"], audience=vendor)
    assert list(api_claims) == list(url_claims)
    varying = {"jti", "iat", "exp"}
    assert {k: v for k, v in api_claims.items() if k not in varying} == {
        k: v for k, v in url_claims.items() if k not in varying
    }
    assert api_claims["jti"] != url_claims["jti"]
    assert api_claims["exp"] - api_claims["iat"] == 7 * DAY
    identity = verify_login_token(
        api_token, keys=[LOGIN_TOKEN_KEY], audience=vendor, max_ttl=300, link_max_ttl=7 * DAY, leeway=30
    )
    assert identity.kind is TokenKind.LINK


@pytest.mark.parametrize("vendor", list(SIGN_IN_PATHS))
def test_a_portal_that_hands_off_gets_its_links_on_the_route_it_returns_to_by_default(
    monkeypatch: pytest.MonkeyPatch, aws: Any, vendor: str
) -> None:
    # Discourse and Freshworks send the reader back to the route their admin names, on the API's host: the
    # hand-off cookie must be on that host, so their links open there unless the operator says otherwise
    status, out, err = run(monkeypatch, bridge(), "--provider", vendor, "--email", "jane@example.com")
    assert (status, err) == (0, "")
    expected = f"{API_URL}{SIGN_IN_PATHS[vendor]}?" if vendor in HANDED_OFF else f"{ALL_FUNCTION_URLS[vendor]}?"
    assert out.strip().startswith(expected)


def test_via_api_keeps_kustomers_destination_as_the_query_parameter(monkeypatch: pytest.MonkeyPatch, aws: Any) -> None:
    destination = f"https://{KUSTOMER_HOST}/hc/articles/42"
    status, out, _ = run(
        monkeypatch,
        bridge(),
        *("--provider", "kustomer", "--email", "jane@example.com", "--redirect-to", destination, "--via", "api"),
    )
    assert status == 0
    link = urlsplit(out.strip())
    assert (link.scheme, link.netloc, link.path) == ("https", "sso.example.com", "/kustomer/login")
    assert link.query.startswith("kustomerRedirectUri=")
    assert unquote(parse_qs(link.query)["kustomerRedirectUri"][0]) == destination


def test_via_api_for_a_mailing_puts_every_link_on_the_api(
    monkeypatch: pytest.MonkeyPatch, aws: Any, tmp_path: Path
) -> None:
    source, dest = tmp_path / "contacts.csv", tmp_path / "links.csv"
    source.write_text("email,name\njane@example.com,Jane\nbob@example.com,Bob\n")
    argv = ("--provider", "clickfunnels", "--in", str(source), "--out", str(dest), "--via", "api")
    status, _, err = run(monkeypatch, bridge(), *argv)
    assert status == 0, err
    rows = dest.read_text().splitlines()[1:]
    assert len(rows) == 2
    for row in rows:
        assert row.split(",")[2].startswith(f"{API_URL}/clickfunnels/sso?login_token=")


@pytest.mark.parametrize("via", ["API", "function", "", "url;touch x", "https://sso.example.com"])
def test_any_other_via_is_one_usage_line_before_the_stack_is_looked_up(
    monkeypatch: pytest.MonkeyPatch, via: str
) -> None:
    status, out, err = run(monkeypatch, None, "--provider", "clickfunnels", "--email", "j@example.com", "--via", via)
    assert (status, out) == (2, "")
    assert err.count("\n") == 1
    assert err.endswith(": url (the function URL, default) or api (the HTTP API)\n")


def test_via_api_on_a_stack_without_an_api_url_output_is_a_target_error(monkeypatch: pytest.MonkeyPatch) -> None:
    target = bridge(api_url="", keyless=True)
    status, out, err = run(monkeypatch, target, "--provider", "clickfunnels", "--email", "j@example.com", "--via=api")
    assert (status, out) == (3, "")
    assert err == (
        f"python -m ops.link: error: stack {STACK} in eu-west-1 has no output ApiUrl: "
        "deploy the current template.yaml\n"
    )


def test_via_api_for_a_vendor_the_stack_lacks_is_still_the_vendor_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    target = bridge(vendors=("kustomer", "happyfox"), keyless=True)
    status, _, err = run(monkeypatch, target, "--provider", "clickfunnels", "--email", "j@example.com", "--via=api")
    assert status == 2
    assert "it was deployed with EnableClickFunnels=false" in err


@pytest.mark.parametrize("vendor", list(SIGN_IN_PATHS))
def test_on_route_is_declared_exactly_for_the_portals_whose_function_hands_off(
    vendor: str, jti_table: Any, link_tables: Any, load_function: Callable[..., ModuleType]
) -> None:
    # Given the reader of a just-spent link, as the function sees them: a login token and none of the portal's own
    # parameters. When the function answers, it hands off (a hand-off cookie) exactly when the stand-in's SPEC says
    # the portal returns to its route, so make link's default follows the function, not a list.
    module = load_function(vendor)
    event = load_event(deployed(vendor).event, query=f"login_token={make_login_token(aud=vendor)}")
    response = module.lambda_handler(event, LambdaContext())
    hands_off = any(cookie.startswith(cookie_name(vendor)) for cookie in response.get("cookies", []))
    assert hands_off == link_rules(vendor).on_route == (vendor in HANDED_OFF)
