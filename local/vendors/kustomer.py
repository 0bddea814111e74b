"""A Kustomer knowledge-base portal, played locally (vendor-docs/kustomer-custom-sign-on.txt)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from html import escape
from urllib.parse import quote, urlsplit, urlunsplit

import jwt

from local.server import App, Reply, Request
from local.vendors.operations import HostSetting, LinkRules, Probe, Settings, first_host, setting_host
from local.vendors.portal import Portal, first_of, hosts_of, hs256_reader, plain_query
from local.vendors.site import (
    Refused,
    Site,
    StandInSpec,
    check_exp_nbf,
    check_iat,
    decode,
    host_of,
    link,
    param,
    query,
    signed_in,
    site_app,
    text,
)

__all__ = ["DEMO_BRAND", "KUSTOMER_SKEW_SECONDS", "KUSTOMER_WINDOW_SECONDS", "SPEC", "kustomer", "portal_hosts"]
KUSTOMER_WINDOW_SECONDS = 15 * 60  # "Signed tokens will only be valid for 15 minutes."
# The doc names no tolerance for a clock ahead of theirs; a minute, so real-world skew is not a refusal.
KUSTOMER_SKEW_SECONDS = 60
_KUSTOMER_HEADER = {"alg": "HS256", "typ": "JWT"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _tracking_token(portal_host: str) -> str:
    # Kustomer's docs: "an unsigned trackingToken parameter (which can be ignored)". Its content is ours to pick.
    header = _b64(b'{"alg":"none","typ":"JWT"}')
    payload = {"portal": portal_host, "visit": secrets.token_hex(8), "iat": int(time.time())}
    return f"{header}.{_b64(json.dumps(payload, separators=(',', ':')).encode())}."


def _kustomer_login_url(redirect_uri: str, portal_host: str) -> str:
    """Where the portal's Log in button goes: the custom sign-on Redirect URI, with Kustomer's two parameters."""
    back = f"https://{portal_host}/login?referralUrl={quote(f'https://{portal_host}/', safe='')}"
    pairs = f"trackingToken={_tracking_token(portal_host)}&kustomerRedirectUri={quote(back, safe='')}"
    parts = urlsplit(redirect_uri)
    query = f"{parts.query}&{pairs}" if parts.query else pairs
    return urlunsplit(parts._replace(query=query))


def kustomer(*, portal_host: str, key: str, redirect_uri: str) -> App:
    """One Kustomer knowledge-base portal at ``https://{portal_host}`` with custom sign on turned on.

    Its docs: the portal sends visitors to ``redirect_uri`` with ``trackingToken`` and ``kustomerRedirectUri``;
    they come back to ``/login?...&externalToken=<jwt>``, HS256 with header ``{"alg":"HS256","typ":"JWT"}``,
    claims ``email`` and ``iat``, valid 15 minutes after ``iat``.
    """
    site = Site("Kustomer", "Help center", portal_host)

    def log_in_link() -> str:
        return link(_kustomer_login_url(redirect_uri, portal_host), "Log in")

    def home(request: Request) -> Reply:
        body = f"<p>Log in to see your conversations.</p>{log_in_link()}"
        return site.page(200, "Help center (local stand-in)", body)

    def login(request: Request) -> Reply:
        params = query(request)
        if "externalToken" not in params:
            body = f"<p>This portal signs you in through your own site.</p>{log_in_link()}"
            return site.page(200, "Log in", body, title="Log in")
        token = param(params, "externalToken")
        claims = decode(token, key, ["email", "iat"])
        # Only a signed header is worth judging; before the signature check it is anyone's text.
        if jwt.get_unverified_header(token) != _KUSTOMER_HEADER:
            raise Refused(401, 'The token\'s header is not exactly {"alg":"HS256","typ":"JWT"}.')
        now = time.time()
        expired = "The token has expired (Kustomer accepts it for 15 minutes after iat)."
        check_exp_nbf(claims, now, KUSTOMER_SKEW_SECONDS, expired=expired)
        if now - check_iat(claims, now, KUSTOMER_SKEW_SECONDS) > KUSTOMER_WINDOW_SECONDS:
            raise Refused(401, expired)
        email = text(claims, "email")
        details = ""
        if params.get("referralUrl"):
            details = f"<p>Kustomer would now take you back to <code>{escape(params['referralUrl'])}</code>.</p>"
        return signed_in(site, email, details, claims)

    return site_app(site, {"/": home, "/login": login})


def portal_hosts(portal_url: str, redirect_hosts: Sequence[str]) -> tuple[str, ...]:
    """One brand's hosts: its portal's first, then its other redirect hosts (read leniently: the function judges)."""
    hosts = [host_of(portal_url), *(host.strip().lower() for host in redirect_hosts)]
    return tuple(dict.fromkeys(host for host in hosts if host))


# A brand to try /kustomer/brands/{brand}/login with locally; the stack seeds its secret (local.standins).
DEMO_BRAND = "acme"
_DEMO_BRANDS = {
    DEMO_BRAND: {
        "secret_id": f"sso-bridge/kustomer/{DEMO_BRAND}",
        "redirect_hosts": [f"{DEMO_BRAND}.kustomer.help"],
        "portal_url": f"https://{DEMO_BRAND}.kustomer.help/login",
    }
}


def _smoke_probe(settings: Settings, key: str | None) -> Probe:
    """`make smoke`: Kustomer sends the visitor with the page to return to (``kustomerRedirectUri``, on an allowed
    host); the answer is a redirect to that host carrying the token."""
    host = first_host(settings("KUSTOMER_REDIRECT_HOSTS")) or setting_host(settings("KUSTOMER_PORTAL_URL"))
    return Probe("kustomer", query={"kustomerRedirectUri": f"https://{host}/"} if host else {}, host=host)


# Brands are more than one portal each: local.standins plans one stand-in per brand host, each with its brand's key.
def _portal(env: Mapping[str, str], key: str) -> Portal:
    """Kustomer's Log in: an unsigned ``trackingToken`` (not needed) and where to come back to."""
    brands = json.loads(env.get("KUSTOMER_BRANDS") or "{}")
    brand_hosts = [host for brand in brands.values() for host in brand.get("redirect_hosts", [])]
    return Portal(
        "kustomer",
        params=("kustomerRedirectUri", "trackingToken"),
        build=plain_query({"kustomerRedirectUri": f"https://{first_of(env['KUSTOMER_REDIRECT_HOSTS'])}/login"}),
        hosts=hosts_of(env["KUSTOMER_REDIRECT_HOSTS"], env.get("KUSTOMER_PORTAL_URL", ""), *brand_hosts),
        credentials=("externalToken",),
        read=hs256_reader("externalToken", key),
        destination="kustomerRedirectUri",
    )


