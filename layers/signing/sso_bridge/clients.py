"""AWS clients made on first use, from one boto3 session, with timeouts chosen for a 10-second function.

Not at import and not per request: a cold start that refuses a bad login token never pays for a client, and
the stores and the key cache share one session (a session costs tens of milliseconds to build). Creating
clients is not thread-safe in boto3; using one is, so creation sits behind a lock.

botocore's defaults (60 s connect and read, several retries) would let a hanging dependency outlast the
function, so the user would get API Gateway's bare 503 or 504 instead of our page. With these, one call
answers or fails within about 2.5 s: two attempts of at most 1 s to connect and 1 s to read, and the standard
mode's jittered back-off between them. A request makes at most four calls and stops at the first failure.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

__all__ = ["CLIENT_CONFIG", "LazyClient", "dynamodb", "secretsmanager"]

CLIENT_CONFIG = Config(
    connect_timeout=1,
    read_timeout=1,
    # total_max_attempts counts the first try; botocore's max_attempts counts retries only (3 tries for 2).
    retries={"mode": "standard", "total_max_attempts": 2},
)

# At DEBUG, botocore logs every response body (GetSecretValue's SecretString: a key) and the string it signs
# (the session token). An operator who sets the function's log level to DEBUG wants the bridge's detail, not
# its keys: the SDK's loggers stay at INFO or above whatever the root logger says.
for _name in ("botocore", "boto3", "urllib3"):
    logging.getLogger(_name).setLevel(logging.INFO)

_lock = threading.Lock()
_session: boto3.session.Session | None = None


def _client(service: str) -> Any:
    global _session  # one per container, made with the first client
    with _lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client(service, config=CLIENT_CONFIG)  # type: ignore[call-overload]


class LazyClient[T]:
    """Call it for the client: ``client`` when given (tests), else one made by ``factory`` the first time."""

    def __init__(self, factory: Callable[[], T], client: T | None = None) -> None:
        self._factory = factory
        self._client = client
        self._lock = threading.Lock()

    def __call__(self) -> T:
        with self._lock:
            if self._client is None:
                self._client = self._factory()
            return self._client


def dynamodb(client: DynamoDBClient | None = None) -> LazyClient[DynamoDBClient]:
    return LazyClient(lambda: _client("dynamodb"), client)


def secretsmanager(client: SecretsManagerClient | None = None) -> LazyClient[SecretsManagerClient]:
    return LazyClient(lambda: _client("secretsmanager"), client)
