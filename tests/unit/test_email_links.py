"""Email links, as readers, mail scanners and whoever an email was forwarded to meet them, on every flow.

A link token (``use: "link"``) waits in an inbox for days. GET and HEAD (what scanners send) answer a
confirmation page and mint nothing; the page's POST spends the link once and signs the reader in; a spent,
expired or revoked link goes through the platform's sign-in instead, and back to where the link pointed.

The page's POST is the button's only when it comes from that page in the same browser: its cookie and hidden
field, and no other site's ``Origin`` or ``Sec-Fetch-Site``. Anything else (another site's form: login CSRF) is
refused and spends nothing. ``Flow.press`` does what a browser does: GET the page, then POST its form.

Every vendor in template.yaml, each link opened with the query its portal sends (tests/vendor_requests.py).
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from botocore.client import BaseClient
from botocore.exceptions import EndpointConnectionError

from sso_bridge.link_store import LinkState, LinkStore
from tests.helpers import (
    LINK_REVOCATIONS_TABLE_NAME,
    SPENT_LINKS_TABLE_NAME,
    LinkPage,
    make_login_token,
)
from tests.link_flows import DAY, EMAIL, Flow, goes_to_sign_in, spent
from tests.vendor_requests import VENDORS, deployed


@pytest.fixture
def dynamodb_calls() -> Iterator[list[str]]:
    """Every DynamoDB operation any client makes, in order."""
    calls: list[str] = []
    real = BaseClient._make_api_call  # type: ignore[attr-defined]  # not in the stubs

    def counting(self: BaseClient, operation: str, params: Any) -> Any:
        if self.meta.service_model.service_name == "dynamodb":
            calls.append(operation)
        return real(self, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", counting):
        yield calls


# --- what a scanner sees -------------------------------------------------------------------------------------


def test_opening_a_link_shows_a_confirmation_page_and_mints_nothing(flow: Flow, link_tables: Any) -> None:
    # Given a link in an email
    link = flow.link()

    # When a mail scanner (or the reader) opens it
    response = flow.call("GET", link)

    # Then it is a small page asking to continue, as whom, with one button and no script; no vendor token
    assert response["statusCode"] == 200
    assert "Location" not in response["headers"]
    body = response["body"]
    assert f"Continue to {deployed(flow.vendor).portal_name}" in body
    assert "j***@example.com" in body
    assert EMAIL not in body
    assert re.findall(r"<form[^>]*>", body) == ['<form method="post">']
    assert body.count("<button") == 1
    assert "<script" not in body.lower()
    assert "http-equiv" not in body.lower()  # no meta refresh: nothing submits itself
    assert link not in body
    assert '<meta name="robots" content="noindex,nofollow">' in body
    headers = response["headers"]
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Robots-Tag"] == "noindex, nofollow"
    assert headers["Referrer-Policy"] == "no-referrer"
    # And the link is still unspent
    assert spent(link_tables) == []


def test_head_on_a_link_answers_the_same_status_without_a_token(flow: Flow, link_tables: Any) -> None:
    response = flow.call("HEAD", flow.link())
    assert response["statusCode"] == 200
    assert response["body"] == ""
    assert "Location" not in response["headers"]
    assert spent(link_tables) == []


def test_head_with_an_interactive_token_mints_nothing_either(flow: Flow) -> None:
    response = flow.call("HEAD", make_login_token(EMAIL, aud=flow.vendor))
    assert response["statusCode"] == 200
    assert "Location" not in response["headers"]


def test_on_a_function_url_a_scanner_leaves_the_link_for_the_reader(url_flow: Flow) -> None:
    # Given a link to a function URL, fetched by a scanner with HEAD and GET, more than once
    link = url_flow.link()
    for method in ("HEAD", "GET", "GET", "HEAD"):
        assert url_flow.call(method, link)["statusCode"] == 200

    # When the reader presses the button (twice)
    page = url_flow.open(link)
    response = url_flow.press(link, page)

    # Then they are signed in, once
    assert response["statusCode"] == url_flow.signed_in("POST")
    assert url_flow.vendor_claims(response)
    assert goes_to_sign_in(url_flow.press(link, page))


# --- what the reader sees ------------------------------------------------------------------------------------


def test_the_button_spends_the_link_and_signs_the_reader_in(flow: Flow, link_tables: Any) -> None:
    # Given a link with a campaign
    link = flow.link(name="Jane Doe", campaign="spring-sale")

    # When the reader presses Continue
    response = flow.press(link)

    # Then they are sent on (303, so the browser follows with GET; or a page posting it) with a token the vendor
    # accepts
    assert response["statusCode"] == flow.signed_in("POST")
    assert flow.portal.email(response["headers"].get("Location", ""), response["body"]) == EMAIL
    # And the link is recorded as spent, with its campaign and nothing secret
    [item] = spent(link_tables)
    link_jti = jwt.decode(link, options={"verify_signature": False})["jti"]
    assert item["jti"] == {"S": link_jti}
    assert item["vendor"] == {"S": flow.vendor}
    assert item["campaign"] == {"S": "spring-sale"}
    assert item["expires_at"] == {"N": str(jwt.decode(link, options={"verify_signature": False})["exp"])}
    assert all(link not in json.dumps(value) for value in item.values())


def test_a_second_click_goes_through_the_platform_sign_in(flow: Flow) -> None:
    # Given a link already spent
    link = flow.link()
    page = flow.open(link)
    assert flow.press(link, page)["statusCode"] == flow.signed_in("POST")

    # When it is used again (the reader clicks twice, or a forwardee tries it)
    again = flow.press(link, page)
    reopened = flow.call("GET", link)

    # Then no vendor token: the normal sign-in round trip, back to this link without its token
    for response in (again, reopened):
        assert goes_to_sign_in(response), response
        assert response["statusCode"] in (302, 303)
    assert again["statusCode"] == 303
    return_to = parse_qs(urlsplit(again["headers"]["Location"]).query)["return_to"][0]
    assert urlsplit(return_to).scheme == "https"
    assert flow.query in return_to


def test_an_expired_link_goes_through_the_platform_sign_in(flow: Flow) -> None:
    link = flow.link(issued=int(time.time()) - 8 * DAY, lifetime=7 * DAY)
    for method in ("GET", "POST"):
        assert goes_to_sign_in(flow.call(method, link))
    # Also the button of a page opened before the link expired (the check is of the link first)
    assert goes_to_sign_in(flow.press(link, LinkPage("sso_bridge_link=AAAAAAAAAAAAAAAAAAAAAA", "x")))


def test_a_revoked_link_no_longer_signs_anyone_in(flow: Flow) -> None:
    # Given a link whose page is open, then the address's links are withdrawn
    link = flow.link(issued=int(time.time()) - 60)
    page = flow.open(link)
    LinkStore(SPENT_LINKS_TABLE_NAME, LINK_REVOCATIONS_TABLE_NAME).revoke(EMAIL.upper(), now=int(time.time()))

    # Then neither opening nor confirming it reaches the vendor
    assert goes_to_sign_in(flow.call("GET", link))
    assert goes_to_sign_in(flow.press(link, page))

    # But a link issued after the revocation works
    later = flow.link(issued=int(time.time()) + 1)
    assert flow.press(later)["statusCode"] == flow.signed_in("POST")


@pytest.mark.parametrize(
    ("claims", "status"),
    [
        ({"aud": list(VENDORS)}, 401),  # a link names one vendor
        ({"drop": ("jti",)}, 401),
        ({"lifetime": 7 * DAY + 1}, 401),
        ({"use": "links"}, 401),
    ],
    ids=["several-audiences", "no-jti", "over-the-link-cap", "unknown-use"],
)
def test_a_malformed_link_is_refused_on_every_method(flow: Flow, claims: dict[str, Any], status: int) -> None:
    link = flow.link(**claims)
    for method in ("GET", "HEAD", "POST"):
        response = flow.call(method, link)
        assert response["statusCode"] == status
        assert "Location" not in response["headers"]


def test_a_link_for_another_vendor_is_refused(flow: Flow) -> None:
    other = next(vendor for vendor in VENDORS if vendor != flow.vendor)
    assert flow.call("POST", flow.link(aud=other))["statusCode"] == 403


def test_an_interactive_login_token_lasting_a_day_is_refused(flow: Flow) -> None:
    response = flow.call("GET", make_login_token(EMAIL, aud=flow.vendor, lifetime=DAY), accept="application/json")
    assert response["statusCode"] == 401
    assert json.loads(response["body"])["reason"] == "login_token_lifetime"


# --- costs and outages ---------------------------------------------------------------------------------------


def test_an_interactive_login_makes_no_link_lookups(flow: Flow, dynamodb_calls: list[str]) -> None:
    # Interactive logins cost what they did before links: the audit record of the vendors that keep one (HappyFox,
    # Zendesk: template.yaml gives them the jti table), nothing else.
    response = flow.call("GET", make_login_token(EMAIL, aud=flow.vendor))
    assert response["statusCode"] == flow.signed_in()
    assert flow.vendor_claims(response)
    assert dynamodb_calls == (["PutItem"] if flow.records_jti else [])


def test_a_link_costs_one_read_to_show_and_one_transaction_to_spend(flow: Flow, dynamodb_calls: list[str]) -> None:
    link = flow.link()
    page = flow.open(link)
    assert dynamodb_calls == ["BatchGetItem"]
    dynamodb_calls.clear()
    flow.press(link, page)
    assert dynamodb_calls[0] == "TransactWriteItems"
    assert dynamodb_calls == ["TransactWriteItems", *(["PutItem"] if flow.records_jti else [])]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_unreachable_link_table_is_a_503_with_retry_after_and_no_token(flow: Flow, method: str) -> None:
    real = BaseClient._make_api_call  # type: ignore[attr-defined]  # not in the stubs
    link = flow.link()
    page = flow.open(link)  # the reader's page, shown before the outage

    def unreachable(self: BaseClient, operation: str, params: Any) -> Any:
        if self.meta.service_model.service_name == "dynamodb":
            raise EndpointConnectionError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com")
        return real(self, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", unreachable):
        if method == "GET":
            response = flow.call(method, link, accept="application/json")
        else:
            response = flow.press(link, page, accept="application/json")
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"].isdigit()
    assert "Location" not in response["headers"]
    assert json.loads(response["body"])["reason"] == "link_store_unavailable"


# --- what operators and marketing see ------------------------------------------------------------------------


def test_the_spend_is_logged_and_counted_per_campaign(
    flow: Flow, log_stream: Callable[[ModuleType], io.StringIO], capsys: pytest.CaptureFixture[str]
) -> None:
    logs = log_stream(flow.module)
    link = flow.link(campaign="spring-sale")
    flow.press(link)

    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    [spend] = [line for line in lines if line.get("outcome") == "link_spent"]
    assert spend["campaign"] == "spring-sale"
    assert link not in logs.getvalue()
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    spends = [m for m in metrics if "LinkSpent" in m]
    opens = [m for m in metrics if "LinkOpened" in m]
    assert [(m["campaign"], m["service"]) for m in spends] == [("spring-sale", flow.vendor)]
    assert [m["campaign"] for m in opens] == ["spring-sale"]
    assert ["service", "campaign"] in spends[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"]


def test_a_link_without_campaign_is_counted_under_a_dash(flow: Flow, capsys: pytest.CaptureFixture[str]) -> None:
    flow.press(flow.link())
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [m["campaign"] for m in metrics if "LinkSpent" in m] == ["-"]


def test_the_spend_record_matches_what_the_store_reports(flow: Flow) -> None:
    link = flow.link()
    claims = jwt.decode(link, options={"verify_signature": False})
    store = LinkStore(SPENT_LINKS_TABLE_NAME, LINK_REVOCATIONS_TABLE_NAME)
    assert store.state(jti=claims["jti"], email=EMAIL, issued_at=claims["iat"]) is LinkState.USABLE
    flow.press(link)
    assert store.state(jti=claims["jti"], email=EMAIL, issued_at=claims["iat"]) is LinkState.SPENT
