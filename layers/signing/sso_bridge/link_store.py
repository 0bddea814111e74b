"""The state behind email links: which links were spent, and which addresses had their links withdrawn.

A link is spent with one DynamoDB transaction: a conditional put of its jti (``attribute_not_exists``) and a
condition check that its address has no revocation at or after the link's ``iat``. Either both hold and the
link is ours to spend, or nothing is written; so however many clicks race, at most one signs anyone in, and a
revocation is never overtaken by a spend that started earlier.

Spent records expire with their token (the table's TTL); a revocation outlives every link it can withdraw
(``LINK_TTL_MAX`` and a day). Nothing here is read for interactive logins: only links pay for these calls.
Records hold what an auditor needs and nothing secret: never the token, never a key.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from . import clients
from .errors import DependencyUnavailable
from .login_token import email_key
from .settings import LINK_TTL_MAX

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

__all__ = ["REVOCATION_LIFETIME", "SIGN_IN_STATE_PREFIX", "LinkSpend", "LinkState", "LinkStore"]

# A revocation must outlive every link issued before it: the longest a link may live, and a day of slack.
REVOCATION_LIFETIME = LINK_TTL_MAX + 86400
MAX_USER_AGENT_LENGTH = 512
_FAILED = "ConditionalCheckFailed"
SIGN_IN_STATE_PREFIX = "oidc-state:"
# Another transaction on the same item is in flight: another click spending this link, or a revocation.
_CONFLICT = "TransactionConflict"


class LinkState(enum.StrEnum):
    USABLE = "usable"
    SPENT = "spent"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class LinkSpend:
    """One click on the confirmation button: which link, for whom, from where."""

    jti: str
    vendor: str
    email: str
    campaign: str | None
    issued_at: int
    expires_at: int
    spent_at: int
    request_id: str
    source_ip: str
    user_agent: str


class LinkStore:
    """Spent links (keyed by ``jti``) and revoked addresses (keyed by ``email_lower``: ``email_key``, the same
    at revoke and at spend), in two tables."""

    def __init__(self, spent_table: str, revocations_table: str, *, client: DynamoDBClient | None = None) -> None:
        self.spent_table = spent_table
        self.revocations_table = revocations_table
        self._client = clients.dynamodb(client)

    @property
    def client(self) -> DynamoDBClient:
        return self._client()

    def state(self, *, jti: str, email: str, issued_at: int) -> LinkState:
        """Read-only, for the confirmation page: a spent or withdrawn link goes straight to sign-in."""
        try:
            response = self.client.batch_get_item(
                RequestItems={
                    self.spent_table: {"Keys": [{"jti": {"S": jti}}], "ConsistentRead": True},
                    self.revocations_table: {
                        "Keys": [{"email_lower": {"S": email_key(email)}}],
                        "ConsistentRead": True,
                    },
                }
            )
        except (BotoCoreError, ClientError) as exc:
            raise DependencyUnavailable("link_store_unavailable", detail=_code(exc)) from exc
        if response.get("UnprocessedKeys"):
            raise DependencyUnavailable("link_store_unavailable", detail="unprocessed keys")
        found = response.get("Responses", {})
        for item in found.get(self.revocations_table, []):
            if int(item["not_before"]["N"]) >= issued_at:
                return LinkState.REVOKED
        if found.get(self.spent_table):
            return LinkState.SPENT
        return LinkState.USABLE

    def spend(self, spend: LinkSpend) -> LinkState:
        """``USABLE`` when this call spent the link (the caller may sign the user in), else why not."""
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "ConditionCheck": {
                            "TableName": self.revocations_table,
                            "Key": {"email_lower": {"S": email_key(spend.email)}},
                            "ConditionExpression": "attribute_not_exists(email_lower) OR not_before < :iat",
                            "ExpressionAttributeValues": {":iat": {"N": str(spend.issued_at)}},
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.spent_table,
                            "Item": self._spent_item(spend),
                            "ConditionExpression": "attribute_not_exists(jti)",
                        }
                    },
                ]
            )
        except ClientError as exc:
            refused = _refusal(exc)
            if refused is not None:
                return refused
            raise DependencyUnavailable("link_store_unavailable", detail=_code(exc)) from exc
        except BotoCoreError as exc:
            raise DependencyUnavailable("link_store_unavailable", detail=type(exc).__name__) from exc
        return LinkState.USABLE

    def spend_sign_in_state(self, *, sid: str, vendor: str, expires_at: int, spent_at: int, request_id: str) -> bool:
        """True when this call is the first to use the OpenID sign-in state ``sid``: a callback works once.

        Kept beside the spent links (another key space, ``oidc-state:``), gone with the state's expiry.
        """
        item: dict[str, AttributeValueTypeDef] = {
            "jti": {"S": f"{SIGN_IN_STATE_PREFIX}{sid}"},
            "vendor": {"S": vendor},
            "spent_at": {"N": str(spent_at)},
            "expires_at": {"N": str(expires_at)},
            "request_id": {"S": request_id or "-"},
        }
        try:
            self.client.put_item(TableName=self.spent_table, Item=item, ConditionExpression="attribute_not_exists(jti)")
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise DependencyUnavailable("link_store_unavailable", detail=_code(exc)) from exc
        except BotoCoreError as exc:
            raise DependencyUnavailable("link_store_unavailable", detail=type(exc).__name__) from exc
        return True

    def revoke(self, email: str, *, now: int) -> None:
        """Withdraw every link issued to ``email`` up to ``now`` (inclusive); later links are unaffected."""
        self.client.update_item(
            TableName=self.revocations_table,
            Key={"email_lower": {"S": email_key(email)}},
            UpdateExpression="SET not_before = :now, revoked_at = :now, expires_at = :purge",
            ExpressionAttributeValues={
                ":now": {"N": str(now)},
                ":purge": {"N": str(now + REVOCATION_LIFETIME)},
            },
        )

    def _spent_item(self, spend: LinkSpend) -> dict[str, AttributeValueTypeDef]:
        item: dict[str, AttributeValueTypeDef] = {
            "jti": {"S": spend.jti},
            "vendor": {"S": spend.vendor},
            "email": {"S": spend.email},
            "email_lower": {"S": email_key(spend.email)},
            "issued_at": {"N": str(spend.issued_at)},
            "spent_at": {"N": str(spend.spent_at)},
            "expires_at": {"N": str(spend.expires_at)},  # the TTL attribute: gone with the token
            "request_id": {"S": spend.request_id or "-"},
            "source_ip": {"S": spend.source_ip or "-"},
            "user_agent": {"S": spend.user_agent[:MAX_USER_AGENT_LENGTH] or "-"},
        }
        if spend.campaign:
            item["campaign"] = {"S": spend.campaign}
        return item


def _code(exc: BotoCoreError | ClientError) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "")) or type(exc).__name__
    return type(exc).__name__


def _refusal(exc: ClientError) -> LinkState | None:
    """What a cancelled transaction says about the link; ``None`` when it was cancelled for another reason."""
    if _code(exc) != "TransactionCanceledException":
        return None
    response: dict[str, Any] = dict(exc.response)
    reasons = [str(reason.get("Code") or "None") for reason in response.get("CancellationReasons", [])]
    if len(reasons) != 2:
        return None
    revocation, put = reasons
    if revocation == _FAILED:
        return LinkState.REVOKED
    if put == _FAILED or _CONFLICT in reasons:
        return LinkState.SPENT
    return None
