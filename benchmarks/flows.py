"""The requests `make bench` measures, and the floor each is compared with.

Every vendor's interactive sign-in (a GET with a fresh login token and the vendor's own parameters from the sample
event, answered as the vendor expects: a 302, or Zendesk's 200 page with its auto-submitting form), and an email
link being spent (the confirmation page's POST of a ``use: "link"`` token, with the page's cookie and hidden field as
Chromium sends them, answered 303), each through the HTTP API and through the function URL, with the sample events
in events/.

The floor is what any implementation must do for the same request (``driver.Floor``): PyJWT decode of the login
token, the vendor's token made of the same claims (``Signs``: its claims, header and algorithm), plus the flow's
one DynamoDB write through boto3 to the same endpoint where the flow writes: HappyFox's and Zendesk's a conditional
``put_item`` of the issued jti; a link spend the conditional put of its jti inside the ``transact_write_items``
that also checks the address's revocation (README, Email links: the single-use record and the revocation check
are one transaction, so the floor is that transaction, not a bare put). Discourse's floor also checks the HMAC of
the ``sso`` it is sent (signed afresh for every call with the bench's key, as Discourse would) and answers with
Base64 and an HMAC instead of a JWT; Freshworks' signs RS256 with ``cryptography`` directly (key parsed once).

A vendor row is derived from the template and events/ where it can be (``sign_in``): the function whose
``CodeUri`` is ``functions/<vendor>``, the sample events of its sign-in route. What is left is the vendor's
contract: what it signs (``Signs``), the status it answers with, the write it makes and where the answer leads.

OpenID Connect (``OIDC_FLOWS``; the template with ``OidcIssuer`` set to a stand-in provider on localhost, see
benchmarks/oidc_provider.py and driver.py): the sign-in start (a signed-out request answered 302 to the provider;
floor: the vendor sign-in's decode + encode), the callback (``/oidc/callback`` with a fresh code, answered 302 back
to the sign-in route with a login token; floor: ``driver.CallbackFloor``), and a login-token sign-in with OpenID
Connect on (cold only: it must not import cryptography, which only a callback loads).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from local.template import functions as template_functions
from tests.helpers import EVENTS

__all__ = [
    "CALLBACK_PATH",
    "CASES",
    "FLOWS",
    "OIDC_COLD_CASES",
    "OIDC_FLOWS",
    "OIDC_WARM_CASES",
    "SIGNS",
    "Case",
    "Flow",
    "Signs",
    "sign_in",
]

CALLBACK_PATH = "/oidc/callback"
_FIELD = re.compile(r"\{(login|env):([A-Za-z0-9_]+)\}")


@dataclass(frozen=True)
class Signs:
    """What a vendor's answer carries, for the floor to make the same (``driver.Floor``).

    ``claims``: (claim, source) in the vendor's order. A source is ``login:a|b`` (the first of the login token's
    claims it has; the claim is left out when it has none), ``now``/``now+N``/``now-N``, ``jti`` (a fresh one: the
    one a ``put`` records), ``request:p`` (the vendor's request parameter: the sample event's query, Discourse's
    signed payload), ``env:VAR`` (the function's variable, as the template sets it), ``query:p`` (the sample event's
    query parameter, left out when absent), ``=text`` (that text), or a text with ``{login:x}`` and ``{env:X}``
    fields. ``alg``: ``HS256`` (PyJWT), ``RS256`` (``cryptography`` directly, the key parsed once) or
    ``discourse-connect`` (Base64 of the fields as a query string, and its hex HMAC-SHA256; the request's ``sig``
    checked the same way first). ``param``: where the answer carries it (the redirect's query, or the page's form).
    """

    claims: tuple[tuple[str, str], ...]
    alg: str = "HS256"
    headers: tuple[tuple[str, str], ...] = ()
    param: str = "token"

    def resolve(self, env: dict[str, str], query: dict[str, str]) -> list[list[Any]]:
        """The claims as the driver takes them, ``[claim, kind, argument]``: what the function's settings and the
        sample event fix is resolved here, what each call has (the login token, the time, the request) is left."""
        resolved: list[list[Any]] = []
        for name, source in self.claims:
            kind, _, argument = source.partition(":")
            if source.startswith("="):
                resolved.append([name, "value", source[1:]])
            elif "{" in source:

                def field(match: re.Match[str]) -> str:
                    if match.group(1) == "env":  # fixed text: braces doubled for str.format
                        return env[match.group(2)].replace("{", "{{").replace("}", "}}")
                    return "{" + match.group(2) + "}"  # the login token's claim, filled in per call

                resolved.append([name, "format", _FIELD.sub(field, source)])
            elif kind == "login":
                resolved.append([name, "login", argument.split("|")])
            elif kind == "env":
                resolved.append([name, "value", env[argument]])
            elif kind == "query":
                if argument in query:
                    resolved.append([name, "value", query[argument]])
            elif kind == "request":
                resolved.append([name, "request", argument])
            elif source == "jti":
                resolved.append([name, "jti", None])
            elif kind.startswith("now"):
                resolved.append([name, "now", int(kind[3:] or 0)])
            else:
                raise ValueError(f"{name}: unknown source {source!r}")
        return resolved

    def describe(self, write: str | None) -> str:
        """The floor in words, for the report."""
        if self.alg == "RS256":
            what = "decode + RS256 sign (cryptography)"
        elif self.alg == "discourse-connect":
            what = "HMAC check of sso + decode + Base64 and HMAC of the answer"
        else:
            what = "decode + encode"
        return what + (f" + {write}" if write else "")


# What each vendor signs (its module in functions/ says why; README, "Adding a portal"). Where a vendor falls back
# on the email's key (Canny's id, Discourse's external_id: sso_bridge.login_token.email_key, lower case) the floor
# takes the email as it is: the bench's address is lower case already.
SIGNS = {
    "clickfunnels": Signs(
        (
            ("sub", "{login:email}:{env:CLICKFUNNELS_WORKSPACE_DOMAIN}"),
            ("iat", "now"),
            ("nbf", "now-30"),
            ("exp", "now+300"),
            ("redirect_to", "query:redirect_to"),
        )
    ),
    "kustomer": Signs((("email", "login:email"), ("iat", "now")), headers=(("typ", "JWT"),), param="externalToken"),
    "happyfox": Signs((("iat", "now"), ("jti", "jti"), ("name", "login:name|email"), ("email", "login:email"))),
    "zendesk": Signs(
        (
            ("iat", "now"),
            ("jti", "jti"),
            ("email", "login:email"),
            ("name", "login:name|email"),
            ("external_id", "login:external_id"),
            ("organization", "login:organization"),
            ("locale_id", "login:locale_id"),
        ),
        headers=(("typ", "JWT"),),
        param="jwt",
    ),
    "canny": Signs(
        (
            ("email", "login:email"),
            ("id", "login:sub|email"),
            ("name", "login:name|email"),
            ("iat", "now"),
            ("exp", "now+300"),
            ("avatarURL", "login:avatar_url"),
        ),
        param="ssoToken",
    ),
    "discourse": Signs(
        (
            ("nonce", "request:nonce"),
            ("email", "login:email"),
            ("external_id", "login:sub|email"),
            ("name", "login:name"),
            ("require_activation", "=false"),
        ),
        alg="discourse-connect",
        param="sso",
    ),
    "freshworks": Signs(
        (
            ("sub", "login:sub|email"),
            ("email", "login:email"),
            ("iat", "now"),
            ("nonce", "request:nonce"),
            ("exp", "now+300"),
            ("aud", "env:FRESHWORKS_CLIENT_ID"),
            ("given_name", "login:given_name|name"),
            ("family_name", "login:family_name"),
        ),
        alg="RS256",
        headers=(("typ", "JWT"),),
        param="id_token",
    ),
}


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
    status: int = 302  # a sign-in's answer (a link's is 303)
    # Where the answer leads: the start of its Location, or (a 200) text its page holds; ``{NAME}`` is the
    # function's variable or the sample event's query parameter. None: not checked.
    answer: str | None = None

    @property
    def expected_status(self) -> int:
        return 303 if self.link else self.status

    @property
    def signs(self) -> Signs:
        return SIGNS[self.vendor]


@functools.cache
def _sign_in_functions() -> dict[str, tuple[str, frozenset[str]]]:
    """vendor -> (the template's function with ``CodeUri: functions/<vendor>``, its routes that take a POST: the
    sign-in routes, where a remote logout takes GET alone)."""
    found = {}
    for spec in template_functions():
        vendor = spec.code_uri.rstrip("/").removeprefix("functions/")
        found[vendor] = (spec.logical_id, frozenset(r.path for r in spec.routes if r.method == "POST"))
    return found


def sign_in_events(vendor: str) -> tuple[tuple[str, str], ...]:
    """The vendor's sample sign-in events: ``<vendor>-<route>-httpapi.json`` on a sign-in route, and the
    ``-function-url.json`` beside it."""
    _, routes = _sign_in_functions()[vendor]
    found = []
    for path in sorted(EVENTS.glob(f"{vendor}-*-httpapi.json")):
        if json.loads(path.read_text()).get("rawPath") in routes:
            stem = path.name.removesuffix("-httpapi.json")
            found.append(("http api", f"{stem}-httpapi"))
            if (EVENTS / f"{stem}-function-url.json").exists():
                found.append(("function url", f"{stem}-function-url"))
    if not found:
        raise ValueError(f"no sample sign-in event for {vendor} in {EVENTS}")
    return tuple(found)


def sign_in(vendor: str, label: str, **contract: Any) -> Flow:
    """A vendor's sign-in row: its function and events from the template and events/, its contract given."""
    function, _ = _sign_in_functions()[vendor]
    return Flow(vendor, label, function, vendor, sign_in_events(vendor), **contract)


FLOWS = (
    sign_in("clickfunnels", "ClickFunnels sign-in", answer="https://{CLICKFUNNELS_WORKSPACE_DOMAIN}/sso?identifier="),
    sign_in("kustomer", "Kustomer sign-in", answer="{kustomerRedirectUri}"),
    sign_in("happyfox", "HappyFox sign-in", write="put", answer="{HAPPYFOX_ACCOUNT_URL}/jwt/?token="),
    sign_in("zendesk", "Zendesk sign-in", write="put", status=200, answer='action="{ZENDESK_ACCOUNT_URL}/access/jwt"'),
    sign_in("canny", "Canny sign-in", answer="https://canny.io/api/redirects/sso?companyID={CANNY_COMPANY_ID}&"),
    sign_in("discourse", "Discourse sign-in", answer="{DISCOURSE_URL}/"),
    sign_in("freshworks", "Freshworks sign-in", answer="{redirect_uri}?state="),
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

    def query(self) -> dict[str, str]:
        """The sample event's query parameters (the first value of each), without a login token."""
        return {name: values[0] for name, values in parse_qs(self.base_event()["rawQueryString"]).items()}


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
