"""Verify the platform's login token: who the user is, for which vendor, until when, and how it may be used.

The one distinction users feel: a missing or expired token sends them to sign in again
(``LoginRequired``); anything forged, tampered or malformed is refused outright, never passed on.

Two kinds of token, told apart by the ``use`` claim:

- *interactive* (no ``use``): the platform hands it straight to the browser in its sign-in round trip, so it
  lives minutes (``LOGIN_TOKEN_MAX_TTL``) and may name several vendors;
- *link* (``use: "link"``): sits in an email for days (``LINK_TOKEN_MAX_TTL``), so it names exactly one vendor
  and carries a ``jti`` that the bridge records when the link is spent: it signs someone in once.

A token of one kind with the other kind's lifetime is refused like any other bad token.
"""

from __future__ import annotations

import enum
import re
import time
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jwt

from .errors import InputTooLarge, InvalidLoginToken, LoginRequired, MalformedLoginToken, WrongAudience

__all__ = [
    "LINK_USE",
    "MAX_CAMPAIGN_LENGTH",
    "MAX_EMAIL_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_TOKEN_LENGTH",
    "PROFILE_CLAIMS",
    "LoginIdentity",
    "Profile",
    "TokenKind",
    "check_campaign",
    "check_email",
    "check_name",
    "email_key",
    "has_hidden_characters",
    "profile_claims",
    "read_profile",
    "verify_login_token",
]

MAX_TOKEN_LENGTH = 4096
MAX_EMAIL_LENGTH = 254
MAX_NAME_LENGTH = 200
MAX_JTI_LENGTH = 128
MAX_CAMPAIGN_LENGTH = 64
LINK_USE = "link"
_REQUIRED = ["email", "aud", "iat", "exp"]
# The domain is ASCII (IDNA A-labels, xn--, are ASCII): re.ASCII, because IGNORECASE alone folds the Kelvin
# sign into k, long s into s and dotted or dotless I into i, and an audit by email would then miss the address.
_EMAIL_DOMAIN = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$", re.IGNORECASE | re.ASCII)
# The local part: no spaces, quotes, angle brackets, brackets, separators or second @ (and no hidden
# characters, checked by category below).
_EMAIL_LOCAL = re.compile(r"^[^\s@\"<>()\[\]\\,;:]+$")
# Characters that have no business in an email, a name or an id: controls (C0, C1), format characters (bidi
# overrides and isolates, zero-width), line and paragraph separators, private use, unassigned, surrogates.
# Decided by category, so a character the next Unicode version adds is judged the same way.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cn", "Cs"})
# A link's jti is a DynamoDB key and a log field: plain characters, long enough to be unguessable.
_LINK_JTI = re.compile(r"^[A-Za-z0-9_-]{16,128}$", re.ASCII)
# A campaign becomes a CloudWatch dimension value: printable ASCII, starting with a letter or digit.
_CAMPAIGN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:/+-]{0,63}$", re.ASCII)


class TokenKind(enum.StrEnum):
    INTERACTIVE = "interactive"
    LINK = "link"


@dataclass(frozen=True, slots=True)
class Profile:
    """What some portals take besides the email and name, from the login token when the platform sends it.

    Each is optional and checked like ``name`` (type, length, no hidden characters), because each ends up in a
    vendor's token and on its pages. ``subject`` (the ``sub`` claim) is a stable id for portals that map users by
    one (Canny's ``id``, Discourse's ``external_id``); the portal falls back to the email without it.
    """

    subject: str | None = None
    external_id: str | None = None
    organization: str | None = None
    tags: tuple[str, ...] = ()
    locale_id: int | None = None
    avatar_url: str | None = None
    given_name: str | None = None
    family_name: str | None = None


# Login-token claim -> Profile field; also what an interactive token minted from an identity carries back.
PROFILE_CLAIMS = {
    "sub": "subject",
    "external_id": "external_id",
    "organization": "organization",
    "tags": "tags",
    "locale_id": "locale_id",
    "avatar_url": "avatar_url",
    "given_name": "given_name",
    "family_name": "family_name",
}
MAX_ID_LENGTH = 255
MAX_TAGS = 50
MAX_TAG_LENGTH = 64
MAX_LOCALE_ID = 1_000_000
# A tag is a word (Zendesk splits its tags claim on commas and spaces).
_TAG = re.compile(r"^[^\s,]{1,64}$")


@dataclass(frozen=True, slots=True)
class LoginIdentity:
    email: str
    name: str | None
    jti: str | None
    redirect_to: str | None
    issued_at: int
    expires_at: int
    kind: TokenKind = TokenKind.INTERACTIVE
    campaign: str | None = None
    profile: Profile = field(default_factory=Profile)

    @property
    def is_link(self) -> bool:
        return self.kind is TokenKind.LINK


