"""Local stand-ins for the vendors' side of SSO: ClickFunnels, Kustomer and HappyFox.

Decoding a token with the key that signed it proves little about whether the vendor will take it. These apps
accept or refuse tokens the way each vendor's own docs say it does (``vendor-docs/``), so the local stack and
the browser tests end on the page a user would really see, or on the refusal a vendor would really give.
Each knows its public host from configuration, never from the request, because it is reached on plain http
ports (``make run``) as well as under the vendor's real name over HTTPS (browser tests).

PyJWT checks the signature, the algorithm (HS256 only) and that every required claim is there. Times and
types are checked here, with each vendor's own window, and strictly as whole seconds: PyJWT's ``int()``
would take ``"1700000000"`` or ``1.5``, which a vendor's stricter parser may not.

Pages never show the token, and the apps print nothing: the token is a live credential until it expires.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

import jwt
from jwt.types import Options

from local.pages import html_reply
from local.server import App, Reply, Request

__all__ = [
    "HAPPYFOX_SKEW_SECONDS",
    "HAPPYFOX_WINDOW_SECONDS",
    "KUSTOMER_SKEW_SECONDS",
    "KUSTOMER_WINDOW_SECONDS",
    "clickfunnels",
    "happyfox",
    "kustomer",
]

KUSTOMER_WINDOW_SECONDS = 15 * 60  # "Signed tokens will only be valid for 15 minutes."
HAPPYFOX_WINDOW_SECONDS = 120  # "The JWT token is valid for 120 seconds from HappyFox side."
# Neither doc names a tolerance for a clock ahead of theirs; a minute, so real-world skew is not a refusal.
KUSTOMER_SKEW_SECONDS = HAPPYFOX_SKEW_SECONDS = 60
# ClickFunnels names no tolerance and its sample sets iat = nbf = now, so none (the bridge backdates nbf for it).
_CLICKFUNNELS_SKEW_SECONDS = 0
_KUSTOMER_HEADER = {"alg": "HS256", "typ": "JWT"}

_Route = Callable[[Request], Reply]


class _Refused(Exception):
    """A refusal page; ``reason`` is always one of this module's fixed strings, never request data."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class _Site:
    vendor: str  # ClickFunnels
    title: str  # Customer center
    host: str  # the public host the real site would have

    def note(self) -> str:
        return (
            f"<p><small>Local stand-in for {escape(self.vendor)}'s {escape(self.title.lower())} at "
            f"<code>https://{escape(self.host)}</code>: it checks tokens as {escape(self.vendor)}'s docs say, "
            "nothing more.</small></p>"
        )

    def page(self, status: int, heading: str, body_html: str, *, title: str | None = None) -> Reply:
        page_title = f"{title} · {self.title} (local stand-in)" if title else f"{self.title} (local stand-in)"
        return html_reply(status, page_title, f"<h1>{escape(heading)}</h1>{body_html}{self.note()}")


# Request plumbing shared by the three apps.


def _app(site: _Site, routes: Mapping[str, _Route]) -> App:
    def app(request: Request) -> Reply:
        if request.method not in ("GET", "HEAD"):
            body = "<p>Only GET and HEAD are answered here.</p>"
            reply = site.page(405, "Method not allowed", body, title="Method not allowed")
            reply.headers.append(("Allow", "GET, HEAD"))
            return reply
        route = routes.get(request.path)
        if route is None:
            return site.page(404, "Page not found", "<p>There is nothing at this address.</p>", title="Page not found")
        try:
            return route(request)
        except _Refused as refused:
            body = f"<p class=error>{escape(refused.reason)}</p>"
            return site.page(refused.status, "Sign-in refused", body, title="Sign-in refused")

    return app


def _query(request: Request) -> dict[str, str]:
    params = parse_qs(request.query, keep_blank_values=True)
    # Two values for one name is a link that was tampered with or built twice; no vendor picks one for you.
    if any(len(values) > 1 for values in params.values()):
        raise _Refused(400, "A query parameter appears more than once.")
    return {name: values[0] for name, values in params.items()}


