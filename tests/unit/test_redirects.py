"""The redirect allow-list against every bypass class we know of; a legitimate URL always passes."""

from __future__ import annotations

import pytest

from sso_bridge.errors import InputTooLarge, RedirectNotAllowed
from sso_bridge.redirects import allowed_url, with_query_param

ALLOWED = frozenset({"portal.example.com", "www.shop.example.com"})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://portal.example.com/login?referralUrl=https%3A%2F%2Fportal.example.com", None),
        ("https://portal.example.com", "https://portal.example.com/"),
        ("HTTPS://PORTAL.EXAMPLE.COM/Orders", "https://portal.example.com/Orders"),
        ("https://portal.example.com:443/a", "https://portal.example.com/a"),
        ("https://www.shop.example.com/a/b?x=1&y=%20#frag", None),
        ("https://portal.example.com/?a=1&a=2", None),
    ],
)
def test_legitimate_urls_pass_rebuilt(raw: str, expected: str | None) -> None:
    assert allowed_url(raw, ALLOWED) == (expected or raw)


HOSTILE = {
    # class: examples
    "other host": ["https://evil.example.net/", "https://example.com/"],
    "suffix trick": ["https://portal.example.com.evil.net/", "https://portal.example.com./"],
    "prefix trick": [
        "https://evilportal.example.com/",
        "https://xportal.example.com/",
        "https://a.portal.example.com/",
    ],
    "userinfo": [
        "https://portal.example.com@evil.net/",
        "https://user:pass@portal.example.com/",
        "https://evil.net%40portal.example.com/",
        "https://evil.net\\@portal.example.com/",
    ],
    "backslash": [
        "https://evil.net\\portal.example.com/",
        "https:\\\\evil.net",
        "https://portal.example.com\\.evil.net/",
    ],
    "scheme-relative": ["//evil.net/", "///evil.net/", "/\\evil.net/", "//portal.example.com/"],
    "relative": ["/dashboard", "dashboard", ""],
    "other schemes": [
        "http://portal.example.com/",
        "javascript:alert(1)//https://portal.example.com/",
        "data:text/html,<script>alert(1)</script>",
        "ftp://portal.example.com/",
        "https:portal.example.com/",
        "https:/portal.example.com/",
        " https://portal.example.com/",
    ],
    "encoded dots": [
        "https://portal%2eexample%2ecom/",
        "https://portal.example%2Ecom.evil.net/",
        "https://evil.net%2f@portal.example.com/",
        "https://portal%252eexample.com/",
    ],
    "unicode dots and look-alikes": [
        "https://portal\u3002example\u3002com/",
        "https://portal\uff0eexample\uff0ecom/",
        "https://portal.example.com\u2025evil.net/",
        "https://p\u043ertal.example.com/",
        "https://portal.example.com\u200b/",
    ],
    "control characters": [
        "https://portal.example.com/\r\nLocation: https://evil.net/",
        "https://portal.example.com/\x00",
        "https://evil.net\t.portal.example.com/",
        "https://portal.example.com/\x7f",
        "\x01https://portal.example.com/",
    ],
    "ports": ["https://portal.example.com:8443/", "https://portal.example.com:0/", "https://portal.example.com:99999/"],
    "ip literals": ["https://127.0.0.1/", "https://[::1]/", "https://0x7f000001/"],
    "path tricks": ["https://portal.example.com//evil.net/"],
    "trailing newline": ["https://portal.example.com/login\n", "https://portal.example.com\n"],
}


@pytest.mark.parametrize(
    "raw", [pytest.param(raw, id=f"{kind}: {raw!r}") for kind, examples in HOSTILE.items() for raw in examples]
)
def test_hostile_urls_are_refused(raw: str) -> None:
    with pytest.raises(RedirectNotAllowed):
        allowed_url(raw, ALLOWED)


def test_overlong_url_is_too_large() -> None:
    with pytest.raises(InputTooLarge):
        allowed_url("https://portal.example.com/" + "a" * 2100, ALLOWED)


def test_empty_allow_list_allows_nothing() -> None:
    with pytest.raises(RedirectNotAllowed):
        allowed_url("https://portal.example.com/", frozenset())


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://p.example.com/login", "https://p.example.com/login?t=a.b.c"),
        (
            "https://p.example.com/login?referralUrl=https%3A%2F%2Fp.example.com%2Fx%3Fy%3D1",
            "https://p.example.com/login?referralUrl=https%3A%2F%2Fp.example.com%2Fx%3Fy%3D1&t=a.b.c",
        ),
        ("https://p.example.com/login?a=1#top", "https://p.example.com/login?a=1&t=a.b.c#top"),
    ],
)
def test_query_param_is_appended_keeping_the_query_byte_for_byte(url: str, expected: str) -> None:
    assert with_query_param(url, "t", "a.b.c") == expected
