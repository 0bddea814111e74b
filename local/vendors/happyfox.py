"""A HappyFox support centre, played locally (vendor-docs/happyfox-jwt-sso.txt)."""

from __future__ import annotations

import threading
import time
from html import escape

from local.server import App, Reply, Request
from local.vendors.site import (
    Refused,
    Site,
    StandInSpec,
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

__all__ = ["HAPPYFOX_SKEW_SECONDS", "HAPPYFOX_WINDOW_SECONDS", "SPEC", "happyfox"]
HAPPYFOX_WINDOW_SECONDS = 120  # "The JWT token is valid for 120 seconds from HappyFox side."
# The doc names no tolerance for a clock ahead of theirs; a minute, so real-world skew is not a refusal.
HAPPYFOX_SKEW_SECONDS = 60


def happyfox(*, account_host: str, key: str, remote_login_url: str) -> App:
    """A HappyFox support centre at ``https://{account_host}`` with JWT login turned on.

    Its docs: Log in goes to the Remote Login URL; the user comes back to ``/jwt/?token=<jwt>``, HS256 with
    ``iat``, ``jti``, ``name`` and ``email``, valid 120 seconds, each ``jti`` usable once.
    """
    site = Site("HappyFox", "Support Centre", account_host)
    used: set[str] = set()
    used_lock = threading.Lock()
    expired = "Remote token has expired"

    def home(request: Request) -> Reply:
        body = f"<p>View your tickets or raise a new one.</p>{link(remote_login_url, 'Log in')}"
        return site.page(200, "Support Centre (local stand-in)", body)

    def jwt_login(request: Request) -> Reply:
        params = query(request)
        token = param(params, "token")
        claims = decode(token, key, ["iat", "jti", "name", "email"])
        now = time.time()
        check_exp_nbf(claims, now, HAPPYFOX_SKEW_SECONDS, expired=expired)
        if now - check_iat(claims, now, HAPPYFOX_SKEW_SECONDS) > HAPPYFOX_WINDOW_SECONDS:
            raise Refused(401, expired)
        jti, name, email = text(claims, "jti"), text(claims, "name"), text(claims, "email")
        # Last, so only a token that would sign someone in uses up its jti.
        with used_lock:
            if jti in used:
                raise Refused(401, "Remote token has already been used")
            used.add(jti)
        return signed_in(site, email, f"<p>Name: <strong>{escape(name)}</strong></p>", claims)

    return site_app(site, {"/": home, "/jwt/": jwt_login})


SPEC = StandInSpec(
    vendor="happyfox",
    title="HappyFox support centre",
    host_setting="HAPPYFOX_ACCOUNT_URL",
    secret_setting="HAPPYFOX_SECRET_ID",  # noqa: S106 - a variable's name, not a secret
    seed_var="HAPPYFOX_JWT_SECRET",
    login_path="/happyfox/login",
    entry="/",
    defaults={"HAPPYFOX_ACCOUNT_URL": "https://yourcompany.happyfox.com"},
    make=lambda context: happyfox(account_host=context.host, key=context.key, remote_login_url=context.login_url),
)
