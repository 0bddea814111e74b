"""Email links against the local stack, through make as an operator types it: mint, click, revoke, audit.

Every command finds the stack through its state file (``local_stack.command_env()`` sets
``LOCAL_STACK_FILE``): no key, endpoint or table name is passed by hand.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from local.lambdas import LOCAL_DEFAULTS
from tests.helpers import LOGIN_TOKEN_KEY, ROOT, WORKSPACE
from tests.integration.client import Client
from tests.integration.stack import RunningStack, start_stack

ROWS = 10_000
BAD_EVERY = 33  # about 300 bad rows
BAD_KINDS = [
    ('=HYPERLINK("http://evil.example")', "Eve", "email_formula"),
    ("not-an-email", "Eve", "email_invalid"),
    ("", "Eve", "email_missing"),
    ("eve@example.com", "@SUM(A1)", "name_formula"),
    ("eve@example.com", "E" * 201, "name_too_long"),
]


def make(local_stack: RunningStack, target: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """``make TARGET LOCAL=1 VAR=...`` from the repository, with this interpreter's venv as BIN."""
    argv = ["make", "-s", "--no-print-directory", "-o", ".venv/.installed", f"BIN={Path(sys.executable).parent}"]
    argv += [target, "LOCAL=1", *(f"{name}={value}" for name, value in variables.items())]
    return subprocess.run(argv, cwd=ROOT, env=local_stack.command_env(), capture_output=True, text=True, timeout=120)


