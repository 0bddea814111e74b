"""Rotating the login-token key without signing anyone out.

The operator puts a new key into the login-token secret; Secrets Manager keeps the old one as
``AWSPREVIOUS``. Until the platform signs with the new key, tokens signed with the old one must still work,
and a key from two rotations ago must not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any
from unittest import mock

import pytest
from aws_lambda_powertools.utilities import parameters

from tests.helpers import LOGIN_TOKEN_KEY, SECRET_IDS, LambdaContext, load_event, make_login_token

NEW_KEY = "rotated-login-token-key-0123456789abcdef0123456789"
NEWER_KEY = "rotated-again-login-token-key-0123456789abcdef0123"


@pytest.fixture
def clickfunnels(aws: Any, load_function: Callable[..., ModuleType]) -> ModuleType:
    return load_function("clickfunnels")


def status(module: ModuleType, login_token: str) -> int:
    event = load_event("clickfunnels-sso-httpapi", query=f"login_token={login_token}")
    return int(module.lambda_handler(event, LambdaContext())["statusCode"])


@pytest.fixture
def fetches() -> Iterator[list[str]]:
    """The version stage of every Secrets Manager fetch the flow makes (through Powertools or not)."""
    calls: list[str] = []
    real = parameters.SecretsProvider._get

    def counting(self: Any, name: str, **options: Any) -> Any:
        calls.append(options.get("VersionStage", "AWSCURRENT"))
        return real(self, name, **options)

    with mock.patch.object(parameters.SecretsProvider, "_get", counting):
        yield calls


def rotate(aws: Any, key: str) -> None:
    aws.put_secret_value(SecretId=SECRET_IDS["login"], SecretString=key)
    parameters.clear_caches()  # as a new container (or SECRETS_MAX_AGE later) would see it


def test_old_and_new_keys_both_sign_in_during_a_rotation(clickfunnels: ModuleType, aws: Any) -> None:
    # Given the operator has put a new login-token key
    rotate(aws, NEW_KEY)

    # Then tokens the platform still signs with the old key work, and so do tokens with the new one
    assert status(clickfunnels, make_login_token(key=LOGIN_TOKEN_KEY)) == 302
    assert status(clickfunnels, make_login_token(key=NEW_KEY)) == 302


def test_a_key_two_rotations_old_is_refused(clickfunnels: ModuleType, aws: Any) -> None:
    rotate(aws, NEW_KEY)
    rotate(aws, NEWER_KEY)
    assert status(clickfunnels, make_login_token(key=LOGIN_TOKEN_KEY)) == 401
    assert status(clickfunnels, make_login_token(key=NEW_KEY)) == 302


def test_without_a_previous_version_forged_tokens_cost_one_lookup_per_container(
    clickfunnels: ModuleType, aws: Any, fetches: list[str]
) -> None:
    # Given a secret that was never rotated (no AWSPREVIOUS)
    forged = make_login_token(key="attacker-key-0123456789abcdef0123456789")

    # When several forged tokens arrive
    statuses = [status(clickfunnels, forged) for _ in range(5)]

    # Then each is refused, and the current key and the missing previous one were each looked up once
    assert statuses == [401] * 5
    assert fetches == ["AWSCURRENT", "AWSPREVIOUS"]


def test_a_valid_token_never_looks_for_the_previous_key(clickfunnels: ModuleType, aws: Any, fetches: list[str]) -> None:
    rotate(aws, NEW_KEY)
    assert status(clickfunnels, make_login_token(key=NEW_KEY)) == 302
    assert "AWSPREVIOUS" not in fetches
