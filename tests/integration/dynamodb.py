"""Two DynamoDB engines for the tests: moto (in-process, as the unit tests use it) and Amazon's DynamoDB Local.

``dynamodb_engine`` runs a test once on each. DynamoDB Local is one JVM per test session (``session_engine``),
shared by every test that asks for it and by every test stack (tests/integration/stack.py passes it on); each
test gets tables of its own there, made from template.yaml (keys, indexes, TTL) and deleted afterwards. Without
Java or the package it is skipped, with the reason; in CI (``CI`` set) that fails instead: `make test` installs
it there, so its absence is a broken set-up.

The engine's ``endpoint`` is also in ``AWS_ENDPOINT_URL_DYNAMODB`` while a test runs, so the layer's own clients
(made on first use from the environment) reach DynamoDB Local while moto keeps Secrets Manager.
"""

from __future__ import annotations

import atexit
import copy
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.config import Config

from local.dynamodb import ENDPOINT_SETTING, DynamoDBLocal, EngineError, unavailable
from local.template import load_template, table_definition
from sso_bridge import clients
from sso_bridge.clients import CLIENT_CONFIG

__all__ = [
    "ENGINES",
    "Engine",
    "create_tables",
    "dynamodb_engine",
    "dynamodb_local",
    "engine_jti_table",
    "require_dynamodb_local",
    "session_engine",
    "stack_dynamodb",
]

ENGINES = ("moto", "dynamodb-local")
REGION = "eu-west-1"
# The layer's retries, with room to read: on two shared cores a JVM may pause longer than the layer's 1 s, and a
# write retried after a read timeout is a different test (a lost answer), not the one these tests make.
TEST_CONFIG = CLIENT_CONFIG.merge(Config(connect_timeout=5, read_timeout=30, max_pool_connections=64))
_engine: DynamoDBLocal | None = None
_lock = threading.Lock()


def require_dynamodb_local() -> None:
    """Skip where DynamoDB Local cannot run (no Java, not installed); fail in CI, where `make test` installs it."""
    missing = unavailable()
    if missing and os.environ.get("CI"):
        pytest.fail(f"no DynamoDB Local in CI: {missing}")
    if missing:
        pytest.skip(missing)


def session_engine() -> DynamoDBLocal:
    """This process's one DynamoDB Local, started on first use and stopped at exit (its watchdog stops it if the
    process dies first). One database per access key: the tests' clients share one (the ``testing`` key), and each
    test stack has its own (its AWS endpoint signs with a random key: local.dynamodb.AwsEndpoint)."""
    global _engine  # one per process: pytest's session, or `make bench`'s load test
    with _lock:
        if _engine is None:
            engine = DynamoDBLocal(shared=False).start()
            atexit.register(engine.stop)
            _engine = engine
        return _engine


def stack_dynamodb() -> dict[str, str]:
    """The variable that sends a test stack to the session's DynamoDB Local (none where it cannot run: the stack
    then says why and uses moto, and the tests that need the engine are skipped, or fail in CI)."""
    return {} if unavailable() else {ENDPOINT_SETTING: session_engine().endpoint}


@pytest.fixture(scope="session")
def dynamodb_local() -> DynamoDBLocal:
    """The session's DynamoDB Local (``session_engine``): one JVM for every test that uses it."""
    require_dynamodb_local()
    try:
        return session_engine()
    except EngineError as exc:
        pytest.fail(str(exc))


@dataclass
class Engine:
    """A DynamoDB engine as a test sees it: ``client()`` reaches it; tables made by ``create_tables`` are dropped
    when the test ends."""

    name: str
    endpoint: str | None  # None: moto in-process
    made: list[str] = field(default_factory=list)

    def client(self) -> Any:
        return boto3.client("dynamodb", region_name=REGION, endpoint_url=self.endpoint, config=TEST_CONFIG)

    def table_name(self, logical_id: str) -> str:
        """A name of its own for each test's table (DynamoDB Local outlives the test)."""
        return f"sso-bridge-{logical_id}-{uuid.uuid4().hex[:12]}"

    def drop_tables(self) -> None:
        client = self.client()
        for name in self.made:
            client.delete_table(TableName=name)
        self.made.clear()


def create_tables(engine: Engine, tables: dict[str, str]) -> None:
    """Create ``{logical_id: name}`` as template.yaml defines them, TTL included (the stores rely on it)."""
    template = load_template()
    client = engine.client()
    for logical_id, name in tables.items():
        client.create_table(TableName=name, **copy.deepcopy(table_definition(logical_id, template)))
        engine.made.append(name)
        ttl = template["Resources"][logical_id]["Properties"].get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled", True):
            client.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
            )


@pytest.fixture(params=ENGINES)
def dynamodb_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """Each engine in turn; moto inside ``mock_aws`` (which lets calls to DynamoDB Local's endpoint through)."""
    from moto import mock_aws

    if request.param == "moto":
        with mock_aws():
            yield Engine("moto", None)
        return
    local: DynamoDBLocal = request.getfixturevalue("dynamodb_local")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", local.endpoint)
    engine = Engine("dynamodb-local", local.endpoint)
    try:
        yield engine
    finally:
        engine.drop_tables()


@pytest.fixture(params=ENGINES)
def engine_jti_table(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``jti_table`` (tests/conftest.py: moto's Secrets Manager seeded, the jti table at ``JTI_TABLE_NAME``) on
    each engine: on DynamoDB Local the table is there, and the layer's clients are sent there."""
    from tests.helpers import JTI_TABLE_NAME

    if request.param == "moto":
        yield request.getfixturevalue("jti_table")
        return
    local: DynamoDBLocal = request.getfixturevalue("dynamodb_local")
    request.getfixturevalue("aws")  # the secrets, in moto
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", local.endpoint)
    # The layer's clients with room to read: 64 threads on two shared cores can keep a put waiting past the
    # layer's 1 s, which would make the test about timeouts (test_dynamodb_engines.py has a lost answer of its own).
    monkeypatch.setattr(clients, "CLIENT_CONFIG", TEST_CONFIG)
    engine = Engine("dynamodb-local", local.endpoint)
    create_tables(engine, {"JtiTable": JTI_TABLE_NAME})
    try:
        yield engine.client()
    finally:
        engine.drop_tables()
