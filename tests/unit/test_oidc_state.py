"""The sign-in state cookie: what the browser keeps while the user is at the provider, and what it cannot fake."""

from __future__ import annotations

import base64
import hashlib
import re
import time

import jwt
import pytest

from sso_bridge.errors import InputTooLarge, OidcRefused
from sso_bridge.oidc_state import MAX_COOKIE_BYTES, MAX_RETURN_URL_LENGTH, STATE_TTL, StateSigner, cookie_name
from tests.helpers import LOGIN_TOKEN_KEY

RETURN_TO = "https://api.example.com/kustomer/login?trackingToken=abc&kustomerRedirectUri=https%3A%2F%2Fx%2F%3Fa%3D1"


def _new(signer: StateSigner, now: int) -> tuple[str, str]:
    state = signer.new(
        audience="kustomer",
        return_to=RETURN_TO,
        redirect_uri="https://api.example.com/oidc/callback",
        issuer="https://login.example.com",
        now=now,
    )
    header = signer.cookie(state, now=now)
    return state.sid, header


def _value(header: str) -> str:
    return header.split(";", 1)[0].split("=", 1)[1]


def test_cookie_is_httponly_secure_lax_scoped_to_the_callback_and_short_lived() -> None:
    sid, header = _new(StateSigner(LOGIN_TOKEN_KEY), int(time.time()))
    name = header.split("=", 1)[0]
    assert name == cookie_name(sid)
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
    assert attributes == {"max-age", "path", "httponly", "secure", "samesite"}
    assert f"Max-Age={STATE_TTL}" in header
    assert "Path=/oidc/callback" in header
    assert "SameSite=Lax" in header


def test_the_state_comes_back_byte_for_byte() -> None:
    signer = StateSigner(LOGIN_TOKEN_KEY)
    sid, header = _new(signer, int(time.time()))
    state = signer.verify(_value(header))
    assert (state.sid, state.audience, state.return_to) == (sid, "kustomer", RETURN_TO)


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda claims: jwt.encode(claims, "another-key-0123456789abcdef0123456789", "HS256"), id="key"),
        pytest.param(lambda claims: jwt.encode({**claims, "exp": 1}, "x" * 40, "HS256"), id="expired-other-key"),
        pytest.param(lambda claims: "not.a.jwt", id="garbage"),
        pytest.param(lambda claims: jwt.encode(claims, None, "none"), id="alg-none"),
        pytest.param(lambda claims: jwt.encode(claims, LOGIN_TOKEN_KEY, "HS256"), id="login-token-key-itself"),
    ],
)
def test_a_cookie_the_bridge_did_not_sign_is_refused(forge) -> None:  # type: ignore[no-untyped-def]
    signer = StateSigner(LOGIN_TOKEN_KEY)
    _, header = _new(signer, int(time.time()))
    claims = jwt.decode(_value(header), options={"verify_signature": False})
    claims["rt"] = "https://evil.example.net/"
    with pytest.raises(OidcRefused) as refused:
        signer.verify(forge(claims))
    assert refused.value.reason == "oidc_state_invalid"


def test_an_expired_state_is_refused() -> None:
    signer = StateSigner(LOGIN_TOKEN_KEY)
    _, header = _new(signer, int(time.time()) - STATE_TTL - 5)
    with pytest.raises(OidcRefused, match="oidc_state_invalid"):
        signer.verify(_value(header))


def test_pkce_verifier_and_nonce_need_the_key_and_follow_rfc_7636() -> None:
    signer, other = StateSigner(LOGIN_TOKEN_KEY), StateSigner("another-key-0123456789abcdef0123456789")
    verifier = signer.code_verifier("sid-1")
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", verifier)
    assert verifier != signer.code_verifier("sid-2")
    assert verifier != other.code_verifier("sid-1")
    assert signer.nonce("sid-1") not in (verifier, other.nonce("sid-1"))
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert StateSigner.code_challenge(verifier) == expected


