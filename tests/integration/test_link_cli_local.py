"""Email links against the local stack, through make as an operator types it: mint, click, revoke, audit.

Every command finds the stack through its state file (``local_stack.command_env()`` sets
``LOCAL_STACK_FILE``): no key, endpoint or table name is passed by hand.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import time
import uuid
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest

from local.lambdas import LOCAL_DEFAULTS
from ops.link_tokens import LinkMinter
from tests.helpers import LOGIN_TOKEN_KEY, ROOT, VENDOR_KEYS, WORKSPACE
from tests.integration.client import Client, Response
from tests.integration.stack import STACK_ENV, CookieClient, RunningStack, start_stack
from tests.vendor_requests import VENDORS, deployed, form_posts, local_portal

ROWS = 10_000
BAD_EVERY = 33  # about 300 bad rows
BAD_KINDS = [
    ('=HYPERLINK("http://evil.example")', "Eve", "email_formula"),
    ("not-an-email", "Eve", "email_invalid"),
    ("", "Eve", "email_missing"),
    ("eve@example.com", "@SUM(A1)", "name_formula"),
    ("eve@example.com", "E" * 201, "name_too_long"),
    ("\u00a0=1+1@example.com", "Eve", "email_formula"),  # a formula behind a blank that signing strips
    ("eve@example.com", "\u3000@SUM(A1)", "name_formula"),
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
        assert "Continue to" in client.get(url).text
        page = client.open_link(url)
        confirmed = client.press(url, page)
        assert confirmed.status == 303, confirmed.text
        assert urlsplit(confirmed.location).hostname == WORKSPACE
        again = client.press(url, page)
        assert urlsplit(again.location).hostname != WORKSPACE  # spent: back to sign-in


def test_make_link_prints_one_link_the_stack_accepts(local_stack: RunningStack) -> None:
    email = f"one-{uuid.uuid4().hex[:8]}@example.com"
    result = make(local_stack, "link", PROVIDER="clickfunnels", EMAIL=email, NAME='O\'Brien "Jr"', TTL="2d")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    claims = link_claims(result.stdout.strip(), local_stack)
    assert (claims["email"], claims["name"], claims["exp"] - claims["iat"]) == (email, 'O\'Brien "Jr"', 2 * 86400)
    assert Client().get(result.stdout.strip()).status == 200


@pytest.mark.parametrize("vendor", VENDORS)
def test_make_link_via_api_is_served_by_the_local_http_api(local_stack: RunningStack, vendor: str) -> None:
    # When the operator mints a link on the HTTP API instead of the function URL
    email = f"via-api-{uuid.uuid4().hex[:8]}@example.com"
    result = make(local_stack, "link", PROVIDER=vendor, EMAIL=email, VIA="api")
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip()

    # Then it opens the vendor's sign-in route on the stack's API, with a link token for the stack's key
    assert url.startswith(local_stack.url(deployed(vendor).sign_in_path) + "?")
    [token] = parse_qs(urlsplit(url).query)["login_token"]
    claims = jwt.decode(token, LOGIN_TOKEN_KEY, algorithms=["HS256"], audience=vendor)
    assert (claims["email"], claims["use"]) == (email, "link")

    # And through the local HTTP API, GET shows the confirmation page and its POST sends the reader on, once: to the
    # vendor (its portal, or the page that starts its own sign-in; Zendesk's, a page posting to it)
    client = Client()
    assert "Continue to" in client.get(url).text
    page = client.open_link(url)
    confirmed = client.press(url, page)
    signs_in = local_portal(vendor, STACK_ENV)
    assert confirmed.status == signs_in.signed_in_status("POST"), confirmed.text
    forms = [action for action, _ in form_posts(confirmed.text)] if signs_in.posts_form else []
    targets = forms or [confirmed.location]
    assert all(urlsplit(target).hostname in signs_in.hosts for target in targets), targets
    again = client.press(url, page)
    assert urlsplit(again.location).hostname not in signs_in.hosts  # spent: back to sign-in


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


# --- REDIRECT_TO against the stack's own allow-lists -----------------------------------------------------------


def press_continue(url: str) -> Response:
    """The reader's Continue as Chromium sends it: the page's form (its hidden fields), its cookies, its headers."""
    client = CookieClient()
    page = client.get(url)
    assert page.status == 200, page.text
    fields = re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', page.text)
    body = urlencode([(name, unescape(value)) for name, value in fields]).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Origin": "null",
        "Sec-Fetch-Site": "same-origin",
        "Sec-Fetch-Mode": "navigate",
        "Sec-Fetch-User": "?1",
    }
    return client.request("POST", url, body=body, headers=headers)


def test_make_link_mints_only_destinations_the_stack_accepts(local_stack: RunningStack) -> None:
    email = f"deep-{uuid.uuid4().hex[:8]}@example.com"
    # Given the local stack's ClickFunnels function, which allows its workspace domain and no other host
    # When the operator mints a deep link on the workspace
    good = make(local_stack, "link", PROVIDER="clickfunnels", EMAIL=email, REDIRECT_TO=f"https://{WORKSPACE}/members")
    assert good.returncode == 0, good.stderr
    # Then the reader's Continue lands there: the vendor token carries it
    signed_in = press_continue(good.stdout.strip())
    assert signed_in.status == 303, signed_in.text
    assert urlsplit(signed_in.location).hostname == WORKSPACE
    [token] = parse_qs(urlsplit(signed_in.location).query)["token"]
    claims = jwt.decode(token, VENDOR_KEYS["clickfunnels"], algorithms=["HS256"], options={"verify_aud": False})
    assert claims["redirect_to"] == f"https://{WORKSPACE}/members"

    # When the operator asks for a host off the allow-list
    off = make(local_stack, "link", PROVIDER="clickfunnels", EMAIL=email, REDIRECT_TO="https://evil.example.com/offer")

    # Then nothing is minted: one line naming the host and the stack's settings
    assert (off.returncode, off.stdout) == (2, "")
    assert off.stderr.splitlines()[0] == (
        "make link: error: REDIRECT_TO: host evil.example.com is not allowed by the local stack at "
        f"{local_stack.url('')} (CLICKFUNNELS_WORKSPACE_DOMAIN, CLICKFUNNELS_REDIRECT_HOSTS: {WORKSPACE}): "
        "the bridge would refuse every link"
    )
    # And such a link, had it gone out, is what every reader would have met: a 400 after pressing Continue
    minter = LinkMinter(
        LOGIN_TOKEN_KEY,
        vendor="clickfunnels",
        function_url=local_stack.function_url("clickfunnels", "/"),
        issued_at=int(time.time()),
        ttl=3600,
        redirect_to="https://evil.example.com/offer",
    )
    assert press_continue(minter.link(email)).status == 400


def test_make_links_refuses_a_kustomer_destination_that_carries_a_token(
    local_stack: RunningStack, tmp_path: Path
) -> None:
    source, dest = tmp_path / "contacts.csv", tmp_path / "links.csv"
    source.write_text("email\njane@example.com\n")
    portal = urlsplit(LOCAL_DEFAULTS["KUSTOMER_PORTAL_URL"]).hostname
    destination = f"https://{portal}/hc/articles/42?externalToken=someone-elses"

    result = make(local_stack, "links", PROVIDER="kustomer", IN=str(source), OUT=str(dest), REDIRECT_TO=destination)

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("make links: error: REDIRECT_TO already has an externalToken parameter: ")
    assert not dest.exists()
    # (the stack itself refuses such a link as soon as it is opened)
    minter = LinkMinter(
        LOGIN_TOKEN_KEY,
        vendor="kustomer",
        function_url=local_stack.function_url("kustomer", "/"),
        issued_at=int(time.time()),
        ttl=3600,
        redirect_to=destination,
    )
    assert Client().get(minter.link("jane@example.com")).status == 400


def test_make_link_says_when_the_stack_does_not_report_a_setting(local_stack: RunningStack, tmp_path: Path) -> None:
    # Given the running stack's state file as an older stack wrote it, without its workspace domain
    state = json.loads(local_stack.state_file.read_text())
    del state["settings"]["CLICKFUNNELS_WORKSPACE_DOMAIN"]
    older = tmp_path / "older-stack.json"
    older.write_text(json.dumps(state))
    argv = ["make", "-s", "--no-print-directory", "-o", ".venv/.installed", f"BIN={Path(sys.executable).parent}"]
    argv += ["link", "LOCAL=1", "PROVIDER=clickfunnels", "EMAIL=a@example.com", f"REDIRECT_TO=https://{WORKSPACE}/a"]
    env = local_stack.command_env(LOCAL_STACK_FILE=str(older))

    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    # Then no link: the command says what it cannot check, rather than guess (exit 3)
    assert (result.returncode, result.stdout) == (2, "")  # make's own status for a failed recipe
    assert result.stderr.splitlines()[0] == (
        f"make link: error: the local stack at {local_stack.url('')} does not report CLICKFUNNELS_WORKSPACE_DOMAIN: "
        f"cannot tell whether its clickfunnels function allows {WORKSPACE} (restart it with `make run`)"
    )
