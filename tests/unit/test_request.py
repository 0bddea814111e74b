"""Reading the request: strict query parsing and the URL the user comes back to."""

from __future__ import annotations

import pytest

from sso_bridge.errors import BadRequest, InputTooLarge
from sso_bridge.http import Event
from sso_bridge.request import Query, login_redirect_url, request_url
from tests.helpers import load_event


def test_repeated_parameter_is_a_bad_request() -> None:
    # Payload v2 would join these with a comma; we refuse to guess.
    with pytest.raises(BadRequest):
        Query("login_token=a&login_token=b")


def test_oversized_query_is_refused() -> None:
    with pytest.raises(InputTooLarge):
        Query("x=" + "a" * 9000)


def test_too_many_fields_is_a_bad_request() -> None:
    with pytest.raises(BadRequest):
        Query("&".join(f"p{i}=1" for i in range(100)))


def test_value_over_its_limit_is_refused() -> None:
    with pytest.raises(InputTooLarge):
        Query("redirect_to=" + "a" * 50).get("redirect_to", max_length=40)


def test_empty_value_counts_as_absent() -> None:
    assert Query("login_token=").get("login_token", max_length=10) is None


def test_return_url_keeps_the_query_byte_for_byte_without_the_stale_token() -> None:
    raw = "trackingToken=e30.e30.&kustomerRedirectUri=https%3A%2F%2Fa.kustomer.help%2Flogin%3Fr%3D1&login_token=old"
    event = Event(load_event("clickfunnels-sso-httpapi", query=raw))
    assert request_url(event) == (
        "https://abc123.execute-api.eu-west-1.amazonaws.com/clickfunnels/sso"
        "?trackingToken=e30.e30.&kustomerRedirectUri=https%3A%2F%2Fa.kustomer.help%2Flogin%3Fr%3D1"
    )


def test_login_redirect_appends_return_to_to_an_existing_query() -> None:
    assert login_redirect_url("https://app.example.com/login?tenant=7", "https://b.example.com/x?y=1") == (
        "https://app.example.com/login?tenant=7&return_to=https%3A%2F%2Fb.example.com%2Fx%3Fy%3D1"
    )


def test_return_url_carries_a_deep_link_in_place_of_the_one_in_the_query() -> None:
    raw = "redirect_to=https%3A%2F%2Fevil.example%2F&tab=1&login_token=old"
    event = Event(load_event("clickfunnels-sso-httpapi", query=raw))
    deep_link = "https://shop.example.com/a/b?x=1&y=2#top"
    assert request_url(event, add={"redirect_to": deep_link}) == (
        "https://abc123.execute-api.eu-west-1.amazonaws.com/clickfunnels/sso"
        "?tab=1&redirect_to=https%3A%2F%2Fshop.example.com%2Fa%2Fb%3Fx%3D1%26y%3D2%23top"
    )


def test_an_added_parameter_name_cannot_break_out_of_its_field() -> None:
    event = Event(load_event("clickfunnels-sso-httpapi", query=""))
    url = request_url(event, add={"a/b&c=d#e": "v"})
    assert url.endswith("/clickfunnels/sso?a%2Fb%26c%3Dd%23e=v")
