"""The key cache through a Secrets Manager outage: nobody signed out by a short one, nobody let in by a long one.

A stand-in client plays Secrets Manager (answering, failing, or missing a version) and a fake clock moves
time, so each case reads as what the bridge does at that moment of an outage.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

from sso_bridge.errors import DependencyUnavailable
from sso_bridge.secrets import ERROR_RETRY_SECONDS, REFRESH_SECONDS, KeyCache

SECRET = "sso-bridge/login-token"
KEY = "current-key-0123456789abcdef0123456789"
OLD_KEY = "previous-key-0123456789abcdef0123456789"
MAX_AGE, MAX_STALE = 300, 900


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "..."}}, "GetSecretValue")


class SecretsManager:
    """Answers GetSecretValue from ``versions`` until told to fail; counts every call."""

    def __init__(self) -> None:
        self.versions = {"AWSCURRENT": KEY, "AWSPREVIOUS": OLD_KEY}
        self.failure: Exception | None = None
        self.calls: list[str] = []

    def get_secret_value(self, *, SecretId: str, VersionStage: str) -> dict[str, Any]:
        self.calls.append(VersionStage)
        if self.failure is not None:
            raise self.failure
        if VersionStage not in self.versions:
            raise client_error("ResourceNotFoundException")
        return {"SecretString": self.versions[VersionStage], "CreatedDate": datetime.now(UTC)}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def manager() -> SecretsManager:
    return SecretsManager()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(manager: SecretsManager, clock: Clock) -> KeyCache:
    return KeyCache(max_age=MAX_AGE, max_stale=MAX_STALE, previous_grace=3600, client=manager, clock=clock)  # type: ignore[arg-type]


def keys(cache: KeyCache, *, all_of_them: bool = False) -> list[str]:
    found: Iterator[str] = cache.login_token_keys(SECRET)
    return list(found) if all_of_them else [next(found)]


OUTAGES = {
    "unreachable": EndpointConnectionError(endpoint_url="https://secretsmanager.eu-west-1.amazonaws.com"),
    "timing out": ConnectTimeoutError(endpoint_url="https://secretsmanager.eu-west-1.amazonaws.com"),
    "throttled": client_error("ThrottlingException"),
    "internal error": client_error("InternalServiceError"),
    "access denied": client_error("AccessDeniedException"),
}


@pytest.mark.parametrize("failure", OUTAGES.values(), ids=OUTAGES.keys())
def test_a_cached_key_serves_through_an_outage_up_to_the_stale_limit(
    cache: KeyCache, manager: SecretsManager, clock: Clock, failure: Exception
) -> None:
    # Given a key fetched before Secrets Manager went down
    assert keys(cache) == [KEY]
    manager.failure = failure

    # When the key is past its max age but within the stale limit, it keeps serving
    clock.now += MAX_AGE + MAX_STALE - 1
    assert keys(cache) == [KEY]

    # And once past the stale limit, the outage is a 503
    clock.now += ERROR_RETRY_SECONDS + 2
    with pytest.raises(DependencyUnavailable) as refused:
        keys(cache)
    assert refused.value.reason == "secret_unavailable"


def test_during_an_outage_secrets_manager_is_tried_again_only_every_few_seconds(
    cache: KeyCache, manager: SecretsManager, clock: Clock
) -> None:
    keys(cache)
    manager.failure = OUTAGES["unreachable"]
    clock.now += MAX_AGE + 1
    manager.calls.clear()

    for _ in range(50):  # a burst of sign-ins within the retry interval
        assert keys(cache) == [KEY]
    assert manager.calls == ["AWSCURRENT"]

    clock.now += ERROR_RETRY_SECONDS
    keys(cache)
    assert manager.calls == ["AWSCURRENT", "AWSCURRENT"]


def test_when_secrets_manager_is_back_the_new_key_is_used(
    cache: KeyCache, manager: SecretsManager, clock: Clock
) -> None:
    keys(cache)
    manager.failure = OUTAGES["throttled"]
    clock.now += MAX_AGE + 1
    keys(cache)
    manager.failure = None
    manager.versions["AWSCURRENT"] = "a-key-put-during-the-outage-0123456789abcdef"
    clock.now += ERROR_RETRY_SECONDS
    assert keys(cache) == ["a-key-put-during-the-outage-0123456789abcdef"]


@pytest.mark.parametrize("failure", OUTAGES.values(), ids=OUTAGES.keys())
def test_without_a_cached_key_an_outage_is_a_503_and_is_not_retried_per_request(
    cache: KeyCache, manager: SecretsManager, failure: Exception
) -> None:
    manager.failure = failure
    for _ in range(20):
        with pytest.raises(DependencyUnavailable) as refused:
            keys(cache)
        assert refused.value.reason == "secret_unavailable"
    assert manager.calls == ["AWSCURRENT"]


def test_forged_tokens_during_a_previous_key_outage_cost_one_call_per_interval(
    cache: KeyCache, manager: SecretsManager, clock: Clock
) -> None:
    # Given the current key is cached and fetching AWSPREVIOUS fails (not "not found": throttled)
    keys(cache)
    manager.failure = OUTAGES["throttled"]

    # When a flood of forged tokens each asks for the previous key
    for _ in range(100):
        with pytest.raises(DependencyUnavailable):
            keys(cache, all_of_them=True)

    # Then Secrets Manager saw one call for it, until the retry interval passes
    assert manager.calls == ["AWSCURRENT", "AWSPREVIOUS"]
    clock.now += ERROR_RETRY_SECONDS
    with pytest.raises(DependencyUnavailable):
        keys(cache, all_of_them=True)
    assert manager.calls == ["AWSCURRENT", "AWSPREVIOUS", "AWSPREVIOUS"]


def test_a_missing_previous_version_is_cached_like_a_value(cache: KeyCache, manager: SecretsManager) -> None:
    del manager.versions["AWSPREVIOUS"]
    for _ in range(10):
        assert keys(cache, all_of_them=True) == [KEY]
    assert manager.calls == ["AWSCURRENT", "AWSPREVIOUS"]


@pytest.mark.parametrize("value", ["", "REPLACE_ME with the key"], ids=["empty", "placeholder"])
def test_a_secret_without_a_key_is_a_503(cache: KeyCache, manager: SecretsManager, value: str) -> None:
    manager.versions["AWSCURRENT"] = value
    with pytest.raises(DependencyUnavailable) as refused:
        keys(cache)
    assert refused.value.reason == "secret_not_set"
    with pytest.raises(DependencyUnavailable):
        cache.vendor_key(SECRET)


def test_a_missing_secret_is_a_503(cache: KeyCache, manager: SecretsManager) -> None:
    manager.versions.clear()
    with pytest.raises(DependencyUnavailable) as refused:
        keys(cache)
    assert refused.value.reason == "secret_unavailable"


def test_a_short_previous_key_is_never_tried(cache: KeyCache, manager: SecretsManager) -> None:
    manager.versions["AWSPREVIOUS"] = "short"
    assert keys(cache, all_of_them=True) == [KEY]


def test_a_short_vendor_key_is_the_vendors_choice(cache: KeyCache, manager: SecretsManager) -> None:
    manager.versions["AWSCURRENT"] = "short-vendor-key"
    assert cache.vendor_key(SECRET) == "short-vendor-key"


def test_a_failed_signature_refreshes_an_old_current_key_at_most_once_per_interval(
    cache: KeyCache, manager: SecretsManager, clock: Clock
) -> None:
    # Given a current key cached a while ago, and no previous key
    del manager.versions["AWSPREVIOUS"]
    keys(cache)
    clock.now += REFRESH_SECONDS

    # When forged tokens keep failing, the current key is fetched again once, not once per token
    for _ in range(50):
        assert keys(cache, all_of_them=True) == [KEY]
    assert manager.calls == ["AWSCURRENT", "AWSCURRENT", "AWSPREVIOUS"]


def test_a_refreshed_current_key_is_offered_and_the_old_previous_is_dropped(
    cache: KeyCache, manager: SecretsManager, clock: Clock
) -> None:
    assert keys(cache, all_of_them=True) == [KEY, OLD_KEY]
    # A rotation: the key we cached as current is now the previous one
    manager.versions = {"AWSCURRENT": "brand-new-key-0123456789abcdef0123456789", "AWSPREVIOUS": KEY}
    clock.now += REFRESH_SECONDS
    assert keys(cache, all_of_them=True) == [KEY, "brand-new-key-0123456789abcdef0123456789", KEY]
