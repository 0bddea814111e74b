"""Rotating the login-token key: routinely without signing anyone out, and in an emergency at once.

The operator puts a new key into the login-token secret; Secrets Manager keeps the old one as
``AWSPREVIOUS``. Tokens signed with the old key keep working for ``LOGIN_TOKEN_PREVIOUS_KEY_GRACE`` after the
new version was created (links minted just before the rotation must still open), never after; a key from two
rotations ago never does. After an emergency rotation (``AWSPREVIOUS`` removed) the old key is refused as soon
as the cache is renewed. Our own key shorter than 256 bits is refused outright.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from sso_bridge.secrets import REFRESH_SECONDS
from tests.helpers import LOGIN_TOKEN_KEY, SECRET_IDS, LambdaContext, load_event, make_login_token

NEW_KEY = "rotated-login-token-key-0123456789abcdef0123456789"
NEWER_KEY = "rotated-again-login-token-key-0123456789abcdef0123"
DAY = 86400


@pytest.fixture
def clickfunnels(aws: Any, load_function: Callable[..., ModuleType]) -> ModuleType:
    return load_function("clickfunnels")


def status(module: ModuleType, login_token: str) -> int:
    event = load_event("clickfunnels-sso-httpapi", query=f"login_token={login_token}")
    return int(module.lambda_handler(event, LambdaContext())["statusCode"])


@pytest.fixture
def fetches(clickfunnels: ModuleType, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The version stage of every Secrets Manager fetch the flow makes."""
    calls: list[str] = []
    client = clickfunnels.flow.keys._client()
    real = client.get_secret_value

    def counting(**options: Any) -> Any:
        calls.append(options.get("VersionStage", "AWSCURRENT"))
        return real(**options)

    monkeypatch.setattr(client, "get_secret_value", counting)
    return calls


def rotate(aws: Any, module: ModuleType, key: str) -> None:
    aws.put_secret_value(SecretId=SECRET_IDS["login"], SecretString=key)
    module.flow.keys.clear()  # as a new container (or SECRETS_MAX_AGE later) would see it


def days_later(module: ModuleType, monkeypatch: pytest.MonkeyPatch, days: float) -> None:
    monkeypatch.setattr(module.flow.keys, "_wall_clock", lambda: time.time() + days * DAY)


def test_old_and_new_keys_both_sign_in_during_a_rotation(clickfunnels: ModuleType, aws: Any) -> None:
    # Given the operator has put a new login-token key
    rotate(aws, clickfunnels, NEW_KEY)

    # Then tokens the platform still signs with the old key work, and so do tokens with the new one
    assert status(clickfunnels, make_login_token(key=LOGIN_TOKEN_KEY)) == 302
    assert status(clickfunnels, make_login_token(key=NEW_KEY)) == 302


