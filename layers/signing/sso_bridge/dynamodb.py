"""A DynamoDB client made on first use, for the stores that write to DynamoDB (jti store, link store).

Not at import and not per request: a cold start that refuses a bad login token, or an interactive login
that never touches a link table, never pays for a client. Creating clients is not thread-safe in boto3;
using one is, so creation sits behind a lock.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

__all__ = ["LazyDynamoDBClient"]


class LazyDynamoDBClient:
    """Call it for the client: ``client`` when given (tests), else one made with ``config`` the first time."""

    def __init__(self, config: Config, client: DynamoDBClient | None = None) -> None:
        self._config = config
        self._client = client
        self._lock = threading.Lock()

    def __call__(self) -> DynamoDBClient:
        with self._lock:
            if self._client is None:
                self._client = boto3.session.Session().client("dynamodb", config=self._config)
            return self._client
