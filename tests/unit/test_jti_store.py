"""The jti store: every jti unique and recorded, or no jti at all (a 503 for the caller)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import boto3.session
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber

from sso_bridge import clients, jti_store
from sso_bridge.errors import DependencyUnavailable
from sso_bridge.jti_store import IssueRecord, JtiStore
from tests.helpers import JTI_TABLE_NAME

RECORD = IssueRecord(
    vendor="happyfox",
    email="Jane.Doe@Example.com",
    name="Jane Doe",
    issued_at=1_800_000_000,
    expires_at=1_800_000_120,
    request_id="req-1",
    source_ip="203.0.113.7",
    user_agent="Mozilla/5.0",
    login_jti="login-1",
)


def stored(client: Any, jti: str) -> dict[str, Any]:
    item: dict[str, Any] | None = client.get_item(TableName=JTI_TABLE_NAME, Key={"jti": {"S": jti}}).get("Item")
    assert item is not None, f"no record for {jti}"
    return item


def all_jtis(client: Any) -> list[str]:
    return [item["jti"]["S"] for item in client.scan(TableName=JTI_TABLE_NAME)["Items"]]


@pytest.fixture
def store(jti_table: Any) -> JtiStore:
    return JtiStore(JTI_TABLE_NAME, retention_days=90)


def test_issue_records_the_jti_with_what_an_auditor_needs(store: JtiStore, jti_table: Any) -> None:
    jti = store.issue(RECORD)

    assert stored(jti_table, jti) == {
        "jti": {"S": jti},
        "vendor": {"S": "happyfox"},
        "email": {"S": "Jane.Doe@Example.com"},
        "email_lower": {"S": "jane.doe@example.com"},
        "name": {"S": "Jane Doe"},
        "issued_at": {"N": "1800000000"},
        "expires_at": {"N": "1800000120"},
        "purge_at": {"N": str(1_800_000_000 + 90 * 86400)},
        "request_id": {"S": "req-1"},
        "source_ip": {"S": "203.0.113.7"},
        "user_agent": {"S": "Mozilla/5.0"},
        "login_jti": {"S": "login-1"},
    }


def test_jti_has_at_least_128_random_bits(store: JtiStore) -> None:
    jtis = {store.issue(RECORD) for _ in range(20)}
    assert len(jtis) == 20
    for jti in jtis:
        # 32 hex digits carry 128 bits
        assert re.fullmatch(r"[0-9a-f]{32}", jti)


def test_retention_sets_the_ttl_attribute(jti_table: Any) -> None:
    jti = JtiStore(JTI_TABLE_NAME, retention_days=7).issue(RECORD)
    assert stored(jti_table, jti)["purge_at"] == {"N": str(RECORD.issued_at + 7 * 86400)}


def test_no_login_jti_means_no_attribute_and_long_agents_are_cut(store: JtiStore, jti_table: Any) -> None:
    record = IssueRecord(**{**_fields(RECORD), "login_jti": None, "user_agent": "A" * 5000, "source_ip": ""})
    item = stored(jti_table, store.issue(record))
    assert "login_jti" not in item
    assert item["user_agent"]["S"] == "A" * jti_store.MAX_USER_AGENT_LENGTH
    assert item["source_ip"]["S"] == "-"


def _fields(record: IssueRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__slots__}


def _draws(*values: str) -> Iterator[str]:
    yield from values
    while True:
        yield secrets.token_hex(jti_store.JTI_BYTES)


def test_a_collision_draws_again_and_never_overwrites(
    store: JtiStore, jti_table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a jti already on record for someone else
    first = store.issue(RECORD)
    # When the next draw comes up with that same value
    draws = _draws(first)
    monkeypatch.setattr(jti_store, "new_jti", lambda: next(draws))
    other = IssueRecord(**{**_fields(RECORD), "email": "mallory@example.com"})
    second = store.issue(other)

    # Then a fresh jti is issued and recorded, and the first record is untouched
    assert second != first
    assert stored(jti_table, first)["email"] == {"S": RECORD.email}
    assert stored(jti_table, second)["email"] == {"S": "mallory@example.com"}


def test_endless_collisions_are_an_outage_not_a_reused_jti(
    store: JtiStore, jti_table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = store.issue(RECORD)
    monkeypatch.setattr(jti_store, "new_jti", lambda: taken)
    with pytest.raises(DependencyUnavailable) as caught:
        store.issue(IssueRecord(**{**_fields(RECORD), "email": "mallory@example.com"}))
    assert caught.value.reason == "jti_collisions"
    assert stored(jti_table, taken)["email"] == {"S": RECORD.email}


def test_collision_seen_through_the_wire_format(jti_table: Any) -> None:
    """The stubbed response is what DynamoDB sends; the store must recognise it, not just moto's."""
    client = boto3.client("dynamodb", region_name="eu-west-1")
    stubber = Stubber(client)
    stubber.add_client_error("put_item", service_error_code="ConditionalCheckFailedException", http_status_code=400)
    stubber.add_response("put_item", {})
    seen: list[dict[str, Any]] = []
    client.meta.events.register("provide-client-params.dynamodb.PutItem", lambda params, **_: seen.append(params))
    with stubber:
        jti = JtiStore(JTI_TABLE_NAME, retention_days=90, client=client).issue(RECORD)
    stubber.assert_no_pending_responses()
    drawn = [params["Item"]["jti"]["S"] for params in seen]
    assert len(drawn) == 2
    assert drawn[0] != drawn[1] == jti
    assert all(params["ConditionExpression"] == "attribute_not_exists(jti)" for params in seen)