def write_contacts(path: Path) -> dict[int, str]:
    """10,000 contacts, a bad one every 33rd, a three-line notes cell every 500th; bad rows by physical line."""
    bad: dict[int, str] = {}
    line = 1
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["First Name", "Last Name", "Email", "Notes"])
        for i in range(ROWS):
            line += 1
            notes = "called\nleft message\nfollow up" if i % 500 == 0 else "-"
            if i % BAD_EVERY == BAD_EVERY - 1:
                email, name, reason = BAD_KINDS[(i // BAD_EVERY) % len(BAD_KINDS)]
                writer.writerow([name, "", email, notes])
                bad[line] = reason
            else:
                writer.writerow(["User", str(i), f"user{i}-{uuid.uuid4().hex[:6]}@example.com", notes])
            line += notes.count("\n")
    return bad


def link_claims(url: str, local_stack: RunningStack) -> dict[str, Any]:
    assert url.startswith(local_stack.function_url("clickfunnels", "/") + "?login_token=")
    [token] = parse_qs(urlsplit(url).query)["login_token"]
    claims: dict[str, Any] = jwt.decode(token, LOGIN_TOKEN_KEY, algorithms=["HS256"], audience="clickfunnels")
    return claims


def test_make_links_round_trips_ten_thousand_contacts(local_stack: RunningStack, tmp_path: Path) -> None:
    # Given a contacts export with a few hundred bad rows at known lines
    source, dest = tmp_path / "contacts.csv", tmp_path / "links.csv"
    bad = write_contacts(source)
    assert 250 < len(bad) < 350

    # When the operator mints links for the local stack
    result = make(local_stack, "links", PROVIDER="clickfunnels", IN=str(source), OUT=str(dest), CAMPAIGN="it-test")

    # Then it succeeds, reporting exactly the bad rows by line, then one summary line
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    *reports, summary = result.stderr.splitlines()
    assert reports == [f"line {line}: {reason}" for line, reason in sorted(bad.items())]
    assert summary == f"{ROWS} rows, {ROWS - len(bad)} links, {len(bad)} bad rows: wrote {dest}"

    # And every good row's link is valid for the stack's key and points at its function URL
    with source.open(newline="") as text, dest.open(newline="") as links:
        pairs = list(zip(csv.reader(text), csv.reader(links), strict=True))
    assert pairs[0][1] == ["First Name", "Last Name", "Email", "Notes", "link", "error"]
    jtis, good = set(), []
    for original, row in pairs[1:]:
        assert row[:4] == original
        if row[5]:
            assert row[4] == ""
            continue
        claims = link_claims(row[4], local_stack)
        assert (claims["email"], claims["name"], claims["campaign"]) == (row[2], f"{row[0]} {row[1]}", "it-test")
        jtis.add(claims["jti"])
        good.append(row[4])
    assert len(jtis) == len(good) == ROWS - len(bad)

    # And a handful of them, opened, show the confirmation page; its button signs in at ClickFunnels, once
    client = Client()
    for url in good[:: len(good) // 4][:5]:
        page = client.get(url)
        assert page.status == 200, page.text
        assert "Continue to" in page.text
        confirmed = client.request("POST", url, body=b"", headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert confirmed.status == 303, confirmed.text
        assert urlsplit(confirmed.location).hostname == WORKSPACE
        again = client.request("POST", url, body=b"", headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert urlsplit(again.location).hostname != WORKSPACE  # spent: back to sign-in


def test_make_link_prints_one_link_the_stack_accepts(local_stack: RunningStack) -> None:
    email = f"one-{uuid.uuid4().hex[:8]}@example.com"
    result = make(local_stack, "link", PROVIDER="clickfunnels", EMAIL=email, NAME='O\'Brien "Jr"', TTL="2d")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    claims = link_claims(result.stdout.strip(), local_stack)
    assert (claims["email"], claims["name"], claims["exp"] - claims["iat"]) == (email, 'O\'Brien "Jr"', 2 * 86400)
    assert Client().get(result.stdout.strip()).status == 200


@pytest.mark.parametrize("vendor", ["clickfunnels", "kustomer", "happyfox"])
def test_make_link_via_api_is_served_by_the_local_http_api(local_stack: RunningStack, vendor: str) -> None:
    # When the operator mints a link on the HTTP API instead of the function URL
    email = f"via-api-{uuid.uuid4().hex[:8]}@example.com"
    result = make(local_stack, "link", PROVIDER=vendor, EMAIL=email, VIA="api")
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip()

    # Then it opens the vendor's sign-in route on the stack's API, with a link token for the stack's key
    route = {"clickfunnels": "/clickfunnels/sso", "kustomer": "/kustomer/login", "happyfox": "/happyfox/login"}
    assert url.startswith(local_stack.url(route[vendor]) + "?")
    [token] = parse_qs(urlsplit(url).query)["login_token"]
    claims = jwt.decode(token, LOGIN_TOKEN_KEY, algorithms=["HS256"], audience=vendor)
    assert (claims["email"], claims["use"]) == (email, "link")

    # And through the local HTTP API, GET shows the confirmation page and its POST sends the reader on, once
    client = Client()
    page = client.get(url)
    assert page.status == 200, page.text
    assert "Continue to" in page.text
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    confirmed = client.request("POST", url, body=b"", headers=form)
    assert confirmed.status == 303, confirmed.text
    vendor_hosts = {
        "clickfunnels": WORKSPACE,
        "kustomer": urlsplit(LOCAL_DEFAULTS["KUSTOMER_PORTAL_URL"]).hostname,
        "happyfox": urlsplit(LOCAL_DEFAULTS["HAPPYFOX_ACCOUNT_URL"]).hostname,
    }
    assert urlsplit(confirmed.location).hostname == vendor_hosts[vendor]
    again = client.request("POST", url, body=b"", headers=form)
    assert urlsplit(again.location).hostname != vendor_hosts[vendor]  # spent: back to sign-in


def test_make_link_for_a_vendor_the_local_stack_runs_without_says_how_to_restart_it() -> None:
    stack = start_stack({"VENDORS": "kustomer"})
    try:
        result = make(stack, "link", PROVIDER="happyfox", EMAIL="jane@example.com")
        assert result.returncode != 0
        assert result.stdout == ""
        assert (
            "the local stack runs without happyfox: restart `make run` with VENDORS=kustomer,happyfox" in result.stderr
        )
        assert make(stack, "link", PROVIDER="kustomer", EMAIL="jane@example.com", VIA="api").returncode == 0
    finally:
        stack.stop()


def test_make_link_refuses_a_lifetime_over_the_stacks_cap(local_stack: RunningStack) -> None:
    result = make(local_stack, "link", PROVIDER="clickfunnels", EMAIL="a@example.com", TTL="8d")
    assert result.returncode != 0
    assert "over the 7d that the local stack" in result.stderr
    assert result.stdout == ""


def test_make_revoke_withdraws_earlier_links_and_later_ones_work(local_stack: RunningStack) -> None:
    # Given a link Jane has not clicked yet
    client = Client()
    email = f"revoke-{uuid.uuid4().hex[:8]}@example.com"
    earlier = make(local_stack, "link", PROVIDER="happyfox", EMAIL=email).stdout.strip()
    assert client.get(earlier).status == 200

    # When the operator revokes her links
    revoked = make(local_stack, "revoke", EMAIL=email.upper())
    assert revoked.returncode == 0, revoked.stderr
    assert f"revoked every link issued to {email}" in revoked.stdout

    # Then the earlier link sends her to sign in instead of the portal
    assert client.get(earlier).status == 302
    # And a link minted after the revocation's second works
    time.sleep(1.1)
    later = make(local_stack, "link", PROVIDER="happyfox", EMAIL=email).stdout.strip()
    assert client.get(later).status == 200


def test_make_audit_says_not_found_in_one_line_without_make_noise(local_stack: RunningStack) -> None:
    result = make(local_stack, "audit", JTI="unknown")
    assert result.returncode == 0
    assert result.stdout == ""
    assert result.stderr == (
        "no token issued for jti unknown: not in sso-bridge-JtiTable (not from this bridge, or its record expired)\n"
    )


def test_make_login_token_uses_the_running_stacks_key(local_stack: RunningStack) -> None:
    # No LOGIN_TOKEN_SECRET in the environment: the key comes from the stack's Secrets Manager
    result = make(local_stack, "login-token", EMAIL="cli@example.com", AUD="clickfunnels,kustomer")
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), LOGIN_TOKEN_KEY, algorithms=["HS256"], audience="kustomer")
    assert claims["exp"] - claims["iat"] == 120


@pytest.mark.parametrize("target", ["link", "revoke"])
def test_without_a_local_stack_the_commands_say_so(target: str, tmp_path: Path, local_stack: RunningStack) -> None:
    env = {**local_stack.command_env(), "LOCAL_STACK_FILE": str(tmp_path / "none.json")}
    argv = ["make", "-s", "--no-print-directory", "-o", ".venv/.installed", f"BIN={Path(sys.executable).parent}"]
    argv += [target, "LOCAL=1", "PROVIDER=clickfunnels", "EMAIL=a@example.com"]
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "no local stack is running" in result.stderr
    assert "Traceback" not in result.stderr
