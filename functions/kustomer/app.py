"""Kustomer custom sign-on: a portal visitor comes back to the knowledge base signed in.

Kustomer's contract (vendor-docs/kustomer-custom-sign-on.txt): Kustomer sends the visitor to our login URL
with ``trackingToken`` (unsigned, ignored) and ``kustomerRedirectUri``; we send them back to
``{kustomerRedirectUri}&externalToken=<jwt>``, an HS256 JWT of ``{email, iat}`` signed with the knowledge
base's secret, which Kustomer accepts for 15 minutes after ``iat``. The secret is per knowledge base, that is
per brand, so one stack serves several brands: ``/kustomer/login`` is the default brand and
``/kustomer/brands/{brand}/login`` the brands configured in ``KUSTOMER_BRANDS``. A path, not a query
parameter, selects the brand because Kustomer appends its own query to the configured Redirect URI.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import jwt

from sso_bridge.entry import lambda_entry
from sso_bridge.errors import BadRequest, BridgeError, ConfigurationError, RedirectNotAllowed
from sso_bridge.flow import SIGN_IN_METHODS, SignIn, new_app
from sso_bridge.http import Response
from sso_bridge.i18n import N_
from sso_bridge.observability import Logger, Metrics
from sso_bridge.redirects import MAX_URL_LENGTH, allowed_url, with_query_param
from sso_bridge.request import Query
from sso_bridge.settings import CommonSettings, env_hostnames, env_str, env_url

AUDIENCE = "kustomer"
DEFAULT_BRAND = "default"
BRANDS_VARIABLE = "KUSTOMER_BRANDS"
# What the bridge appends to kustomerRedirectUri; compared case-insensitively, as a portal might read it.
TOKEN_PARAMETER = "externalToken"  # noqa: S105 - a parameter name, not a secret
_BRAND_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
_BRAND_KEYS = frozenset({"secret_id", "redirect_hosts", "portal_url"})


class UnknownBrand(BridgeError):
    """A brand path nobody configured: a 404, never a token signed with another brand's key."""

    status = 404
    code = reason = "unknown_brand"
    title = N_("Page not found")
    message = N_("There is no support portal sign-in at this address.")


class RedirectUriMissing(BadRequest):
    reason = "kustomer_redirect_uri_missing"
    title = N_("This sign-in link is incomplete")
    message = N_(
        "The link has no kustomerRedirectUri, so we do not know which support portal to return you to. "
        "Please start again from the support portal's Log in button."
    )


class RedirectUriCarriesToken(RedirectNotAllowed):
    """A return address that already holds an ``externalToken``: with a second one appended, whoever wrote
    the first would choose which session the portal opens."""

    reason = "kustomer_redirect_uri_token"


def _without_token_parameter(target: str) -> str:
    names = {name.lower() for name, _ in parse_qsl(urlsplit(target).query, keep_blank_values=True)}
    if TOKEN_PARAMETER.lower() in names:
        raise RedirectUriCarriesToken()
    return target


@dataclass(frozen=True, slots=True)
class Brand:
    """One knowledge base: the key that signs for it and where its visitors may be sent back."""

    name: str
    secret_id: str
    redirect_hosts: frozenset[str]
    portal_url: str | None


def _brand(name: str, secret_id: str, hosts: frozenset[str], portal_url: str | None, variable: str) -> Brand:
    if portal_url is not None:
        # The portal is an allowed destination by definition; it must pass the same check as any other.
        hosts = hosts | {(urlsplit(portal_url).hostname or "").lower()}
        try:
            portal_url = allowed_url(portal_url, hosts)
        except BridgeError as exc:
            raise ConfigurationError(f"{variable} must be a plain https:// URL, got {portal_url!r}") from exc
    if not hosts:
        raise ConfigurationError(f"{variable} must name the portal's host (yourcompany.kustomer.help)")
    return Brand(name=name, secret_id=secret_id, redirect_hosts=hosts, portal_url=portal_url)


def _default_brand(env: Mapping[str, str]) -> Brand:
    portal = env_url(env, "KUSTOMER_PORTAL_URL") if env.get("KUSTOMER_PORTAL_URL", "").strip() else None
    hosts = env_hostnames(env, "KUSTOMER_REDIRECT_HOSTS")
    variable = "KUSTOMER_PORTAL_URL" if portal else "KUSTOMER_REDIRECT_HOSTS"
    return _brand(DEFAULT_BRAND, env_str(env, "KUSTOMER_SECRET_ID"), hosts, portal, variable)


