"""The provider's ID token, checked as OpenID Connect Core §3.1.3.7 asks: what a forger, a replayer or a provider
that got something wrong meets (the ``reason`` of the 401 and the ``detail`` the operator reads in the log).

Tokens are signed here by hand (``tests.oidc_fake_provider.sign_jws``), so every malformed shape can be made; the
bridge's ``Provider`` reads the key set from the scripted provider in-process (``tests.oidc_in_process``).
"""

from __future__ import annotations

import base64
import json
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from sso_bridge import id_token
from sso_bridge.errors import InvalidIdToken
from sso_bridge.id_token import MAX_AGE_SECONDS, MAX_ID_TOKEN_LENGTH, IdClaims, load_jose, verify_id_token
from sso_bridge.oidc_provider import Provider
from tests.oidc_fake_provider import DROP, KeyPair, b64url, new_key, sign_jws
from tests.oidc_in_process import ISSUER, InProcessProvider

CLIENT_ID = "sso-bridge-client"
NONCE = "n-0S6_WzA2Mj"
NOW = int(time.time())
LEEWAY = 30
NO_PACKAGES = "/nonexistent/oidc-packages"


@pytest.fixture
def provider() -> InProcessProvider:
    return InProcessProvider()


@pytest.fixture
def bridge_side(provider: InProcessProvider) -> Provider:
    """The bridge's view of the provider; its opener (50 ms of CA certificates) replaced by the in-process one."""
    with mock.patch.object(urllib.request, "build_opener"):
        side = Provider(provider.issuer)
    side._opener = provider.opener()
    return side


def claims(**changes: Any) -> dict[str, Any]:
    base = {
        "iss": ISSUER,
        "sub": "248289761001",
        "aud": CLIENT_ID,
        "exp": NOW + 300,
        "iat": NOW,
        "nonce": NONCE,
        "email": "jane.doe@example.com",
    }
    merged = {**base, **changes}
    return {name: value for name, value in merged.items() if value is not DROP}


def token(provider: InProcessProvider, alg: str = "RS256", *, key: KeyPair | None = None, **header: Any) -> str:
    return signed(provider, claims(), alg, key=key, **header)


def signed(
    provider: InProcessProvider,
    payload: dict[str, Any],
    alg: str = "RS256",
    *,
    key: KeyPair | None = None,
    **header: Any,
) -> str:
    key = key or provider.current_key("ES256" if alg == "ES256" else "RS256")
    members = {"alg": alg, "typ": "JWT", "kid": key.kid, **header}
    return sign_jws({name: value for name, value in members.items() if value is not DROP}, payload, key=key)


def verify(bridge_side: Provider, value: str, *, now: int = NOW, nonce: str = NONCE) -> IdClaims:
    return verify_id_token(
        value,
        provider=bridge_side,
        client_id=CLIENT_ID,
        nonce=nonce,
        now=now,
        leeway=LEEWAY,
        packages_path=NO_PACKAGES,
    )


def refusal(bridge_side: Provider, value: str, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(InvalidIdToken) as refused:
        verify(bridge_side, value, **kwargs)
    assert refused.value.status == 401
    return refused.value.reason, refused.value.detail


# --- what passes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_a_genuine_token_gives_its_subject_and_claims(
    provider: InProcessProvider, bridge_side: Provider, alg: str
) -> None:
    assert verify(bridge_side, token(provider, alg)) == IdClaims(subject="248289761001", claims=claims())


def test_a_token_without_kid_is_verified_with_the_only_key_of_its_type(
    provider: InProcessProvider, bridge_side: Provider
) -> None:
    assert verify(bridge_side, token(provider, kid=DROP)).subject == "248289761001"


@pytest.mark.parametrize(("kid", "residue"), [("k", 2), ("kk", 3), ("kkk", 0)])
def test_headers_of_every_base64_length_are_read(
    provider: InProcessProvider, bridge_side: Provider, kid: str, residue: int
) -> None:
    """The header's base64 comes without its ``=`` padding, whatever its length."""
    provider.add_key(new_key("RS256", kid=kid))
    value = token(provider)
    assert len(value.split(".")[0]) % 4 == residue
    assert verify(bridge_side, value).subject == "248289761001"


def test_the_longest_token_accepted_is_16384_characters(provider: InProcessProvider, bridge_side: Provider) -> None:
    def padded(size: int) -> str:
        """A genuine token of exactly ``size`` characters (a claim padded; base64 skips some lengths: the kid too)."""
        for kid in ("k1", "k12", "k123"):
            provider.add_key(new_key("RS256", kid=kid))
            pad = (size - len(signed(provider, claims(pad="")))) * 3 // 4 - 2
            for extra in range(6):
                value = signed(provider, claims(pad="p" * (pad + extra)))
                if len(value) == size:
                    return value
        raise AssertionError(size)

    assert verify(bridge_side, padded(MAX_ID_TOKEN_LENGTH)).subject == "248289761001"
    assert refusal(bridge_side, padded(MAX_ID_TOKEN_LENGTH + 1)) == ("oidc_id_token_malformed", "shape")


