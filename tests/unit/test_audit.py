"""The audit command answers "was this token ours, when, for whom, from where" from the jti table."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest

from ops import audit
from ops.target import Target
from sso_bridge.jti_store import IssueRecord, JtiStore
from tests.helpers import JTI_TABLE_NAME


def issue(email: str, issued_at: int, **fields: Any) -> str:
    record = IssueRecord(
        vendor=fields.pop("vendor", "happyfox"),
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


# --- the vendor, and a stack without HappyFox --------------------------------------------------------------


def test_each_record_names_its_vendor_in_json_and_in_the_table(jti_table: Any) -> None:
    # Given a HappyFox and a Zendesk token for Jane (Zendesk records its jti's as HappyFox does)
    happyfox = issue("jane@example.com", 1_800_000_000)
    zendesk = issue("jane@example.com", 1_800_000_100, vendor="zendesk")

    # Then the audit shows which vendor each went to
    status, out = run("--email", "jane@example.com", "--json")
    assert status == 0
    assert [(record["jti"], record["vendor"]) for record in json.loads(out)] == [
        (zendesk, "zendesk"),
        (happyfox, "happyfox"),
    ]
    status, out = run("--email", "jane@example.com")
    header, *rows = out.splitlines()
    column = header.index("VENDOR")
    assert [row[column:].split()[0] for row in rows] == ["zendesk", "happyfox"]


def test_the_recording_vendors_are_read_from_the_template() -> None:
    assert audit.recording_vendors() == ["happyfox", "zendesk"]


def target_with(vendors: tuple[str, ...], *, local: bool, table: bool) -> Target:
    return Target(
        where="the local stack at http://localhost:3000" if local else "stack bridge-under-test in eu-west-1",
        local=local,
        session=boto3.session.Session(region_name="eu-west-1"),
        endpoint_url=None,  # moto, in this process
        function_urls={vendor: f"http://localhost:300{i}/" for i, vendor in enumerate(vendors, 1)},
        resources={"JTI_TABLE_NAME": JTI_TABLE_NAME} if table else {},
    )


@pytest.mark.parametrize("local", [True, False])
def test_a_stack_with_zendesk_but_not_happyfox_is_audited(
    jti_table: Any, monkeypatch: pytest.MonkeyPatch, local: bool
) -> None:
    jti = issue("jane@example.com", 1_800_000_000, vendor="zendesk")
    monkeypatch.delenv("JTI_TABLE_NAME")  # found through the stack, as `make audit` finds it
    monkeypatch.setattr(audit, "resolve", lambda *_: target_with(("clickfunnels", "zendesk"), local=local, table=True))
    status, out = run(f"--jti={jti}", "--json", *(("--local",) if local else ("--stack-name", "bridge-under-test")))
    assert status == 0
    assert json.loads(out)[0]["vendor"] == "zendesk"


@pytest.mark.parametrize(
    ("local", "says"),
    [
        (
            True,
            "the local stack at http://localhost:3000 has no jti table: only happyfox and zendesk record the tokens "
            "they sign, and it runs without them (restart `make run` with one of them in VENDORS)",
        ),
        (
            False,
            "stack bridge-under-test in eu-west-1 has no jti table: only happyfox and zendesk record the tokens they "
            "sign, and it was deployed with EnableHappyFox=false and EnableZendesk=false",
        ),
    ],
)
def test_a_stack_without_a_vendor_that_records_tokens_says_which_would(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], local: bool, says: str
) -> None:
    monkeypatch.delenv("JTI_TABLE_NAME")
    monkeypatch.setattr(audit, "resolve", lambda *_: target_with(("clickfunnels", "canny"), local=local, table=False))
    status, _ = run("--email", "jane@example.com", *(("--local",) if local else ("--stack-name", "bridge-under-test")))
    assert status == 3
    assert capsys.readouterr().err == f"python -m ops.audit: error: {says}\n"


def test_a_stack_with_zendesk_on_but_no_table_output_is_out_of_date(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("JTI_TABLE_NAME")
    monkeypatch.setattr(audit, "resolve", lambda *_: target_with(("zendesk",), local=False, table=False))
    assert run("--email", "jane@example.com", "--stack-name", "bridge-under-test")[0] == 3
    assert capsys.readouterr().err == (
        "python -m ops.audit: error: stack bridge-under-test in eu-west-1 has no output JtiTableName: "
        "deploy the current template.yaml\n"
    )