def test_the_previous_key_is_retired_when_the_grace_period_ends(
    clickfunnels: ModuleType, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a rotation with the default grace (the longest link lifetime, 7 days)
    rotate(aws, clickfunnels, NEW_KEY)

    # When six days have passed, the old key still signs in; after eight, it does not
    days_later(clickfunnels, monkeypatch, 6)
    assert status(clickfunnels, make_login_token(key=LOGIN_TOKEN_KEY)) == 302
    days_later(clickfunnels, monkeypatch, 8)
    assert status(clickfunnels, make_login_token(key=LOGIN_TOKEN_KEY)) == 401
    assert status(clickfunnels, make_login_token(key=NEW_KEY)) == 302


def test_the_grace_period_is_a_setting(aws: Any, load_function: Callable[..., ModuleType]) -> None:
    module = load_function("clickfunnels", LOGIN_TOKEN_PREVIOUS_KEY_GRACE="3600")
    rotate(aws, module, NEW_KEY)
    assert status(module, make_login_token(key=LOGIN_TOKEN_KEY)) == 302
    module.flow.keys._wall_clock = lambda: time.time() + 3700
    assert status(module, make_login_token(key=LOGIN_TOKEN_KEY)) == 401


def test_after_the_grace_the_previous_key_is_not_even_fetched(
    clickfunnels: ModuleType, aws: Any, monkeypatch: pytest.MonkeyPatch, fetches: list[str]
) -> None:
    rotate(aws, clickfunnels, NEW_KEY)
    days_later(clickfunnels, monkeypatch, 8)
    assert status(clickfunnels, make_login_token(key="attacker-key-0123456789abcdef0123456789")) == 401
    assert fetches == ["AWSCURRENT"]


def test_an_emergency_rotation_refuses_the_old_key_once_caches_renew(clickfunnels: ModuleType, aws: Any) -> None:
    # Given a token signed with the key in use until now, accepted
    old_token = make_login_token(key=LOGIN_TOKEN_KEY)
    assert status(clickfunnels, old_token) == 302

    # When the operator rotates and removes the AWSPREVIOUS label (make rotate-login-key EMERGENCY=1)
    aws.put_secret_value(SecretId=SECRET_IDS["login"], SecretString=NEW_KEY)
    versions = aws.list_secret_version_ids(SecretId=SECRET_IDS["login"])["Versions"]
    old = next(v["VersionId"] for v in versions if "AWSPREVIOUS" in v.get("VersionStages", []))
    aws.update_secret_version_stage(SecretId=SECRET_IDS["login"], VersionStage="AWSPREVIOUS", RemoveFromVersionId=old)
    clickfunnels.flow.keys.clear()  # SECRETS_MAX_AGE later

    # Then the old key is refused, well inside the grace period, and the new one works
    assert status(clickfunnels, old_token) == 401
    assert status(clickfunnels, make_login_token(key=NEW_KEY)) == 302


def test_a_key_two_rotations_old_is_refused(clickfunnels: ModuleType, aws: Any) -> None:
    rotate(aws, clickfunnels, NEW_KEY)
    rotate(aws, clickfunnels, NEWER_KEY)
    assert status(clickfunnels, make_login_token(key=LOGIN_TOKEN_KEY)) == 401
    assert status(clickfunnels, make_login_token(key=NEW_KEY)) == 302


def test_without_a_previous_version_forged_tokens_cost_one_lookup_per_container(
    clickfunnels: ModuleType, fetches: list[str]
) -> None:
    # Given a secret that was never rotated (no AWSPREVIOUS)
    forged = make_login_token(key="attacker-key-0123456789abcdef0123456789")

    # When several forged tokens arrive
    statuses = [status(clickfunnels, forged) for _ in range(5)]

    # Then each is refused, and the current key and the missing previous one were each looked up once
    assert statuses == [401] * 5
    assert fetches == ["AWSCURRENT", "AWSPREVIOUS"]


def test_a_valid_token_never_looks_for_the_previous_key(clickfunnels: ModuleType, aws: Any, fetches: list[str]) -> None:
    rotate(aws, clickfunnels, NEW_KEY)
    assert status(clickfunnels, make_login_token(key=NEW_KEY)) == 302
    assert "AWSPREVIOUS" not in fetches


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the point of the test
@pytest.mark.parametrize("length", [1, 16, 31])
def test_a_short_login_token_key_is_refused_with_a_503(
    clickfunnels: ModuleType, aws: Any, log_stream: Callable[[ModuleType], Any], length: int
) -> None:
    # Given an operator put a key shorter than 256 bits
    short = "k" * length
    rotate(aws, clickfunnels, short)
    logs = log_stream(clickfunnels)

    # When a token signed with it arrives
    event = load_event("clickfunnels-sso-httpapi", query=f"login_token={make_login_token(key=short)}")
    response = clickfunnels.lambda_handler(event, LambdaContext())

    # Then nobody is signed in: a 503 page, and one log line that tells the operator what to fix
    assert response["statusCode"] == 503
    assert "Location" not in response["headers"]
    refusals = [line for line in logs.getvalue().splitlines() if "login_key_too_short" in line]
    assert len(refusals) == 1
    assert "shorter than 32 bytes" in refusals[0]


def test_a_key_of_exactly_32_bytes_is_accepted(clickfunnels: ModuleType, aws: Any) -> None:
    key = "k" * 32
    rotate(aws, clickfunnels, key)
    assert status(clickfunnels, make_login_token(key=key)) == 302


def test_a_platform_that_switches_keys_at_once_is_not_refused_for_the_cache_lifetime(
    clickfunnels: ModuleType, aws: Any, monkeypatch: pytest.MonkeyPatch, fetches: list[str]
) -> None:
    # Given a container that cached the key a while ago
    assert status(clickfunnels, make_login_token(key=LOGIN_TOKEN_KEY)) == 302
    monkeypatch.setattr(clickfunnels.flow.keys, "_clock", lambda: time.monotonic() + REFRESH_SECONDS + 1)

    # When the operator rotates and the platform signs with the new key straight away (no cache cleared here)
    aws.put_secret_value(SecretId=SECRET_IDS["login"], SecretString=NEW_KEY)

    # Then the new key's tokens sign in, and so do the old key's, within the grace period
    assert status(clickfunnels, make_login_token(key=NEW_KEY)) == 302
    assert status(clickfunnels, make_login_token(key=LOGIN_TOKEN_KEY)) == 302
    # the login key and the vendor key, then the login key once more (the refresh), then the previous one
    assert fetches == ["AWSCURRENT", "AWSCURRENT", "AWSCURRENT", "AWSPREVIOUS"]
