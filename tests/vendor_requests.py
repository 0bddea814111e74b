"""Every vendor as the cross-cutting tests meet it: which vendors there are, what each sends, how each reads an answer.

The vendors, their routes and settings come from template.yaml (``ops.vendor_template``, ``local.template``): a
function with a function URL is a vendor, named by its ``CodeUri`` folder. What a vendor *sends* is not in the
template: its stand-in module declares it (``StandInSpec.portal``, a ``local.vendors.portal.Portal`` made from the
function's settings, the tests' ``BASE_ENV`` or the local stack's ``LOCAL_DEFAULTS``, and the tests' key): the
query its portal puts on the bridge's login URL, the hosts the bridge may send its users to, and where its
credentials travel in the answer and how the vendor checks them. The hostile-events, logs, faults, cold-start and
slow-dependency tests read both; a vendor in the template without a stand-in fails each of them naming the vendor
and where to add it (``portal``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.template import functions, load_template
from local.vendors import SPECS
from local.vendors.portal import Portal, form_posts
from local.vendors.site import StandInSpec
from ops.vendor_template import vendor_templates
from tests.helpers import VENDOR_KEYS

__all__ = [
    "JWT_SHAPED",
    "PORTALS",
    "VENDORS",
    "Deployed",
    "Portal",
    "deployed",
    "form_posts",
    "local_portal",
    "portal",
    "tokens_in",
]

# Every vendor function in template.yaml, in template order.
VENDORS: tuple[str, ...] = tuple(vendor_templates())
# A JWT's first two segments (``{"`` base64url-encoded starts every header): what no outage page may carry.
JWT_SHAPED = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+")


# --- what the template says --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployed:
    """One vendor's function as template.yaml defines it."""

    vendor: str
    logical_id: str
    routes: tuple[tuple[str, tuple[str, ...]], ...]  # HTTP API path -> its methods, in template order
    sign_in_path: str  # the route an email link's button posts back to
    environment: frozenset[str]  # the function's variable names (Globals' included)
    service: str  # its POWERTOOLS_SERVICE_NAME: the ``service`` of its log lines and metrics
    portal_name: str  # its PORTAL_NAME: what its pages call the vendor's site ("the help center")
    attaches_oidc_layer: bool  # lists the OIDC layer (cryptography) itself, OpenID Connect or not

    @property
    def event(self) -> str:
        """``events/<name>.json`` of the sign-in route on the HTTP API (``clickfunnels-sso-httpapi``)."""
        return f"{self.vendor}-{self.sign_in_path.rsplit('/', 1)[-1]}-httpapi"

    @property
    def url_event(self) -> str:
        """``events/<name>.json`` of the sign-in on the function URL."""
        return f"{self.vendor}-{self.sign_in_path.rsplit('/', 1)[-1]}-function-url"

    @property
    def records_jti(self) -> bool:
        """Writes an audit record per token to the jti table (the vendor refuses a replayed ``jti``)."""
        return "JTI_TABLE_NAME" in self.environment

    @property
    def get_only_paths(self) -> tuple[str, ...]:
        """Routes only a GET reaches: the vendor's remote logout (``/happyfox/logout``)."""
        return tuple(path for path, methods in self.routes if methods == ("GET",))


def _mentions(value: Any, logical_id: str) -> bool:
    if isinstance(value, dict):
        return value.get("Ref") == logical_id or any(_mentions(item, logical_id) for item in value.values())
    if isinstance(value, list):
        return any(_mentions(item, logical_id) for item in value)
    return False


@functools.cache
def _deployed() -> dict[str, Deployed]:
    template = load_template()
    parts = vendor_templates(template)
    found: dict[str, Deployed] = {}
    for spec in functions(template):
        vendor = Path(spec.code_uri).name
        if vendor not in parts:
            continue
        methods: dict[str, list[str]] = {}
        for route in spec.routes:
            methods.setdefault(route.path, []).append(route.method)
        sign_in_path = parts[vendor].sign_in_path
        assert sign_in_path, f"{vendor}: no HTTP API route takes POST (the email link's button posts back to it)"
        layers = template["Resources"][spec.logical_id].get("Properties", {}).get("Layers", [])
        found[vendor] = Deployed(
            vendor=vendor,
            logical_id=spec.logical_id,
            routes=tuple((path, tuple(names)) for path, names in methods.items()),
            sign_in_path=sign_in_path,
            environment=frozenset(spec.environment),
            service=str(spec.environment.get("POWERTOOLS_SERVICE_NAME", "")),
            portal_name=str(spec.environment.get("PORTAL_NAME", "")),
            attaches_oidc_layer=_mentions(layers, "OidcLayer"),
        )
    return found


def deployed(vendor: str) -> Deployed:
    return _deployed()[vendor]


# --- what each vendor sends, and how it reads the answer -----------------------------------------------------------

# Each vendor's side, declared beside its stand-in (``StandInSpec.portal``, ``local.vendors.portal``).
PORTALS: dict[str, StandInSpec] = {spec.vendor: spec for spec in SPECS}


def portal(vendor: str, env: Mapping[str, str] | None = None, keys: Mapping[str, str] | None = None) -> Portal:
    """``vendor``'s side, under ``env`` (default: the unit tests' settings) and ``keys`` (default: the tests')."""
    try:
        spec = PORTALS[vendor]
    except KeyError:
        raise LookupError(
            f"{vendor!r} is a vendor in template.yaml, but no stand-in says what it sends: add its module to "
            f"local/vendors/ and its SPEC to SPECS (local/vendors/__init__.py), with a `portal` when the vendor "
            f"sends more than nothing or reads more than a JWT in `token` (local/vendors/portal.py)"
        ) from None
    if env is None:
        from tests.conftest import BASE_ENV

        env = BASE_ENV
    return spec.portal_in(env, {**VENDOR_KEYS, **(keys or {})}[vendor])


def local_portal(vendor: str, env: Mapping[str, str] | None = None, keys: Mapping[str, str] | None = None) -> Portal:
    """``vendor``'s side under `make run`'s settings (``LOCAL_DEFAULTS``), ``env`` over them (a test stack's own)."""
    from local.lambdas import LOCAL_DEFAULTS

    return portal(vendor, {**LOCAL_DEFAULTS, **(env or {})}, keys)


def tokens_in(texts: Iterable[str]) -> list[str]:
    """Every JWT-shaped fragment in ``texts``."""
    return [match.group(0) for text in texts for match in JWT_SHAPED.finditer(text)]