def test_a_put_retried_after_its_answer_was_lost_is_ours_not_a_collision(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore sends a put again when its answer is lost (a read timeout after DynamoDB wrote it); DynamoDB refuses
    the second and, asked to, sends the record that holds the jti: this very one. The jti is on record once, and
    no other is drawn (tests/integration/test_dynamodb_engines.py loses the answer for real, on DynamoDB Local)."""
    client = boto3.client("dynamodb", region_name="eu-west-1")
    store = JtiStore(JTI_TABLE_NAME, retention_days=90, client=client)
    monkeypatch.setattr(jti_store, "new_jti", lambda: "a" * 32)
    stubber = Stubber(client)
    stubber.add_client_error(
        "put_item",
        service_error_code="ConditionalCheckFailedException",
        http_status_code=400,
        modeled_fields={"Item": store.item("a" * 32, RECORD)},
    )
    with stubber:
        assert store.issue(RECORD) == "a" * 32
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    "code", ["ProvisionedThroughputExceededException", "ThrottlingException", "InternalServerError", "AccessDenied"]
)
def test_dynamodb_errors_are_a_503(code: str) -> None:
    client = boto3.client("dynamodb", region_name="eu-west-1")
    stubber = Stubber(client)
    stubber.add_client_error("put_item", service_error_code=code, http_status_code=400)
    with stubber, pytest.raises(DependencyUnavailable) as caught:
        JtiStore(JTI_TABLE_NAME, retention_days=90, client=client).issue(RECORD)
    assert caught.value.status == 503
    assert caught.value.reason == "jti_store_unavailable"
    assert isinstance(caught.value.__cause__, ClientError)


def test_unreachable_dynamodb_is_a_503(monkeypatch: pytest.MonkeyPatch) -> None:
    client = boto3.client("dynamodb", region_name="eu-west-1")

    def unreachable(**_: Any) -> Any:
        raise EndpointConnectionError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com")

    monkeypatch.setattr(client, "put_item", unreachable)
    with pytest.raises(DependencyUnavailable) as caught:
        JtiStore(JTI_TABLE_NAME, retention_days=90, client=client).issue(RECORD)
    assert isinstance(caught.value.__cause__, EndpointConnectionError)


def test_missing_table_is_a_503(aws: Any) -> None:
    with pytest.raises(DependencyUnavailable):
        JtiStore("no-such-table", retention_days=90).issue(RECORD)


def test_client_is_made_once_on_first_use(monkeypatch: pytest.MonkeyPatch, jti_table: Any) -> None:
    made: list[object] = []

    class CountingSession(boto3.session.Session):
        def client(self, *args: Any, **kwargs: Any) -> Any:
            made.append(args)
            return super().client(*args, **kwargs)

    monkeypatch.setattr(boto3.session, "Session", CountingSession)
    monkeypatch.setattr(clients, "_session", None)  # the layer's one session, made again with the counter
    store = JtiStore(JTI_TABLE_NAME, retention_days=90)
    assert made == []
    store.issue(RECORD)
    store.issue(RECORD)
    assert made == [("dynamodb",)]


def test_concurrent_issues_are_all_distinct_and_all_recorded(store: JtiStore, jti_table: Any) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        jtis = list(pool.map(lambda _: store.issue(RECORD), range(40)))
    assert len(set(jtis)) == 40
    assert sorted(all_jtis(jti_table)) == sorted(jtis)
