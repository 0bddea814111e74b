"""Test helpers: the keys and names the tests share, sample events, login tokens."""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
import time
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt

from local.vendors import SPECS
from local.vendors.site import StandInSpec

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"


@functools.cache
def _rsa_private_pem() -> str:
    """Freshworks signs with RS256: one 2048-bit key per test session (made in about 0.1 s)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem.decode()


LOGIN_TOKEN_KEY = "test-login-token-key-0123456789abcdef0123456789"


# events/discourse-*.json carry a sig made with this key: Discourse signs its request, so its sample event must be.
_EVENT_KEYS = {"discourse": "test-discourse-connect-secret-0123456789abcdef"}


def _test_key(spec: StandInSpec) -> str:
    """A vendor's key in the tests: a fixed 48-character secret named after it, or an RSA key for an RSA vendor."""
    if spec.key_kind == "rsa":
        return _rsa_private_pem()
    if spec.vendor in _EVENT_KEYS:
        return _EVENT_KEYS[spec.vendor]
    return f"test-{spec.vendor}-key-" + hashlib.sha256(spec.vendor.encode()).hexdigest()[: 48 - len(spec.vendor)]


# One per stand-in (local.vendors.SPECS), so a new portal's module brings its key and secret id with it.
VENDOR_KEYS = {spec.vendor: _test_key(spec) for spec in SPECS}
SECRET_IDS = {"login": "sso-bridge/login-token", **{spec.vendor: f"sso-bridge/{spec.vendor}" for spec in SPECS}}


def key_texts() -> dict[str, str]:
    """Every key the tests seed, named, for the scans that must never find one in a log or a page: the login-token
    key, each vendor's, and each line of a PEM key (Freshworks') alone too."""
    return {
        "login-token key": LOGIN_TOKEN_KEY,
        **{f"{vendor} key": key for vendor, key in VENDOR_KEYS.items()},
        **{
            f"{vendor} key line {n}": line
            for vendor, key in VENDOR_KEYS.items()
            for n, line in enumerate(key.splitlines())
            if len(line) >= 40
        },
    }


WORKSPACE = "yourworkspace.myclickfunnels.com"
PLATFORM_LOGIN_URL = "https://platform.example.com/login"
HAPPYFOX_ACCOUNT_URL = "https://acme.happyfox.com"
JTI_TABLE_NAME = "sso-bridge-jti-test"
SPENT_LINKS_TABLE_NAME = "sso-bridge-spent-links-test"
LINK_REVOCATIONS_TABLE_NAME = "sso-bridge-link-revocations-test"
KUSTOMER_PORTAL_HOST = "yourcompany.kustomer.help"
KUSTOMER_CUSTOM_DOMAIN = "help.example.com"
ZENDESK_ACCOUNT_URL = "https://acme.zendesk.com"
ZENDESK_HOSTS = "help.example.org"  # a host-mapped help center beside the account's own host
CANNY_COMPANY_ID = "5f0c1d2e3a4b5c6d7e8f9a0b"
CANNY_REDIRECT_HOSTS = "feedback.example.com,acme.canny.io"
DISCOURSE_URL = "https://community.example.com"
FRESHWORKS_CLIENT_ID = "sso-bridge-test-client"
FRESHWORKS_REDIRECT_HOSTS = "acme.freshworks.com"
FRESHWORKS_PORTAL_URL = "https://acme.freshdesk.com/support/login"


@dataclass
class LambdaContext:
    function_name: str = "sso-bridge-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:sso-bridge-test"
    aws_request_id: str = "7f6c1f5e-0000-4000-8000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def load_event(name: str, *, query: str | None = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A sample event from events/ (the files `sam local invoke -e` takes), optionally with another query."""
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    event = copy.deepcopy(event)
    if query is not None:
        event["rawQueryString"] = query
        event.pop("queryStringParameters", None)
    if headers:
        event["headers"] = {**event["headers"], **{k.lower(): v for k, v in headers.items()}}
    return event


def make_login_token(
    email: str = "jane.doe+vip@example.com",
    *,
    aud: str | list[str] = "clickfunnels",
    key: str = LOGIN_TOKEN_KEY,
    lifetime: int = 120,
    issued: int | None = None,
    algorithm: str = "HS256",
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    now = int(time.time()) if issued is None else issued
    payload: dict[str, Any] = {"email": email, "aud": aud, "iat": now, "exp": now + lifetime, **claims}
    for claim in drop:
        payload.pop(claim, None)
    return jwt.encode(payload, key, algorithm=algorithm)


# --- an email link's button, as a browser presses it ----------------------------------------------------------

# What Chromium sends when the reader presses the confirmation page's button (the page is no-referrer: Origin null).
BUTTON_HEADERS = {
    "origin": "null",
    "sec-fetch-site": "same-origin",
    "sec-fetch-mode": "navigate",
    "sec-fetch-user": "?1",
    "content-type": "application/x-www-form-urlencoded",
}
_HIDDEN_INPUT = re.compile(r"<input\b[^>]*\bname=\"link_form\"[^>]*>")
_VALUE = re.compile(r"\bvalue=\"([^\"]*)\"")


@dataclass(frozen=True)
class LinkPage:
    """A confirmation page's binding: its cookie as the browser sends it back (``name=value``), its hidden field."""

    cookie: str
    field: str

    @property
    def body(self) -> str:
        return urlencode({"link_form": self.field})

    @classmethod
    def of(cls, set_cookies: list[str], html: str) -> LinkPage:
        cookies = [raw.split(";", 1)[0].strip() for raw in set_cookies if raw.startswith("sso_bridge_link=")]
        assert len(cookies) == 1, f"the page must set one sso_bridge_link cookie, got {set_cookies}"
        found = _HIDDEN_INPUT.search(html)
        assert found, "the page has no link_form field"
        value = _VALUE.search(found.group(0))
        assert value, found.group(0)
        return cls(cookies[0], unescape(value.group(1)))

    @classmethod
    def from_response(cls, response: dict[str, Any]) -> LinkPage:
        """From a handler's payload v2 answer to a link's GET."""
        assert response["statusCode"] == 200, (response["statusCode"], response.get("body", "")[:300])
        return cls.of(list(response.get("cookies") or []), response["body"])


def pressed(event: dict[str, Any], page: LinkPage, **headers: str) -> dict[str, Any]:
    """``event`` (a link's request) as the POST its page's button sends: the cookie, the form, the headers.

    ``headers`` (``sec_fetch_site=...``) replace Chromium's; an empty value leaves the header out."""
    posted = copy.deepcopy(event)
    posted["requestContext"]["http"]["method"] = "POST"
    if posted.get("routeKey", "$default") != "$default":
        posted["routeKey"] = posted["requestContext"]["routeKey"] = f"POST {posted['rawPath']}"
    sent = {**posted["headers"], **BUTTON_HEADERS, **{k.lower().replace("_", "-"): v for k, v in headers.items()}}
    posted["headers"] = {name: value for name, value in sent.items() if value}
    posted["cookies"] = [*posted.get("cookies", []), page.cookie]
    posted["body"] = page.body
    posted["isBase64Encoded"] = False
    return posted