@pytest.mark.parametrize(
    ("audience", "azp"),
    [
        ([CLIENT_ID], DROP),
        ([CLIENT_ID, "another-client"], CLIENT_ID),
        (CLIENT_ID, CLIENT_ID),
    ],
)
def test_audiences_and_authorized_party_that_name_us(
    provider: InProcessProvider, bridge_side: Provider, audience: Any, azp: Any
) -> None:
    verify(bridge_side, signed(provider, claims(aud=audience, azp=azp)))


@pytest.mark.parametrize(
    ("changes", "now"),
    [
        ({"exp": NOW - LEEWAY}, NOW),  # expired, but within the leeway
        ({"iat": NOW + LEEWAY}, NOW),  # issued "in the future" by a clock the leeway forgives
        ({"iat": NOW - MAX_AGE_SECONDS - LEEWAY}, NOW),  # as old as allowed
        ({"exp": NOW + 0.9, "iat": NOW + 0.5}, NOW),  # numbers, not only integers
        ({"sub": "s" * 255}, NOW),
    ],
)
def test_the_edges_that_still_pass(
    provider: InProcessProvider, bridge_side: Provider, changes: dict[str, Any], now: int
) -> None:
    assert verify(bridge_side, signed(provider, claims(**changes)), now=now).claims == claims(**changes)


# --- what a forger or a confused provider meets --------------------------------------------------------------------


def _bad_header(header: str) -> str:
    return f"{header}.{b64url(json.dumps(claims()).encode())}.c2ln"


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("not-a-jwt", "shape"),
        ("a.b.c.d", "shape"),
        ("ä.b.c", "shape"),
        (_bad_header("eyJhb"), "base64"),
        (_bad_header(b64url(b"not json")), "header"),
        (_bad_header(b64url(b'["RS256"]')), "header"),
        (_bad_header(b64url(b"\xff\xfe")), "header"),
    ],
)
def test_a_token_that_is_not_a_jws_is_malformed(bridge_side: Provider, value: str, detail: str) -> None:
    assert refusal(bridge_side, value) == ("oidc_id_token_malformed", detail)


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        ({"alg": "none"}, "none"),
        ({"alg": "HS256"}, "HS256"),
        ({"alg": "PS256"}, "PS256"),
        ({"alg": DROP}, "None"),
        ({"alg": 256}, "256"),
        ({"alg": "RS256-and-then-some"}, "RS256-and-"),
    ],
)
def test_only_rs256_and_es256_are_accepted(
    provider: InProcessProvider, bridge_side: Provider, header: dict[str, Any], detail: str
) -> None:
    assert refusal(bridge_side, token(provider, **header)) == ("oidc_id_token_alg", detail)
    assert provider.hits["jwks"] == 0  # refused before any key is looked up


def test_an_algorithm_the_provider_does_not_name_is_refused(provider: InProcessProvider, bridge_side: Provider) -> None:
    provider.discovery_overrides["id_token_signing_alg_values_supported"] = ["RS256"]
    assert refusal(bridge_side, token(provider, "ES256")) == ("oidc_id_token_alg", "ES256")


@pytest.mark.parametrize("alg", ["HS256", "PS256", "none"])
def test_an_algorithm_outside_rs256_and_es256_is_refused_even_when_the_provider_names_it(
    provider: InProcessProvider, bridge_side: Provider, alg: str
) -> None:
    """A provider's discovery document listing HS256 must not let its public key become an HMAC secret."""
    provider.discovery_overrides["id_token_signing_alg_values_supported"] = ["RS256", "ES256", "HS256", "PS256", "none"]
    assert refusal(bridge_side, token(provider, alg=alg)) == ("oidc_id_token_alg", alg)


def test_an_algorithm_that_is_not_text_is_refused(provider: InProcessProvider, bridge_side: Provider) -> None:
    assert refusal(bridge_side, token(provider, alg=["RS256"])) == ("oidc_id_token_alg", "['RS256']")


def test_a_critical_extension_is_refused(provider: InProcessProvider, bridge_side: Provider) -> None:
    assert refusal(bridge_side, token(provider, crit=["exp"])) == ("oidc_id_token_malformed", "crit")


def test_a_kid_that_is_not_text_is_refused(provider: InProcessProvider, bridge_side: Provider) -> None:
    assert refusal(bridge_side, token(provider, kid=7)) == ("oidc_id_token_malformed", "kid")


