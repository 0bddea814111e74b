"""A Kustomer knowledge-base portal, played locally (vendor-docs/kustomer-custom-sign-on.txt)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from html import escape
from urllib.parse import quote, urlsplit, urlunsplit

import jwt

from local.server import App, Reply, Request
from local.vendors.site import (
    Refused,
    Site,
    check_exp_nbf,
    check_iat,
    decode,
    link,
    param,
    query,
    signed_in,
    site_app,
    text,
)

__all__ = ["KUSTOMER_SKEW_SECONDS", "KUSTOMER_WINDOW_SECONDS", "kustomer"]
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
