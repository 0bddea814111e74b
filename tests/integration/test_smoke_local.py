"""`make smoke LOCAL=1` against real local stacks, and `make run VENDORS=...` serving only some vendors.

Every stack here is `python -m local.stack` (tests/integration/stack.py), found by its state file as an
operator's `make smoke LOCAL=1` finds `make run`'s: the default one (every vendor, each probed as it starts a
sign-in: Zendesk's answer is a form, Discourse's request is signed), one whose ClickFunnels key is the template's
placeholder, one with HappyFox alone, one with Zendesk alone (its tokens are audited without HappyFox), one with
neither, and one with the local OpenID provider.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.template import functions
from ops.http_probe import Unreachable, fetch
from ops.smoke import probe_for
from sso_bridge.jti_store import SMOKE_EMAIL
from tests.helpers import LOGIN_TOKEN_KEY, ROOT, VENDOR_KEYS
from tests.integration.client import Client
from tests.integration.stack import STACK_ENV, RunningStack, free_block, oidc_stack, start_stack
from tests.tls import self_signed

__all__ = ["oidc_stack"]  # the session's stack with the local OpenID provider (skipped without Node.js)

VENDORS = [Path(spec.code_uri).name for spec in functions()]
PLACEHOLDER = "REPLACE_ME with the key from ClickFunnels (Site & Blog > Customer Center)"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.")


def make(stack: RunningStack, target: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """``make TARGET LOCAL=1 ...`` as an operator types it, this interpreter's venv as BIN."""
    state_of(stack)  # as `make run` has printed its banner
    argv = ["make", "-s", "--no-print-directory", "-o", ".venv/.installed", f"BIN={Path(sys.executable).parent}"]
    argv += [target, "LOCAL=1", *(f"{name}={value}" for name, value in variables.items())]
    return subprocess.run(argv, cwd=ROOT, env=stack.command_env(), capture_output=True, text=True, timeout=180)


def state_of(stack: RunningStack) -> dict[str, Any]:
    """The stack's state file, once written (just after its servers answer)."""
    deadline = time.monotonic() + 15
    while not stack.state_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    state: dict[str, Any] = json.loads(stack.state_file.read_text())
    return state


def lines_of(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith(("ok ", "FAIL "))]


def assert_no_secret(text: str, stack_keys: tuple[str, ...] = ()) -> None:
    for secret in (LOGIN_TOKEN_KEY, *VENDOR_KEYS.values(), *stack_keys):
        assert secret not in text
    assert not JWT.search(text)
    assert "login_token=" not in text


@pytest.fixture(scope="module")
def placeholder_stack() -> Iterator[RunningStack]:
    stack = start_stack({"CLICKFUNNELS_JWT_SECRET": PLACEHOLDER})
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def happyfox_only() -> Iterator[RunningStack]:
    stack = start_stack({"VENDORS": "happyfox"})
    yield stack
    stack.stop()


def answer_kind(vendor: str, stack: RunningStack) -> str:
    """What the vendor's sign-in answers on ``stack`` when its key is set: a redirect, or (Zendesk) a form."""
    return probe_for(vendor, state_of(stack)["settings"].get, key="a-key").answer


def test_smoke_passes_on_the_default_stack(local_stack: RunningStack) -> None:
    result = make(local_stack, "smoke")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = lines_of(result)
    assert lines
    assert all(line.startswith("ok   ") for line in lines)
    assert {"zendesk", "canny", "discourse", "freshworks"} <= set(VENDORS)
    assert answer_kind("zendesk", local_stack) == "form"
    for vendor in VENDORS:
        checked = [line.split(None, 2)[2] for line in lines if line.split()[1] == vendor]
        assert f"http-api {answer_kind(vendor, local_stack)} carries a token" in checked, vendor
        assert f"function-url {answer_kind(vendor, local_stack)} carries a token" in checked, vendor
        assert "vendor key is set" in checked
    assert result.stdout.splitlines()[-1] == f"all {len(lines)} checks passed"
    assert_no_secret(result.stdout + result.stderr)


def test_smoke_writes_happyfox_and_zendesk_audit_records_marked_smoke(local_stack: RunningStack) -> None:
    assert make(local_stack, "smoke").returncode == 0
    audit = make(local_stack, "audit", EMAIL=SMOKE_EMAIL, JSON="1")
    records = json.loads(audit.stdout)
    assert records
    assert all(record["smoke"] is True for record in records)
    assert {record["vendor"] for record in records} == {"happyfox", "zendesk"}
    table = make(local_stack, "audit", EMAIL=SMOKE_EMAIL)
    header, first = table.stdout.splitlines()[:2]
    column = header.index("SMOKE")
    assert first[column : column + 4] == "yes "


def test_smoke_fails_naming_clickfunnels_when_its_key_is_the_placeholder(placeholder_stack: RunningStack) -> None:
    result = make(placeholder_stack, "smoke")
    assert result.returncode != 0
    failed = [line for line in lines_of(result) if line.startswith("FAIL")]
    assert failed
    assert all(line.split()[1] == "clickfunnels" for line in failed), failed
    [key_line] = [line for line in failed if "vendor key is set" in line]
    assert key_line.startswith("FAIL clickfunnels  vendor key is set: the secret holds the template's placeholder")
    assert "the key from ClickFunnels (Site & Blog > Customer Center)" in key_line
    assert "secretsmanager put-secret-value --region eu-west-1 --secret-id sso-bridge/clickfunnels" in key_line
    assert 'CLICKFUNNELS_JWT_SECRET="$KEY" make run' in key_line
    assert result.stdout.splitlines()[-1].endswith("checks failed (clickfunnels)")
    # The other vendors still pass
    assert any(line.startswith("ok   happyfox      http-api redirect") for line in lines_of(result))
    assert_no_secret(result.stdout + result.stderr)


