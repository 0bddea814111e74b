"""What the operator commands know of each vendor, declared beside its stand-in (``StandInSpec.probe``, ``.links``).

``make smoke`` signs in at every vendor as the vendor itself would start it and judges the answer as the vendor
would take it, without ever delivering it: a ``Probe``, made per run from the stack's settings and the vendor key
(Discourse's request is signed with it; Freshworks' answer is checked with it). ``make link REDIRECT_TO=...`` mints
a link only to a destination the vendor function accepts: ``LinkRules``, the function variables its allow-list is
made of, read as the function reads them. Both live in the vendor's stand-in module, so the next portal needs no
edit in ``ops/``; its unit tests hold each declaration against the vendor function itself.

Declaring nothing is the simplest portal's shape (HappyFox's): the sign-in route with no query, answered by a
redirect to the vendor's host (``StandInSpec.host_setting``; any host but the bridge's when the stack does not
report it) carrying a JWT; and links without a destination, which need no setting to land.

Checks return a problem in fixed words, never a value they were given: the values are live tokens.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from local.vendors.site import StandInSpec

__all__ = [
    "Carries",
    "HostSetting",
    "LinkRules",
    "Probe",
    "ProbeFactory",
    "Settings",
    "carries_jwt",
    "carries_no_token",
    "default_probe",
    "first_host",
    "is_jwt",
    "jwt_header",
    "link_rules",
    "setting_host",
    "vendor_spec",
]

# Target.setting: a function variable's value in the stack, None when the stack does not report it.
Settings = Callable[[str], str | None]
# The answer's parameters (the redirect's query, or the form's fields) -> why they carry no acceptable token.
Carries = Callable[[Mapping[str, str]], str | None]

_JWT = re.compile(r"^[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}$")


def jwt_header(value: str) -> dict[str, object] | None:
    """A compact JWT's header, by its shape only (never verified, never printed); None when it is not one."""
    if not _JWT.fullmatch(value):
        return None
    head = value.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (binascii.Error, ValueError):
        return None
    return header if isinstance(header, dict) else None


def is_jwt(value: str) -> bool:
    """A signed JWT by its shape and header: an algorithm, and not ``none``."""
    header = jwt_header(value)
    return header is not None and isinstance(header.get("alg"), str) and header["alg"] != "none"


def carries_jwt(params: Mapping[str, str]) -> str | None:
    """The default: some parameter is a signed JWT."""
    return None if any(is_jwt(value) for value in params.values()) else "without a token"


def carries_no_token(params: Mapping[str, str]) -> str | None:
    """A hand-off: the user waits in a cookie, and no token may sit in the address."""
    return "with a token in its address, where a hand-off keeps none" if carries_jwt(params) is None else None


@dataclass(frozen=True)
class Probe:
    """How to sign in at one vendor: the query its HTTP API route needs, and where the answer must send the token."""

    vendor: str
    route: str = ""  # the HTTP API route (make smoke fills it in from template.yaml)
    query: Mapping[str, str] = field(default_factory=dict)
    host: str | None = None  # the vendor's host the token goes to; None: any host but the bridge's
    path: str | None = None  # the path there, when the vendor fixes it (Canny's /api/redirects/sso)
    form: bool = False  # a 200 page whose form posts the token (Zendesk), not a redirect
    handoff: bool = False  # a redirect to the vendor's start of sign-in, the user kept in the hand-off cookie
    carries: Carries = carries_jwt  # whether the redirect's query (or the form's fields) carries the token

    @property
    def answer(self) -> str:
        """What the answer is, as the smoke check's line names it."""
        return "form" if self.form else "hand-off" if self.handoff else "redirect"


# (the stack's settings, the vendor key from its secret, None when unreadable or the placeholder) -> the probe
ProbeFactory = Callable[[Settings, str | None], Probe]


def setting_host(value: str | None) -> str | None:
    """The host a setting names, as a URL (``https://acme.zendesk.com``) or a bare host; None when unset."""
    text = (value or "").strip()
    if "://" in text:
        text = urlsplit(text).hostname or ""
    return text.lower().rstrip(".") or None


def first_host(value: str | None) -> str | None:
    """The first host of a comma-separated list (``CANNY_REDIRECT_HOSTS``)."""
    return next((host for part in (value or "").split(",") if (host := setting_host(part))), None)


def default_probe(vendor: str, host_setting: str | None) -> ProbeFactory:
    """The simplest portal's sign-in: no query, a redirect to ``host_setting``'s host carrying a JWT."""

    def probe(settings: Settings, key: str | None) -> Probe:
        return Probe(vendor, host=setting_host(settings(host_setting)) if host_setting else None)

    return probe


# --- where links may land -----------------------------------------------------------------------------------

HostForm = Literal["host", "hosts", "url"]


@dataclass(frozen=True)
class HostSetting:
    """One function variable of a vendor's destination allow-list, read as ``sso_bridge.settings`` reads it."""

    variable: str
    form: HostForm  # host: one bare host (required); hosts: a comma list (optional); url: its host counts
    required: bool = False  # a url the function cannot start without (a bare host always is)

    @property
    def is_required(self) -> bool:
        return self.required or self.form == "host"

    def hosts(self, settings: Mapping[str, str]) -> frozenset[str]:
        """The hosts it allows; ``ConfigurationError`` (the function's own words) for a value it cannot start with."""
        from sso_bridge.settings import env_hostname, env_hostnames, env_url

        if self.form == "hosts":
            return env_hostnames(settings, self.variable)
        if self.form == "host":
            return frozenset({env_hostname(settings, self.variable)})
        if not self.required and not settings.get(self.variable, "").strip():
            return frozenset()
        return frozenset({(urlsplit(env_url(settings, self.variable)).hostname or "").lower()})


@dataclass(frozen=True)
class LinkRules:
    """Where a vendor's email link may land (``make link REDIRECT_TO=...``), as its function checks it.

    Without ``hosts`` the vendor takes no destination: its token has no place for one, or the vendor starts the
    sign-in itself and picks the page.
    """

    hosts: tuple[HostSetting, ...] = ()  # the variables whose hosts the function allows, in its own order
    parameter: str | None = None  # the destination travels as this query parameter, else as the redirect_to claim
    refused_parameters: tuple[str, ...] = ()  # a destination carrying one of these (any case) is refused
    landing: str | None = None  # without a destination the link lands on this URL setting: unset, every click fails
    # The vendor starts sign-in itself and sends the reader back to the route pasted in its admin (the hand-off,
    # sso_bridge.handoff): the link opens on that route, whose host keeps the hand-off cookie (make link's VIA=api).
    on_route: bool = False

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(setting.variable for setting in self.hosts)


def vendor_spec(vendor: str) -> StandInSpec | None:
    """``vendor``'s ``SPEC`` in the stand-ins' registry (``local.vendors.SPECS``); None for a vendor without one."""
    from local.vendors import SPECS

    return next((spec for spec in SPECS if spec.vendor == vendor), None)


def link_rules(vendor: str) -> LinkRules:
    spec = vendor_spec(vendor)
    return spec.links if spec is not None else LinkRules()
