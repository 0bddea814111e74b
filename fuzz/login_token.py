"""Fuzz target: the login-token check, ``sso_bridge.login_token.verify_login_token``.

Whatever the token, only a ``BridgeError`` may come out (a 4xx, or the sign-in round trip), never another
exception (a 500); and an identity that comes back keeps the promises the flows build on. The first byte of an
input says how the rest becomes a token:

- ``r``: the rest is the token's text (decoded as ``Query`` decodes a parameter: no lone surrogates). The seeds
  signed with the key expired long ago and any changed byte breaks a signature, so an identity coming back
  would be a forgery;
- ``s``: a JWT built from fuzzed header fields and claims (of any JSON type), signed with the key, so every
  claim check runs;
- ``j``: fuzzed bytes as the header and payload segments, signed with the key: PyJWT's own JSON and base64
  handling, behind a good signature.

Any other first byte picks one of those by its value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from typing import Any

import atheris

from fuzz._harness import check, fuzz

with atheris.instrument_imports(include=["sso_bridge", "jwt"]):
    from sso_bridge.errors import BridgeError
    from sso_bridge.login_token import (
        MAX_EMAIL_LENGTH,
        MAX_NAME_LENGTH,
        LoginIdentity,
        TokenKind,
        check_campaign,
        check_email,
        verify_login_token,
    )

KEY = "fuzz-login-token-key-0123456789abcdef0123456789"
PREVIOUS_KEY = "fuzz-previous-login-token-key-0123456789abcdef"
AUDIENCE = "clickfunnels"
MAX_TTL = 300
LINK_MAX_TTL = 30 * 86400
LEEWAY = 30
CLAIMS = ["email", "aud", "iat", "exp", "nbf", "name", "jti", "use", "redirect_to", "campaign", "iss", "sub"]
HEADER_FIELDS = ["alg", "typ", "kid", "crit", "b64", "zip", "cty", "jku"]
INTERESTING = [
    "HS256",
    "none",
    "RS256",
    "hs256",
    "link",
    AUDIENCE,
    "kustomer",
    "jane.doe+vip@example.com",
    "a@b.co",
    "a@b",
    "\u212a@example.com",
    "x@example.com\n",
    "0123456789abcdef0123",
    "https://yourworkspace.myclickfunnels.com/x",
    "",
    " ",
    "\x00",
    "\u202e",
]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LINK_JTI = re.compile(r"[A-Za-z0-9_-]{16,128}", re.ASCII)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def signed(header_segment: bytes, payload_segment: bytes, key: str) -> str:
    signing_input = f"{b64url(header_segment)}.{b64url(payload_segment)}"
    signature = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def json_value(fdp: atheris.FuzzedDataProvider, depth: int = 0) -> Any:
    """Any JSON value, NaN and Infinity included (Python's json writes and reads them)."""
    kind = fdp.ConsumeIntInRange(0, 8 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return fdp.ConsumeBool()
    if kind == 2:
        return fdp.ConsumeInt(fdp.ConsumeIntInRange(1, 64))
    if kind == 3:
        return fdp.ConsumeFloat()
    if kind == 4:
        return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 300))
    if kind == 5:
        return fdp.PickValueInList(INTERESTING)
    if kind == 6:
        return int(time.time()) + fdp.ConsumeIntInRange(-(10**7), 10**7)
    if kind == 7:
        return [json_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3))]
    return {fdp.PickValueInList(CLAIMS): json_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3))}


def structured_token(fdp: atheris.FuzzedDataProvider) -> str:
    """Valid claims to start with, then some changed, some dropped; header fields likewise."""
    now = int(time.time())
    claims: dict[str, Any] = {"email": "jane.doe+vip@example.com", "aud": AUDIENCE, "iat": now, "exp": now + 60}
    if fdp.ConsumeBool():
        claims.update(use="link", jti="0123456789abcdef0123", exp=now + 86400)
    for _ in range(fdp.ConsumeIntInRange(0, 4)):
        claims[fdp.PickValueInList(CLAIMS)] = json_value(fdp)
    for _ in range(fdp.ConsumeIntInRange(0, 1)):
        claims.pop(fdp.PickValueInList(CLAIMS), None)
    header: dict[str, Any] = {"alg": "HS256", "typ": "JWT"}
    for _ in range(fdp.ConsumeIntInRange(0, 2)):
        header[fdp.PickValueInList(HEADER_FIELDS)] = json_value(fdp)
    payload: Any = claims if fdp.ConsumeIntInRange(0, 9) else json_value(fdp)
    return signed(json.dumps(header).encode(), json.dumps(payload).encode(), KEY)


def raw_segments_token(fdp: atheris.FuzzedDataProvider) -> str:
    header = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 200))
    return signed(header, fdp.ConsumeBytes(fdp.remaining_bytes()), KEY)


def check_identity(user: LoginIdentity, now: float) -> None:
    """What every flow takes for granted about an identity the check let through."""
    check(check_email(user.email) == user.email, "email returned that check_email refuses")
    check(len(user.email) <= MAX_EMAIL_LENGTH and not _CONTROL.search(user.email), f"email {user.email!r}")
    check(user.name is None or (len(user.name) <= MAX_NAME_LENGTH and not _CONTROL.search(user.name)), "name")
    check(user.redirect_to is None or not _CONTROL.search(user.redirect_to), "redirect_to with control characters")
    check(check_campaign(user.campaign) == user.campaign, "campaign returned that check_campaign refuses")
    check(user.issued_at <= now + LEEWAY + 1, f"issued in the future: {user.issued_at}")
    check(user.expires_at >= now - LEEWAY - 1, f"expired: {user.expires_at}")
    cap = LINK_MAX_TTL if user.kind is TokenKind.LINK else MAX_TTL
    check(user.expires_at - user.issued_at <= cap, f"{user.kind} lifetime {user.expires_at - user.issued_at}s")
    if user.kind is TokenKind.LINK:
        check(user.jti is not None and _LINK_JTI.fullmatch(user.jti), f"link jti {user.jti!r}")


def test_one_input(data: bytes) -> None:
    mode = chr(data[0]) if data else "r"
    if mode not in "rsj":
        mode = "rsj"[data[0] % 3]
    fdp = atheris.FuzzedDataProvider(data[1:])
    keys = [KEY]
    if mode == "r":
        token = data[1:].decode("utf-8", "replace")
    else:
        token = structured_token(fdp) if mode == "s" else raw_segments_token(fdp)
        if data[0] & 0x80:  # during a key rotation: the previous key is tried first, and fails
            keys = [PREVIOUS_KEY, KEY]
    try:
        user = verify_login_token(
            token, keys=keys, audience=AUDIENCE, max_ttl=MAX_TTL, link_max_ttl=LINK_MAX_TTL, leeway=LEEWAY
        )
    except BridgeError:
        return
    check(mode != "r", f"an unsigned token was accepted: {token!r}")
    check_identity(user, time.time())


def main() -> None:
    fuzz(test_one_input)


if __name__ == "__main__":
    main()
