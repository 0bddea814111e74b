"""Verify the platform's login token: who the user is, for which vendor, until when.

The one distinction users feel: a missing or expired token sends them to sign in again
(``LoginRequired``); anything forged, tampered or malformed is refused outright, never passed on.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jwt

from .errors import InputTooLarge, InvalidLoginToken, LoginRequired, MalformedLoginToken, WrongAudience

__all__ = [
    "MAX_EMAIL_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_TOKEN_LENGTH",
    "LoginIdentity",
    "verify_login_token",
]

MAX_TOKEN_LENGTH = 4096
MAX_EMAIL_LENGTH = 254
MAX_NAME_LENGTH = 200
MAX_JTI_LENGTH = 128
_REQUIRED = ["email", "aud", "iat", "exp"]
# One @, no spaces, quotes, angle brackets or control characters; a dot in the domain.
_EMAIL = re.compile(r"^[^\s@\"<>()\[\]\\,;:]+@[a-z0-9-]+(\.[a-z0-9-]+)+$", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class LoginIdentity:
    email: str
    name: str | None
    jti: str | None
    redirect_to: str | None
    issued_at: int
    expires_at: int


def _optional_text(claims: dict[str, object], claim: str, limit: int) -> str | None:
    value = claims.get(claim)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidLoginToken("claim_type", detail=claim)
    if len(value) > limit:
        raise MalformedLoginToken("claim_too_long", detail=claim)
    if _CONTROL.search(value):
        raise InvalidLoginToken("claim_characters", detail=claim)
    return value.strip() or None


def _numeric_date(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidLoginToken("login_token_times")
    return int(value)


def verify_login_token(
    token: str | None,
    *,
    keys: Iterable[str],
    audience: str,
    max_ttl: int,
    leeway: int,
) -> LoginIdentity:
    """Decode ``token`` with HS256 only and return the identity it vouches for.

    ``keys`` are tried in order until one verifies the signature (the current key, then during a rotation
    the previous one); it may be lazy, so a later key is fetched only when an earlier one fails.
    """
    if not token:
        raise LoginRequired("login_token_missing")
    if len(token) > MAX_TOKEN_LENGTH:
        raise InputTooLarge("login_token_too_long", detail=f"{len(token)} characters")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as exc:
        raise MalformedLoginToken("login_token_malformed") from exc
    if header.get("alg") != "HS256":
        raise InvalidLoginToken("login_token_alg", detail=str(header.get("alg"))[:20])
    claims: dict[str, Any] | None = None
    for key in keys:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["HS256"],
                audience=audience,
                leeway=leeway,
                options={"require": _REQUIRED, "verify_iat": True},
            )
        except jwt.InvalidSignatureError:
            continue  # perhaps signed with the key before this one
        except jwt.ExpiredSignatureError as exc:
            raise LoginRequired("login_token_expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise WrongAudience() from exc
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidLoginToken("login_token_claims", detail=exc.claim) from exc
        except jwt.DecodeError as exc:
            raise MalformedLoginToken("login_token_malformed") from exc
        except jwt.InvalidTokenError as exc:  # immature, bad iat/exp types, ...
            raise InvalidLoginToken("login_token_invalid", detail=type(exc).__name__) from exc
        break
    if claims is None:
        raise InvalidLoginToken("login_token_signature")

    issued_at, expires_at = _numeric_date(claims["iat"]), _numeric_date(claims["exp"])
    if issued_at > time.time() + leeway:
        raise InvalidLoginToken("login_token_future")
    if expires_at - issued_at > max_ttl:
        raise InvalidLoginToken("login_token_lifetime", detail=f"{expires_at - issued_at}s")

    email = claims["email"]
    if not isinstance(email, str):
        raise InvalidLoginToken("email_type")
    if len(email) > MAX_EMAIL_LENGTH:
        raise MalformedLoginToken("email_too_long")
    if not _EMAIL.fullmatch(email):
        raise MalformedLoginToken("email_invalid")
    return LoginIdentity(
        email=email,
        name=_optional_text(claims, "name", MAX_NAME_LENGTH),
        jti=_optional_text(claims, "jti", MAX_JTI_LENGTH),
        redirect_to=_optional_text(claims, "redirect_to", 2048),
        issued_at=issued_at,
        expires_at=expires_at,
    )
