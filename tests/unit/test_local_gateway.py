"""The local gateway sends redirects to vendor hosts that have a stand-in to the stand-in, and nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from local.gateway import ApiRoute, RouteTable, function_url_app, http_api_app, local_location
from local.server import Reply, Request

ORIGINS = {"yourworkspace.myclickfunnels.com": "http://localhost:3004", "acme.kustomer.help": "http://localhost:3006"}
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        (
            f"https://yourworkspace.myclickfunnels.com/sso?identifier=a%2Bb%40example.com&strategy=email&token={TOKEN}",
            f"http://localhost:3004/sso?identifier=a%2Bb%40example.com&strategy=email&token={TOKEN}",
        ),
        (
            "https://acme.kustomer.help/login?referralUrl=https%3A%2F%2Facme.kustomer.help%2F&externalToken=x",
            "http://localhost:3006/login?referralUrl=https%3A%2F%2Facme.kustomer.help%2F&externalToken=x",
        ),
        ("https://acme.kustomer.help", "http://localhost:3006"),
        ("https://acme.kustomer.help?x=1", "http://localhost:3006?x=1"),
        ("https://acme.kustomer.help#top", "http://localhost:3006#top"),
    ],
)
def test_a_vendor_host_with_a_stand_in_goes_to_the_stand_in_path_and_query_untouched(
    location: str, expected: str
) -> None:
    assert local_location(location, ORIGINS) == expected


@pytest.mark.parametrize(
    "location",
    [
        "https://acme.kustomer.help.evil.example/login",
        "https://acme.kustomer.helper/login",
        "https://acme.kustomer.help:443/login",
        "https://user@acme.kustomer.help/login",
        "http://acme.kustomer.help/login",
        "https://ACME.kustomer.help/login",
        "https://yourcompany.happyfox.com/jwt/?token=x",
        "http://localhost:3000/_platform/login?return_to=https%3A%2F%2Facme.kustomer.help%2F",
        "/relative",
    ],
)
def test_anything_else_is_left_alone(location: str) -> None:
    assert local_location(location, ORIGINS) == location


def request(target: str) -> Request:
    return Request("GET", target, [("Host", "localhost:3000")], b"", "127.0.0.1", "HTTP/1.1", 3000)


def redirect_to(location: str) -> Any:
    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        return {"statusCode": 302, "headers": {"Location": location, "X-Location": location}, "body": ""}

    return invoke


def test_the_http_api_and_function_urls_rewrite_only_the_location_header() -> None:
    location = f"https://yourworkspace.myclickfunnels.com/sso?token={TOKEN}"
    routes = RouteTable([ApiRoute("GET", "/clickfunnels/sso", redirect_to(location))])
    api = http_api_app(routes, fallback=lambda _: None, vendor_origins=ORIGINS)
    url = function_url_app(redirect_to(location), function_id="clickfunnelsfunction", vendor_origins=ORIGINS)

    for reply in (api(request("/clickfunnels/sso")), url(request("/"))):
        headers = dict(reply.headers)
        assert headers["Location"] == f"http://localhost:3004/sso?token={TOKEN}"
        assert headers["X-Location"] == location


def test_without_stand_ins_redirects_go_to_the_vendor() -> None:
    location = f"https://yourworkspace.myclickfunnels.com/sso?token={TOKEN}"
    routes = RouteTable([ApiRoute("GET", "/clickfunnels/sso", redirect_to(location))])
    reply = http_api_app(routes, fallback=lambda _: None)(request("/clickfunnels/sso"))
    assert dict(reply.headers)["Location"] == location


# A form that posts the vendor token (Zendesk's /access/jwt): to the stand-in, with the policy that lets it.

ZENDESK = {"yourcompany.zendesk.com": "http://localhost:3011"}
FORM_POLICY = (
    "default-src 'none'; script-src 'sha256-x'; form-action https://yourcompany.zendesk.com https://help.example.org"
)


def form_page(action: str, *, content_type: str = "text/html; charset=utf-8") -> Any:
    body = f'<form method="post" action="{action}"><input type="hidden" name="jwt" value="{TOKEN}"></form>'

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": content_type, "Content-Security-Policy": FORM_POLICY}
        return {"statusCode": 200, "headers": headers, "body": body}

    return invoke


def test_a_form_posting_to_a_stand_in_host_posts_to_the_stand_in_and_the_policy_allows_it() -> None:
    routes = RouteTable([ApiRoute("GET", "/zendesk/login", form_page("https://yourcompany.zendesk.com/access/jwt"))])
    reply = http_api_app(routes, fallback=lambda _: None, vendor_origins=ZENDESK)(request("/zendesk/login"))
    assert b'action="http://localhost:3011/access/jwt"' in reply.body
    assert b"https://yourcompany.zendesk.com" not in reply.body
    assert f'value="{TOKEN}"'.encode() in reply.body  # the fields untouched
    assert dict(reply.headers)["Content-Security-Policy"] == (
        "default-src 'none'; script-src 'sha256-x'; form-action http://localhost:3011 https://help.example.org"
    )


@pytest.mark.parametrize(
    "action",
    [
        "https://yourcompany.zendesk.com.evil.example/access/jwt",
        "https://yourcompany.zendesk.company/access/jwt",
        "https://yourcompany.zendesk.com:8443/access/jwt",
        "https://user@yourcompany.zendesk.com/access/jwt",
        "http://yourcompany.zendesk.com/access/jwt",
        "https://help.example.org/access/jwt",
    ],
)
def test_a_form_to_any_other_host_is_left_alone(action: str) -> None:
    url = function_url_app(form_page(action), function_id="zendeskfunction", vendor_origins=ZENDESK)
    reply = url(request("/"))
    assert f'action="{action}"'.encode() in reply.body


def test_only_html_pages_forms_are_rewritten() -> None:
    action = "https://yourcompany.zendesk.com/access/jwt"
    api = function_url_app(form_page(action, content_type="text/plain"), function_id="z", vendor_origins=ZENDESK)
    assert f'action="{action}"'.encode() in api(request("/")).body


# What no route matches: the $default route's function when the template has one, else API Gateway's own 404.


def echo_route_key(event: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": 404, "headers": {"Content-Type": "application/json"}, "body": event["routeKey"]}


def test_an_unknown_path_goes_to_the_default_route_s_function_with_its_route_key() -> None:
    routes = RouteTable([ApiRoute("GET", "/clickfunnels/sso", redirect_to("https://x.example/"))])
    api = http_api_app(routes, fallback=lambda _: None, default=echo_route_key)
    reply = api(request("/kustomer/login"))
    assert (reply.status, reply.body) == (404, b"$default")
    assert api(request("/clickfunnels/sso")).status == 302  # the routes come first


def test_local_pages_come_before_the_default_route() -> None:
    page = Reply(200, [], b"index")
    api = http_api_app(RouteTable([]), fallback=lambda r: page if r.path == "/" else None, default=echo_route_key)
    assert api(request("/")).body == b"index"
    assert api(request("/other")).body == b"$default"


def test_without_a_default_route_an_unknown_path_is_api_gateways_404() -> None:
    reply = http_api_app(RouteTable([]), fallback=lambda _: None)(request("/kustomer/login"))
    assert reply.status == 404
    assert reply.body == b'{"message":"Not Found"}'
