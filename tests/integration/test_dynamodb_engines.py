"""The bridge's DynamoDB state on both engines: moto, and Amazon's DynamoDB Local (tests/integration/dynamodb.py).

moto is a model of DynamoDB; DynamoDB Local is the engine AWS ships. What the stores rely on (a conditional put
refused with ``ConditionalCheckFailedException``, a transaction cancelled with its reasons in item order, reads
that see the last write, the email index, TTL on the attributes the stores write) is checked here against
Amazon's own implementation as well as moto's reading of the docs: email links spent once, also by 50 clicks at
once; revocations; the OpenID sign-in state used once; every HappyFox jti on record and found by the audit. Races
on one item are DynamoDB Local's alone (moto's writes are not atomic across threads), and so is a lost answer
(it needs a network between the store and the engine).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from local.dynamodb import DynamoDBLocal, start_endpoint
from local.template import functions, table_definition
from ops.audit import by_email, by_jti
from sso_bridge import jti_store
from sso_bridge.clients import CLIENT_CONFIG
from sso_bridge.errors import DependencyUnavailable
from sso_bridge.jti_store import IssueRecord, JtiStore
from sso_bridge.link_store import LinkSpend, LinkState, LinkStore
from tests.helpers import ROOT
from tests.integration.dynamodb import Engine, create_tables, require_dynamodb_local
from tests.integration.stack import STACK_ENV, RunningStack, free, free_block

NOW = int(time.time())
CLICKS = 50


def a_spend(jti: str = "5f0c3a8e3c1b4c5e9a531b8f0e6d2a11", *, issued_at: int = NOW - 60) -> LinkSpend:
    return LinkSpend(
        jti=jti,
        vendor="clickfunnels",
        email="Jane@Example.com",
        campaign="spring",
        issued_at=issued_at,
        expires_at=issued_at + 7 * 86400,
        spent_at=NOW,
        request_id="req-1",
        source_ip="203.0.113.7",
        user_agent="Mozilla/5.0",
    )


def link_store(engine: Engine) -> tuple[LinkStore, Any, str]:
    spent, revocations = engine.table_name("SpentLinksTable"), engine.table_name("LinkRevocationsTable")
    create_tables(engine, {"SpentLinksTable": spent, "LinkRevocationsTable": revocations})
    client = engine.client()
    return LinkStore(spent, revocations, client=client), client, spent


def ttl_attribute(client: Any, table: str) -> str | None:
    described = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    return described.get("AttributeName") if described.get("TimeToLiveStatus") == "ENABLED" else None


def cancellation_reasons(client: Any) -> list[tuple[str, ...]]:
    """Each cancelled transaction's reasons, as the engine sent them (botocore parses them before raising)."""
    seen: list[tuple[str, ...]] = []

    def record(parsed: dict[str, Any], **_: Any) -> None:
        if parsed.get("Error", {}).get("Code") == "TransactionCanceledException":
            seen.append(tuple(reason.get("Code", "") for reason in parsed.get("CancellationReasons", [])))

    client.meta.events.register("after-call.dynamodb.TransactWriteItems", record)
    return seen


def test_a_link_is_spent_once_and_its_record_expires_with_the_token(dynamodb_engine: Engine) -> None:
    store, client, spent = link_store(dynamodb_engine)

    assert store.state(jti="5f0c3a8e3c1b4c5e9a531b8f0e6d2a11", email="jane@example.com", issued_at=NOW - 60) == "usable"
    assert store.spend(a_spend()) is LinkState.USABLE
    assert store.spend(a_spend()) is LinkState.SPENT
    assert store.state(jti=a_spend().jti, email="jane@example.com", issued_at=NOW - 60) is LinkState.SPENT

    [item] = client.scan(TableName=spent, ConsistentRead=True)["Items"]
    assert ttl_attribute(client, spent) == "expires_at"
    assert item["expires_at"] == {"N": str(NOW - 60 + 7 * 86400)}


# Races on one item run on DynamoDB Local only: moto's writes are not atomic across threads (no lock; a cancelled
# transaction restores deep copies of the tables it touched), and in one run of this test 2 of 50 clicks got in.
real_engine_only = pytest.mark.parametrize("dynamodb_engine", ["dynamodb-local"], indirect=True)


