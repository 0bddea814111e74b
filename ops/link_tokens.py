"""What an email link signs: the token encoder, and the recipient checks every way of minting shares.

``make link``, ``make links`` and ``python -m ops.link`` mint through ``LinkMinter`` and check each recipient
with ``signed_email`` and ``signed_name``: one rule for a typed address and a CSV cell alike. The checks judge
the value as it will be signed (stripped, as the bridge strips a name claim), so a blank before ``=`` does not
hide a formula from the guard and then vanish when the value is stripped and signed.
"""

from __future__ import annotations

import hmac
import json
import secrets
from binascii import b2a_base64
from collections.abc import Sequence
from json.encoder import encode_basestring_ascii
from urllib.parse import quote

from local.vendors.operations import link_rules
from sso_bridge.errors import BridgeError
from sso_bridge.login_token import LINK_USE, MAX_TOKEN_LENGTH, check_email, check_name

__all__ = [
    "FORMULA_STARTS",
    "LinkMinter",
    "RefusedRecipient",
    "UsageError",
    "is_formula",
    "printable",
    "signed_email",
    "signed_name",
]

# Spreadsheets run a cell starting with one of these as a formula (OWASP's CSV injection list), and some strip
# leading blanks first: the guard reads the raw cell and the stripped value that is signed.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class UsageError(Exception):
    """Arguments or input the command cannot work with; exit status 2."""


class RefusedRecipient(Exception):
    """An email or name the bridge would refuse, or a spreadsheet would run; ``reason`` is fixed text, never the
    cell, because CSV reasons go on to other tools."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def printable(text: str) -> str:
    """``text`` with unprintable characters escaped, for messages that quote what the user typed."""
    return "".join(char if char.isprintable() else f"\\x{ord(char):02x}" for char in text)


def is_formula(cell: str) -> bool:
    return cell.startswith(FORMULA_STARTS)


def signed_email(raw: str) -> str:
    """The address a link signs for the cell or argument ``raw`` (stripped), or ``RefusedRecipient``."""
    email = raw.strip()
    # Both: the raw cell (a leading tab or CR is a formula in itself) and what is signed.
    if is_formula(raw) or is_formula(email):
        raise RefusedRecipient("email_formula")
    if not email:
        raise RefusedRecipient("email_missing")
    try:
        return check_email(email)
    except BridgeError as exc:
        raise RefusedRecipient(exc.reason) from exc


def signed_name(cells: Sequence[str]) -> str | None:
    """The display name a link signs: the cells (a name, or first and last name) stripped and joined by a space,
    ``None`` when blank; or ``RefusedRecipient`` (``name_formula``, ``name_characters``, ``name_too_long``)."""
    joined = " ".join(part for part in (cell.strip() for cell in cells) if part)  # what check_name returns
    if any(is_formula(cell) for cell in cells) or is_formula(joined):
        raise RefusedRecipient("name_formula")
    try:
        return check_name(joined)
    except BridgeError as exc:
        raise RefusedRecipient(exc.reason.replace("claim_", "name_")) from exc


# --- tokens -------------------------------------------------------------------------------------------------


def _b64url(data: bytes) -> bytes:
    return b2a_base64(data, newline=False).rstrip(b"=").translate(_URLSAFE)


_URLSAFE = bytes.maketrans(b"+/", b"-_")
_JTI_BYTES, _JTI_BATCH = 16, 1024
# PyJWT's header for HS256, byte for byte (sorted keys, compact): {"alg":"HS256","typ":"JWT"}.
_HEADER = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":"), sort_keys=True).encode())


class LinkMinter:
    """Links for one vendor, campaign, lifetime and issue time; ``link(email, name)`` per recipient.

    Not ``jwt.encode``: it costs ~54 µs a token on this project's 2-core machines (measured with PyJWT 2.15:
    it builds a header dict, a JSON encoder and an HMAC from the key on every call), which caps a mailing at
    ~18,000 rows/s before any CSV work. Here the header segment is encoded once, the claims every link shares
    are JSON-encoded once, each token only adds its email, name and jti (C-accelerated JSON string escaping),
    signs with a copy of one keyed ``hmac`` object, and jti values are cut from one ``secrets`` draw per
    1,024 tokens (``os.urandom`` per token was 1.3 µs of the budget): ~5 µs a token. The result is an
    ordinary HS256 JWT (compact JSON, base64url without padding); the tests verify tokens with PyJWT.
    """

    def __init__(
        self,
        key: str,
        *,
        vendor: str,
        function_url: str,
        issued_at: int,
        ttl: int,
        campaign: str | None = None,
        redirect_to: str | None = None,
    ) -> None:
        # A digest name, not hashlib.sha256: OpenSSL's own HMAC, whose copy() is the cheaper one (measured).
        self._mac = hmac.new(key.encode(), digestmod="sha256")
        self._jtis: list[str] = []
        self.issued_at, self.expires_at = issued_at, issued_at + ttl
        shared: dict[str, object] = {"aud": vendor, "iat": issued_at, "exp": self.expires_at, "use": LINK_USE}
        if campaign:
            shared["campaign"] = campaign
        query = ""
        parameter = link_rules(vendor).parameter if redirect_to else None
        if redirect_to and parameter:
            # A query parameter the bridge checks on every click (Kustomer's kustomerRedirectUri), not a claim.
            query = f"{quote(parameter, safe='')}={quote(redirect_to, safe='')}&"
        elif redirect_to:
            shared["redirect_to"] = redirect_to
        # '{"aud":...}' -> ',"aud":...}': the tail every token of this run ends with.
        self._tail = "," + json.dumps(shared, separators=(",", ":"))[1:]
        self._prefix = f"{function_url}?{query}login_token="

    @property
    def max_link_length(self) -> int:
        """The bridge refuses a login token over ``MAX_TOKEN_LENGTH`` characters (a 414 page)."""
        return len(self._prefix) + MAX_TOKEN_LENGTH

    def token(self, email: str, name: str | None = None) -> str:
        jtis = self._jtis
        if not jtis:
            # 128 random bits per jti, as secrets.token_hex(16), drawn for 1,024 tokens at once.
            drawn = secrets.token_bytes(_JTI_BYTES * _JTI_BATCH).hex()
            jtis.extend(drawn[i : i + 2 * _JTI_BYTES] for i in range(0, len(drawn), 2 * _JTI_BYTES))
        named = f',"name":{encode_basestring_ascii(name)}' if name else ""
        payload = f'{{"email":{encode_basestring_ascii(email)}{named},"jti":"{jtis.pop()}"{self._tail}'
        signing_input = _HEADER + b"." + _b64url(payload.encode())
        mac = self._mac.copy()
        mac.update(signing_input)
        return (signing_input + b"." + _b64url(mac.digest())).decode("ascii")

    def link(self, email: str, name: str | None = None) -> str:
        return self._prefix + self.token(email, name)
