"""`make rotate-login-key LOCAL=1` against a running local stack, as an operator types it.

The stack is this module's own (a rotation would break the shared one's known key for other tests), started
with ``SECRETS_MAX_AGE=0`` so the functions read the login-token secret at every request, as they do in
Lambda once their cache expires.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from botocore.exceptions import ClientError

from ops.target import resolve
from tests.helpers import LOGIN_TOKEN_KEY, ROOT, WORKSPACE, make_login_token
from tests.integration.client import Client
from tests.integration.stack import RunningStack, start_stack


@pytest.fixture(scope="module")
def stack() -> Iterator[RunningStack]:
    running = start_stack({"SECRETS_MAX_AGE": "0"})
    try:
        yield running
    finally:
        running.stop()


def make(stack: RunningStack, target: str, *, env: dict[str, str] | None = None, **variables: str) -> Any:
    argv = ["make", "-s", "--no-print-directory", "-o", ".venv/.installed", f"BIN={Path(sys.executable).parent}"]
    argv += [target, "LOCAL=1", *(f"{name}={value}" for name, value in variables.items())]
    return subprocess.run(
        argv, cwd=ROOT, env=stack.command_env(**(env or {})), capture_output=True, text=True, timeout=120
    )


def secrets_client(stack: RunningStack) -> Any:
    return resolve(True, "", environ={"LOCAL_STACK_FILE": str(stack.state_file)}).secretsmanager()


def key(stack: RunningStack, stage: str = "AWSCURRENT") -> str:
    target = resolve(True, "", environ={"LOCAL_STACK_FILE": str(stack.state_file)})
    value: str = secrets_client(stack).get_secret_value(
        SecretId=target.resource("LOGIN_TOKEN_SECRET_ID"), VersionStage=stage
    )["SecretString"]
    return value


def signs_in(stack: RunningStack, token: str) -> bool:
    """The bridge's answer to a ClickFunnels sign-in with ``token``: to the portal (True) or refused (False)."""
    response = Client().get(stack.url(f"/clickfunnels/sso?login_token={token}"))
    if response.status == 302 and urlsplit(response.location).hostname == WORKSPACE:
        return True
    assert response.status == 401, response.text
    return False


def login_token(stack: RunningStack) -> str:
    """`make login-token` in a shell that exported the seed key, as the stack's banner suggests."""
    minted = make(stack, "login-token", EMAIL="rotated@example.com", env={"LOGIN_TOKEN_SECRET": LOGIN_TOKEN_KEY})
    assert minted.returncode == 0, minted.stderr
    return str(minted.stdout.strip())


def test_routine_rotation_new_key_works_and_the_old_one_still_does(stack: RunningStack) -> None:
    old = key(stack)

    # When the operator rotates the local stack's key
    result = make(stack, "rotate-login-key")

    # Then a new key is current, the report names no key, and both keys sign in
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    new = key(stack)
    assert new != old
    assert key(stack, "AWSPREVIOUS") == old
    assert new not in result.stdout
    assert old not in result.stdout
    assert "rotated the login-token key of the local stack at" in result.stdout
    assert "stays valid until" in result.stdout
    assert signs_in(stack, make_login_token(key=new))
    assert signs_in(stack, make_login_token(key=old))
    # And `make login-token` signs with the new key, whatever the shell exported
    token = login_token(stack)
    assert jwt.decode(token, new, algorithms=["HS256"], audience="clickfunnels")
    assert signs_in(stack, token)


def test_emergency_rotation_refuses_the_old_key_at_once(stack: RunningStack) -> None:
    old = key(stack)

    # When the operator rotates in an emergency, asking for the key to hand over
    result = make(stack, "rotate-login-key", EMERGENCY="1", SHOW_KEY="1")

    # Then the key alone is on stdout, and it is the current one; there is no previous key
    assert result.returncode == 0, result.stderr
    new = result.stdout.strip()
    assert result.stdout == new + "\n"
    assert new == key(stack)
    assert new not in result.stderr
    assert "(emergency)" in result.stderr
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        key(stack, "AWSPREVIOUS")
    # And a token signed with the old key is refused, one with the new key works
    assert not signs_in(stack, make_login_token(key=old))
    assert signs_in(stack, make_login_token(key=new))
    assert signs_in(stack, login_token(stack))


def test_the_demo_platform_signs_with_the_key_in_force_after_an_emergency(stack: RunningStack) -> None:
    assert make(stack, "rotate-login-key", EMERGENCY="1").returncode == 0
    trip = Client().sign_in(stack.url("/clickfunnels/sso"), email="demo@example.com")
    assert trip.final.status == 302, trip.final.text
    assert urlsplit(trip.final.location).hostname == WORKSPACE
