"""The link store decides whether a click may sign someone in: spent once, never after a revocation."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber

from sso_bridge import clients
from sso_bridge.errors import DependencyUnavailable
from sso_bridge.link_store import REVOCATION_LIFETIME, LinkSpend, LinkState, LinkStore
from tests.helpers import LINK_REVOCATIONS_TABLE_NAME, SPENT_LINKS_TABLE_NAME

NOW = int(time.time())
JTI = "5f0c3a8e3c1b4c5e9a531b8f0e6d2a11"


def a_spend(jti: str = JTI, *, email: str = "Jane@Example.com", issued_at: int = NOW - 60) -> LinkSpend:
    return LinkSpend(
        jti=jti,
        vendor="clickfunnels",
        email=email,
        campaign="spring",
        issued_at=issued_at,
        expires_at=issued_at + 7 * 86400,
        spent_at=NOW,
        request_id="req-1",
        source_ip="203.0.113.7",
        user_agent="Mozilla/5.0 " + "x" * 600,
    )


@pytest.fixture
def store(link_tables: Any) -> LinkStore:
    return LinkStore(SPENT_LINKS_TABLE_NAME, LINK_REVOCATIONS_TABLE_NAME)


def test_a_link_is_spent_once(store: LinkStore) -> None:
    assert store.spend(a_spend()) is LinkState.USABLE
    assert store.spend(a_spend()) is LinkState.SPENT
    assert store.state(jti=JTI, email="jane@example.com", issued_at=NOW - 60) is LinkState.SPENT


def test_the_spend_record_expires_with_the_token_and_holds_nothing_secret(store: LinkStore, link_tables: Any) -> None:
    store.spend(a_spend())
    [item] = link_tables.scan(TableName=SPENT_LINKS_TABLE_NAME)["Items"]
    assert item["expires_at"] == {"N": str(NOW - 60 + 7 * 86400)}
    assert item["email_lower"] == {"S": "jane@example.com"}
    assert len(item["user_agent"]["S"]) == 512
    assert set(item) == {
        "jti",
        "vendor",
        "email",
        "email_lower",
        "issued_at",
        "spent_at",
        "expires_at",
        "request_id",
        "source_ip",
        "user_agent",
        "campaign",
    }


@pytest.mark.parametrize(
    ("issued_offset", "expected"),
    [(-3600, LinkState.REVOKED), (0, LinkState.REVOKED), (1, LinkState.USABLE)],
    ids=["issued-before", "issued-the-same-second", "issued-after"],
)
def test_a_revocation_withdraws_links_issued_until_then(store: LinkStore, issued_offset: int, expected: Any) -> None:
    # Given the address's links are withdrawn at NOW (any capitalisation)
    store.revoke("JANE@example.COM", now=NOW)
    spend = a_spend(issued_at=NOW + issued_offset)

    # Then a link issued until then is refused both when shown and when spent; one issued later works
    assert store.state(jti=JTI, email=spend.email, issued_at=spend.issued_at) is expected
    assert store.spend(spend) is expected


def test_a_refused_spend_records_nothing(store: LinkStore, link_tables: Any) -> None:
    store.revoke("jane@example.com", now=NOW)
    assert store.spend(a_spend()) is LinkState.REVOKED
    assert link_tables.scan(TableName=SPENT_LINKS_TABLE_NAME)["Items"] == []


def test_a_revocation_outlives_every_link_it_withdraws(store: LinkStore, link_tables: Any) -> None:
    store.revoke("jane@example.com", now=NOW)
    [item] = link_tables.scan(TableName=LINK_REVOCATIONS_TABLE_NAME)["Items"]
    assert int(item["expires_at"]["N"]) == NOW + REVOCATION_LIFETIME
    assert REVOCATION_LIFETIME > 30 * 86400


def test_revoking_again_moves_the_cut_off_forward(store: LinkStore) -> None:
    store.revoke("jane@example.com", now=NOW - 100)
    assert store.state(jti=JTI, email="jane@example.com", issued_at=NOW - 50) is LinkState.USABLE
    store.revoke("jane@example.com", now=NOW)
    assert store.state(jti=JTI, email="jane@example.com", issued_at=NOW - 50) is LinkState.REVOKED


def test_other_addresses_are_untouched(store: LinkStore) -> None:
    store.revoke("bob@example.com", now=NOW)
    assert store.spend(a_spend()) is LinkState.USABLE


def cancelled(*codes: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": code} for code in codes],
        },
        "TransactWriteItems",
    )


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        (("None", "ConditionalCheckFailed"), LinkState.SPENT),
        (("ConditionalCheckFailed", "None"), LinkState.REVOKED),
        (("ConditionalCheckFailed", "ConditionalCheckFailed"), LinkState.REVOKED),
        # Another click on the same link is mid-spend: this one must not sign anyone in.
        (("None", "TransactionConflict"), LinkState.SPENT),
        (("TransactionConflict", "None"), LinkState.SPENT),
    ],
)
def test_what_a_cancelled_spend_means(codes: tuple[str, str], expected: LinkState) -> None:
    client = boto3.client("dynamodb", region_name="eu-west-1")

    def cancel(**_: Any) -> Any:
        raise cancelled(*codes)

    client.transact_write_items = cancel  # type: ignore[method-assign]
    assert LinkStore("spent", "revoked", client=client).spend(a_spend()) is expected


@pytest.mark.parametrize(
    "error",
    [
        cancelled("ThrottlingError", "None"),
        cancelled("None", "ValidationError"),
        ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "TransactWriteItems"),
        ClientError({"Error": {"Code": "AccessDeniedException"}}, "TransactWriteItems"),
    ],
    ids=["throttled", "invalid", "no-table", "access-denied"],
)
def test_a_spend_that_fails_for_another_reason_is_an_outage(error: ClientError) -> None:
    client = boto3.client("dynamodb", region_name="eu-west-1")

    def fail(**_: Any) -> Any:
        raise error

    client.transact_write_items = fail  # type: ignore[method-assign]
    with pytest.raises(DependencyUnavailable) as caught:
        LinkStore("spent", "revoked", client=client).spend(a_spend())
    assert caught.value.status == 503
    assert caught.value.reason == "link_store_unavailable"


def test_unprocessed_reads_are_an_outage_not_a_usable_link() -> None:
    client = boto3.client("dynamodb", region_name="eu-west-1")
    stubber = Stubber(client)
    stubber.add_response(
        "batch_get_item",
        {"Responses": {}, "UnprocessedKeys": {"spent": {"Keys": [{"jti": {"S": JTI}}]}}},
    )
    with stubber, pytest.raises(DependencyUnavailable):
        LinkStore("spent", "revoked", client=client).state(jti=JTI, email="jane@example.com", issued_at=NOW)


def test_missing_tables_are_an_outage(aws: Any) -> None:
    store = LinkStore("no-such-table", "nor-this-one")
    with pytest.raises(DependencyUnavailable):
        store.state(jti=JTI, email="jane@example.com", issued_at=NOW)
    with pytest.raises(DependencyUnavailable):
        store.spend(a_spend())


def test_the_client_is_made_on_first_use(monkeypatch: pytest.MonkeyPatch, link_tables: Any) -> None:
    made: list[object] = []

    class CountingSession(boto3.session.Session):
        def client(self, *args: Any, **kwargs: Any) -> Any:
            made.append(args)
            return super().client(*args, **kwargs)

    monkeypatch.setattr(boto3.session, "Session", CountingSession)
    monkeypatch.setattr(clients, "_session", None)  # the layer's one session, made again with the counter
    store = LinkStore(SPENT_LINKS_TABLE_NAME, LINK_REVOCATIONS_TABLE_NAME)
    assert made == []
    store.spend(a_spend())
    store.state(jti=JTI, email="jane@example.com", issued_at=NOW)
    assert made == [("dynamodb",)]


# The OpenID sign-in states (sso_bridge.oidc): a callback works once, recorded beside the links.


def test_a_sign_in_state_is_spent_once_and_kept_until_it_expires(store: LinkStore, link_tables: Any) -> None:
    spend = {"sid": "c2lkLTAxMjM0NTY3ODlhYmNkZWYwMTIz", "vendor": "kustomer", "expires_at": NOW + 600}
    assert store.spend_sign_in_state(**spend, spent_at=NOW, request_id="req-1") is True
    assert store.spend_sign_in_state(**spend, spent_at=NOW + 1, request_id="req-2") is False
    assert store.spend_sign_in_state(**{**spend, "sid": "another"}, spent_at=NOW, request_id="") is True
    items = {item["jti"]["S"]: item for item in link_tables.scan(TableName=SPENT_LINKS_TABLE_NAME)["Items"]}
    assert items == {
        "oidc-state:c2lkLTAxMjM0NTY3ODlhYmNkZWYwMTIz": {
            "jti": {"S": "oidc-state:c2lkLTAxMjM0NTY3ODlhYmNkZWYwMTIz"},
            "vendor": {"S": "kustomer"},
            "spent_at": {"N": str(NOW)},
            "expires_at": {"N": str(NOW + 600)},
            "request_id": {"S": "req-1"},
        },
        "oidc-state:another": {
            "jti": {"S": "oidc-state:another"},
            "vendor": {"S": "kustomer"},
            "spent_at": {"N": str(NOW)},
            "expires_at": {"N": str(NOW + 600)},
            "request_id": {"S": "-"},
        },
    }
    # Another key space than the links': a link's jti equal to a state's sid is still unspent
    assert store.state(jti="another", email="jane@example.com", issued_at=NOW - 60) is LinkState.USABLE


@pytest.mark.parametrize(
    ("error", "detail"),
    [
        (
            ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "PutItem"),
            "ProvisionedThroughputExceededException",
        ),
        (ClientError({"Error": {}}, "PutItem"), "ClientError"),
        (EndpointConnectionError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com"), "EndpointConnectionError"),
    ],
    ids=["throttled", "no-code", "unreachable"],
)
def test_a_sign_in_state_that_cannot_be_recorded_is_an_outage(error: Exception, detail: str) -> None:
    client = boto3.client("dynamodb", region_name="eu-west-1")

    def fail(**_: Any) -> Any:
        raise error

    client.put_item = fail  # type: ignore[method-assign]
    with pytest.raises(DependencyUnavailable) as caught:
        LinkStore("spent", "revoked", client=client).spend_sign_in_state(
            sid="s", vendor="happyfox", expires_at=NOW + 600, spent_at=NOW, request_id="r"
        )
    assert (caught.value.status, caught.value.reason, caught.value.detail) == (503, "link_store_unavailable", detail)