@real_engine_only
def test_fifty_concurrent_clicks_on_one_link_sign_in_exactly_once(dynamodb_engine: Engine) -> None:
    # Given one link and 50 clicks released at the same moment, each through the store as a function runs it
    store, client, spent = link_store(dynamodb_engine)
    reasons = cancellation_reasons(client)
    start = threading.Barrier(CLICKS)

    def click(_: int) -> LinkState:
        start.wait()
        return store.spend(a_spend("a1b2c3d4e5f60718293a4b5c6d7e8f90"))

    with ThreadPoolExecutor(max_workers=CLICKS) as pool:
        outcomes = Counter(pool.map(click, range(CLICKS)))

    # Then exactly one spent it; every other was told it is spent (the engine cancelled each, for a reason the
    # store reads as "spent": the put's condition failed, or another click's transaction held the item)
    assert outcomes == {LinkState.USABLE: 1, LinkState.SPENT: CLICKS - 1}
    assert len(reasons) == CLICKS - 1
    assert set(reasons) <= {
        ("None", "ConditionalCheckFailed"),
        ("None", "TransactionConflict"),
        ("TransactionConflict", "None"),
        ("TransactionConflict", "TransactionConflict"),
    }
    assert len(client.scan(TableName=spent, ConsistentRead=True)["Items"]) == 1


@pytest.mark.parametrize(
    ("issued_offset", "expected"),
    [(-3600, LinkState.REVOKED), (0, LinkState.REVOKED), (1, LinkState.USABLE)],
    ids=["issued-before", "issued-the-same-second", "issued-after"],
)
def test_a_revocation_withdraws_the_links_issued_until_then(
    dynamodb_engine: Engine, issued_offset: int, expected: LinkState
) -> None:
    store, client, spent = link_store(dynamodb_engine)
    store.revoke("JANE@example.COM", now=NOW)
    spend = a_spend(issued_at=NOW + issued_offset)

    assert store.state(jti=spend.jti, email=spend.email, issued_at=spend.issued_at) is expected
    assert store.spend(spend) is expected
    # a refused spend records nothing
    assert len(client.scan(TableName=spent, ConsistentRead=True)["Items"]) == int(expected is LinkState.USABLE)


def test_revoking_again_moves_the_cut_off_and_the_record_outlives_the_links(dynamodb_engine: Engine) -> None:
    store, client, _ = link_store(dynamodb_engine)
    store.revoke("jane@example.com", now=NOW - 100)
    assert store.state(jti="j1", email="jane@example.com", issued_at=NOW - 50) is LinkState.USABLE
    store.revoke("jane@example.com", now=NOW)
    assert store.spend(a_spend("j1", issued_at=NOW - 50)) is LinkState.REVOKED
    assert ttl_attribute(client, store.revocations_table) == "expires_at"


@real_engine_only
def test_the_sign_in_state_is_used_once_even_by_concurrent_callbacks(dynamodb_engine: Engine) -> None:
    # Given one OpenID sign-in state, its callback replayed 20 times at once
    store, client, spent = link_store(dynamodb_engine)
    start = threading.Barrier(20)

    def callback(i: int) -> bool:
        start.wait()
        return store.spend_sign_in_state(
            sid="sid-1", vendor="happyfox", expires_at=NOW + 600, spent_at=NOW, request_id=f"r{i}"
        )

    with ThreadPoolExecutor(max_workers=20) as pool:
        firsts = list(pool.map(callback, range(20)))

    # Then one callback may sign in; another sign-in's state is its own
    assert firsts.count(True) == 1
    assert store.spend_sign_in_state(sid="sid-2", vendor="happyfox", expires_at=NOW + 600, spent_at=NOW, request_id="r")
    [item] = [i for i in client.scan(TableName=spent, ConsistentRead=True)["Items"] if i["jti"]["S"].endswith("sid-1")]
    assert item["expires_at"] == {"N": str(NOW + 600)}  # the spent links' TTL attribute: gone with the state


def _record(email: str, i: int) -> IssueRecord:
    return IssueRecord(
        vendor="happyfox",
        email=email,
        name=f"User {i}",
        issued_at=NOW + i,
        expires_at=NOW + i + 120,
        request_id=f"req-{i}",
        source_ip="203.0.113.7",
        user_agent="Mozilla/5.0",
        login_jti=f"login-{i}",
    )


