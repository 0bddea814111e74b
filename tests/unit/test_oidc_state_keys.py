"""What the state cookie's signer derives and checks, pinned: two deploys of the bridge must agree on it (a sign-in
started before a deploy comes back to the new code), and a cookie the bridge did not make must never pass."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any
from unittest import mock

import jwt
import pytest

from sso_bridge.errors import InputTooLarge, OidcRefused
from sso_bridge.oidc_state import MAX_RETURN_URL_LENGTH, STATE_TTL, SignInState, StateSigner, cookie_name
from tests.helpers import LOGIN_TOKEN_KEY

STATE_KEY = hmac.new(LOGIN_TOKEN_KEY.encode(), b"sso-bridge oidc state v1", hashlib.sha256).hexdigest()
NOW = int(time.time())


@pytest.fixture(autouse=True)
def _fresh_now() -> None:
    """Each test's times are taken when it runs: a NOW from import time has expired in a long run (STATE_TTL)."""
    global NOW
    NOW = int(time.time())


def _state(**changes: Any) -> SignInState:
    fields = {
        "sid": "c2lkLTAxMjM0NTY3ODlhYmNkZWYwMTIz",
        "audience": "kustomer",
        "return_to": "https://api.example.com/kustomer/login?trackingToken=abc",
        "redirect_uri": "https://api.example.com/oidc/callback",
        "issuer": "https://login.example.com",
        "expires_at": NOW + STATE_TTL,
    }
    return SignInState(**{**fields, **changes})


def test_the_key_nonce_and_pkce_verifier_are_derived_as_before() -> None:
    """HMAC-SHA256 of the login-token key with a label of their own: known answers."""
    signer = StateSigner(LOGIN_TOKEN_KEY)
    assert signer.nonce("sid-0123") == "iKH_GQV7Efg_n5EiXZ4HeNmihkw-7YreMvkXc2O_dlo"
    assert signer.code_verifier("sid-0123") == "EMoQspWEz0uo3FAW0eMbe5Jn_4g5ppntO6z9J-S9SXQ"
    cookie = signer.cookie(_state(), now=NOW).split(";", 1)[0].partition("=")[2]
    claims = jwt.decode(cookie, STATE_KEY, algorithms=["HS256"], audience="sso-bridge/oidc-state")
    assert jwt.get_unverified_header(cookie)["alg"] == "HS256"
    assert claims == {
        "aud": "sso-bridge/oidc-state",
        "sid": "c2lkLTAxMjM0NTY3ODlhYmNkZWYwMTIz",
        "vendor": "kustomer",
        "rt": "https://api.example.com/kustomer/login?trackingToken=abc",
        "ru": "https://api.example.com/oidc/callback",
        "op": "https://login.example.com",
        "iat": NOW,
        "exp": NOW + STATE_TTL,
    }


def test_the_state_is_192_random_bits_in_base64url_without_padding() -> None:
    random = bytes(23) + bytes([23])  # its base64url ends in "X", then nothing
    with mock.patch("sso_bridge.oidc_state.secrets.token_bytes", return_value=random) as token_bytes:
        state = StateSigner(LOGIN_TOKEN_KEY).new(
            audience="happyfox", return_to="https://a.example.com/", redirect_uri="r", issuer="i", now=NOW
        )
    token_bytes.assert_called_once_with(24)
    assert state.sid == base64.urlsafe_b64encode(random).decode() == "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAX"
    assert state.expires_at == NOW + STATE_TTL


def test_the_cookie_name_carries_the_first_16_characters_of_the_state() -> None:
    assert cookie_name("abcdefghijklmnopqrstuvwxyz") == "sso_bridge_oidc_abcdefghijklmnop"


def test_a_return_url_of_2000_characters_is_kept_and_one_more_refused() -> None:
    signer = StateSigner(LOGIN_TOKEN_KEY)
    url = "https://a.example.com/?" + "x" * (MAX_RETURN_URL_LENGTH - 23)
    assert signer.new(audience="a", return_to=url, redirect_uri="r", issuer="i", now=NOW).return_to == url
    with pytest.raises(InputTooLarge) as refused:
        signer.new(audience="a", return_to=url + "x", redirect_uri="r", issuer="i", now=NOW)
    assert (refused.value.status, refused.value.reason, refused.value.detail) == (
        414,
        "return_url_too_long",
        "2001 characters",
    )


def _signed(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, STATE_KEY, algorithm="HS256")


def _claims(**changes: Any) -> dict[str, Any]:
    claims = {
        "aud": "sso-bridge/oidc-state",
        "sid": "sid",
        "vendor": "kustomer",
        "rt": "https://api.example.com/",
        "ru": "https://api.example.com/oidc/callback",
        "op": "https://login.example.com",
        "iat": NOW,
        "exp": NOW + 60,
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def test_a_state_the_bridge_signed_comes_back_whole() -> None:
    state = StateSigner(LOGIN_TOKEN_KEY).verify(_signed(_claims(exp=NOW + 61)))
    assert state == SignInState(
        "sid", "kustomer", "https://api.example.com/", "https://api.example.com/oidc/callback",
        "https://login.example.com", NOW + 61,
    )  # fmt: skip


@pytest.mark.parametrize("missing", ["sid", "vendor", "rt", "ru", "op", "iat", "exp", "aud"])
def test_a_signed_state_missing_a_claim_is_refused(missing: str) -> None:
    with pytest.raises(OidcRefused) as refused:
        StateSigner(LOGIN_TOKEN_KEY).verify(_signed(_claims(**{missing: None})))
    assert refused.value.reason == "oidc_state_invalid"
    assert refused.value.detail == "MissingRequiredClaimError"


@pytest.mark.parametrize(
    "changes",
    [{"sid": 1}, {"vendor": ["kustomer"]}, {"rt": 7}, {"ru": {}}, {"op": True}],
    ids=["sid", "vendor", "rt", "ru", "op"],
)
def test_a_signed_state_with_claims_of_the_wrong_type_is_refused(changes: dict[str, Any]) -> None:
    claims = _claims()
    claims.update(changes)
    with pytest.raises(OidcRefused) as refused:
        StateSigner(LOGIN_TOKEN_KEY).verify(_signed(claims))
    assert (refused.value.reason, refused.value.detail) == ("oidc_state_invalid", "claim types")


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        (lambda: _signed(_claims(exp=NOW - 5)), "ExpiredSignatureError"),
        (lambda: _signed(_claims(aud="sso-bridge/login")), "InvalidAudienceError"),
        (lambda: jwt.encode(_claims(), LOGIN_TOKEN_KEY, algorithm="HS256"), "InvalidSignatureError"),
        (lambda: "not.a.jwt", "DecodeError"),
        (lambda: "A" * 4096, "DecodeError"),  # as long as a cookie can be: read (and refused) as a token
    ],
    ids=["expired", "other-audience", "login-token-key", "not-a-jwt", "4096-characters"],
)
def test_the_refusal_names_what_failed_for_the_log(value: Callable[[], str], detail: str) -> None:
    with pytest.raises(OidcRefused) as refused:
        StateSigner(LOGIN_TOKEN_KEY).verify(value())
    assert (refused.value.reason, refused.value.detail) == ("oidc_state_invalid", detail)