def _extra_brands(raw: str, secret_prefix: str) -> dict[str, Brand]:
    """``KUSTOMER_BRANDS``: ``{"brand": {"secret_id": ..., "redirect_hosts": [...], "portal_url": ...}}``.

    The function may read only secrets under ``secret_prefix`` (``STACK/kustomer/``, see the template), so a
    secret elsewhere is refused here, at cold start, rather than as a 503 on the first visitor's click.
    """
    if not raw.strip():
        return {}
    var = BRANDS_VARIABLE
    try:
        config = json.loads(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{var} must be a JSON object: {exc}") from exc
    if not isinstance(config, dict):
        raise ConfigurationError(f"{var} must be a JSON object of brand name to settings")
    brands = {}
    for name, entry in config.items():
        if name == DEFAULT_BRAND or not _BRAND_NAME.fullmatch(name):
            raise ConfigurationError(f"{var}: brand names are lower-case letters, digits and -, not {name!r}")
        if not isinstance(entry, dict) or not set(entry) <= _BRAND_KEYS:
            raise ConfigurationError(f"{var}: brand {name!r} takes only {', '.join(sorted(_BRAND_KEYS))}")
        secret_id, hosts, portal = entry.get("secret_id"), entry.get("redirect_hosts", []), entry.get("portal_url")
        if not isinstance(secret_id, str) or not secret_id.strip():
            raise ConfigurationError(f"{var}: brand {name!r} needs a secret_id")
        if not secret_id.split(":secret:", 1)[-1].startswith(secret_prefix):
            raise ConfigurationError(f"{var}: brand {name!r} secret_id must be named {secret_prefix}<brand>")
        if not isinstance(hosts, list) or not all(isinstance(host, str) and "," not in host for host in hosts):
            raise ConfigurationError(f"{var}: brand {name!r} redirect_hosts must be a list of host names")
        if portal is not None and not isinstance(portal, str):
            raise ConfigurationError(f"{var}: brand {name!r} portal_url must be a string")
        # The layer's readers take a mapping; reuse them so brands follow the same rules as the default.
        allowed = env_hostnames({var: ",".join(hosts)}, var)
        portal_url = env_url({var: portal}, var) if portal else None
        brands[name] = _brand(name, secret_id.strip(), allowed, portal_url, var)
    return brands


@dataclass(frozen=True, slots=True)
class Settings:
    common: CommonSettings
    brands: Mapping[str, Brand]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        common = CommonSettings.from_env(env, portal_name="the help center")
        secret_prefix = env.get("KUSTOMER_BRAND_SECRET_PREFIX", "").strip()
        brands = {DEFAULT_BRAND: _default_brand(env), **_extra_brands(env.get(BRANDS_VARIABLE, ""), secret_prefix)}
        for brand in brands.values():
            # Signing for Kustomer with the login-token key would hand out signatures made with that key.
            if brand.secret_id == common.login_token_secret_id:
                variable = "KUSTOMER_SECRET_ID" if brand.name == DEFAULT_BRAND else BRANDS_VARIABLE
                raise ConfigurationError(f"{variable}: brand {brand.name!r} must not use the login-token secret")
        return cls(common=common, brands=brands)


# Read once per container; a bad variable stops the cold start with its name.
settings = Settings.from_env(os.environ)

app = new_app()
logger = Logger()
metrics = Metrics()
flow = SignIn(app, settings=settings.common, audience=AUDIENCE, logger=logger, metrics=metrics)


def mint_token(email: str, key: str, *, now: int) -> str:
    # Exactly Kustomer's sample: no exp (Kustomer counts 15 minutes from iat), iat the true time.
    return jwt.encode({"email": email, "iat": now}, key, algorithm="HS256", headers={"typ": "JWT"})


def sign_in(brand: Brand) -> Response:
    query = Query(app.current_event.raw_query_string)
    # trackingToken is ignored (Kustomer's docs) and never read, logged or shown; it only rides along in
    # return_to. The destination is checked before the sign-in round trip, so a bad one fails at once.
    raw_target = query.get("kustomerRedirectUri", max_length=MAX_URL_LENGTH)
    if raw_target:
        target = _without_token_parameter(allowed_url(raw_target, brand.redirect_hosts))
    elif brand.portal_url:
        target = brand.portal_url
    else:
        raise RedirectUriMissing()
    user = flow.identify(query)

    key = flow.vendor_key(brand.secret_id)
    token = mint_token(user.email, key, now=int(time.time()))
    flow.issued(user, brand=brand.name)
    return flow.redirect(with_query_param(target, TOKEN_PARAMETER, token))


@app.route("/kustomer/login", method=SIGN_IN_METHODS)
@app.route("/", method=SIGN_IN_METHODS)
def login() -> Response:
    return sign_in(settings.brands[DEFAULT_BRAND])


@app.route("/kustomer/brands/<brand>/login", method=SIGN_IN_METHODS)
def brand_login(brand: str) -> Response:
    selected = settings.brands.get(brand)
    if selected is None:
        raise UnknownBrand(detail=brand[:40])
    return sign_in(selected)


lambda_handler = lambda_entry(app, logger=logger, metrics=metrics, trace_subsegments=settings.common.trace_subsegments)