def test_a_kid_the_provider_never_published_is_refused(provider: InProcessProvider, bridge_side: Provider) -> None:
    assert refusal(bridge_side, token(provider, key=new_key("RS256")))[0] == "oidc_id_token_kid"


def test_an_es256_token_is_never_checked_with_an_rsa_key_of_the_same_kid(
    provider: InProcessProvider, bridge_side: Provider
) -> None:
    rsa_kid = provider.current_key("RS256").kid
    value = token(provider, "ES256", kid=rsa_kid)
    assert refusal(bridge_side, value)[0] == "oidc_id_token_kid"


def test_es256_on_another_curve_is_refused(provider: InProcessProvider, bridge_side: Provider) -> None:
    """A P-384 key published for ES256: the curve is checked, not left to the library."""
    private = ec.generate_private_key(ec.SECP384R1())
    numbers = private.public_key().public_numbers()
    jwk = {
        "kty": "EC",
        "kid": "p384",
        "use": "sig",
        "crv": "P-384",
        "x": b64url(numbers.x.to_bytes(48, "big")),
        "y": b64url(numbers.y.to_bytes(48, "big")),
    }
    with mock.patch.object(type(provider), "jwks", return_value={"keys": [jwk]}):
        value = token(provider, "ES256", kid="p384")  # signed with the P-256 key: the curve decides first
        assert refusal(bridge_side, value) == ("oidc_id_token_signature", "curve")


def test_a_signature_by_another_key_under_the_real_kid_is_refused(
    provider: InProcessProvider, bridge_side: Provider
) -> None:
    impostor = new_key("ES256", kid=provider.current_key("ES256").kid)
    assert refusal(bridge_side, token(provider, "ES256", key=impostor)) == (
        "oidc_id_token_signature",
        "BadSignatureError",
    )


def test_a_payload_changed_after_signing_is_refused(provider: InProcessProvider, bridge_side: Provider) -> None:
    header, _, signature = token(provider).split(".")
    forged = b64url(json.dumps(claims(sub="the-ceo")).encode())
    assert refusal(bridge_side, f"{header}.{forged}.{signature}") == ("oidc_id_token_signature", "BadSignatureError")


def _signed_payload(provider: InProcessProvider, payload: bytes) -> str:
    key = provider.current_key("RS256")
    signing_input = f"{b64url(json.dumps({'alg': 'RS256', 'kid': key.kid}).encode())}.{b64url(payload)}"
    return f"{signing_input}.{b64url(key.sign(signing_input.encode()))}"


@pytest.mark.parametrize(
    ("payload", "refused"),
    [
        (b"not json", ("oidc_id_token_signature", "JSONDecodeError")),
        (b'["a", "list"]', ("oidc_id_token_malformed", "claims")),
        (b'"text"', ("oidc_id_token_malformed", "claims")),
    ],
)
def test_a_signed_payload_that_is_not_a_claims_object_is_refused(
    provider: InProcessProvider, bridge_side: Provider, payload: bytes, refused: tuple[str, str]
) -> None:
    assert refusal(bridge_side, _signed_payload(provider, payload)) == refused


@pytest.mark.parametrize(
    ("number", "refused"),
    [
        ('"exp": Infinity', ("oidc_id_token_malformed", "exp")),
        ('"exp": NaN', ("oidc_id_token_malformed", "exp")),
        ('"exp": 1e400', ("oidc_id_token_malformed", "exp")),
        ('"iat": -Infinity', ("oidc_id_token_iat", "iat")),
    ],
)
def test_a_time_that_is_not_a_finite_number_is_refused_not_a_500(
    provider: InProcessProvider, bridge_side: Provider, number: str, refused: tuple[str, str]
) -> None:
    """Python's JSON reads Infinity and NaN, and a number too large for a float as infinity: a provider that signs
    one gets a 401, not an exception."""
    name = number.split(":")[0].strip('"')
    body = json.dumps({**claims(), name: 0}).replace(f'"{name}": 0', number)
    assert refusal(bridge_side, _signed_payload(provider, body.encode())) == refused


def test_a_far_future_expiry_as_a_whole_number_is_read_exactly(
    provider: InProcessProvider, bridge_side: Provider
) -> None:
    assert verify(bridge_side, signed(provider, claims(exp=10**400))).subject == "248289761001"


