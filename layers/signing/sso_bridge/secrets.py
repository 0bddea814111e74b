"""Signing keys from Secrets Manager, through Powertools Parameters' in-memory cache.

One fetch per container per ``max_age``, not one per click. The SecretString is the key itself.

The version before the current one (Secrets Manager's ``AWSPREVIOUS`` label, set by every
``put-secret-value``) is there for rotation: a login token signed with the old key stays valid while the
platform moves to the new one. It is fetched only when a signature fails with the current key, and its
absence is cached like a value, so forged tokens do not each cost a fetch.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
from botocore.exceptions import ClientError

from .errors import DependencyUnavailable

__all__ = ["MIN_KEY_BYTES", "PLACEHOLDER_PREFIX", "get_previous_signing_key", "get_signing_key"]

MIN_KEY_BYTES = 32
# The template seeds vendor secrets with this until the operator puts the real key.
PLACEHOLDER_PREFIX = "REPLACE_ME"

_log = Logger(child=True)
_warned_short: set[str] = set()


_PREVIOUS_STAGE = "AWSPREVIOUS"
# Registered beside Powertools' own providers, so parameters.clear_caches() resets it too.
_PREVIOUS_PROVIDER = "sso_bridge_previous_secrets"


class _PreviousVersions(parameters.SecretsProvider):
    """``AWSPREVIOUS`` of each secret; "" (cached like any value) when the secret has no previous version."""

    def _get(self, name: str, **sdk_options: Any) -> str | bytes:
        try:
            value: str | bytes = super()._get(name, VersionStage=_PREVIOUS_STAGE, **sdk_options)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return ""
            raise
        return value


def _fetch(secret_id: str, *, max_age: int, previous: bool) -> str | bytes | dict[str, Any] | None:
    try:
        if not previous:
            return parameters.get_secret(secret_id, max_age=max_age)
        if _PREVIOUS_PROVIDER not in DEFAULT_PROVIDERS:
            DEFAULT_PROVIDERS[_PREVIOUS_PROVIDER] = _PreviousVersions()
        return DEFAULT_PROVIDERS[_PREVIOUS_PROVIDER].get(secret_id, max_age=max_age)  # type: ignore[no-any-return]
    except (parameters.exceptions.GetParameterError, parameters.exceptions.TransformParameterError) as exc:
        cause = exc.__cause__ or exc.__context__
        raise DependencyUnavailable("secret_unavailable", detail=f"{secret_id}: {type(cause).__name__}") from exc


def get_previous_signing_key(secret_id: str, *, max_age: int) -> str | None:
    """The key ``secret_id`` held before its current one, or ``None`` when there is none worth trying."""
    value = _fetch(secret_id, max_age=max_age, previous=True)
    if not isinstance(value, str) or not value or value.startswith(PLACEHOLDER_PREFIX):
        return None
    return value


def get_signing_key(secret_id: str, *, max_age: int) -> str:
    """Return the key stored in ``secret_id``; a fetch failure is an outage (503), never a token."""
    value = _fetch(secret_id, max_age=max_age, previous=False)
    if not isinstance(value, str) or not value or value.startswith(PLACEHOLDER_PREFIX):
        raise DependencyUnavailable("secret_not_set", detail=f"{secret_id} holds no key yet")
    if len(value.encode()) < MIN_KEY_BYTES and secret_id not in _warned_short:
        _warned_short.add(secret_id)
        _log.warning("signing key is shorter than %d bytes", MIN_KEY_BYTES, extra={"secret_id": secret_id})
    return value