def _param(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise _Refused(400, f"The request has no {name} parameter.")
    return value


# Token checks.


def _decode(token: str, key: str, required: Sequence[str]) -> dict[str, Any]:
    options: Options = {
        "require": list(required),
        # Times and types are checked by the caller (see the module docstring); no vendor defines aud, iss.
        "verify_exp": False,
        "verify_nbf": False,
        "verify_iat": False,
        "verify_aud": False,
        "verify_iss": False,
        "verify_sub": False,
        "verify_jti": False,
    }
    try:
        claims: dict[str, Any] = jwt.decode(token, key, algorithms=["HS256"], options=options)
    except jwt.InvalidAlgorithmError:
        raise _Refused(401, "The token is not signed with HS256.") from None
    except jwt.InvalidSignatureError:
        raise _Refused(401, "The token's signature does not match the key.") from None
    except jwt.MissingRequiredClaimError as missing:
        # The name is one of ``required``, never text from the token.
        raise _Refused(401, f"The token has no {missing.claim} claim.") from None
    except jwt.PyJWTError:
        raise _Refused(401, "The token is not a well-formed JWT.") from None
    return claims


def _seconds(claims: Mapping[str, Any], name: str) -> int:
    value = claims[name]
    if type(value) is not int:  # not bool, not float, not a numeric string
        raise _Refused(401, f"The token's {name} claim is not a whole number of seconds.")
    return value


def _text(claims: Mapping[str, Any], name: str) -> str:
    value = claims[name]
    if not isinstance(value, str) or not value.strip():
        raise _Refused(401, f"The token's {name} claim is not a non-empty string.")
    return value


def _check_exp_nbf(claims: Mapping[str, Any], now: float, skew: int, *, expired: str) -> None:
    """``exp`` and ``nbf`` when present, as any JWT library checks them, with the vendor's tolerance."""
    if "exp" in claims and _seconds(claims, "exp") <= now - skew:
        raise _Refused(401, expired)
    if "nbf" in claims and _seconds(claims, "nbf") > now + skew:
        raise _Refused(401, "The token is not valid yet (nbf).")


def _check_iat(claims: Mapping[str, Any], now: float, skew: int) -> int:
    iat = _seconds(claims, "iat")
    if iat > now + skew:
        raise _Refused(401, "The token was issued in the future (iat).")
    return iat


# Pages.


def _claims_html(claims: Mapping[str, Any]) -> str:
    """The verified claims, for whoever is debugging the bridge (claims are not secret; the token is)."""
    items = []
    for name, value in claims.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        items.append(f"<li><code>{escape(str(name))}</code>: <code>{escape(shown)}</code></li>")
    return f"<h2>Verified claims</h2><ul>{''.join(items)}</ul>"


def _signed_in(site: _Site, email: str, details_html: str, claims: Mapping[str, Any]) -> Reply:
    body = f"<p>Welcome to the {escape(site.title.lower())}.</p>{details_html}{_claims_html(claims)}"
    return site.page(200, f"Signed in as {email}", body, title="Signed in")


def _link(url: str, text: str) -> str:
    return f'<p><a href="{escape(url)}">{escape(text)}</a></p>'


# ClickFunnels.


def clickfunnels(*, workspace_domain: str, key: str) -> App:
    """ClickFunnels' customer center at ``https://{workspace_domain}``: ``GET /sso`` signs a contact in.

    Its docs: ``identifier`` (the email), ``strategy=email`` and ``token``, an HS256 JWT of ``sub`` =
    ``EMAIL:WORKSPACE_DOMAIN``, ``nbf``, ``exp``, ``iat`` (all required) and optionally ``redirect_to``.
    """
    site = _Site("ClickFunnels", "Customer center", workspace_domain)

    def home(request: Request) -> Reply:
        return site.page(200, "Customer center (local stand-in)", "<p>Sign in through your platform's link.</p>")

    def sso(request: Request) -> Reply:
        params = _query(request)
        identifier = _param(params, "identifier")
        strategy = _param(params, "strategy")
        token = _param(params, "token")
        if strategy != "email":
            raise _Refused(401, "The sign-in strategy must be email.")
        claims = _decode(token, key, ["sub", "nbf", "exp", "iat"])
        now = time.time()
        _check_exp_nbf(claims, now, _CLICKFUNNELS_SKEW_SECONDS, expired="The token has expired.")
        _check_iat(claims, now, _CLICKFUNNELS_SKEW_SECONDS)
        # Exact: the identifier as the query carried it, and this workspace's domain (a custom one with www.).
        if _text(claims, "sub") != f"{identifier}:{workspace_domain}":
            raise _Refused(401, "The token's subject is not this contact in this workspace.")
        details = ""
        if "redirect_to" in claims:
            redirect_to = _text(claims, "redirect_to")
            details = f"<p>ClickFunnels would now take you to <code>{escape(redirect_to)}</code>.</p>"
        return _signed_in(site, identifier, details, claims)

    return _app(site, {"/": home, "/sso": sso})


# Kustomer.


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
    site = _Site("Kustomer", "Help center", portal_host)

    def log_in_link() -> str:
        return _link(_kustomer_login_url(redirect_uri, portal_host), "Log in")

    def home(request: Request) -> Reply:
        body = f"<p>Log in to see your conversations.</p>{log_in_link()}"
        return site.page(200, "Help center (local stand-in)", body)

    def login(request: Request) -> Reply:
        params = _query(request)
        if "externalToken" not in params:
            body = f"<p>This portal signs you in through your own site.</p>{log_in_link()}"
            return site.page(200, "Log in", body, title="Log in")
        token = _param(params, "externalToken")
        claims = _decode(token, key, ["email", "iat"])
        # Only a signed header is worth judging; before the signature check it is anyone's text.
        if jwt.get_unverified_header(token) != _KUSTOMER_HEADER:
            raise _Refused(401, 'The token\'s header is not exactly {"alg":"HS256","typ":"JWT"}.')
        now = time.time()
        expired = "The token has expired (Kustomer accepts it for 15 minutes after iat)."
        _check_exp_nbf(claims, now, KUSTOMER_SKEW_SECONDS, expired=expired)
        if now - _check_iat(claims, now, KUSTOMER_SKEW_SECONDS) > KUSTOMER_WINDOW_SECONDS:
            raise _Refused(401, expired)
        email = _text(claims, "email")
        details = ""
        if params.get("referralUrl"):
            details = f"<p>Kustomer would now take you back to <code>{escape(params['referralUrl'])}</code>.</p>"
        return _signed_in(site, email, details, claims)

    return _app(site, {"/": home, "/login": login})


# HappyFox.


def happyfox(*, account_host: str, key: str, remote_login_url: str) -> App:
    """A HappyFox support centre at ``https://{account_host}`` with JWT login turned on.

    Its docs: Log in goes to the Remote Login URL; the user comes back to ``/jwt/?token=<jwt>``, HS256 with
    ``iat``, ``jti``, ``name`` and ``email``, valid 120 seconds, each ``jti`` usable once.
    """
    site = _Site("HappyFox", "Support Centre", account_host)
    used: set[str] = set()
    used_lock = threading.Lock()
    expired = "Remote token has expired"

    def home(request: Request) -> Reply:
        body = f"<p>View your tickets or raise a new one.</p>{_link(remote_login_url, 'Log in')}"
        return site.page(200, "Support Centre (local stand-in)", body)

    def jwt_login(request: Request) -> Reply:
        params = _query(request)
        token = _param(params, "token")
        claims = _decode(token, key, ["iat", "jti", "name", "email"])
        now = time.time()
        _check_exp_nbf(claims, now, HAPPYFOX_SKEW_SECONDS, expired=expired)
        if now - _check_iat(claims, now, HAPPYFOX_SKEW_SECONDS) > HAPPYFOX_WINDOW_SECONDS:
            raise _Refused(401, expired)
        jti, name, email = _text(claims, "jti"), _text(claims, "name"), _text(claims, "email")
        # Last, so only a token that would sign someone in uses up its jti.
        with used_lock:
            if jti in used:
                raise _Refused(401, "Remote token has already been used")
            used.add(jti)
        return _signed_in(site, email, f"<p>Name: <strong>{escape(name)}</strong></p>", claims)

    return _app(site, {"/": home, "/jwt/": jwt_login})
