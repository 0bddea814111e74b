"""Only an email link's own button spends it (issue 17, item 1: login CSRF), on one flow of each answer shape.

The binding is the layer's (``sso_bridge.link_form``): vendors differ here only in how the answer looks (a redirect,
a posted form, a hand-off), so each check runs on the first vendor of each shape (``tests.link_flows.one_per_shape``);
tests/unit/test_email_links.py runs the link's page and button on every vendor.

An attacker mints a link for themselves and has a page of theirs POST it from a victim's browser (an auto-submitted
form, or ``fetch(link, {method: "POST", mode: "no-cors"})``): before this, any POST spent the link and signed the
victim into the attacker's account. Now a POST must carry the page's cookie and hidden field from this browser,
and no other site's ``Sec-Fetch-Site`` or ``Origin``. A refused POST spends nothing, answers 403 saying so (JSON
when asked) with the link to open again, is logged once with its reason and counted as Refused; the reader's own
button works afterwards.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Callable
from html import unescape
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest

from tests.helpers import SECRET_IDS, LinkPage, load_event, make_login_token, pressed
from tests.link_flows import Flow, goes_to_sign_in, one_per_shape, spent
from tests.vendor_requests import deployed

JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
OTHER_BROWSER = "sso_bridge_link=QUJDREVGR0hJSktMTU5PUA"  # a well-formed cookie this page never set


@pytest.fixture(params=one_per_shape())
def flow(
    request: pytest.FixtureRequest, jti_table: Any, link_tables: Any, load_function: Callable[..., ModuleType]
) -> Flow:
    """One vendor of each answer shape, through its HTTP API route."""
    return Flow(request.param, load_function(request.param), deployed(request.param).event)


@pytest.fixture(params=one_per_shape())
def url_flow(
    request: pytest.FixtureRequest, jti_table: Any, link_tables: Any, load_function: Callable[..., ModuleType]
) -> Flow:
    """One vendor of each answer shape, through its function URL, where email links point."""
    return Flow(request.param, load_function(request.param), deployed(request.param).url_event)


def set_cookie_attributes(response: dict[str, Any]) -> dict[str, str]:
    [raw] = [cookie for cookie in response.get("cookies", []) if cookie.startswith("sso_bridge_link=")]
    parts = [part.strip() for part in raw.split(";")]
    return {name.lower(): value for name, _, value in (part.partition("=") for part in parts[1:])}


def jti_of(link: str) -> str:
    return str(jwt.decode(link, options={"verify_signature": False})["jti"])


def assert_refused(response: dict[str, Any], reason: str, link_tables: Any, link: str) -> None:
    """What the victim's browser shows: a 403 page that says nothing happened; ``link`` not spent, no redirect."""
    assert response["statusCode"] == 403, (response["statusCode"], response.get("body", "")[:300])
    assert "Location" not in response["headers"]
    assert jti_of(link) not in [item["jti"]["S"] for item in spent(link_tables)]
    body = response["body"]
    if response["headers"].get("Content-Type", "").startswith("application/json"):
        assert json.loads(body)["reason"] == reason
    else:
        assert "Nothing happened" in body
        assert "open the link again" in body


# --- the page ------------------------------------------------------------------------------------------------


def test_the_page_binds_its_button_to_this_browser_with_a_strict_cookie(flow: Flow, url_flow: Flow) -> None:
    for each, path in ((flow, load_event(flow.event)["rawPath"]), (url_flow, "/")):
        response = each.call("GET", each.link())
        attributes = set_cookie_attributes(response)
        # HttpOnly (no script reads it), Secure, SameSite=Strict (no other site's request carries it), this route only
        assert {"httponly", "secure"} <= set(attributes)
        assert attributes["samesite"] == "Strict"
        assert attributes["path"] == path
        assert int(attributes["max-age"]) >= 3600
        # And the form carries the field, once, hidden; still no script and no action
        body = response["body"]
        assert re.findall(r"<form[^>]*>", body) == ['<form method="post">']
        assert len(re.findall(r'<input type="hidden" name="link_form" value="[A-Za-z0-9_-]{43}">', body)) == 1
        assert "<script" not in body.lower()


