"""Who the user is, kept across a portal's own start of sign-in (Discourse, Freshworks).

Some portals sign what the bridge answers against a value they made: Discourse a nonce, Freshworks a state and
nonce. The bridge cannot start their sign-in itself, so a reader whose email link was just spent (or whom the
platform sent straight to the bridge) must go to the portal first and come back with the portal's parameters.
Between the two visits the bridge keeps the identity in a cookie: a fresh interactive login token, for this vendor
only, living two minutes, ``HttpOnly`` and ``Secure``. ``SameSite=Lax``, because the portal sends the browser back
with a top-level GET from its own site, which carries Lax cookies and not Strict ones.

The cookie is the same kind of credential as a login token in the platform's redirect, and is checked by the same
``verify_login_token``; it is read only when the request has no ``login_token``, and cleared once used.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

import jwt

from .http import Event
from .login_token import MAX_TOKEN_LENGTH, LoginIdentity, profile_claims

__all__ = ["HANDOFF_SECONDS", "Handoff", "cookie_name"]

# Time to reach the portal and be sent back: two redirects, no typing.
HANDOFF_SECONDS = 120
_AUDIENCE = re.compile(r"^[a-z0-9-]{1,40}$")


def cookie_name(audience: str) -> str:
    """One cookie per vendor: the HTTP API serves every vendor on one host."""
    if not _AUDIENCE.fullmatch(audience):
        raise ValueError(f"not a vendor name: {audience!r}")
    return f"sso_bridge_handoff_{audience}"


@dataclass(frozen=True, slots=True)
class Handoff:
    """The cookie of one vendor's flow."""

    audience: str

    @property
    def name(self) -> str:
        return cookie_name(self.audience)

    def cookie(self, user: LoginIdentity, *, login_key: str, lifetime: int = HANDOFF_SECONDS) -> str:
        """``Set-Cookie`` holding ``user`` as an interactive login token for this vendor (never a link's rights)."""
        now = int(time.time())
        claims = {
            "email": user.email,
            "aud": self.audience,
            "iat": now,
            "exp": now + lifetime,
            "jti": secrets.token_urlsafe(16),
            **({"name": user.name} if user.name else {}),
            **profile_claims(user.profile),
        }
        if user.redirect_to:
            claims["redirect_to"] = user.redirect_to
        token = jwt.encode(claims, login_key, algorithm="HS256")
        return f"{self.name}={token}; Max-Age={lifetime}; Path=/; HttpOnly; Secure; SameSite=Lax"

    def token(self, event: Event) -> str | None:
        """The login token the cookie holds, when it looks like one (``verify_login_token`` judges it)."""
        value = event.cookies.get(self.name)
        if not value or len(value) > MAX_TOKEN_LENGTH:
            return None
        return value

    def clear(self) -> str:
        return f"{self.name}=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax"
