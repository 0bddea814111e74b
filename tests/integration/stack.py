"""`python -m local.stack` as a subprocess on free ports, shared by the integration and browser tests.

The stack gets a clean environment (the unit tests' variables in this process point elsewhere) with the
keys from tests.helpers, so tests verify what it signs with keys they know.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from local.template import functions
from tests.helpers import LOGIN_TOKEN_KEY, ROOT, VENDOR_KEYS, WORKSPACE

__all__ = ["STACK_ENV", "RunningStack", "free", "free_block", "local_stack", "start_stack"]

# Shell variables the stack reads; vendor keys for every vendor, also those not in the template yet.
STACK_ENV = {
    "LOGIN_TOKEN_SECRET": LOGIN_TOKEN_KEY,
    **{f"{vendor.upper()}_JWT_SECRET": key for vendor, key in VENDOR_KEYS.items()},
    "CLICKFUNNELS_WORKSPACE_DOMAIN": WORKSPACE,
}
_PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
_START_TIMEOUT = 60.0
_KEY = pytest.StashKey["RunningStack"]()


@dataclass
class RunningStack:
    port: int
    aws_port: int
    function_url_ports: dict[str, int]  # function name (functions/<name>) -> port
    process: subprocess.Popen[bytes]
    log: IO[bytes] = field(repr=False)
    state_file: Path = field(default=Path(), repr=False)  # LOCAL_STACK_FILE: how local commands find this stack

    def command_env(self, **extra: str) -> dict[str, str]:
        """A clean environment for a local command (make link, ops.audit, ...) aimed at this stack."""
        env = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}
        return {**env, "LOCAL_STACK_FILE": str(self.state_file), **extra}

    def url(self, path: str = "/") -> str:
        return f"http://localhost:{self.port}{path}"

    def function_url(self, name: str, path: str = "/") -> str:
        return f"http://localhost:{self.function_url_ports[name]}{path}"

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_block(size: int) -> int:
    """A port with the ``size - 1`` ports after it free too (the API, then one per function URL)."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + size < 65536 and all(free(base + offset) for offset in range(size)):
            return base
    raise RuntimeError("no block of free ports")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_stack(extra_env: dict[str, str] | None = None, *, extra_ports: int = 0) -> RunningStack:
    """Start the stack and wait until its index answers; stops it again if it never does.

    Vendor stand-ins are off unless ``extra_env`` turns them on (with ``extra_ports`` for them): tests look at
    the redirects to the vendors' real hosts, and browser tests map those hosts to their own stand-ins.
    """
    url_functions = [spec for spec in functions() if spec.function_url]
    port = free_block(1 + len(url_functions) + extra_ports)
    aws_port = free_block(1)
    state_dir = Path(tempfile.mkdtemp(prefix="sso-bridge-state-"))
    env = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}
    env |= {
        **STACK_ENV,
        "PORT": str(port),
        "LOCAL_AWS_PORT": str(aws_port),
        "HOST": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
        "VENDOR_STANDINS": "off",
        "LOCAL_STACK_FILE": str(state_dir / "local-stack.json"),
        **(extra_env or {}),
    }
    log = tempfile.NamedTemporaryFile(prefix="sso-bridge-stack-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "local.stack"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    stack = RunningStack(
        port=port,
        aws_port=aws_port,
        function_url_ports={Path(s.code_uri).name: port + 1 + i for i, s in enumerate(url_functions)},
        process=process,
        log=log,
        state_file=Path(env["LOCAL_STACK_FILE"]),
    )
    deadline = time.monotonic() + _START_TIMEOUT
    while not _answers(stack.url("/")):
        if process.poll() is not None or time.monotonic() > deadline:
            stack.stop()
            raise RuntimeError(f"local stack did not start:\n{stack.output()}")
        time.sleep(0.2)
    return stack


@pytest.fixture(scope="session")
def local_stack(request: pytest.FixtureRequest) -> RunningStack:
    """One stack per test session, whichever test directory asks first; stopped when pytest ends."""
    config = request.config
    if _KEY not in config.stash:
        stack = start_stack()
        config.stash[_KEY] = stack
        config.add_cleanup(stack.stop)
    return config.stash[_KEY]