def test_sign_ins_in_two_tabs_use_two_cookies() -> None:
    signer = StateSigner(LOGIN_TOKEN_KEY)
    now = int(time.time())
    assert _new(signer, now)[1].split("=", 1)[0] != _new(signer, now)[1].split("=", 1)[0]


def test_a_return_url_too_long_for_a_cookie_is_refused_before_the_trip() -> None:
    with pytest.raises(InputTooLarge):
        StateSigner(LOGIN_TOKEN_KEY).new(
            audience="clickfunnels",
            return_to="https://a.example.com/?" + "x" * MAX_RETURN_URL_LENGTH,
            redirect_uri="https://a.example.com/oidc/callback",
            issuer="https://login.example.com",
            now=0,
        )


def test_the_clearing_cookie_expires_at_once() -> None:
    header = StateSigner.clear("abcdefghijklmnopqrstuvwxyz")
    assert header.startswith(cookie_name("abcdefghijklmnopqrstuvwxyz") + "=;")
    assert "Max-Age=0" in header


def test_the_longest_return_url_still_fits_in_a_browser_cookie() -> None:
    signer = StateSigner(LOGIN_TOKEN_KEY)
    host = "a" * 63 + ".lambda-url.eu-west-1.on.aws"
    state = signer.new(
        audience="clickfunnels",
        return_to=f"https://{host}/?" + "x%2F" * ((MAX_RETURN_URL_LENGTH - len(host) - 10) // 4),
        redirect_uri=f"https://{host}/oidc/callback",
        issuer="https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0",
        now=int(time.time()),
    )
    name_and_value = signer.cookie(state, now=int(time.time())).split(";", 1)[0]
    assert len(name_and_value.encode()) <= 4096


def _set_cookie_size(signer: StateSigner, return_to: str, issuer: str) -> tuple[int, str]:
    """The bytes of the Set-Cookie a sign-in would send and "sent", or the size a refusal reports and its reason."""
    now = int(time.time())
    state = signer.new(
        audience="clickfunnels",
        return_to=return_to,
        redirect_uri="https://a.example.com/oidc/callback",
        issuer=issuer,
        now=now,
    )
    try:
        return len(signer.cookie(state, now=now).encode()), "sent"
    except InputTooLarge as refused:
        return int(refused.detail.removesuffix(" bytes")), refused.reason


def test_a_set_cookie_of_4096_bytes_is_sent_and_a_bigger_one_refused() -> None:
    """The whole Set-Cookie line (name, value, attributes) is measured against 4,096 bytes, to the byte. A backslash
    adds two bytes of JSON and the issuer one per character, so the sizes near the edge come up (all but those
    unpadded base64 cannot make: 4,097 is one of them here)."""
    signer = StateSigner(LOGIN_TOKEN_KEY)
    outcomes = {
        _set_cookie_size(
            signer, "https://a.example.com/?q=" + "\\" * backslashes, "https://login.example.com" + "x" * k
        )
        for backslashes in range(1330, 1420)
        for k in range(3)
    }
    assert (MAX_COOKIE_BYTES, "sent") in outcomes
    assert max(size for size, outcome in outcomes if outcome == "sent") == MAX_COOKIE_BYTES
    refused = {size for size, outcome in outcomes if outcome == "oidc_state_cookie_too_large"}
    assert min(refused) <= MAX_COOKIE_BYTES + 2  # the next size base64 can make is refused
    assert {outcome for _, outcome in outcomes} == {"sent", "oidc_state_cookie_too_large"}


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("\ud800", id="lone-surrogate"),
        pytest.param("e\u0301.e.e", id="non-ascii"),
        pytest.param("A" * (MAX_COOKIE_BYTES + 1), id="bigger-than-any-cookie-of-ours"),
    ],
)
def test_a_cookie_value_that_cannot_be_ours_is_refused_before_decoding(value: str) -> None:
    with pytest.raises(OidcRefused) as refused:
        StateSigner(LOGIN_TOKEN_KEY).verify(value)
    assert (refused.value.reason, refused.value.detail) == ("oidc_state_invalid", "not a state cookie")