SPEC = StandInSpec(
    vendor="kustomer",
    title="Kustomer help center",
    host_setting="KUSTOMER_PORTAL_URL",
    secret_setting="KUSTOMER_SECRET_ID",  # noqa: S106 - a variable's name, not a secret
    seed_var="KUSTOMER_JWT_SECRET",
    login_path="/kustomer/login",
    entry="/login",
    defaults={
        "KUSTOMER_REDIRECT_HOSTS": "yourcompany.kustomer.help",
        "KUSTOMER_PORTAL_URL": "https://yourcompany.kustomer.help/login",
        "KUSTOMER_BRANDS": json.dumps(_DEMO_BRANDS, separators=(",", ":")),
        "KUSTOMER_BRAND_SECRET_PREFIX": "sso-bridge/kustomer/",
    },
    make=lambda context: kustomer(portal_host=context.host, key=context.key, redirect_uri=context.login_url),
    hosts=lambda env: portal_hosts(
        env.get("KUSTOMER_PORTAL_URL", ""), env.get("KUSTOMER_REDIRECT_HOSTS", "").split(",")
    ),
    probe=_smoke_probe,
    # A link's destination is the kustomerRedirectUri query parameter, checked against the default brand's hosts on
    # every click; one carrying the bridge's own externalToken is refused. Without one: KUSTOMER_PORTAL_URL.
    links=LinkRules(
        hosts=(HostSetting("KUSTOMER_REDIRECT_HOSTS", "hosts"), HostSetting("KUSTOMER_PORTAL_URL", "url")),
        parameter="kustomerRedirectUri",
        refused_parameters=("externalToken",),
        landing="KUSTOMER_PORTAL_URL",
    ),
    portal=_portal,
)