def _optional_text(claims: dict[str, object], claim: str, limit: int) -> str | None:
    value = claims.get(claim)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidLoginToken("claim_type", detail=claim)
    if len(value) > limit:
        raise MalformedLoginToken("claim_too_long", detail=claim)
    if has_hidden_characters(value):
        raise InvalidLoginToken("claim_characters", detail=claim)
    return value.strip() or None


def has_hidden_characters(value: str) -> bool:
    """True when ``value`` holds a character of a hidden category (controls, bidi, zero-width, ...)."""
    if value.isascii():
        return not value.isprintable()  # the fast path: in ASCII only controls are unprintable
    return any(unicodedata.category(char) in _HIDDEN_CATEGORIES for char in value)


def check_email(value: object) -> str:
    """``value`` when the bridge accepts it as an email; minting tools check rows with the same rule."""
    if not isinstance(value, str):
        raise InvalidLoginToken("email_type")
    if len(value) > MAX_EMAIL_LENGTH:
        raise MalformedLoginToken("email_too_long")
    local, at, domain = value.rpartition("@")
    if not at or not _EMAIL_LOCAL.fullmatch(local) or not _EMAIL_DOMAIN.fullmatch(domain):
        raise MalformedLoginToken("email_invalid")
    if has_hidden_characters(local):
        raise MalformedLoginToken("email_invalid")
    if not local.isascii() and not unicodedata.is_normalized("NFKC", local):
        # A compatibility look-alike (the Kelvin sign, fullwidth letters, long s) or an accent left uncomposed:
        # mistaken for, and by str.lower() even keyed as, the address it imitates.
        raise MalformedLoginToken("email_invalid", detail="not in NFKC form (a look-alike character)")
    return value


def email_key(email: str) -> str:
    """The one form an address is stored and looked up under: revocations, spent links, the audit index.

    Capitalisation does not matter: lower case. Only an address ``check_email`` accepts (NFKC form) is folded; in
    that form ``str.lower`` maps each letter to its own lower case. Anything else (a look-alike: ``str.lower`` turns
    the Kelvin sign into ``k``) is kept as it is, so it is never another address's key.
    """
    if not email.isascii() and not unicodedata.is_normalized("NFKC", email):
        return email
    return email.lower()


def check_name(value: object) -> str | None:
    """A display name the bridge accepts (``None`` for none); the same rule for minting tools."""
    return _optional_text({"name": value}, "name", MAX_NAME_LENGTH)


