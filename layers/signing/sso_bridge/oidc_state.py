"""The sign-in state that survives the trip to the OpenID provider, kept in the browser that started it.

The provider sees only a random ``sid`` (the ``state`` parameter). Everything else, the original request URL
first of all (Kustomer's ``trackingToken`` and ``kustomerRedirectUri``, a ClickFunnels ``redirect_to``), rides in
a cookie signed by the bridge: ``HttpOnly`` (no script reads it), ``Secure``, ``SameSite=Lax`` (sent on the
provider's top-level redirect back, not on cross-site subrequests) and ``Path=/oidc/callback`` (sent nowhere
else). A callback in another browser has no cookie; a callback whose ``state`` is not the cookie's ``sid`` is
someone else's (login CSRF). The ``nonce`` and the PKCE ``code_verifier`` are derived from ``sid`` with the
bridge's key, so they need no storage and nobody without the key can compute them. Each cookie has its own
name per ``sid``, so two tabs signing in at once do not overwrite each other's.

Keeping the URL in the cookie rather than in ``state`` keeps the provider's URL short: providers cap ``state``
(some at 1-2 KB), and a Kustomer return URL alone is about 1 KB.

The key is derived from the login-token key (its current version), so there is no second secret to run, and
an emergency rotation of that key also voids every sign-in in flight.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import jwt

from .errors import InputTooLarge, OidcRefused

__all__ = [
    "CALLBACK_PATH",
    "COOKIE_PREFIX",
    "MAX_COOKIE_BYTES",
    "MAX_RETURN_URL_LENGTH",
    "STATE_TTL",
    "SignInState",
    "StateSigner",
    "cookie_name",
]

CALLBACK_PATH = "/oidc/callback"
COOKIE_PREFIX = "sso_bridge_oidc_"
# Ten minutes to sign in at the provider (password, MFA) and come back.
STATE_TTL = 600
# A cap on the characters of the return URL, checked first; the cookie's size below is what decides.
MAX_RETURN_URL_LENGTH = 2000
# Browsers ignore a Set-Cookie whose name and value exceed 4,096 bytes (RFC 6265bis; Chromium's
# kMaxCookieNamePlusValueSize), and older Chromium one whose whole line did: the whole line is measured, the
# stricter rule. A plain URL of 2,000 characters makes about 3,200 bytes; JSON writes a backslash as two characters
# and a non-ASCII one as six, and base64 adds a third, so fewer characters can overflow it.
MAX_COOKIE_BYTES = 4096
_SID_BYTES = 24
_STATE_AUDIENCE = "sso-bridge/oidc-state"
_KEY_LABEL = b"sso-bridge oidc state v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def cookie_name(sid: str) -> str:
    """One cookie per sign-in; ``sid`` is base64url, so the name is a valid cookie token."""
    return COOKIE_PREFIX + sid[:16]


@dataclass(frozen=True, slots=True)
class SignInState:
    """One sign-in in flight: for which vendor, back to which URL, through which callback, at which provider."""

    sid: str
    audience: str
    return_to: str
    redirect_uri: str
    issuer: str
    expires_at: int


class StateSigner:
    """Signs and checks the state cookie, and derives the ``nonce`` and the PKCE verifier from its ``sid``."""

    def __init__(self, login_key: str) -> None:
        # A key of its own, so a state can never pass for a login token nor the other way round.
        self._key = hmac.new(login_key.encode(), _KEY_LABEL, hashlib.sha256).hexdigest()

    def new(self, *, audience: str, return_to: str, redirect_uri: str, issuer: str, now: int) -> SignInState:
        if len(return_to) > MAX_RETURN_URL_LENGTH:
            raise InputTooLarge("return_url_too_long", detail=f"{len(return_to)} characters")
        return SignInState(
            sid=_b64(secrets.token_bytes(_SID_BYTES)),
            audience=audience,
            return_to=return_to,
            redirect_uri=redirect_uri,
            issuer=issuer,
            expires_at=now + STATE_TTL,
        )

    def cookie(self, state: SignInState, *, now: int) -> str:
        """The ``Set-Cookie`` value that carries ``state``; ``InputTooLarge`` when a browser would drop it, and the user
        would come back from the provider, password typed, to a callback without it."""
        claims = {
            "aud": _STATE_AUDIENCE,
            "sid": state.sid,
            "vendor": state.audience,
            "rt": state.return_to,
            "ru": state.redirect_uri,
            "op": state.issuer,
            "iat": now,
            "exp": state.expires_at,
        }
        value = jwt.encode(claims, self._key, algorithm="HS256")
        header = f"{cookie_name(state.sid)}={value}; Max-Age={STATE_TTL}; {_ATTRIBUTES}"
        size = len(header.encode())
        if size > MAX_COOKIE_BYTES:
            raise InputTooLarge("oidc_state_cookie_too_large", detail=f"{size} bytes")
        return header

    @staticmethod
    def clear(sid: str) -> str:
        return f"{cookie_name(sid)}=; Max-Age=0; {_ATTRIBUTES}"

    def verify(self, value: str) -> SignInState:
        """The state in a cookie, when the bridge signed it and it has not expired."""
        # Ours is base64url and dots, within the size above: PyJWT would fail to encode a lone surrogate (a 500).
        if len(value) > MAX_COOKIE_BYTES or not value.isascii():
            raise OidcRefused("oidc_state_invalid", detail="not a state cookie")
        try:
            claims: dict[str, Any] = jwt.decode(
                value,
                self._key,
                algorithms=["HS256"],
                audience=_STATE_AUDIENCE,
                options={"require": ["sid", "vendor", "rt", "ru", "op", "exp", "iat"]},
            )
        except jwt.PyJWTError as exc:
            raise OidcRefused("oidc_state_invalid", detail=type(exc).__name__) from exc
        fields = [claims[name] for name in ("sid", "vendor", "rt", "ru", "op")]
        if not all(isinstance(field, str) for field in fields) or isinstance(claims["exp"], bool):
            raise OidcRefused("oidc_state_invalid", detail="claim types")
        sid, audience, return_to, redirect_uri, issuer = fields
        return SignInState(sid, audience, return_to, redirect_uri, issuer, int(claims["exp"]))

    def nonce(self, sid: str) -> str:
        return self._derive("nonce", sid)

    def code_verifier(self, sid: str) -> str:
        """43 characters of base64url: RFC 7636 §4.1 asks for 43 to 128 of ``[A-Za-z0-9-._~]``."""
        return self._derive("pkce", sid)

    @staticmethod
    def code_challenge(verifier: str) -> str:
        return _b64(hashlib.sha256(verifier.encode()).digest())

    def _derive(self, label: str, sid: str) -> str:
        return _b64(hmac.new(self._key.encode(), f"{label}|{sid}".encode(), hashlib.sha256).digest())


_ATTRIBUTES = f"Path={CALLBACK_PATH}; HttpOnly; Secure; SameSite=Lax"
