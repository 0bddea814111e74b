"""Check the provider's ID token (OpenID Connect Core §3.1.3.7) before its word opens anyone's account.

The signature needs RSA or elliptic-curve arithmetic, so ``cryptography``, a compiled package. It is not in
the signing layer: ``import jwt`` imports it whenever it is importable (about 60 ms of every cold start, for
tokens that need only HMAC). The OIDC layer puts it, with joserfc, in ``/opt/oidc-packages``, which is not on
``sys.path``; the first callback adds that folder and imports them. So a container that only ever sees login
tokens never loads them. joserfc, not PyJWT, checks the signature: PyJWT decides at its own import whether
RSA exists, which has already happened without it by then (the README's Identity provider section has the measurements).

Only RS256 and ES256, and only those the provider's discovery document names: ``none``, HMAC (a provider's
public key used as an HMAC secret) and everything else is refused before any key is looked up.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import importlib
import json
import math
import os
import sys
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .errors import InvalidIdToken
from .oidc_provider import Provider

__all__ = ["ALGORITHMS", "MAX_AGE_SECONDS", "MAX_ID_TOKEN_LENGTH", "IdClaims", "load_jose", "verify_id_token"]

# Algorithm -> the JWK key type that may verify it.
ALGORITHMS = {"RS256": "RSA", "ES256": "EC"}
MAX_ID_TOKEN_LENGTH = 16384
# An ID token is used straight after it is issued; one older than this was kept somewhere.
MAX_AGE_SECONDS = 600
_lock = threading.Lock()
# Keys already parsed by joserfc, by their JWK text: parsing one costs more than the verify itself.
_parsed: dict[str, Any] = {}
_MAX_PARSED = 32


@dataclass(frozen=True, slots=True)
class IdClaims:
    subject: str
    claims: dict[str, Any]


def load_jose(packages_path: str) -> ModuleType:
    """joserfc's ``jws`` module, with the OIDC layer's folder on ``sys.path`` (added once, at the end, so it can
    never shadow the runtime's or the signing layer's packages)."""
    with _lock:
        if os.path.isdir(packages_path) and packages_path not in sys.path:
            sys.path.append(packages_path)
        return importlib.import_module("joserfc.jws")


def _segment(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidIdToken("oidc_id_token_malformed", detail="base64") from exc


def _header(token: str) -> dict[str, Any]:
    if len(token) > MAX_ID_TOKEN_LENGTH or not token.isascii() or token.count(".") != 2:
        raise InvalidIdToken("oidc_id_token_malformed", detail="shape")
    try:
        header = json.loads(_segment(token.split(".", 1)[0]))
    except ValueError as exc:
        raise InvalidIdToken("oidc_id_token_malformed", detail="header") from exc
    if not isinstance(header, dict):
        raise InvalidIdToken("oidc_id_token_malformed", detail="header")
    return header


def _number(claims: dict[str, Any], name: str) -> int:
    """A time claim as whole seconds; JSON's Infinity and NaN (Python reads them, and a number too large for a float as
    infinity) are refused like text, not an exception."""
    value = claims.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    raise InvalidIdToken(f"oidc_id_token_{name}" if name == "iat" else "oidc_id_token_malformed", detail=name)


def verify_id_token(
    token: str,
    *,
    provider: Provider,
    client_id: str,
    nonce: str,
    now: int,
    leeway: int,
    packages_path: str,
) -> IdClaims:
    header = _header(token)
    alg = header.get("alg")
    allowed = provider.metadata().signing_algorithms
    if not isinstance(alg, str) or alg not in ALGORITHMS or alg not in allowed:
        raise InvalidIdToken("oidc_id_token_alg", detail=str(alg)[:10])
    if "crit" in header:  # RFC 7515 §4.1.11: no extension is understood here
        raise InvalidIdToken("oidc_id_token_malformed", detail="crit")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise InvalidIdToken("oidc_id_token_malformed", detail="kid")
    jwk = provider.signing_key(kid, ALGORITHMS[alg])

    jws = load_jose(packages_path)
    from joserfc.errors import JoseError
    from joserfc.jwk import JWKRegistry

    try:
        key = _parse(JWKRegistry, jwk)
        if alg == "ES256" and jwk.get("crv") != "P-256":
            raise InvalidIdToken("oidc_id_token_signature", detail="curve")
        verified = jws.deserialize_compact(token, key, algorithms=[alg])
        claims = json.loads(verified.payload)
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidIdToken("oidc_id_token_signature", detail=type(exc).__name__) from exc
    if not isinstance(claims, dict):
        raise InvalidIdToken("oidc_id_token_malformed", detail="claims")
    return IdClaims(subject=_check_claims(claims, provider.issuer, client_id, nonce, now, leeway), claims=claims)


def _parse(registry: Any, jwk: dict[str, Any]) -> Any:
    text = json.dumps(jwk, sort_keys=True)
    key = _parsed.get(text)
    if key is None:
        key = registry.import_key(jwk)
        with _lock:
            if len(_parsed) >= _MAX_PARSED:  # a provider rotating often; never unbounded
                _parsed.clear()
            _parsed[text] = key
    return key


def _check_claims(claims: dict[str, Any], issuer: str, client_id: str, nonce: str, now: int, leeway: int) -> str:
    """The subject, once the claims say the token is for us, from our provider, for this sign-in, and fresh."""
    if claims.get("iss") != issuer:
        raise InvalidIdToken("oidc_id_token_issuer")
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or client_id not in audiences:
        raise InvalidIdToken("oidc_id_token_audience")
    azp = claims.get("azp")
    # Core §3.1.3.7 (4, 5): with other audiences beside us, the token must say it was issued to us.
    if (len(audiences) > 1 and azp is None) or (azp is not None and azp != client_id):
        raise InvalidIdToken("oidc_id_token_audience", detail="azp")
    if now > _number(claims, "exp") + leeway:
        raise InvalidIdToken("oidc_id_token_expired")
    issued_at = _number(claims, "iat")
    if issued_at > now + leeway or issued_at < now - MAX_AGE_SECONDS - leeway:
        raise InvalidIdToken("oidc_id_token_iat")
    sent = claims.get("nonce")
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), nonce.encode()):
        raise InvalidIdToken("oidc_id_token_nonce")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise InvalidIdToken("oidc_id_token_malformed", detail="sub")
    return subject