def test_a_second_link_opened_in_the_same_browser_keeps_the_cookie_and_both_buttons_work(url_flow: Flow) -> None:
    first_link, second_link = url_flow.link(), url_flow.link()
    first = url_flow.open(first_link)
    second = url_flow.open(second_link, cookie=first.cookie)
    assert second.cookie == first.cookie
    assert second.field != first.field  # the field is per link
    assert url_flow.press(second_link, second)["statusCode"] == url_flow.signed_in("POST")
    assert url_flow.press(first_link, first)["statusCode"] == url_flow.signed_in("POST")


# --- what another site's page can send -----------------------------------------------------------------------

# name -> (how the POST is made from the victim's page and the attacker's, the reason logged)
Attack = Callable[[Flow, str, LinkPage, LinkPage], dict[str, Any]]


def _bare(flow: Flow, link: str, victim: LinkPage, attacker: LinkPage) -> dict[str, Any]:
    # fetch(link, {method: "POST", mode: "no-cors"}) or a plain auto-submitted form: no field, no cookie
    return flow.call("POST", link, origin="null")


def _attackers_field_without_cookie(flow: Flow, link: str, victim: LinkPage, attacker: LinkPage) -> dict[str, Any]:
    # The attacker copied the field from the page in their own browser; a SameSite=Strict cookie is not sent
    event = pressed(flow.request("GET", link), attacker, origin="null", sec_fetch_site="same-origin")
    event["cookies"] = []
    return flow.invoke(event)


def _attackers_field_with_the_victims_cookie(
    flow: Flow, link: str, victim: LinkPage, attacker: LinkPage
) -> dict[str, Any]:
    # An old browser that sends the victim's cookie anyway: the attacker's field is for another cookie
    return flow.invoke(pressed(flow.request("GET", link), LinkPage(victim.cookie, attacker.field)))


def _cookie_without_field(flow: Flow, link: str, victim: LinkPage, attacker: LinkPage) -> dict[str, Any]:
    event = pressed(flow.request("GET", link), victim)
    event["body"] = ""
    return flow.invoke(event)


def _another_links_field(flow: Flow, link: str, victim: LinkPage, attacker: LinkPage) -> dict[str, Any]:
    other = flow.link()
    return flow.invoke(pressed(flow.request("GET", link), flow.open(other, cookie=victim.cookie)))


def _malformed_cookie(flow: Flow, link: str, victim: LinkPage, attacker: LinkPage) -> dict[str, Any]:
    return flow.invoke(pressed(flow.request("GET", link), LinkPage("sso_bridge_link=x;y", victim.field)))


def _headers(**headers: str) -> Attack:
    def attack(flow: Flow, link: str, victim: LinkPage, attacker: LinkPage) -> dict[str, Any]:
        # Even with the victim's own cookie and field (say a browser sent a Strict cookie where it should not)
        return flow.invoke(pressed(flow.request("GET", link), victim, **headers))

    return attack


def _body(body: str, *, base64_encoded: bool = False) -> Attack:
    def attack(flow: Flow, link: str, victim: LinkPage, attacker: LinkPage) -> dict[str, Any]:
        event = pressed(flow.request("GET", link), victim)
        event["body"], event["isBase64Encoded"] = body, base64_encoded
        return flow.invoke(event)

    return attack