def _tags(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise InvalidLoginToken("claim_type", detail="tags")
    if len(value) > MAX_TAGS:
        raise MalformedLoginToken("claim_too_long", detail="tags")
    if not all(_TAG.fullmatch(tag) and not has_hidden_characters(tag) for tag in value):
        raise MalformedLoginToken("claim_characters", detail="tags")
    return tuple(dict.fromkeys(value))


def _locale_id(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidLoginToken("claim_type", detail="locale_id")
    if not 0 < value <= MAX_LOCALE_ID:
        raise MalformedLoginToken("claim_characters", detail="locale_id")
    return value


def _avatar_url(value: object) -> str | None:
    """An https URL with a host: it becomes an image a portal loads for everyone who sees the user."""
    text = _optional_text({"avatar_url": value}, "avatar_url", 2048)
    if text is None:
        return None
    parts = urlsplit(text)
    if parts.scheme != "https" or not parts.hostname or "@" in parts.netloc or not text.isascii() or " " in text:
        raise MalformedLoginToken("claim_characters", detail="avatar_url")
    return text


def read_profile(claims: Mapping[str, object]) -> Profile:
    """The optional portal claims of a verified login token (or of anything as untrusted)."""
    return Profile(
        subject=_optional_text(dict(claims), "sub", MAX_ID_LENGTH),
        external_id=_optional_text(dict(claims), "external_id", MAX_ID_LENGTH),
        organization=_optional_text(dict(claims), "organization", MAX_ID_LENGTH),
        tags=_tags(claims.get("tags")),
        locale_id=_locale_id(claims.get("locale_id")),
        avatar_url=_avatar_url(claims.get("avatar_url")),
        given_name=_optional_text(dict(claims), "given_name", MAX_NAME_LENGTH),
        family_name=_optional_text(dict(claims), "family_name", MAX_NAME_LENGTH),
    )


def profile_claims(profile: Profile) -> dict[str, Any]:
    """``profile`` back as login-token claims (only those set): for a token minted from a checked identity."""
    claims: dict[str, Any] = {}
    for claim, attribute in PROFILE_CLAIMS.items():
        value = getattr(profile, attribute)
        if value is not None and value != ():
            claims[claim] = list(value) if isinstance(value, tuple) else value
    return claims


def check_campaign(value: object) -> str | None:
    """A campaign label the bridge accepts; it ends up as a metric dimension, so it stays plain."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidLoginToken("claim_type", detail="campaign")
    if len(value) > MAX_CAMPAIGN_LENGTH:
        raise MalformedLoginToken("claim_too_long", detail="campaign")
    if not _CAMPAIGN.fullmatch(value) or value != value.strip():
        raise MalformedLoginToken("claim_characters", detail="campaign")
    return value


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
    link_max_ttl: int,
    leeway: int,
) -> LoginIdentity:
    """Decode ``token`` with HS256 only and return the identity it vouches for.

    ``keys`` are tried in order until one verifies the signature (the current key, then during a rotation
    the previous one); it may be lazy, so a later key is fetched only when an earlier one fails.
    ``max_ttl`` caps an interactive token's lifetime, ``link_max_ttl`` a link's.
    """
    if not token:
        raise LoginRequired("login_token_missing")
    if len(token) > MAX_TOKEN_LENGTH:
        raise InputTooLarge("login_token_too_long", detail=f"{len(token)} characters")
    if not token.isascii():  # a JWT is base64url and dots; PyJWT would fail to encode some of these
        raise MalformedLoginToken("login_token_malformed")
    # Nothing is read from the header before PyJWT has checked it: it refuses any algorithm but HS256, a
    # non-object header, a non-string kid and any crit extension (RFC 7515 §4.1.11) before the signature.
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
            expired = LoginRequired("login_token_expired")
            expired.deep_link = _expired_deep_link(token, key, audience)
            raise expired from exc
        except jwt.InvalidAudienceError as exc:
            raise WrongAudience() from exc
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidLoginToken("login_token_claims", detail=exc.claim) from exc
        except jwt.InvalidAlgorithmError as exc:
            raise InvalidLoginToken("login_token_alg") from exc
        except jwt.DecodeError as exc:
            raise MalformedLoginToken("login_token_malformed") from exc
        except jwt.PyJWTError as exc:  # immature, bad iat/exp types, odd headers (kid, crit), ...
            raise InvalidLoginToken("login_token_invalid", detail=type(exc).__name__) from exc
        break
    if claims is None:
        raise InvalidLoginToken("login_token_signature")

    issued_at, expires_at = _numeric_date(claims["iat"]), _numeric_date(claims["exp"])
    if issued_at > time.time() + leeway:
        raise InvalidLoginToken("login_token_future")
    kind = _kind(claims)
    cap = link_max_ttl if kind is TokenKind.LINK else max_ttl
    if expires_at - issued_at > cap:
        raise InvalidLoginToken("login_token_lifetime", detail=f"{kind} {expires_at - issued_at}s")

    email = check_email(claims["email"])
    jti = _optional_text(claims, "jti", MAX_JTI_LENGTH)
    if kind is TokenKind.LINK:
        _check_link(claims, jti)
    return LoginIdentity(
        email=email,
        name=check_name(claims.get("name")),
        jti=jti,
        redirect_to=_optional_text(claims, "redirect_to", 2048),
        issued_at=issued_at,
        expires_at=expires_at,
        kind=kind,
        campaign=check_campaign(claims.get("campaign")),
        profile=read_profile(claims),
    )


def _expired_deep_link(token: str, key: str, audience: str) -> str | None:
    """The ``redirect_to`` of a token that verified but expired: an old link still says where the reader was going
    (the sign-in round trip takes them there). Whatever else is wrong with the token, it says nothing."""
    try:
        claims = jwt.decode(token, key, algorithms=["HS256"], audience=audience, options={"verify_exp": False})
        return _optional_text(claims, "redirect_to", 2048)
    except (jwt.PyJWTError, InvalidLoginToken, MalformedLoginToken):
        return None


def _kind(claims: dict[str, Any]) -> TokenKind:
    use = claims.get("use")
    if use is None:
        return TokenKind.INTERACTIVE
    if use == LINK_USE:
        return TokenKind.LINK
    # Another value is a contract we do not know: guessing a kind could give a link an interactive's rights.
    raise InvalidLoginToken("login_token_use", detail=str(use)[:20])


def _check_link(claims: dict[str, Any], jti: str | None) -> None:
    """A link signs one person into one vendor once: one audience, and a jti to record it by."""
    audience = claims["aud"]
    if isinstance(audience, list) and len(audience) != 1:
        raise InvalidLoginToken("link_audience", detail=f"{len(audience)} audiences")
    if jti is None:
        raise InvalidLoginToken("link_jti_missing")
    if not _LINK_JTI.fullmatch(jti):
        raise InvalidLoginToken("link_jti_invalid")
