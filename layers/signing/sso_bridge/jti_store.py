"""The audit trail of vendor tokens: every jti the bridge signs is recorded before the token leaves.

A jti is drawn from the OS CSPRNG and written with a conditional put (``attribute_not_exists``), so two
containers can never issue the same one: the table, not the randomness alone, is the guarantee. The write
comes first; if it fails the caller issues nothing, so no token exists without its record.

The record is what an auditor needs to answer "was this token ours, when, for whom, from where" and nothing
secret: never the token, never a key. ``purge_at`` is the table's TTL attribute (retention).

The DynamoDB client is made on first use, not at import: a cold start that refuses a bad login token never
pays for it, and nothing touches AWS at import.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from . import clients
from .errors import DependencyUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

__all__ = [
    "EMAIL_INDEX",
    "JTI_BYTES",
    "MAX_DRAWS",
    "MAX_USER_AGENT_LENGTH",
    "IssueRecord",
    "JtiStore",
    "new_jti",
]

JTI_BYTES = 16  # 128 bits
MAX_DRAWS = 3
MAX_USER_AGENT_LENGTH = 512
EMAIL_INDEX = "by-email"
_COLLISION = "ConditionalCheckFailedException"


def new_jti() -> str:
    # Hex, not base64url: a jti never starts with '-' (read as an option by CLIs) and selects with a double-click.
    return secrets.token_hex(JTI_BYTES)


@dataclass(frozen=True, slots=True)
class IssueRecord:
    """Who a token is for and where the request came from; the jti is drawn by the store."""

    vendor: str
    email: str
    name: str
    issued_at: int
    expires_at: int
    request_id: str
    source_ip: str
    user_agent: str
    login_jti: str | None = None


class JtiStore:
    """Reserve unique jti values in one DynamoDB table (the function may only ``PutItem`` on it)."""

    def __init__(self, table_name: str, *, retention_days: int, client: DynamoDBClient | None = None) -> None:
        self.table_name = table_name
        self.retention_seconds = retention_days * 86400
        self._client = clients.dynamodb(client)

    @property
    def client(self) -> DynamoDBClient:
        return self._client()

    def item(self, jti: str, record: IssueRecord) -> dict[str, AttributeValueTypeDef]:
        item: dict[str, AttributeValueTypeDef] = {
            "jti": {"S": jti},
            "vendor": {"S": record.vendor},
            "email": {"S": record.email},
            # The index key: look-ups by email should not depend on how the platform capitalised it.
            "email_lower": {"S": record.email.lower()},
            "name": {"S": record.name},
            "issued_at": {"N": str(record.issued_at)},
            "expires_at": {"N": str(record.expires_at)},
            "purge_at": {"N": str(record.issued_at + self.retention_seconds)},
            "request_id": {"S": record.request_id or "-"},
            "source_ip": {"S": record.source_ip or "-"},
            "user_agent": {"S": record.user_agent[:MAX_USER_AGENT_LENGTH] or "-"},
        }
        if record.login_jti:
            item["login_jti"] = {"S": record.login_jti}
        return item

    def issue(self, record: IssueRecord) -> str:
        """Draw a jti, record it, return it; ``DependencyUnavailable`` (503) when it cannot be recorded."""
        client = self.client
        for _ in range(MAX_DRAWS):
            jti = new_jti()
            try:
                client.put_item(
                    TableName=self.table_name,
                    Item=self.item(jti, record),
                    ConditionExpression="attribute_not_exists(jti)",
                )
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code == _COLLISION:
                    continue  # someone holds this jti: draw again
                raise DependencyUnavailable("jti_store_unavailable", detail=code or type(exc).__name__) from exc
            except BotoCoreError as exc:
                raise DependencyUnavailable("jti_store_unavailable", detail=type(exc).__name__) from exc
            return jti
        # 128 random bits colliding MAX_DRAWS times means a broken RNG or a broken table, not bad luck.
        raise DependencyUnavailable("jti_collisions", detail=f"{MAX_DRAWS} draws collided")
