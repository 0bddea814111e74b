"""The requests `make bench` measures, and the floor each is compared with.

Every vendor's interactive sign-in (a GET with a fresh login token, answered 302 with the vendor's token), and
an email link being spent (the confirmation page's POST of a ``use: "link"`` token, with the page's cookie and
hidden field as Chromium sends them, answered 303), each through the HTTP API and through the function URL, with
the sample events in events/.

The floor is what any implementation must do for the same request: PyJWT decode of the login token and encode of
the vendor's token (the same claims), plus the flow's one DynamoDB write through boto3 to the same endpoint where
the flow writes: HappyFox a conditional ``put_item`` of the issued jti; a link spend the conditional put of its jti
inside the ``transact_write_items`` that also checks the address's revocation (README, Email links: the single-use
record and the revocation check are one transaction, so the floor is that transaction, not a bare put).

OpenID Connect (``OIDC_FLOWS``; the template with ``OidcIssuer`` set to a stand-in provider on localhost, see
benchmarks/oidc_provider.py and driver.py): the sign-in start (a signed-out request answered 302 to the provider;
floor: the vendor sign-in's decode + encode), the callback (``/oidc/callback`` with a fresh code, answered 302 back
to the sign-in route with a login token; floor: ``driver.CallbackFloor``), and a login-token sign-in with OpenID
Connect on (cold only: it must not import cryptography, which only a callback loads).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from tests.helpers import EVENTS

__all__ = ["CALLBACK_PATH", "CASES", "FLOWS", "OIDC_COLD_CASES", "OIDC_FLOWS", "OIDC_WARM_CASES", "Case", "Flow"]

CALLBACK_PATH = "/oidc/callback"


@dataclass(frozen=True)
class Flow:
    key: str
    label: str
    function: str  # logical id in template.yaml
    vendor: str  # the login token's aud, and whose token is minted
    events: tuple[tuple[str, str], ...]  # (label, events/<name>.json)
    link: bool = False
    write: str | None = None  # None, "put" or "transact"
    oidc: str | None = None  # with OpenID Connect on: "start", "callback" or "login" (a login token beside it)

    @property
    def expected_status(self) -> int:
        return 303 if self.link else 302


FLOWS = (
    Flow(
        "clickfunnels",
        "ClickFunnels sign-in",
        "ClickFunnelsFunction",
        "clickfunnels",
        (("http api", "clickfunnels-sso-httpapi"), ("function url", "clickfunnels-sso-function-url")),
    ),
    Flow(
        "kustomer",
        "Kustomer sign-in",
        "KustomerFunction",
        "kustomer",
        (("http api", "kustomer-login-httpapi"), ("function url", "kustomer-login-function-url")),
    ),
    Flow(
        "happyfox",
        "HappyFox sign-in",
        "HappyFoxFunction",
        "happyfox",
        (("http api", "happyfox-login-httpapi"), ("function url", "happyfox-login-function-url")),
        write="put",
    ),
    Flow(
        "link",
        "ClickFunnels link spend",
        "ClickFunnelsFunction",
        "clickfunnels",
        (("http api", "clickfunnels-sso-httpapi"), ("function url", "clickfunnels-sso-function-url")),
        link=True,
        write="transact",
    ),
)


@dataclass(frozen=True)
class Case:
    flow: Flow
    event_label: str
    event_name: str

    @property
    def name(self) -> str:
        return f"{self.flow.key}/{self.event_label.replace(' ', '-')}"

    def base_event(self) -> dict[str, Any]:
        """The sample event as the request arrives, without its login token."""
        event: dict[str, Any] = json.loads((EVENTS / f"{self.event_name}.json").read_text())
        event.pop("queryStringParameters", None)
        if self.flow.link:
            # The confirmation page's button: a form POST to the link's own URL, as Chromium sends it (the page is
            # no-referrer: Origin null); the driver adds the page's cookie and the form's field for each link.
            http = event["requestContext"]["http"]
            http["method"] = "POST"
            if event.get("routeKey", "$default") != "$default":
                event["routeKey"] = event["requestContext"]["routeKey"] = f"POST {event['rawPath']}"
            event["headers"] = {
                **event["headers"],
                "content-type": "application/x-www-form-urlencoded",
                "origin": "null",
                "sec-fetch-site": "same-origin",
                "sec-fetch-mode": "navigate",
            }
            event["body"] = ""
            event["isBase64Encoded"] = False
            event["rawQueryString"] = ""  # a link is its function URL and ?login_token= (ops/link.py)
        return event

    def callback_event(self) -> dict[str, Any]:
        """The provider's redirect back, as the HTTP API or function URL hands it over: ``GET /oidc/callback`` on
        the host the sign-in started at (its query and cookie are the driver's to fill in)."""
        event = self.base_event()
        event["rawPath"] = CALLBACK_PATH
        event["rawQueryString"] = ""
        if event.get("routeKey", "$default") != "$default":
            event["routeKey"] = event["requestContext"]["routeKey"] = f"GET {CALLBACK_PATH}"
        event["requestContext"]["http"] |= {"method": "GET", "path": CALLBACK_PATH}
        event["cookies"] = []
        return event

    def redirect_to(self) -> str | None:
        values = parse_qs(self.base_event()["rawQueryString"]).get("redirect_to")
        return values[0] if values else None


CASES = tuple(Case(flow, label, name) for flow in FLOWS for label, name in flow.events)

_CLICKFUNNELS_HTTP_API = (("http api", "clickfunnels-sso-httpapi"),)
OIDC_FLOWS = (
    Flow(
        "oidc-start", "OIDC sign-in start", "ClickFunnelsFunction", "clickfunnels", _CLICKFUNNELS_HTTP_API, oidc="start"
    ),
    Flow(
        "oidc-callback",
        "OIDC callback",
        "ClickFunnelsFunction",
        "clickfunnels",
        _CLICKFUNNELS_HTTP_API,
        oidc="callback",
    ),
    Flow(
        "oidc-login",
        "ClickFunnels, OIDC on",
        "ClickFunnelsFunction",
        "clickfunnels",
        _CLICKFUNNELS_HTTP_API,
        oidc="login",
    ),
)
_OIDC = {flow.oidc: Case(flow, *flow.events[0]) for flow in OIDC_FLOWS}
OIDC_WARM_CASES = (_OIDC["start"], _OIDC["callback"])
OIDC_COLD_CASES = (_OIDC["callback"], _OIDC["login"])
