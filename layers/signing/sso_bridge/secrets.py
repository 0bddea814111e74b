"""Signing keys from Secrets Manager, cached per container: one fetch per ``max_age``, not one per click.

The SecretString is the key itself. Powertools Parameters did this job before; it was replaced by this small
cache because the bridge needs two things it does not give: the version's ``CreatedDate`` (the previous
login-token key is accepted only for a grace period after the current one was created) and a cached key that
keeps serving while Secrets Manager is down (an outage should sign nobody out).

- A key older than ``max_age`` is fetched again. If that fails, the cached key keeps serving until it is
  ``max_age + max_stale`` old, and Secrets Manager is tried again only every ``ERROR_RETRY_SECONDS``, so an
  outage neither signs people out nor makes every request wait for a timeout.
- When a signature fails with the cached current key, the current key is fetched again if the cached one is
  older than ``REFRESH_SECONDS``: a platform that switched to a key put a minute ago is not refused for the
  rest of ``max_age``.
- The previous login-token key (``AWSPREVIOUS``) is fetched only when a signature fails with the current one,
  and only within the grace period. Its absence is cached like a value and a failure for
  ``ERROR_RETRY_SECONDS``: a flood of forged tokens never becomes a flood of Secrets Manager calls.
- An operator who presumes the old key leaked removes the ``AWSPREVIOUS`` label (``make rotate-login-key
  EMERGENCY=1``); then no previous key exists once the cache expires.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from . import clients
from .errors import DependencyUnavailable
from .observability import Logger

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

__all__ = [
    "ERROR_RETRY_SECONDS",
    "MIN_KEY_BYTES",
    "PLACEHOLDER_PREFIX",
    "REFRESH_SECONDS",
    "KeyCache",
    "SecretVersion",
]

# RFC 7518 §3.2: an HS256 key is at least 256 bits.
MIN_KEY_BYTES = 32
# The template seeds vendor secrets with this until the operator puts the real key.
PLACEHOLDER_PREFIX = "REPLACE_ME"
ERROR_RETRY_SECONDS = 5
# A signature that fails with a cached current key older than this fetches the current key again.
REFRESH_SECONDS = 10
CURRENT, PREVIOUS = "AWSCURRENT", "AWSPREVIOUS"


@dataclass(frozen=True, slots=True)
class SecretVersion:
    value: str
    created_at: float  # epoch seconds; 0 when Secrets Manager did not say


@dataclass(slots=True)
class _Entry:
    version: SecretVersion | None = None  # None with fetched_at set: no such version (no AWSPREVIOUS)
    fetched_at: float | None = None
    failed_at: float | None = None
    failure: tuple[str, str] | None = None  # (reason, detail) of the last failed fetch


class KeyCache:
    """The keys one function signs and verifies with; safe to share between threads."""

    def __init__(
        self,
        *,
        max_age: int,
        max_stale: int,
        previous_grace: int,
        logger: Logger | None = None,
        client: SecretsManagerClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_age = max_age
        self.max_stale = max_stale
        self.previous_grace = previous_grace
        self._client = clients.secretsmanager(client)
        self._clock = clock  # cache ages
        self._wall_clock = wall_clock  # the grace period, against the version's creation date
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._lock = threading.Lock()
        self._warned_short: set[str] = set()
        self._log = logger or Logger()

    def clear(self) -> None:
        """Forget every key, as a new container would."""
        with self._lock:
            self._entries.clear()

    def secret(self, secret_id: str) -> str:
        """A secret's current value (the OpenID client secret); a 503 until the operator has put one."""
        value = _usable(self._get(secret_id, CURRENT))
        if value is None:
            raise DependencyUnavailable("secret_not_set", detail=f"{secret_id} holds no key yet")
        return value

    def vendor_key(self, secret_id: str) -> str:
        """The key a vendor gave us; a short one is the vendor's choice, so it is only warned about."""
        value = self.secret(secret_id)
        if len(value.encode()) < MIN_KEY_BYTES and secret_id not in self._warned_short:
            self._warned_short.add(secret_id)
            self._log.warning("vendor key is shorter than %d bytes", MIN_KEY_BYTES, extra={"secret_id": secret_id})
        return value

    def login_token_keys(self, secret_id: str) -> Iterator[str]:
        """The current login-token key; then, only if the caller asks for more (a signature failed), the current
        key fetched again when the cached one is older than ``REFRESH_SECONDS`` (the platform may already sign
        with a key put minutes ago); then the previous key, within its grace period.

        Our own key is refused when short: anyone who could guess it could sign in as anybody.
        """
        current = self._get(secret_id, CURRENT)
        yield _login_key(secret_id, current)
        assert current is not None  # _login_key refused anything else
        fresh = self._get(secret_id, CURRENT, max_age=min(REFRESH_SECONDS, self.max_age))
        if fresh is not None and fresh.value != current.value:
            with self._lock:  # a rotation happened: the previous key we hold is two rotations old
                self._entries.pop((secret_id, PREVIOUS), None)
            current = fresh
            yield _login_key(secret_id, current)
        if self._wall_clock() > current.created_at + self.previous_grace:
            return  # the rotation is older than the grace period: the previous key is retired
        previous = _usable(self._get(secret_id, PREVIOUS))
        if previous is not None and len(previous.encode()) >= MIN_KEY_BYTES:
            yield previous

    def _get(self, secret_id: str, stage: str, *, max_age: int | None = None) -> SecretVersion | None:
        now = self._clock()
        max_age = self.max_age if max_age is None else max_age
        with self._lock:
            entry = self._entries.setdefault((secret_id, stage), _Entry())
            if entry.fetched_at is not None and now - entry.fetched_at < max_age and entry.failure is None:
                return entry.version
            stale = entry.fetched_at is not None and now - entry.fetched_at < self.max_age + self.max_stale
            if (
                entry.failure is not None
                and entry.failed_at is not None
                and now - entry.failed_at < ERROR_RETRY_SECONDS
            ):
                if stale:
                    return entry.version
                raise DependencyUnavailable(entry.failure[0], detail=entry.failure[1])
        # Fetched outside the lock: a slow Secrets Manager must not hold every other thread's cached keys.
        try:
            version = self._fetch(secret_id, stage)
        except DependencyUnavailable as exc:
            with self._lock:
                entry.failed_at, entry.failure = now, (exc.reason, exc.detail)
            if not stale:
                raise
            extra = {"secret_id": secret_id, "stage": stage, "detail": exc.detail}
            self._log.warning("serving a cached key while Secrets Manager fails", extra=extra)
            return entry.version
        with self._lock:
            entry.version, entry.fetched_at, entry.failed_at, entry.failure = version, now, None, None
        return version

    def _fetch(self, secret_id: str, stage: str) -> SecretVersion | None:
        try:
            response = self._client().get_secret_value(SecretId=secret_id, VersionStage=stage)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException" and stage == PREVIOUS:
                return None  # never rotated, or the previous key was withdrawn
            raise DependencyUnavailable("secret_unavailable", detail=f"{secret_id} {stage}: {code}") from exc
        except BotoCoreError as exc:
            raise DependencyUnavailable(
                "secret_unavailable", detail=f"{secret_id} {stage}: {type(exc).__name__}"
            ) from exc
        created = response.get("CreatedDate")
        created_at = created.timestamp() if isinstance(created, datetime) else 0.0
        value = response.get("SecretString")
        return SecretVersion(value=value if isinstance(value, str) else "", created_at=created_at)


def _login_key(secret_id: str, version: SecretVersion | None) -> str:
    value = _usable(version)
    if value is None:
        raise DependencyUnavailable("secret_not_set", detail=f"{secret_id} holds no key yet")
    if len(value.encode()) < MIN_KEY_BYTES:
        detail = f"{secret_id}: shorter than {MIN_KEY_BYTES} bytes, put a longer key"
        raise DependencyUnavailable("login_key_too_short", detail=detail)
    return value


def _usable(version: SecretVersion | None) -> str | None:
    if version is None or not version.value or version.value.startswith(PLACEHOLDER_PREFIX):
        return None
    return version.value