def test_every_issued_jti_is_on_record_and_the_audit_finds_it(dynamodb_engine: Engine) -> None:
    # Given 40 HappyFox tokens issued at once, to two people (one address capitalised two ways)
    table = dynamodb_engine.table_name("JtiTable")
    create_tables(dynamodb_engine, {"JtiTable": table})
    client = dynamodb_engine.client()
    store = JtiStore(table, retention_days=90, client=client)
    emails = ["Jane.Doe@Example.com", "jane.doe@example.com", "bob@example.com", "jane.doe@example.com"]
    with ThreadPoolExecutor(max_workers=8) as pool:
        jtis = list(pool.map(lambda i: store.issue(_record(emails[i % 4], i)), range(40)))

    # Then each is distinct and on record, and `make audit` finds Jane's 30 by her address, newest first
    assert len(set(jtis)) == 40
    janes = by_email(client, table, " JANE.DOE@example.COM ")
    assert sorted(record["jti"] for record in janes) == sorted(jti for i, jti in enumerate(jtis) if i % 4 != 2)
    assert [record["issued_at"] for record in janes] == sorted((record["issued_at"] for record in janes), reverse=True)
    [record] = by_jti(client, table, jtis[2])
    assert (record["email"], record["login_jti"], record["request_id"]) == ("bob@example.com", "login-2", "req-2")
    # and each record goes when its retention does (the table's TTL attribute is the one the store writes)
    assert ttl_attribute(client, table) == "purge_at"
    assert record["purge_at"] == NOW + 2 + 90 * 86400


