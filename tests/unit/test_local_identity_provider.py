"""The local OpenID provider's side of `make run`: whether it can run, how it is told, how it is shown.

The provider itself (Node.js) is started by the integration and browser tests; here only what needs no port.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest

from local import identity_provider, stack
from local.config import Config, StartError, resolve_oidc
from local.console import Console
from local.identity_provider import (
    ACCOUNTS,
    LocalProvider,
    ProviderPlan,
    ProviderStartError,
    login_email,
    unavailable,
)

PLAN = ProviderPlan(
    host="127.0.0.1",
    port=3008,
    client_id="sso-bridge-local",
    redirect_uris=("http://localhost:3000/oidc/callback", "http://127.0.0.1:3000/oidc/callback"),
    post_logout_redirect_uris=("http://localhost:3000/",),
)


def fake_node(tmp_path: Path, version: str) -> str:
    node = tmp_path / "node"
    node.write_text(f"#!/bin/sh\necho {version}\n")
    node.chmod(0o755)
    return str(node)


def test_the_two_users_one_verified_one_not() -> None:
    jane, mallory = ACCOUNTS
    assert (jane.login, jane.email, jane.email_verified) == ("jane", "jane@example.com", True)
    assert (mallory.login, mallory.email, mallory.email_verified) == ("mallory", "mallory@example.com", False)
    assert [login_email(account.login) for account in ACCOUNTS] == [account.email for account in ACCOUNTS]


@pytest.mark.parametrize(
    ("login", "email"),
    [("jane", "jane@example.com"), (" Sam ", "sam@example.com"), ("Bob@Corp.Example", "bob@corp.example")],
)
def test_a_login_is_an_email(login: str, email: str) -> None:
    assert login_email(login) == email


def test_it_is_told_everything_as_arguments_except_the_secret() -> None:
    argv = PLAN.argv("/usr/bin/node")
    assert argv[:2] == ["/usr/bin/node", str(identity_provider.SCRIPT)]
    assert "--issuer=http://localhost:3008" in argv
    assert "--client-id=sso-bridge-local" in argv
    assert [arg for arg in argv if arg.startswith("--redirect-uri=")] == [
        f"--redirect-uri={uri}" for uri in PLAN.redirect_uris
    ]
    [accounts] = [arg.removeprefix("--accounts=") for arg in argv if arg.startswith("--accounts=")]
    assert json.loads(accounts) == [
        {"email": "jane@example.com", "email_verified": True, "name": "Jane Doe"},
        {"email": "mallory@example.com", "email_verified": False, "name": "Mallory"},
    ]
    assert not any("secret" in arg.lower() for arg in argv)


def test_it_needs_node_20_18_or_later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    installed = tmp_path / "package.json"
    installed.write_text("{}")
    monkeypatch.setattr(identity_provider, "INSTALLED", installed)
    assert (
        unavailable(fake_node(tmp_path, "v18.19.0"))
        == "Node.js is 18.19; the local OpenID provider needs 20.18 or later"
    )
    assert (
        unavailable(fake_node(tmp_path, "v20.17.1"))
        == "Node.js is 20.17; the local OpenID provider needs 20.18 or later"
    )
    assert unavailable(fake_node(tmp_path, "v20.18.0")) is None
    assert unavailable(fake_node(tmp_path, "v22.12.0")) is None


def test_without_node_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert unavailable() == "Node.js is not installed (the local OpenID provider needs Node.js 20.18 or later)"


def test_not_installed_says_which_make_target_installs_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identity_provider, "INSTALLED", tmp_path / "missing" / "package.json")
    message = unavailable(fake_node(tmp_path, "v20.20.2"))
    assert message is not None
    assert "make oidc-provider" in message


# Whether `make run` starts it.


def test_auto_falls_back_to_the_demo_platform_with_a_line_saying_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identity_provider, "unavailable", lambda node=None: "Node.js is not installed")
    config, note = resolve_oidc(Config.from_env({}))
    assert config.oidc == "off"
    assert note == "No local OpenID provider (Node.js is not installed): sign-in at the demo platform."


def test_asked_for_and_missing_it_does_not_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identity_provider, "unavailable", lambda node=None: "Node.js is not installed")
    with pytest.raises(StartError, match=r"^OIDC=on, but Node.js is not installed$"):
        resolve_oidc(Config.from_env({"OIDC": "on"}))


def test_available_it_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(identity_provider, "unavailable", lambda node=None: None)
    assert resolve_oidc(Config.from_env({})) == (Config.from_env({}), None)


# Its output.


def test_its_requests_become_console_lines_and_nothing_else_does() -> None:
    out = io.StringIO()
    line = stack._provider_line(Console(out=out, err=io.StringIO()))
    line({"method": "POST", "path": "/token", "status": 400, "route": "token", "error": "invalid_grant"})
    line({"method": "GET", "path": "/nowhere", "status": 404, "route": None, "error": None})
    line({"method": "GET", "path": 7, "status": "200"})  # not a request record: dropped
    printed = [text[9:] for text in out.getvalue().splitlines()]
    assert printed == [
        "POST /token 400 token invalid_grant  (OpenID provider)",
        "GET /nowhere 404  (OpenID provider)",
    ]


@pytest.mark.skipif(identity_provider.unavailable() is not None, reason="needs Node.js and make oidc-provider")
def test_a_provider_that_cannot_start_says_why_in_one_line() -> None:
    provider = LocalProvider(PLAN, client_secret="short")
    provider.start()
    with pytest.raises(ProviderStartError) as raised:
        provider.wait_ready(timeout=20)
    assert str(raised.value) == (
        "The local OpenID provider did not start: oidc provider: OIDC_CLIENT_SECRET must be set (16 characters or more)"
    )
    assert provider.pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(provider.pid, 0)