def test_vendors_serves_only_those_and_smoke_checks_only_them(happyfox_only: RunningStack) -> None:
    # The state file lists HappyFox's function URL alone
    state = state_of(happyfox_only)
    assert list(state["function_urls"]) == ["happyfox"]
    assert "CLICKFUNNELS_SECRET_ID" not in state["secret_ids"]
    # The other vendors' routes are gone: an unknown path, answered as the deployed HTTP API does
    client = Client()
    refused = client.get(happyfox_only.url("/clickfunnels/sso"), Accept="application/json")
    assert refused.status == 404
    assert "json" in refused.headers.get("Content-Type", "")
    index = client.get(happyfox_only.url("/"))
    assert "/happyfox/login" in index.text
    assert "/clickfunnels/sso" not in index.text
    assert "/kustomer/login" not in index.text
    # And smoke checks HappyFox, without a word about the others
    result = make(happyfox_only, "smoke")
    assert result.returncode == 0, result.stdout + result.stderr
    assert {line.split()[1] for line in lines_of(result)} == {"stack", "happyfox"}
    for other in VENDORS:
        if other != "happyfox":
            assert other not in result.stdout.lower() + result.stderr.lower()


def test_without_happyfox_or_zendesk_there_is_no_jti_table_and_audit_says_why() -> None:
    stack = start_stack({"VENDORS": "clickfunnels,kustomer"})
    try:
        state = state_of(stack)
        assert sorted(state["function_urls"]) == ["clickfunnels", "kustomer"]
        assert "JTI_TABLE_NAME" not in state["tables"]
        assert make(stack, "smoke").returncode == 0
        audit = make(stack, "audit", EMAIL=SMOKE_EMAIL)
        assert audit.returncode != 0
        assert audit.stderr.splitlines()[0] == (
            f"python -m ops.audit: error: the local stack at {state['api_url']} has no jti table: only happyfox and "
            "zendesk record the tokens they sign, and it runs without them (restart `make run` with one of them in "
            "VENDORS)"
        )
    finally:
        stack.stop()


def test_with_zendesk_but_not_happyfox_smoke_passes_and_its_tokens_are_audited() -> None:
    stack = start_stack({"VENDORS": "zendesk"})
    try:
        state = state_of(stack)
        assert list(state["function_urls"]) == ["zendesk"]
        assert "JTI_TABLE_NAME" in state["tables"]
        result = make(stack, "smoke")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "ok   zendesk       http-api form carries a token" in lines_of(result)
        audit = make(stack, "audit", EMAIL=SMOKE_EMAIL, JSON="1")
        assert audit.returncode == 0, audit.stderr
        records = json.loads(audit.stdout)
        # One per form page smoke was given (the HTTP API's and the function URL's); HEAD minted none
        assert [(record["vendor"], record["smoke"]) for record in records] == [("zendesk", True)] * 2
        assert_no_secret(result.stdout + result.stderr + audit.stdout)
    finally:
        stack.stop()


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("nolt", "VENDORS: 'nolt' is not a vendor: choose from "),
        (",,", "VENDORS names no vendor: set it to one or more of "),
        ("", "VENDORS names no vendor: set it to one or more of "),
    ],
)
def test_a_vendor_that_does_not_exist_stops_the_stack_in_one_line(value: str, says: str) -> None:
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    state = Path(tempfile.mkdtemp(prefix="sso-bridge-state-")) / "local-stack.json"
    ports = {"PORT": str(free_block(len(VENDORS) + 1)), "LOCAL_AWS_PORT": str(free_block(1))}
    env |= {**STACK_ENV, **ports, "VENDORS": value, "OIDC": "off", "LOCAL_STACK_FILE": str(state)}
    result = subprocess.run(
        [sys.executable, "-m", "local.stack"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(says)
    assert ", ".join(VENDORS) in line
    assert not state.exists()


def test_smoke_checks_the_oidc_discovery_document_when_oidc_is_on(oidc_stack: RunningStack) -> None:
    result = make(oidc_stack, "smoke")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok   stack         OIDC discovery document reachable" in lines_of(result)


# One request as smoke makes it: TLS verified, a redirect returned, never followed.


@pytest.fixture
def https_redirect(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """An https server for localhost (a throwaway certificate) that answers every GET with a redirect."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(302)
            self.send_header("Location", f"https://localhost:{self.server.server_address[1]}/followed")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    context = self_signed(tmp_path, ["localhost", "127.0.0.1"])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://localhost:{server.server_address[1]}", tmp_path / "cert.pem", seen
    server.shutdown()
    server.server_close()


def test_smoke_verifies_tls_and_never_follows_a_redirect(
    https_redirect: tuple[str, Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cert, seen = https_redirect
    with pytest.raises(Unreachable, match=rf"^TLS to {re.escape(url)} failed: "):
        fetch("GET", f"{url}/start?login_token=secret")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # an operator's own CA, as OpenSSL reads it
    answer = fetch("GET", f"{url}/start?login_token=secret")
    assert answer.status == 302
    assert answer.header("Location") == f"{url}/followed"
    assert seen == ["/start?login_token=secret"]  # the redirect was returned, not followed
