"""The audit command answers "was this token ours, when, for whom, from where" from the jti table."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from ops import audit
from sso_bridge.jti_store import IssueRecord, JtiStore
from tests.helpers import JTI_TABLE_NAME


def issue(email: str, issued_at: int, **fields: Any) -> str:
    record = IssueRecord(
        vendor="happyfox",
        email=email,
        name=fields.pop("name", email.split("@")[0]),
        issued_at=issued_at,
        expires_at=issued_at + 120,
        request_id=fields.pop("request_id", f"req-{issued_at}"),
        source_ip=fields.pop("source_ip", "203.0.113.7"),
        user_agent=fields.pop("user_agent", "Mozilla/5.0"),
        **fields,
    )
    return JtiStore(JTI_TABLE_NAME, retention_days=90).issue(record)


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return audit.main(list(argv), out=out), out.getvalue()


def test_email_lookup_lists_every_token_newest_first(jti_table: Any) -> None:
    # Given three tokens for Jane (one under another capitalisation) and one for someone else
    oldest = issue("jane@example.com", 1_800_000_000)
    newest = issue("jane@example.com", 1_800_000_300, login_jti="login-9")
    middle = issue("Jane@Example.com", 1_800_000_100)
    issue("bob@example.com", 1_800_000_200)

    # When an operator asks for Jane's tokens as JSON
    status, out = run("--email", "JANE@example.com", "--json")

    # Then they get hers only, newest first, with the audit fields
    assert status == 0
    found = json.loads(out)
    assert [record["jti"] for record in found] == [newest, middle, oldest]
    assert found[0]["login_jti"] == "login-9"
    assert found[0]["issued_at"] == 1_800_000_300
    assert found[0]["expires_at"] == 1_800_000_420
    assert found[0]["source_ip"] == "203.0.113.7"
    assert found[0]["request_id"] == "req-1800000300"


def test_jti_lookup_says_whether_the_token_was_ours(jti_table: Any) -> None:
    jti = issue("jane@example.com", 1_800_000_000, name="Jane Doe")
    status, out = run(f"--jti={jti}", "--json")
    assert status == 0
    [record] = json.loads(out)
    assert (record["jti"], record["email"], record["name"], record["vendor"]) == (
        jti,
        "jane@example.com",
        "Jane Doe",
        "happyfox",
    )


def test_table_output_is_readable(jti_table: Any) -> None:
    jti = issue("jane@example.com", 1_800_000_000, user_agent="Mozilla/5.0 (X11)")
    status, out = run(f"--jti={jti}")
    assert status == 0
    header, row = out.splitlines()
    assert header.split() == [column.upper() for column in audit.COLUMNS]
    assert row.startswith("2027-01-15T08:00:00Z  " + jti)
    assert "jane@example.com" in row
    assert row.endswith("Mozilla/5.0 (X11)")


def test_table_output_never_passes_terminal_escapes_through(jti_table: Any) -> None:
    jti = issue("jane@example.com", 1_800_000_000, user_agent="curl\x1b[2J\x1b]0;owned\x07\x9b")
    status, out = run(f"--jti={jti}")
    assert status == 0
    assert not any(char in out for char in "\x1b\x07\x9b")
    assert out.splitlines()[1].endswith("curl\\x1b[2J\\x1b]0;owned\\x07\\x9b")


@pytest.mark.parametrize("argv", [("--jti", "not-one-of-ours"), ("--email", "nobody@example.com")])
def test_nothing_found_exits_1(jti_table: Any, capsys: pytest.CaptureFixture[str], argv: tuple[str, str]) -> None:
    issue("jane@example.com", 1_800_000_000)
    status, out = run(*argv, "--json")
    assert status == 1
    assert json.loads(out) == []
    assert "no token issued" in capsys.readouterr().err


def test_table_can_be_named_on_the_command_line(jti_table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JTI_TABLE_NAME")
    jti = issue("jane@example.com", 1_800_000_000)
    assert run("--table", JTI_TABLE_NAME, f"--jti={jti}")[0] == 0


def test_no_table_name_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JTI_TABLE_NAME")
    with pytest.raises(SystemExit) as caught:
        run("--email", "jane@example.com")
    assert caught.value.code == 2


@pytest.mark.parametrize("argv", [(), ("--email", "a@example.com", "--jti", "x"), ("--email", " ")])
def test_exactly_one_lookup_is_required(argv: tuple[str, ...]) -> None:
    with pytest.raises(SystemExit) as caught:
        run(*argv)
    assert caught.value.code == 2


def test_unreadable_table_exits_3(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    status, _ = run("--table", "no-such-table", "--email", "jane@example.com")
    assert status == 3
    assert "cannot read table no-such-table" in capsys.readouterr().err


def test_a_jti_that_looks_like_an_option_is_still_looked_up(jti_table: Any) -> None:
    # base64url ids can start with "-"; `--jti=` (as `make audit` passes it) keeps argparse from misreading it
    status, _ = run("--jti=-Zx3notours", "--json")
    assert status == 1
