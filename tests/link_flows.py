"""An email link as a browser meets it, on any vendor's flow: the harness of the email-link tests.

``Flow`` invokes one vendor's handler as API Gateway or a function URL would, with the query its portal sends
(tests/vendor_requests.py); ``press`` does what a browser does with a link's page: GET it, then POST its form.
The ``flow`` and ``url_flow`` fixtures (tests/unit/conftest.py) give one per vendor in template.yaml.
"""

from __future__ import annotations

import secrets
from types import ModuleType
from typing import Any

from tests.helpers import (
    PLATFORM_LOGIN_URL,
    SPENT_LINKS_TABLE_NAME,
    LambdaContext,
    LinkPage,
    load_event,
    make_login_token,
    pressed,
)
from tests.vendor_requests import VENDORS, deployed, portal

__all__ = ["DAY", "EMAIL", "Flow", "goes_to_sign_in", "one_per_shape", "spent"]

DAY = 86400
EMAIL = "jane.doe+news@example.com"


class Flow:
    """One vendor's handler, invoked as API Gateway or a function URL would, with a link for it."""

    def __init__(self, vendor: str, module: ModuleType, event: str) -> None:
        self.vendor = vendor
        self.module = module
        self.event = event
        self.portal = portal(vendor)
        self.query = self.portal.query()

    def link(self, **claims: Any) -> str:
        defaults: dict[str, Any] = {
            "aud": self.vendor,
            "lifetime": 7 * DAY,
            "use": "link",
            "jti": secrets.token_hex(16),
        }
        return make_login_token(EMAIL, **{**defaults, **claims})

    def request(self, method: str, login_token: str | None, **headers: str) -> dict[str, Any]:
        query = "&".join(part for part in (self.query, f"login_token={login_token}" if login_token else "") if part)
        event = load_event(self.event, query=query, headers={k.replace("_", "-"): v for k, v in headers.items()})
        event["requestContext"]["http"]["method"] = method
        if method == "POST":
            event["headers"]["content-type"] = "application/x-www-form-urlencoded"
            event["body"] = ""
        return event

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.module.lambda_handler(event, LambdaContext())
        return result

    def call(self, method: str, login_token: str | None, **headers: str) -> dict[str, Any]:
        """A bare request: a POST is not the page's form (no cookie, no field)."""
        return self.invoke(self.request(method, login_token, **headers))

    def open(self, link: str, *, cookie: str | None = None) -> LinkPage:
        """The reader opens the link (a browser holding ``cookie``, if any): the page's cookie and field."""
        event = self.request("GET", link)
        if cookie:
            event["cookies"] = [cookie]
        return LinkPage.from_response(self.invoke(event))

    def press(self, link: str, page: LinkPage | None = None, **headers: str) -> dict[str, Any]:
        """The reader presses Continue on ``page`` (opened now if not given), as Chromium sends it."""
        page = page or self.open(link)
        return self.invoke(pressed(self.request("GET", link), page, **headers))

    def vendor_claims(self, response: dict[str, Any]) -> dict[str, Any]:
        """The vendor's credentials in the answer (a redirect, or Zendesk's posted form), verified with the vendor's
        key as the vendor would."""
        return self.portal.claims(response["headers"].get("Location", ""), response["body"])

    def signed_in(self, method: str = "GET") -> int:
        """What an answer that signs the reader in has: 302/303, or 200 where a page posts the token."""
        return self.portal.signed_in_status(method)

    @property
    def records_jti(self) -> bool:
        return deployed(self.vendor).records_jti


def spent(link_tables: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = link_tables.scan(TableName=SPENT_LINKS_TABLE_NAME)["Items"]
    return items


def goes_to_sign_in(response: dict[str, Any]) -> bool:
    location = response["headers"].get("Location", "")
    return location.startswith(f"{PLATFORM_LOGIN_URL}?return_to=") and "login_token" not in location


def one_per_shape() -> list[str]:
    """The first vendor of each answer shape (a redirect, a posted form, a hand-off to the portal), in template order:
    for checks of the layer's own link handling, which differ between vendors only in how the answer looks."""
    shapes: dict[tuple[bool, bool], str] = {}
    for vendor in VENDORS:
        side = portal(vendor)
        shapes.setdefault((side.posts_form, side.hands_off), vendor)
    return list(shapes.values())