def test_a_jti_collision_on_the_engine_draws_again_and_never_overwrites(
    dynamodb_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = dynamodb_engine.table_name("JtiTable")
    create_tables(dynamodb_engine, {"JtiTable": table})
    client = dynamodb_engine.client()
    store = JtiStore(table, retention_days=90, client=client)
    taken = store.issue(_record("jane@example.com", 1))
    draws = iter([taken, "0" * 32])
    monkeypatch.setattr(jti_store, "new_jti", lambda: next(draws))

    assert store.issue(_record("mallory@example.com", 2)) == "0" * 32
    [first] = by_jti(client, table, taken)
    assert first["email"] == "jane@example.com"


def test_missing_tables_are_an_outage_on_both_engines(dynamodb_engine: Engine) -> None:
    client = dynamodb_engine.client()
    links = LinkStore("sso-bridge-no-such-table", "sso-bridge-nor-this-one", client=client)
    with pytest.raises(DependencyUnavailable):
        links.state(jti="j", email="jane@example.com", issued_at=NOW)
    with pytest.raises(DependencyUnavailable):
        links.spend(a_spend())
    with pytest.raises(DependencyUnavailable):
        links.spend_sign_in_state(sid="s", vendor="happyfox", expires_at=NOW, spent_at=NOW, request_id="r")
    with pytest.raises(DependencyUnavailable):
        JtiStore("sso-bridge-no-such-table", retention_days=90, client=client).issue(_record("jane@example.com", 1))


# A lost answer needs a network between the store and the engine: DynamoDB Local's, not moto in-process.


def lose_the_first_answer(client: Any, operation: str) -> list[str]:
    """The engine gets ``operation``'s first call and carries it out, but its answer never arrives: the client's read
    times out and botocore tries again, as the layer's config lets it (two attempts). Returns what happened."""
    happened: list[str] = []

    def send(request: Any, **_: Any) -> Any:
        if happened:
            happened.append("retried")
            return None
        client._endpoint.http_session.send(request)
        happened.append("done, answer lost")
        raise ReadTimeoutError(endpoint_url=request.url)

    client.meta.events.register(f"before-send.dynamodb.{operation}", send)
    return happened


def test_a_jti_whose_answer_was_lost_is_recorded_once(dynamodb_local: DynamoDBLocal) -> None:
    # Given the jti store as a function makes it, and a put whose answer is lost in transit
    engine = Engine("dynamodb-local", dynamodb_local.endpoint)
    table = engine.table_name("JtiTable")
    create_tables(engine, {"JtiTable": table})
    try:
        client = boto3.client("dynamodb", region_name="eu-west-1", endpoint_url=engine.endpoint, config=CLIENT_CONFIG)
        happened = lose_the_first_answer(client, "PutItem")

        # When a token is issued
        jti = JtiStore(table, retention_days=90, client=client).issue(_record("jane@example.com", 1))

        # Then the token's jti is the one on record, and no other record was made after the retry
        assert happened[:2] == ["done, answer lost", "retried"]
        items = engine.client().scan(TableName=table, ConsistentRead=True)["Items"]
        assert [item["jti"]["S"] for item in items] == [jti]
    finally:
        engine.drop_tables()


def test_a_link_spend_whose_answer_was_lost_still_signs_the_reader_in(dynamodb_local: DynamoDBLocal) -> None:
    # Given a click whose spend is carried out but whose answer is lost (botocore sends the transaction again
    # with the same ClientRequestToken, so the engine answers it as the first one)
    engine = Engine("dynamodb-local", dynamodb_local.endpoint)
    try:
        tables, _, _ = link_store(engine)
        client = boto3.client("dynamodb", region_name="eu-west-1", endpoint_url=engine.endpoint, config=CLIENT_CONFIG)
        store = LinkStore(tables.spent_table, tables.revocations_table, client=client)
        happened = lose_the_first_answer(client, "TransactWriteItems")

        # Then the reader is signed in, once
        assert store.spend(a_spend()) is LinkState.USABLE
        assert happened == ["done, answer lost", "retried"]
        assert store.spend(a_spend()) is LinkState.SPENT
    finally:
        engine.drop_tables()


# `make run`: one AWS endpoint (moto), DynamoDB's calls passed on to DynamoDB Local.


def test_the_local_stack_answers_dynamodb_with_dynamodb_local(local_stack: RunningStack) -> None:
    require_dynamodb_local()
    assert "DynamoDB: Amazon's DynamoDB Local at http://127.0.0.1:" in local_stack.output()  # the session's
    # Any caller of the stack's one AWS endpoint (make revoke LOCAL=1, aws --endpoint-url) reaches the engine's tables
    state = json.loads(local_stack.state_file.read_text())
    client = boto3.client(
        "dynamodb",
        region_name=state["region"],
        endpoint_url=state["aws_endpoint"],
        aws_access_key_id="someone",
        aws_secret_access_key="anything",
    )
    listed = client.list_tables()
    assert "Jetty(" in listed["ResponseMetadata"]["HTTPHeaders"]["server"]  # DynamoDB Local's server, not moto
    assert set(state["tables"].values()) <= set(listed["TableNames"])


def test_the_stacks_endpoint_keeps_dynamodb_local_to_itself_and_stops_it() -> None:
    require_dynamodb_local()
    port = free_block(1)
    endpoint, note = start_endpoint("127.0.0.1", port, environ={})  # an engine of its own, whatever the shell says
    engine = endpoint.engine
    try:
        assert engine is not None
        assert note.startswith("DynamoDB: Amazon's DynamoDB Local 3.")

        def via(key: str, url: str = f"http://127.0.0.1:{port}", service: str = "dynamodb") -> Any:
            return boto3.client(  # type: ignore[call-overload]
                service, region_name="eu-west-1", endpoint_url=url, aws_access_key_id=key, aws_secret_access_key="x"
            )

        # One database for every caller of the endpoint, whatever key it signs with
        via("alice").create_table(TableName="sso-bridge-shared", **table_definition("JtiTable"))
        assert via("bob").list_tables()["TableNames"] == ["sso-bridge-shared"]
        # and none for someone who finds the engine's own port (it listens on every interface)
        assert via("alice", engine.endpoint).list_tables()["TableNames"] == []
        # Every other service is moto's
        via("alice", service="secretsmanager").create_secret(Name="sso-bridge/x", SecretString="y")
        # An engine gone from under the endpoint is DynamoDB's 500 to the SDK, as an outage on AWS would be
        engine.stop()
        with pytest.raises(ClientError) as gone:
            boto3.client(
                "dynamodb", region_name="eu-west-1", endpoint_url=f"http://127.0.0.1:{port}", config=CLIENT_CONFIG
            ).list_tables()
        assert gone.value.response["Error"]["Code"] == "InternalServerError"
    finally:
        endpoint.stop()
    assert engine is not None
    assert not engine.running
    assert free(engine.port)
    assert free(port)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (
            "http://10.0.0.7:8000",
            "LOCAL_DYNAMODB_ENDPOINT must be http://127.0.0.1:PORT, a DynamoDB Local on this machine",
        ),
        ("http://127.0.0.1:{closed}", "LOCAL_DYNAMODB_ENDPOINT: nothing answers at http://127.0.0.1:{closed}"),
    ],
    ids=["elsewhere", "nothing-there"],
)
def test_a_stack_sent_to_a_wrong_dynamodb_local_refuses_to_start_in_one_line(
    tmp_path: Path, value: str, says: str
) -> None:
    closed = free_block(1)
    passed = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    env = {**passed, **STACK_ENV, "VENDOR_STANDINS": "off", "OIDC": "off", "PYTHONUNBUFFERED": "1"}
    # The API's port and one per function URL after it, whatever it refuses first
    ports = 1 + sum(1 for spec in functions() if spec.function_url)
    env |= {
        "PORT": str(free_block(ports)),
        "LOCAL_AWS_PORT": str(free_block(1)),
        "LOCAL_STACK_FILE": str(tmp_path / "s"),
    }
    env["LOCAL_DYNAMODB_ENDPOINT"] = value.format(closed=closed)
    result = subprocess.run(
        [sys.executable, "-m", "local.stack"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == says.format(closed=closed)
    assert not (tmp_path / "s").exists()
