"""`make link` / `make links`: every link minted is one the bridge accepts, and a bad contact never stops a mailing.

Links are checked twice: with PyJWT (HS256 only, the vendor as audience), and with the bridge's own
``verify_login_token`` under the target's caps, so "the bridge accepts it" is tested, not assumed.
The target is a moto CloudFormation stack shaped like ours (tests/unit/test_target.py).
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import sys
import time
import tracemalloc
import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
import pytest

from local.state import write_state
from ops import link as link_cli
from ops.link import parse_ttl
from ops.link_csv import mint_csv
from ops.link_tokens import LinkMinter
from ops.target import Target, TargetError
from sso_bridge.login_token import TokenKind, verify_login_token
from tests.helpers import LOGIN_TOKEN_KEY, WORKSPACE
from tests.unit.test_target import FUNCTION_URLS, KUSTOMER_HOST, STACK, create_bridge_stack, local_state

DAY = 86400
JTI = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture
def stack(aws: Any) -> None:
    create_bridge_stack()


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = link_cli.main([*argv, "--stack-name", STACK], out=out, err=err)
    return status, out.getvalue(), err.getvalue()


def token_of(url: str) -> str:
    [token] = parse_qs(urlsplit(url).query)["login_token"]
    return token


def claims_of(url: str, vendor: str) -> dict[str, Any]:
    """The link's claims, verified as PyJWT would for the vendor, and accepted by the bridge's own check."""
    token = token_of(url)
    claims: dict[str, Any] = jwt.decode(
        token,
        LOGIN_TOKEN_KEY,
        algorithms=["HS256"],
        audience=vendor,
        options={"require": ["email", "aud", "iat", "exp", "jti"]},
    )
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    identity = verify_login_token(
        token, keys=[LOGIN_TOKEN_KEY], audience=vendor, max_ttl=300, link_max_ttl=7 * DAY, leeway=30
    )
    assert identity.kind is TokenKind.LINK
    return claims


def write_csv(path: Path, rows: list[list[str]], *, delimiter: str = ",", bom: bool = False) -> None:
    with path.open("w", newline="", encoding="utf-8-sig" if bom else "utf-8") as out:
        csv.writer(out, delimiter=delimiter).writerows(rows)


def read_csv(path: Path, *, delimiter: str = ",") -> list[list[str]]:
    with path.open(newline="", encoding="utf-8-sig") as text:
        return list(csv.reader(text, delimiter=delimiter))


# --- one link ---------------------------------------------------------------------------------------------


def test_one_link_is_one_url_on_stdout_that_the_bridge_accepts(stack: None) -> None:
    # When an operator mints a ClickFunnels link for Jane
    before = int(time.time())
    status, out, err = run(
        "--provider",
        "clickfunnels",
        "--email",
        "jane@example.com",
        "--name",
        "Jane Doe",
        "--campaign",
        "spring-sale",
        "--redirect-to",
        f"https://{WORKSPACE}/members/area",
    )

    # Then stdout is one line, the function URL with the login token, and nothing else is said
    assert (status, err) == (0, "")
    assert out.count("\n") == 1
    url = out.strip()
    assert url.startswith(FUNCTION_URLS["clickfunnels"] + "?login_token=")
    assert list(parse_qs(urlsplit(url).query)) == ["login_token"]
    # And every claim is as the bridge expects a link's
    claims = claims_of(url, "clickfunnels")
    assert claims["email"] == "jane@example.com"
    assert claims["name"] == "Jane Doe"
    assert claims["aud"] == "clickfunnels"
    assert claims["use"] == "link"
    assert claims["campaign"] == "spring-sale"
    assert claims["redirect_to"] == f"https://{WORKSPACE}/members/area"
    assert JTI.fullmatch(claims["jti"])
    assert before <= claims["iat"] <= time.time()
    assert claims["exp"] - claims["iat"] == 7 * DAY  # the default: 7 days, within the stack's cap
    assert set(claims) == {"email", "name", "aud", "iat", "exp", "jti", "use", "campaign", "redirect_to"}


def test_a_link_without_options_carries_only_the_required_claims(stack: None) -> None:
    status, out, _ = run("--provider", "happyfox", "--email", "jane@example.com")
    assert status == 0
    claims = claims_of(out.strip(), "happyfox")
    assert set(claims) == {"email", "aud", "iat", "exp", "jti", "use"}
    assert out.startswith(FUNCTION_URLS["happyfox"] + "?login_token=")


def test_kustomer_destination_is_the_query_parameter_the_bridge_checks_on_click(stack: None) -> None:
    target = f"https://{KUSTOMER_HOST}/hc/articles/42?lang=en"
    status, out, _ = run("--provider", "kustomer", "--email", "jane@example.com", "--redirect-to", target)
    assert status == 0
    url = out.strip()
    query = urlsplit(url).query
    # kustomerRedirectUri first, url-encoded, then the token; the destination is not a claim
    assert query.startswith("kustomerRedirectUri=https%3A%2F%2Fyourcompany.kustomer.help%2Fhc%2Farticles%2F42%3F")
    assert unquote(parse_qs(query)["kustomerRedirectUri"][0]) == target
    assert "redirect_to" not in claims_of(url, "kustomer")


def test_each_link_has_its_own_jti(stack: None) -> None:
    jtis = {claims_of(run("--provider", "clickfunnels", "--email", "j@example.com")[1], "clickfunnels")["jti"]}
    jtis.add(claims_of(run("--provider", "clickfunnels", "--email", "j@example.com")[1], "clickfunnels")["jti"])
    assert len(jtis) == 2


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("7d", 7 * DAY), ("36h", 36 * 3600), ("90m", 5400), ("3600s", 3600), ("3600", 3600), (" 2D ", 2 * DAY)],
)
def test_ttl_forms(text: str, seconds: int) -> None:
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize("ttl", ["36h", "90m", "5m", "7d", "604800"])
def test_the_lifetime_asked_for_is_the_links(stack: None, ttl: str) -> None:
    status, out, err = run("--provider", "clickfunnels", "--email", "jane@example.com", "--ttl", ttl)
    assert status == 0, err
    claims = claims_of(out.strip(), "clickfunnels")
    assert claims["exp"] - claims["iat"] == parse_ttl(ttl)


@pytest.mark.parametrize(
    ("ttl", "says"),
    [
        ("4m", "too short: links live at least 5m"),
        ("299", "too short"),
        ("8d", "over the 7d that stack bridge-under-test in eu-west-1 accepts (LINK_TOKEN_MAX_TTL)"),
        ("31d", "over 30d, the longest any link may live"),
        ("1.5d", "use 7d, 36h, 90m, 3600s or plain seconds"),
        ("-5", "use 7d"),
        ("7w", "use 7d"),
        ("$(touch x)", "use 7d"),
    ],
)
def test_lifetimes_the_bridge_would_refuse_are_usage_errors(stack: None, ttl: str, says: str) -> None:
    status, out, err = run("--provider", "clickfunnels", "--email", "jane@example.com", f"--ttl={ttl}")
    assert (status, out) == (2, "")
    assert says in err
    assert err.count("\n") == 1


def test_the_stacks_own_cap_rules_and_is_the_default(aws: Any) -> None:
    # Given a stack whose links live at most 3 days
    create_bridge_stack(link_max_ttl=3 * DAY)
    # Then 4 days is refused, and without --ttl a link gets the 3 days
    assert run("--provider", "happyfox", "--email", "jane@example.com", "--ttl", "4d")[0] == 2
    status, out, _ = run("--provider", "happyfox", "--email", "jane@example.com")
    assert status == 0
    claims = jwt.decode(token_of(out.strip()), LOGIN_TOKEN_KEY, algorithms=["HS256"], audience="happyfox")
    assert claims["exp"] - claims["iat"] == 3 * DAY


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--email", "not-an-email"], "--email is not an address the bridge accepts (email_invalid)"),
        (["--email", '=HYPERLINK("http://x")@example.com'], "must not start with"),
        (["--email", "jane@example.com", "--name=-2+3"], "must not start with"),
        (["--email", "jane@example.com", "--name", "Jane\x1b[2J"], "--name: one line"),
        (["--email", "jane@example.com", "--campaign", "spring sale!"], "--campaign: letters, digits"),
        (["--email", "jane@example.com", "--redirect-to", "http://yourworkspace.myclickfunnels.com/"], "url_scheme"),
        (
            ["--email", "jane@example.com", "--redirect-to", "https://evil.example.com/"],
            "--redirect-to: host evil.example.com is not allowed by stack bridge-under-test in eu-west-1",
        ),
        (["--email", "jane@example.com", "--in", "x.csv"], "not both"),
        ([], "give --email for one link, or --in"),
    ],
)
def test_usage_errors_are_one_line_and_no_link(stack: None, argv: list[str], says: str) -> None:
    status, out, err = run("--provider", "clickfunnels", *argv)
    assert (status, out) == (2, "")
    assert says in err
    assert err.count("\n") == 1


def test_happyfox_has_no_deep_links(stack: None) -> None:
    status, _, err = run("--provider", "happyfox", "--email", "j@example.com", "--redirect-to", "https://a.example/")
    assert status == 2
    assert "--redirect-to: happyfox has no deep links" in err


def test_kustomer_without_a_destination_needs_one_when_the_stack_has_no_portal_url(aws: Any) -> None:
    create_bridge_stack(parameters={"KustomerPortalUrl": ""})
    status, _, err = run("--provider", "kustomer", "--email", "jane@example.com")
    assert status == 2
    assert "kustomer links need --redirect-to" in err


def test_an_unknown_stack_exits_3_with_one_line(aws: Any) -> None:
    status, out, err = run("--provider", "clickfunnels", "--email", "jane@example.com")
    assert (status, out) == (3, "")
    assert err == (
        f"python -m ops.link: error: stack {STACK} not found in eu-west-1: pass --stack-name (or set STACK_NAME)\n"
    )


def test_no_local_stack_exits_3_with_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOCAL_STACK_FILE", str(tmp_path / "none.json"))
    out, err = io.StringIO(), io.StringIO()
    status = link_cli.main(["--provider", "clickfunnels", "--email", "j@example.com", "--local"], out=out, err=err)
    assert (status, out.getvalue()) == (3, "")
    assert "no local stack is running" in err.getvalue()
    assert err.getvalue().count("\n") == 1


# --- the encoder ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "name"),
    [
        ("jane@example.com", None),
        ("o'brien+tag@example.co.uk", 'Seán "Shay" O\'Brien'),
        ("x@example.com", "名前 \U0001f600 \\ / \u2028"),
    ],
)
def test_the_fast_encoder_makes_tokens_pyjwt_verifies_claim_for_claim(email: str, name: str | None) -> None:
    minter = LinkMinter(
        LOGIN_TOKEN_KEY,
        vendor="clickfunnels",
        function_url="https://x.example/",
        issued_at=1_700_000_000,
        ttl=DAY,
        campaign="c1",
        redirect_to=f'https://{WORKSPACE}/a?b=c&d="e"',
    )
    claims = jwt.decode(
        minter.token(email, name),
        LOGIN_TOKEN_KEY,
        algorithms=["HS256"],
        audience="clickfunnels",
        options={"verify_exp": False},
    )
    expected = {"email": email, "aud": "clickfunnels", "iat": 1_700_000_000, "exp": 1_700_086_400, "use": "link"}
    expected |= {"campaign": "c1", "redirect_to": f'https://{WORKSPACE}/a?b=c&d="e"'}
    if name:
        expected["name"] = name
    assert {key: value for key, value in claims.items() if key != "jti"} == expected
    assert JTI.fullmatch(claims["jti"])


def test_a_token_signed_with_another_key_fails_verification() -> None:
    minter = LinkMinter("another-key-0123456789", vendor="kustomer", function_url="u", issued_at=0, ttl=1)
    token = minter.token("a@b.co")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, LOGIN_TOKEN_KEY, algorithms=["HS256"], audience="kustomer", options={"verify_exp": False})


def test_jtis_stay_unique_across_refills() -> None:
    minter = LinkMinter(LOGIN_TOKEN_KEY, vendor="happyfox", function_url="u", issued_at=0, ttl=1)
    payloads = [minter.token("a@b.co").split(".")[1] for _ in range(3000)]
    jtis = {jwt.decode(minter.token("a@b.co"), options={"verify_signature": False})["jti"] for _ in range(3000)}
    assert len(set(payloads)) == 3000
    assert len(jtis) == 3000


# --- a CSV of contacts ------------------------------------------------------------------------------------


def test_every_contact_gets_its_own_link_and_every_row_and_column_is_kept(stack: None, tmp_path: Path) -> None:
    # Given an export with a name column, a duplicate email and cells that need quoting
    rows = [
        ["Email", "Name", "Company"],
        ["jane@example.com", "Jane Doe", "Acme, Inc."],
        ["bob@example.com", 'Bob "The Builder"', "Multi\nline"],
        ["jane@example.com", "Jane Doe", "Acme, Inc."],
    ]
    source, dest = tmp_path / "contacts.csv", tmp_path / "links.csv"
    write_csv(source, rows)

    # When the operator mints links for them
    status, out, err = run("--provider", "clickfunnels", "--in", str(source), "--out", str(dest), "--campaign", "c")

    # Then the output is the input with link and error appended, each link valid and for its row
    assert (status, out) == (0, "")
    result = read_csv(dest)
    assert result[0] == ["Email", "Name", "Company", "link", "error"]
    assert [row[:3] for row in result] == rows
    jtis = set()
    for row, original in zip(result[1:], rows[1:], strict=True):
        assert row[4] == ""
        assert row[3].startswith(FUNCTION_URLS["clickfunnels"] + "?login_token=")
        claims = claims_of(row[3], "clickfunnels")
        assert (claims["email"], claims["name"], claims["campaign"]) == (original[0], original[1], "c")
        jtis.add(claims["jti"])
    assert len(jtis) == 3  # Jane twice: two links
    # And one summary line on stderr
    assert err == f"3 rows, 3 links, 0 bad rows: wrote {dest}\n"


def test_first_and_last_name_columns_make_the_name(stack: None, tmp_path: Path) -> None:
    source, dest = tmp_path / "in.csv", tmp_path / "out.csv"
    write_csv(source, [["First Name", "Last Name", "E-mail"], ["Jane", "Doe", "jane@example.com"], ["", "", "x@y.io"]])
    assert run("--provider", "happyfox", "--in", str(source), "--out", str(dest))[0] == 0
    rows = read_csv(dest)
    assert claims_of(rows[1][3], "happyfox")["name"] == "Jane Doe"
    assert "name" not in claims_of(rows[2][3], "happyfox")


def test_bom_and_semicolons_are_read_and_kept(stack: None, tmp_path: Path) -> None:
    # Given Excel's "CSV UTF-8" with ; as delimiter (a European locale)
    source, dest = tmp_path / "excel.csv", tmp_path / "out.csv"
    write_csv(source, [["E-Mail Address", "Full Name"], ["jane@example.com", "Jöhn; Døe"]], delimiter=";", bom=True)

    assert run("--provider", "kustomer", "--in", str(source), "--out", str(dest))[0] == 0

    # Then the output keeps the BOM and the delimiter, and the name arrived whole
    assert dest.read_bytes().startswith(codecs.BOM_UTF8 + b"E-Mail Address;Full Name;link;error\r\n")
    rows = read_csv(dest, delimiter=";")
    assert claims_of(rows[1][2], "kustomer")["name"] == "Jöhn; Døe"


def test_tab_separated_exports_work(stack: None, tmp_path: Path) -> None:
    source, dest = tmp_path / "in.tsv", tmp_path / "out.tsv"
    source.write_text("name\temail\nJane, Doe\tjane@example.com\n")
    assert run("--provider", "clickfunnels", "--in", str(source), "--out", str(dest))[0] == 0
    header, row = read_csv(dest, delimiter="\t")
    assert header == ["name", "email", "link", "error"]
    assert claims_of(row[2], "clickfunnels")["name"] == "Jane, Doe"
    assert "\r" not in dest.read_text()  # the input's line endings


HOSTILE_ROWS = [
    # (email cell, name cell, reason)
    ('=HYPERLINK("http://evil.example","click")', "Eve", "email_formula"),
    ("+1-555-0100@example.com", "Eve", "email_formula"),
    ("-2+3@example.com", "Eve", "email_formula"),
    ("@SUM(A1:A2)", "Eve", "email_formula"),
    ("\t=1+1", "Eve", "email_formula"),
    ("\r=1+1", "Eve", "email_formula"),
    ("eve@example.com", "=cmd|' /C calc'!A0", "name_formula"),
    ("eve@example.com", "+SUM(1)", "name_formula"),
    ("eve@example.com", "@import", "name_formula"),
    ("not-an-email", "Eve", "email_invalid"),
    ("eve@example", "Eve", "email_invalid"),
    ("eve @example.com", "Eve", "email_invalid"),
    ('"eve"@example.com', "Eve", "email_invalid"),
    ("", "Eve", "email_missing"),
    ("   ", "Eve", "email_missing"),
    ("e" * 250 + "@example.com", "Eve", "email_too_long"),
    ("eve@example.com", "E" * 201, "name_too_long"),
    ("eve@example.com", "Eve\x1b[2J\x07", "name_characters"),
    ("eve@example.com", "Eve\x00", "name_characters"),
]


def record_starts(rows: list[list[str]]) -> list[int]:
    """The physical line each data row starts on: a quoted CR or newline in a cell is a line break too."""
    starts, line = [], 1 + len(re.findall(r"\r\n|\r|\n", "".join(rows[0])))
    for row in rows[1:]:
        starts.append(line + 1)
        line += 1 + len(re.findall(r"\r\n|\r|\n", "".join(row)))
    return starts


def minter_for(vendor: str = "clickfunnels") -> LinkMinter:
    return LinkMinter(
        LOGIN_TOKEN_KEY, vendor=vendor, function_url=FUNCTION_URLS[vendor], issued_at=int(time.time()), ttl=DAY
    )


@pytest.mark.parametrize(("email", "name", "reason"), HOSTILE_ROWS)
def test_a_bad_row_gets_a_fixed_reason_and_the_good_rows_still_get_links(
    tmp_path: Path, email: str, name: str, reason: str
) -> None:
    # Given a bad row between two good ones
    source, dest = tmp_path / "in.csv", tmp_path / "out.csv"
    write_csv(source, [["email", "name"], ["a@example.com", "A"], [email, name], ["b@example.com", "B"]])
    reports: list[str] = []

    summary = mint_csv(source, dest, minter_for(), report=reports.append)

    # Then the bad row has no link and the reason, reported with its line and never its cell
    _, good_a, bad, good_b = read_csv(dest)
    assert bad == [email, name, "", reason]
    assert reports == [f"line 3: {reason}"]
    # And the good rows around it got their links
    assert claims_of(good_a[2], "clickfunnels")["email"] == "a@example.com"
    assert claims_of(good_b[2], "clickfunnels")["email"] == "b@example.com"
    assert (summary.rows, summary.links, summary.bad) == (3, 2, 1)


def test_the_command_reports_every_bad_row_and_still_succeeds(stack: None, tmp_path: Path) -> None:
    # Given an export holding every kind of bad row, each after a good one
    source, dest = tmp_path / "in.csv", tmp_path / "out.csv"
    rows = [["email", "name"]]
    for i, (email, name, _) in enumerate(HOSTILE_ROWS):
        rows += [[f"good{i}@example.com", f"Good {i}"], [email, name]]
    write_csv(source, rows)

    status, out, err = run("--provider", "clickfunnels", "--in", str(source), "--out", str(dest))

    # Then it exits 0 (reported in-band): one line per bad row, then the summary
    assert (status, out) == (0, "")
    bad = len(HOSTILE_ROWS)
    assert err.splitlines() == [
        *(
            f"line {start}: {reason}"
            for start, (_, _, reason) in zip(record_starts(rows)[1::2], HOSTILE_ROWS, strict=True)
        ),
        f"{2 * bad} rows, {bad} links, {bad} bad rows: wrote {dest}",
    ]
    # And no cell of a bad row is echoed on stderr
    for email, name, _ in HOSTILE_ROWS:
        for cell in (email, name):
            if len(cell.strip()) > 3:
                assert cell not in err
    result = read_csv(dest)
    assert [row[3] for row in result[2::2]] == [reason for _, _, reason in HOSTILE_ROWS]
    assert all(row[2] == "" for row in result[2::2])
    assert all(claims_of(row[2], "clickfunnels")["email"] == row[0] for row in result[1::2])


def test_a_link_longer_than_the_bridge_reads_is_a_bad_row(tmp_path: Path) -> None:
    # Given a long deep link and a name that JSON-escapes to 12 characters a letter
    source, dest = tmp_path / "in.csv", tmp_path / "out.csv"
    write_csv(source, [["email", "name"], ["a@example.com", "\U0001f600" * 200], ["b@example.com", "B"]])
    minter = LinkMinter(
        LOGIN_TOKEN_KEY,
        vendor="clickfunnels",
        function_url=FUNCTION_URLS["clickfunnels"],
        issued_at=int(time.time()),
        ttl=DAY,
        redirect_to=f"https://{WORKSPACE}/" + "p" * 1500,
    )
    reports: list[str] = []
    summary = mint_csv(source, dest, minter, report=reports.append)
    assert reports == ["line 2: link_too_long"]
    assert (summary.links, summary.bad) == (1, 1)
    assert len(token_of(read_csv(dest)[2][2])) <= 4096


def test_out_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    source, dest = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text("email\na@example.com\n")
    mint_csv(source, dest, minter_for())
    assert dest.stat().st_mode & 0o777 == 0o600


def test_bad_rows_are_reported_at_the_line_where_the_record_starts(stack: None, tmp_path: Path) -> None:
    # Given a quoted three-line cell before the bad rows, and a blank line
    source, dest = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text(
        "email,name,notes\n"  # line 1
        'a@example.com,A,"first\nsecond\nthird"\n'  # lines 2-4
        "=1+1,B,x\n"  # line 5
        "c@example.com,C,x\n"  # line 6
        "\n"  # line 7: no record
        'not-an-email,"D\nD",x\n'  # lines 8-9
        ",E,x\n"  # line 10
        "f@example.com,F,x\n"  # line 11
    )

    status, _, err = run("--provider", "clickfunnels", "--in", str(source), "--out", str(dest))

    assert status == 0
    assert err.splitlines() == [
        "line 5: email_formula",
        "line 8: email_invalid",
        "line 10: email_missing",
        f"6 rows, 3 links, 3 bad rows: wrote {dest}",
    ]
    rows = read_csv(dest)
    assert [row[4] for row in rows[1:]] == ["", "email_formula", "", "email_invalid", "email_missing", ""]
    assert rows[1][2] == "first\nsecond\nthird"


def test_short_rows_are_padded_and_long_rows_refused(stack: None, tmp_path: Path) -> None:
    source, dest = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text("email,first name,last name\na@example.com,Ann\nb@example.com,B,C,extra\n")
    assert run("--provider", "happyfox", "--in", str(source), "--out", str(dest))[0] == 0
    _, short, long = read_csv(dest)
    assert short[:3] == ["a@example.com", "Ann", ""]
    assert claims_of(short[3], "happyfox")["name"] == "Ann"
    assert long == ["b@example.com", "B", "C", "", "too_many_columns"]


@pytest.mark.parametrize(
    ("header", "says"),
    [
        ("email,name,link\n", "already has a link column"),
        ("Email,Link,Error\n", "already has a link and error column"),
        ("name,phone\n", "has no email column"),
        ("email,e-mail\n", "several email columns"),
        ("\n", "has no header row"),
    ],
)
def test_inputs_the_command_cannot_use_are_refused_before_anything_is_written(
    stack: None, tmp_path: Path, header: str, says: str
) -> None:
    source, dest = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text(header + "a@example.com,x,y\n")
    status, out, err = run("--provider", "clickfunnels", "--in", str(source), "--out", str(dest))
    assert (status, out) == (2, "")
    assert says in err
    assert os.listdir(tmp_path) == ["in.csv"]


@pytest.mark.parametrize("spelling", ["same", "dotted", "symlink"])
def test_out_must_not_be_in(stack: None, tmp_path: Path, spelling: str) -> None:
    source = tmp_path / "contacts.csv"
    source.write_text("email\na@example.com\n")
    dest = {
        "same": source,
        "dotted": tmp_path / "sub" / ".." / "contacts.csv",
        "symlink": tmp_path / "alias.csv",
    }[spelling]
    (tmp_path / "sub").mkdir()
    if spelling == "symlink":
        dest.symlink_to(source)
    status, _, err = run("--provider", "clickfunnels", "--in", str(source), "--out", str(dest))
    assert status == 2
    assert "--out must not be --in" in err
    assert source.read_text() == "email\na@example.com\n"


def test_a_failed_run_leaves_no_half_file_and_keeps_the_old_output(stack: None, tmp_path: Path) -> None:
    # Given a previous links file and an input that turns out not to be UTF-8 halfway through
    source, dest = tmp_path / "in.csv", tmp_path / "links.csv"
    dest.write_text("the previous run's links\n")
    good = "".join(f"user{i}@example.com,User {i}\n" for i in range(20_000))
    source.write_bytes(b"email,name\n" + good.encode() + b"latin@example.com,Jos\xe9\n")

    status, _, err = run("--provider", "clickfunnels", "--in", str(source), "--out", str(dest))

    # Then the run fails saying where, the old output is untouched and no temporary file is left
    assert status == 2
    assert "line 20002 is not UTF-8 text" in err
    assert dest.read_text() == "the previous run's links\n"
    assert sorted(os.listdir(tmp_path)) == ["in.csv", "links.csv"]


def test_broken_csv_is_a_usage_error_with_no_output(stack: None, tmp_path: Path) -> None:
    source, dest = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text('email,name\na@example.com,"' + "x" * 200_000 + "\n")  # an unclosed quote eats the file
    status, _, err = run("--provider", "clickfunnels", "--in", str(source), "--out", str(dest))
    assert status == 2
    assert "not valid CSV" in err
    assert sorted(os.listdir(tmp_path)) == ["in.csv"]


def test_missing_input_and_output_directory_are_usage_errors(stack: None, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    assert run("--provider", "clickfunnels", "--in", str(source), "--out", str(tmp_path / "o.csv"))[0] == 2
    source.write_text("email\na@example.com\n")
    status, _, err = run("--provider", "clickfunnels", "--in", str(source), "--out", str(tmp_path / "no" / "o.csv"))
    assert status == 2
    assert "no such directory" in err


def test_a_target_error_leaves_no_output(aws: Any, tmp_path: Path) -> None:
    source, dest = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text("email\na@example.com\n")
    assert run("--provider", "clickfunnels", "--in", str(source), "--out", str(dest))[0] == 3  # no such stack
    assert not dest.exists()


def test_batches_stream_in_constant_memory(tmp_path: Path) -> None:
    # Given 20,000 contacts (a few MB of links out)
    source, dest = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text("email,name\n" + "".join(f"user{i}@example.com,User {i}\n" for i in range(20_000)))
    minter = LinkMinter(LOGIN_TOKEN_KEY, vendor="kustomer", function_url="https://k.example/", issued_at=0, ttl=DAY)

    tracemalloc.start()
    try:
        summary = mint_csv(source, dest, minter)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # Then memory stayed far below the output's size: rows were never held
    assert summary.links == 20_000
    assert dest.stat().st_size > 5_000_000
    assert peak < 1_000_000


def test_no_progress_bar_unless_stderr_is_a_terminal(stack: None, tmp_path: Path) -> None:
    source, dest = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text("email\n" + "a@example.com\n" * 10_000)
    _, _, err = run("--provider", "clickfunnels", "--in", str(source), "--out", str(dest))
    assert err == f"10000 rows, 10000 links, 0 bad rows: wrote {dest}\n"


def test_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    source, dest = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text("email\n" + "a@example.com\n" * 10_000 + "bad\n")
    minter = LinkMinter(LOGIN_TOKEN_KEY, vendor="kustomer", function_url="https://k.example/", issued_at=0, ttl=DAY)
    terminal = Terminal()
    summary = mint_csv(source, dest, minter, progress=terminal)
    assert (summary.rows, summary.bad) == (10_001, 1)
    assert "10.0k rows" in terminal.getvalue()
    assert "line 10002: email_invalid" in terminal.getvalue()


# --- what is signed is what the formula guard reads ---------------------------------------------------------

# Every character str.strip() drops before a value is signed, tab and CR aside (they are formula starts of their
# own): each Unicode blank (Zs: space, NBSP, U+3000, ...), LF, the other whitespace controls, NEL, U+2028/9. A
# spreadsheet that strips leading blanks runs what follows them.
BLANKS = [chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace() and chr(code) not in "\t\r"]
FORMULA = "must not start with =, +, -, @, tab or CR, after any leading blanks either (a spreadsheet would run it)"


def blank_id(blank: str) -> str:
    return unicodedata.name(blank, f"U+{ord(blank):04X}")


def offline(monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[int, str, str]:
    """``python -m ops.link ARGV`` for refusals made before any stack is looked up (looking one up fails the test)."""

    def resolve(local: bool, stack_name: str) -> Target:
        raise AssertionError("the stack was looked up: the arguments passed every check")

    monkeypatch.setattr(link_cli, "resolve", resolve)
    monkeypatch.setattr(link_cli, "vendors", lambda: list(FUNCTION_URLS))  # template.yaml's, without reading it
    out, err = io.StringIO(), io.StringIO()
    status = link_cli.main(list(argv), out=out, err=err)
    return status, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("blank", BLANKS, ids=blank_id)
def test_a_formula_behind_leading_blanks_gets_no_link_in_a_csv(tmp_path: Path, blank: str) -> None:
    # Given emails and names that start with =, +, - or @ once the blank in front is stripped for signing
    rows = [["email", "name"]]
    for start in "=+-@":
        rows += [[f"{blank}{start}1@example.com", "Eve"], ["eve@example.com", f"{blank}{start}cmd|' /C calc'!A0"]]
    rows.append([f"{blank}olivia@example.com{blank}", f"{blank}Olivia{blank}"])  # blanks around plain values
    source, dest = tmp_path / "in.csv", tmp_path / "out.csv"
    write_csv(source, rows)

    summary = mint_csv(source, dest, minter_for(), report=lambda _: None)

    # Then each formula row gets no link and its fixed reason
    result = read_csv(dest)
    assert [(row[2], row[3]) for row in result[1:-1]] == [("", "email_formula"), ("", "name_formula")] * 4
    # And plain values around blanks are signed stripped, as the bridge reads them
    claims = claims_of(result[-1][2], "clickfunnels")
    assert (claims["email"], claims["name"]) == ("olivia@example.com", "Olivia")
    assert (summary.links, summary.bad) == (1, 8)


@pytest.mark.parametrize("blank", BLANKS, ids=blank_id)
def test_a_formula_behind_leading_blanks_gets_no_link_from_the_command(
    monkeypatch: pytest.MonkeyPatch, blank: str
) -> None:
    for start in "=+-@":
        for option, argv in (
            ("--email", [f"--email={blank}{start}1@example.com"]),
            ("--name", ["--email=eve@example.com", f"--name={blank}{start}cmd|' /C calc'!A0"]),
        ):
            status, out, err = offline(monkeypatch, "--provider=clickfunnels", *argv)
            assert (status, out) == (2, "")
            assert err == f"python -m ops.link: error: {option} {FORMULA}\n"


# --- the header is the CSV reader's first record, its names compared folded --------------------------------------

HEADER_COLLISIONS = {
    "link on the header's second line": ('email,"notes\nmore",link', "link"),
    "error on the header's third line": ('"e-mail\n",notes,"x\ny\nz",error', "error"),
    "fullwidth": ("email,\uff2c\uff49\uff4e\uff4b", "link"),
    "fullwidth capitals": ("email,\uff25\uff32\uff32\uff2f\uff32", "error"),
    "script capital L": ("email,\u2112ink", "link"),
    "zero-width space": ("email,li\u200bnk", "link"),
    "zero-width joiner": ("email,ERROR\u200d", "error"),
    "soft hyphen": ("email,\u00adlink", "link"),
    "word joiner": ("email,err\u2060or", "error"),
    "bidi override": ("email,\u202elink", "link"),
    "byte order mark inside": ("email,li\ufeffnk", "link"),
    "variation selector": ("email,link\ufe0f", "link"),
    "combining grapheme joiner": ("email,e\u034frror", "error"),
    "tag characters": ("email,link\U000e0041", "link"),
}


@pytest.mark.parametrize(("header", "column"), HEADER_COLLISIONS.values(), ids=list(HEADER_COLLISIONS))
def test_a_header_name_that_reads_as_link_or_error_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, header: str, column: str
) -> None:
    # Given a header with a column the output's own link or error column would sit beside, looking the same
    source, dest = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text(header + "\na@example.com,x,y,z\n", encoding="utf-8")

    status, out, err = offline(monkeypatch, "--provider=clickfunnels", f"--in={source}", f"--out={dest}")

    # Then it is refused in one line, before anything is written
    assert (status, out) == (2, "")
    assert f"already has a {column} column" in err
    assert err.count("\n") == 1
    assert os.listdir(tmp_path) == ["in.csv"]


def test_a_header_cell_spanning_lines_is_one_header_and_the_rows_line_up(tmp_path: Path) -> None:
    # Given a header whose second cell holds a quoted line break, and rows, one of them spanning lines too
    source, dest = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text(
        'email,"notes\nmore",name\n'  # lines 1-2
        "a@example.com,x,Ann\n"  # line 3
        'b@example.com,"y\nz",Bob\n'  # lines 4-5
        "=1,x,C\n"  # line 6
    )
    reports: list[str] = []

    summary = mint_csv(source, dest, minter_for(), report=reports.append)

    # Then the header is copied whole, link and error come once, after it, and each row's link is its own
    header, ann, bob, bad = read_csv(dest)
    assert header == ["email", "notes\nmore", "name", "link", "error"]
    assert claims_of(ann[3], "clickfunnels")["name"] == "Ann"
    assert claims_of(bob[3], "clickfunnels")["name"] == "Bob"
    assert (bad[3], bad[4]) == ("", "email_formula")
    # And a bad row is reported at the line it starts on, counted past the header's two
    assert reports == ["line 6: email_formula"]
    assert (summary.rows, summary.links) == (3, 2)


def test_email_and_name_columns_are_found_folded_too(stack: None, tmp_path: Path) -> None:
    source, dest = tmp_path / "in.csv", tmp_path / "out.csv"
    # "E<zero-width space>mail" and a fullwidth "Name"
    source.write_text("E\u200bmail,\uff2e\uff41\uff4d\uff45\njane@example.com,Jane Doe\n")
    status, _, err = run("--provider", "happyfox", "--in", str(source), "--out", str(dest))
    assert status == 0, err
    assert claims_of(read_csv(dest)[1][2], "happyfox")["name"] == "Jane Doe"


def test_two_columns_that_fold_to_email_are_ambiguous(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("email,E\u200bmail\na@example.com,b@example.com\n")
    status, _, err = offline(monkeypatch, "--provider=kustomer", f"--in={source}", f"--out={tmp_path / 'o.csv'}")
    assert status == 2
    assert "several email columns (email, E\\x200bmail): keep one" in err


# --- small frictions ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "summary"),
    [
        ([["a@example.com"]], "1 row, 1 link, 0 bad rows"),
        ([["a@example.com"], ["bad"]], "2 rows, 1 link, 1 bad row"),
        ([["bad"]], "1 row, 0 links, 1 bad row"),
    ],
)
def test_the_summary_counts_in_words(stack: None, tmp_path: Path, rows: list[list[str]], summary: str) -> None:
    source, dest = tmp_path / "in.csv", tmp_path / "out.csv"
    write_csv(source, [["email"], *rows])
    status, _, err = run("--provider", "happyfox", "--in", str(source), "--out", str(dest))
    assert status == 0
    assert err.splitlines()[-1] == f"{summary}: wrote {dest}"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--in=contacts.csv"], "--out is required: the file to write"),
        (["--in=contacts.csv", "--out="], "--out is required: the file to write"),
        (["--in=", "--out=links.csv"], "--in is required: the contacts export to read"),
        (["--in=", "--out="], "--in and --out are required: the contacts export to read, and the file to write"),
        (["--email="], "--email is required: the recipient's address"),
        (["--email= "], "--email is required: the recipient's address"),
    ],
)
def test_a_missing_value_is_named_as_missing(monkeypatch: pytest.MonkeyPatch, argv: list[str], says: str) -> None:
    status, out, err = offline(monkeypatch, "--provider=clickfunnels", *argv)
    assert (status, out) == (2, "")
    assert err == f"python -m ops.link: error: {says}\n"


def test_without_local_while_the_local_stack_runs_the_error_says_to_use_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given `make run` running (its state file names a live process) and no deployed stack to be found
    state = tmp_path / "local-stack.json"
    write_state(local_state(pid=os.getpid()), state)
    monkeypatch.setenv("LOCAL_STACK_FILE", str(state))

    def resolve(local: bool, stack_name: str) -> Target:
        assert not local
        raise TargetError("no AWS credentials: set AWS_PROFILE or run `aws configure` (or pass --local for make run)")

    monkeypatch.setattr(link_cli, "resolve", resolve)
    out, err = io.StringIO(), io.StringIO()
    status = link_cli.main(["--provider=happyfox", "--email=jane@example.com"], out=out, err=err)

    assert (status, out.getvalue()) == (3, "")
    assert err.getvalue().startswith("python -m ops.link: error: no AWS credentials: ")
    assert err.getvalue().endswith("; `make run` is running here: add --local to use it\n")
