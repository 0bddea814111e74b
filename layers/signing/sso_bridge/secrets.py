"""Signing keys from Secrets Manager, through Powertools Parameters' in-memory cache.

One fetch per container per ``max_age``, not one per click. The SecretString is the key itself.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities import parameters

from .errors import DependencyUnavailable

__all__ = ["MIN_KEY_BYTES", "PLACEHOLDER_PREFIX", "get_signing_key"]

MIN_KEY_BYTES = 32
# The template seeds vendor secrets with this until the operator puts the real key.
PLACEHOLDER_PREFIX = "REPLACE_ME"

_log = Logger(child=True)
_warned_short: set[str] = set()


def get_signing_key(secret_id: str, *, max_age: int) -> str:
    """Return the key stored in ``secret_id``; a fetch failure is an outage (503), never a token."""
    try:
        value = parameters.get_secret(secret_id, max_age=max_age)
    except (parameters.exceptions.GetParameterError, parameters.exceptions.TransformParameterError) as exc:
        cause = exc.__cause__ or exc.__context__
        raise DependencyUnavailable("secret_unavailable", detail=f"{secret_id}: {type(cause).__name__}") from exc
    if not isinstance(value, str) or not value or value.startswith(PLACEHOLDER_PREFIX):
        raise DependencyUnavailable("secret_not_set", detail=f"{secret_id} holds no key yet")
    if len(value.encode()) < MIN_KEY_BYTES and secret_id not in _warned_short:
        _warned_short.add(secret_id)
        _log.warning("signing key is shorter than %d bytes", MIN_KEY_BYTES, extra={"secret_id": secret_id})
    return value
