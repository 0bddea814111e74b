"""The audit trail of vendor tokens: every jti the bridge signs is recorded before the token leaves.

A jti is drawn from the OS CSPRNG and written with a conditional put (``attribute_not_exists``), so two
containers can never issue the same one: the table, not the randomness alone, is the guarantee. The write
comes first; if it fails the caller issues nothing, so no token exists without its record. A put whose answer
is lost (a read timeout after DynamoDB wrote it) is sent again by botocore and refused: the refusal carries the
record that holds the jti, and when that record is this very one, the jti is ours and on record once.

The record is what an auditor needs to answer "was this token ours, when, for whom, from where" and nothing
secret: never the token, never a key. ``purge_at`` is the table's TTL attribute (retention).

The DynamoDB client is made on first use, not at import: a cold start that refuses a bad login token never
pays for it, and nothing touches AWS at import.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from . import clients
from .errors import DependencyUnavailable
from .login_token import email_key
from .settings import env_int, env_str

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

__all__ = [
    "EMAIL_INDEX",
    "JTI_BYTES",
    "MAX_DRAWS",
    "MAX_USER_AGENT_LENGTH",
    "SMOKE_EMAIL",
    "IssueRecord",
    "JtiStore",
    "new_jti",
]

JTI_BYTES = 16  # 128 bits
MAX_DRAWS = 3
MAX_USER_AGENT_LENGTH = 512
EMAIL_INDEX = "by-email"
_COLLISION = "ConditionalCheckFailedException"
# The reserved address `make smoke` (ops/smoke.py) signs in as (.invalid: RFC 2606, never a mailbox); its
# records are marked ``smoke`` so an auditor tells a deploy check from a person.
SMOKE_EMAIL = "smoke@sso-bridge.invalid"


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
    smoke: bool = False  # issued to SMOKE_EMAIL by `make smoke`, not to a person


class JtiStore:
    """Reserve unique jti values in one DynamoDB table (the function may only ``PutItem`` on it)."""

    def __init__(self, table_name: str, *, retention_days: int, client: DynamoDBClient | None = None) -> None:
        self.table_name = table_name
        self.retention_seconds = retention_days * 86400
        self._client = clients.dynamodb(client)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> JtiStore:
        """The store a recording portal's settings name (``JTI_TABLE_NAME``, ``JTI_RETENTION_DAYS``); no AWS call:
        the client is made on the first token it records."""
        return cls(
            env_str(env, "JTI_TABLE_NAME"),
            retention_days=env_int(env, "JTI_RETENTION_DAYS", 90, minimum=1, maximum=3650),
        )

    @property
    def client(self) -> DynamoDBClient:
        return self._client()

    def item(self, jti: str, record: IssueRecord) -> dict[str, AttributeValueTypeDef]:
        item: dict[str, AttributeValueTypeDef] = {
            "jti": {"S": jti},
            "vendor": {"S": record.vendor},
            "email": {"S": record.email},
            # The index key: look-ups by email should not depend on how the platform capitalised it.
            "email_lower": {"S": email_key(record.email)},
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
        if record.smoke:
            item["smoke"] = {"BOOL": True}
        return item

    def issue(self, record: IssueRecord) -> str:
        """Draw a jti, record it, return it; ``DependencyUnavailable`` (503) when it cannot be recorded."""
        client = self.client
        for _ in range(MAX_DRAWS):
            jti = new_jti()
            item = self.item(jti, record)
            try:
                client.put_item(
                    TableName=self.table_name,
                    Item=item,
                    ConditionExpression="attribute_not_exists(jti)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",  # who holds the jti, with the refusal
                )
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code == _COLLISION:
                    if dict(exc.response).get("Item") == item:
                        return jti  # our own put, retried after its answer was lost: it is on record
                    continue  # someone holds this jti: draw again
                raise DependencyUnavailable("jti_store_unavailable", detail=code or type(exc).__name__) from exc
            except BotoCoreError as exc:
                raise DependencyUnavailable("jti_store_unavailable", detail=type(exc).__name__) from exc
            return jti
        # 128 random bits colliding MAX_DRAWS times means a broken RNG or a broken table, not bad luck.
        raise DependencyUnavailable("jti_collisions", detail=f"{MAX_DRAWS} draws collided")