@pytest.mark.parametrize(
    ("changes", "now", "refused"),
    [
        ({"iss": "https://login.other-idp.example.com"}, NOW, ("oidc_id_token_issuer", "")),
        ({"iss": ISSUER + "/"}, NOW, ("oidc_id_token_issuer", "")),
        ({"iss": DROP}, NOW, ("oidc_id_token_issuer", "")),
        ({"aud": "another-client"}, NOW, ("oidc_id_token_audience", "")),
        ({"aud": ["another-client", "x"]}, NOW, ("oidc_id_token_audience", "")),
        ({"aud": DROP}, NOW, ("oidc_id_token_audience", "")),
        ({"aud": {CLIENT_ID: True}}, NOW, ("oidc_id_token_audience", "")),
        ({"aud": [CLIENT_ID, "another-client"]}, NOW, ("oidc_id_token_audience", "azp")),
        ({"aud": [CLIENT_ID, "another-client"], "azp": "another-client"}, NOW, ("oidc_id_token_audience", "azp")),
        ({"azp": "another-client"}, NOW, ("oidc_id_token_audience", "azp")),
        ({"exp": NOW - LEEWAY - 1}, NOW, ("oidc_id_token_expired", "")),
        ({"exp": DROP}, NOW, ("oidc_id_token_malformed", "exp")),
        ({"exp": str(NOW + 300)}, NOW, ("oidc_id_token_malformed", "exp")),
        ({"exp": True}, NOW, ("oidc_id_token_malformed", "exp")),
        ({"iat": NOW + LEEWAY + 1}, NOW, ("oidc_id_token_iat", "")),
        ({"iat": NOW - MAX_AGE_SECONDS - LEEWAY - 1}, NOW, ("oidc_id_token_iat", "")),
        ({"iat": DROP}, NOW, ("oidc_id_token_iat", "iat")),
        ({"iat": False}, NOW, ("oidc_id_token_iat", "iat")),
        ({"nonce": "an-attackers-own-nonce"}, NOW, ("oidc_id_token_nonce", "")),
        ({"nonce": DROP}, NOW, ("oidc_id_token_nonce", "")),
        ({"nonce": [NONCE]}, NOW, ("oidc_id_token_nonce", "")),
        ({"sub": DROP}, NOW, ("oidc_id_token_malformed", "sub")),
        ({"sub": ""}, NOW, ("oidc_id_token_malformed", "sub")),
        ({"sub": 248289761001}, NOW, ("oidc_id_token_malformed", "sub")),
        ({"sub": "s" * 256}, NOW, ("oidc_id_token_malformed", "sub")),
    ],
)
def test_claims_that_do_not_say_for_us_from_our_provider_for_this_sign_in_and_fresh(
    provider: InProcessProvider, bridge_side: Provider, changes: dict[str, Any], now: int, refused: tuple[str, str]
) -> None:
    assert refusal(bridge_side, signed(provider, claims(**changes)), now=now) == refused


# --- the OIDC layer's packages and the parsed keys ---------------------------------------------------------------


def test_the_oidc_layers_folder_goes_on_the_path_once_and_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    jws = load_jose(str(tmp_path))
    assert jws.__name__ == "joserfc.jws"
    assert sys.path[-1] == str(tmp_path)  # never ahead of the runtime's or the signing layer's packages
    load_jose(str(tmp_path))
    assert sys.path.count(str(tmp_path)) == 1
    load_jose(str(tmp_path / "missing"))
    assert str(tmp_path / "missing") not in sys.path


def test_parsed_keys_are_reused_and_their_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parsing a key costs more than a verification: once per key; a provider rotating often never grows it."""
    monkeypatch.setattr(id_token, "_parsed", {})
    registry = mock.Mock()
    registry.import_key.side_effect = lambda jwk: ("parsed", jwk["kid"])
    first = id_token._parse(registry, {"kid": "a", "kty": "RSA"})
    assert id_token._parse(registry, {"kty": "RSA", "kid": "a"}) is first
    assert registry.import_key.call_count == 1
    for index in range(40):
        id_token._parse(registry, {"kid": f"k{index}"})
        assert len(id_token._parsed) <= 32
    assert len(id_token._parsed) == 1 + 40 - 32  # emptied when full, then filled again
    assert registry.import_key.call_count == 41


def test_a_key_set_entry_joserfc_cannot_parse_is_a_signature_refusal(
    provider: InProcessProvider, bridge_side: Provider
) -> None:
    key = provider.current_key("RS256")
    broken = {**key.public_jwk(), "n": "!!"}
    with mock.patch.object(type(provider), "jwks", return_value={"keys": [broken]}):
        reason, detail = refusal(bridge_side, token(provider))
    assert reason == "oidc_id_token_signature"
    assert detail.endswith("Error")


def test_the_header_is_decoded_as_base64url() -> None:
    header = base64.urlsafe_b64encode(json.dumps({"alg": "RS256", "kid": "~~~>>>???"}).encode()).decode().rstrip("=")
    assert "-" in header or "_" in header
    assert id_token._header(f"{header}.e30.c2ln") == {"alg": "RS256", "kid": "~~~>>>???"}