ATTACKS: dict[str, tuple[Attack, str]] = {
    "bare-post": (_bare, "link_post_unbound"),
    "attackers-field-no-cookie": (_attackers_field_without_cookie, "link_post_unbound"),
    "attackers-field-victims-cookie": (_attackers_field_with_the_victims_cookie, "link_post_unbound"),
    "cookie-no-field": (_cookie_without_field, "link_post_unbound"),
    "another-links-field": (_another_links_field, "link_post_unbound"),
    "malformed-cookie": (_malformed_cookie, "link_post_unbound"),
    "sec-fetch-cross-site": (
        _headers(sec_fetch_site="cross-site", origin="https://evil.example.net"),
        "link_post_cross_site",
    ),
    "sec-fetch-same-site": (_headers(sec_fetch_site="same-site"), "link_post_cross_site"),
    "sec-fetch-none": (_headers(sec_fetch_site="none"), "link_post_cross_site"),
    "foreign-origin": (_headers(sec_fetch_site="", origin="https://evil.example.net"), "link_post_cross_origin"),
    "foreign-origin-no-fetch-metadata": (_headers(origin="https://evil.example.net"), "link_post_cross_origin"),
    "own-host-over-http": (
        _headers(origin="http://abc123.execute-api.eu-west-1.amazonaws.com"),
        "link_post_cross_origin",
    ),
    "repeated-field": (_body("link_form=a&link_form=b"), "link_post_unbound"),
    "huge-body": (_body("link_form=" + "a" * 5000), "link_post_unbound"),
    "non-ascii-field": (_body("link_form=%C3%A9t%C3%A9"), "link_post_unbound"),
    "bad-base64": (_body("not base64!", base64_encoded=True), "link_post_unbound"),
    "binary-base64": (
        _body(base64.b64encode(b"\xff\xfe\x00link_form").decode(), base64_encoded=True),
        "link_post_unbound",
    ),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_a_post_from_anywhere_but_the_page_spends_nothing_and_the_reader_still_gets_in(
    flow: Flow,
    link_tables: Any,
    name: str,
    log_stream: Callable[[ModuleType], io.StringIO],
    capsys: pytest.CaptureFixture[str],
) -> None:
    attack, reason = ATTACKS[name]
    # Given the attacker's own link, its page opened in the attacker's browser and in the victim's
    link = flow.link()
    attacker, victim = flow.open(link), flow.open(link)
    assert attacker.cookie != victim.cookie
    logs = log_stream(flow.module)
    capsys.readouterr()

    # When another site makes the victim's browser POST it
    response = attack(flow, link, victim, attacker)

    # Then nothing is spent and no vendor token is minted
    assert_refused(response, reason, link_tables, link)
    # And the operator sees one line with the reason, and one Refused
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert [line["reason"] for line in lines if line["message"] == "request refused"] == [reason]
    assert not [line for line in lines if line.get("outcome") in ("link_spent", "issued")]
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [m["reason"] for m in metrics if "Refused" in m] == [reason]
    assert not [m for m in metrics if "TokenIssued" in m or "LinkSpent" in m]

    # And the reader's own button still works
    assert flow.press(link, victim)["statusCode"] == flow.signed_in("POST")


@pytest.mark.parametrize(
    "headers",
    [
        {},  # Chromium's button: Origin null, Sec-Fetch-Site same-origin (tests.helpers.BUTTON_HEADERS)
        {"origin": "", "sec_fetch_site": ""},  # a browser that sends neither
        {"origin": "https://abc123.execute-api.eu-west-1.amazonaws.com", "sec_fetch_site": ""},  # its own origin
        {"origin": "HTTPS://ABC123.execute-api.eu-west-1.amazonaws.com"},
    ],
    ids=["chromium", "no-headers", "own-origin", "own-origin-upper-case"],
)
def test_the_pages_own_button_is_accepted(flow: Flow, headers: dict[str, str]) -> None:
    link = flow.link()
    response = flow.invoke(pressed(flow.request("GET", link), flow.open(link), **headers))
    assert response["statusCode"] == flow.signed_in("POST")
    assert flow.vendor_claims(response)


def test_a_form_body_the_function_url_base64_encodes_is_read(url_flow: Flow) -> None:
    link = url_flow.link()
    event = pressed(url_flow.request("GET", link), url_flow.open(link))
    event["body"], event["isBase64Encoded"] = base64.b64encode(event["body"].encode()).decode(), True
    assert url_flow.invoke(event)["statusCode"] == url_flow.signed_in("POST")


def test_behind_public_host_the_public_origin_and_the_apis_own_are_both_the_requests(
    jti_table: Any, link_tables: Any, load_function: Callable[..., ModuleType]
) -> None:
    flow = Flow(
        "clickfunnels", load_function("clickfunnels", PUBLIC_HOST="sso.example.com"), "clickfunnels-sso-httpapi"
    )
    for origin in ("https://sso.example.com", "https://abc123.execute-api.eu-west-1.amazonaws.com"):
        link = flow.link()
        assert flow.press(link, origin=origin, sec_fetch_site="")["statusCode"] == flow.signed_in("POST"), origin
    link = flow.link()
    refused = flow.press(link, origin="https://evil.sso.example.com", sec_fetch_site="")
    assert_refused(refused, "link_post_cross_origin", link_tables, link)


# --- what the victim, and the reader, see ----------------------------------------------------------------------


def test_a_refused_post_says_so_and_offers_the_link_again(flow: Flow, link_tables: Any) -> None:
    link = flow.link()
    request = flow.request("GET", link)
    url = f"https://{request['requestContext']['domainName']}{request['rawPath']}?{request['rawQueryString']}"

    # A browser: the page says nothing happened, and its link opens the page again
    page = flow.call("POST", link, origin="https://evil.example.net", sec_fetch_site="cross-site")
    assert_refused(page, "link_post_cross_site", link_tables, link)
    assert page["headers"]["Content-Type"].startswith("text/html")
    assert page["headers"]["Cache-Control"] == "no-store"
    assert page["headers"]["Referrer-Policy"] == "no-referrer"
    hrefs = [unescape(href) for href in re.findall(r'<a href="([^"]+)"', page["body"])]
    assert url in hrefs
    # which is the way forward: that GET shows the page with a cookie, and its button signs the reader in
    assert urlsplit(url).query.endswith(f"login_token={link}")
    assert flow.press(link)["statusCode"] == flow.signed_in("POST")

    # A JSON client gets the same, as JSON, and no other token than the link it sent
    other = flow.link()
    answer = flow.call("POST", other, accept="application/json")
    assert answer["statusCode"] == 403
    assert answer["headers"]["Content-Type"].startswith("application/json")
    payload = json.loads(answer["body"])
    assert (payload["error"], payload["reason"]) == ("link_post_refused", "link_post_unbound")
    assert payload["retry_url"].endswith(f"login_token={other}")
    assert set(JWT_LIKE.findall(answer["body"])) == {other}


def test_a_replayed_form_goes_to_sign_in_and_a_form_for_one_link_does_not_spend_another(
    flow: Flow, link_tables: Any
) -> None:
    link = flow.link()
    page = flow.open(link)
    assert flow.press(link, page)["statusCode"] == flow.signed_in("POST")
    # The same form again (a double click, the back button, a replay): the link is spent
    assert goes_to_sign_in(flow.press(link, page))
    # The spent link's form at another link of the same browser and reader: refused, the other link kept
    other = flow.link()
    response = flow.press(other, page)
    assert response["statusCode"] == 403
    assert len(spent(link_tables)) == 1
    assert flow.press(other)["statusCode"] == flow.signed_in("POST")


def test_an_interactive_token_is_not_bound(flow: Flow) -> None:
    # Interactive tokens work by GET; their POST (a platform's form) is not an email link's and is not refused
    response = flow.call("POST", make_login_token(aud=flow.vendor), origin="https://platform.example.com")
    assert response["statusCode"] == flow.signed_in("POST")


def test_a_well_formed_cookie_this_browser_never_got_is_refused(flow: Flow, link_tables: Any) -> None:
    link = flow.link()
    page = flow.open(link)
    response = flow.invoke(pressed(flow.request("GET", link), LinkPage(OTHER_BROWSER, page.field)))
    assert_refused(response, "link_post_unbound", link_tables, link)


def test_a_page_shown_before_a_key_rotation_still_works_after_it(
    aws: Any, jti_table: Any, link_tables: Any, load_function: Callable[..., ModuleType]
) -> None:
    flow = Flow("clickfunnels", load_function("clickfunnels"), "clickfunnels-sso-function-url")
    link = flow.link()
    page = flow.open(link)
    # The operator rotates the login-token key (the link, signed with the old one, is within the grace)
    aws.put_secret_value(
        SecretId=SECRET_IDS["login"], SecretString="rotated-login-token-key-0123456789abcdef0123456789"
    )
    flow.module.flow.keys.clear()
    assert flow.press(link, page)["statusCode"] == flow.signed_in("POST")
