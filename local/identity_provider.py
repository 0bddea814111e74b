"""The local OpenID provider: panva's ``oidc-provider`` (``local/oidc_provider/``) under Node.js, with the stack.

``make run`` signs users in through it unless told otherwise (see ``local.config.Config``): a real, OpenID
Certified provider on loopback, so the bridge's OIDC sign-in runs end to end with no account anywhere. Its
development login page takes any login and any password; ``ACCOUNTS`` are the two users the tour names (the
login is the email, ``@example.com`` added when it has none; any other login is a verified email, no name).

Started without a shell: settings as arguments, the client secret in its environment (arguments show in
``ps``). Node reads nothing else of ours. Its stdout carries one JSON line per request, printed here as the
stack's console lines; its notices (Node 20 is below oidc-provider 9's supported LTS, in-memory storage,
development login pages) are expected locally and kept quiet unless it fails to start.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = [
    "ACCOUNTS",
    "CALLBACK_PATH",
    "CLIENT_ID",
    "MIN_NODE",
    "PROVIDER_DIR",
    "SCRIPT",
    "Account",
    "LocalProvider",
    "ProviderPlan",
    "ProviderStartError",
    "bridge_uris",
    "login_email",
    "node_version",
    "unavailable",
]

PROVIDER_DIR = Path(__file__).resolve().parent / "oidc_provider"
SCRIPT = PROVIDER_DIR / "provider.mjs"
INSTALLED = PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json"
CALLBACK_PATH = "/oidc/callback"
CLIENT_ID = "sso-bridge-local"
# URL.parse, which oidc-provider 9 calls, arrived in Node 20.18 (it names 22 LTS as supported and warns on 20).
MIN_NODE = (20, 18)
_START_TIMEOUT = 20.0
_STOP_TIMEOUT = 5.0
_EXPECTED_NOTICES = ("oidc-provider WARNING:", "oidc-provider NOTICE:")


@dataclass(frozen=True)
class Account:
    login: str  # what to type on the provider's login page
    email: str
    email_verified: bool
    name: str

    def as_json(self) -> dict[str, object]:
        return {"email": self.email, "email_verified": self.email_verified, "name": self.name}


ACCOUNTS = (
    Account("jane", "jane@example.com", True, "Jane Doe"),
    Account("mallory", "mallory@example.com", False, "Mallory"),
)


def login_email(login: str) -> str:
    """The email the provider gives a login (as provider.mjs does): lower-cased, ``@example.com`` if bare."""
    email = login.strip().lower()
    return email if "@" in email else f"{email}@example.com"


class ProviderStartError(Exception):
    """The provider did not come up: the message is one line (its own complaint when it made one)."""


def node_version(node: str) -> tuple[int, int] | None:
    try:
        result = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return None
    found = re.match(r"^v(\d+)\.(\d+)", result.stdout.strip())
    return (int(found.group(1)), int(found.group(2))) if found else None


def unavailable(node: str | None = None) -> str | None:
    """Why the local provider cannot run here (one line that says what to do), or None when it can."""
    node = node or shutil.which("node")
    if node is None:
        return "Node.js is not installed (the local OpenID provider needs Node.js 20.18 or later)"
    version = node_version(node)
    if version is None or version < MIN_NODE:
        shown = "an unknown version" if version is None else f"{version[0]}.{version[1]}"
        return f"Node.js is {shown}; the local OpenID provider needs 20.18 or later"
    if not INSTALLED.exists():
        return "the local OpenID provider is not installed: run `make oidc-provider` (npm ci in local/oidc_provider)"
    return None


@dataclass(frozen=True)
class ProviderPlan:
    """What the provider is told: where it listens, its issuer, and the bridge as its one client."""

    host: str
    port: int
    client_id: str
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    accounts: tuple[Account, ...] = ACCOUNTS

    @property
    def issuer(self) -> str:
        return f"http://localhost:{self.port}"

    def argv(self, node: str) -> list[str]:
        argv = [node, str(SCRIPT), f"--host={self.host}", f"--port={self.port}", f"--issuer={self.issuer}"]
        argv.append(f"--client-id={self.client_id}")
        argv += [f"--redirect-uri={uri}" for uri in self.redirect_uris]
        argv += [f"--post-logout-redirect-uri={uri}" for uri in self.post_logout_redirect_uris]
        argv.append("--accounts=" + json.dumps([account.as_json() for account in self.accounts]))
        return argv


def bridge_uris(ports: Sequence[int], path: str) -> tuple[str, ...]:
    """``path`` on each of the bridge's origins, as a browser may reach them (localhost and 127.0.0.1)."""
    return tuple(f"http://{host}:{port}{path}" for port in ports for host in ("localhost", "127.0.0.1"))


Printer = Callable[[dict[str, object]], None]


class LocalProvider:
    """The provider as a child process: ``start`` launches it, ``wait_ready`` waits until it listens, ``stop``
    ends it and its output threads. ``on_request`` gets each request's record (method, path, status, route,
    error), for the console."""

    def __init__(self, plan: ProviderPlan, *, client_secret: str, on_request: Printer | None = None) -> None:
        self.plan = plan
        self._secret = client_secret
        self._on_request = on_request
        self._process: subprocess.Popen[str] | None = None
        self._errors: deque[str] = deque(maxlen=20)
        self._ready = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def issuer(self) -> str:
        return self.plan.issuer

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, *, node: str | None = None) -> None:
        """Launch it (Node takes a moment to load): ``wait_ready`` before sending anyone there."""
        node = node or shutil.which("node") or "node"
        env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
        env |= {"OIDC_CLIENT_SECRET": self._secret, "NODE_ENV": "development", "NO_COLOR": "1"}
        self._process = subprocess.Popen(
            self.plan.argv(node),
            cwd=PROVIDER_DIR,
            env=env,
            stdin=subprocess.PIPE,  # held open: when the stack goes, however it goes, the provider does too
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # Ctrl-C reaches the stack, which stops the provider in its turn
        )
        assert self._process.stdout is not None
        assert self._process.stderr is not None
        self._threads = [
            threading.Thread(target=self._read_stdout, args=(self._process.stdout,), daemon=True),
            threading.Thread(target=self._read_stderr, args=(self._process.stderr,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def wait_ready(self, timeout: float = _START_TIMEOUT) -> None:
        """Until it listens; ``ProviderStartError`` (and it is stopped) when it exits or takes too long."""
        assert self._process is not None, "start() first"
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ProviderStartError(self._failure(timeout))

    def _failure(self, timeout: float) -> str:
        for thread in self._threads:
            thread.join(timeout=1)
        complaints = [line for line in self._errors if not line.startswith(_EXPECTED_NOTICES)]
        # Its own one-line complaint (provider.mjs), else Node's error line, not the stack trace under it.
        ours = [line for line in complaints if line.startswith("oidc provider:")]
        errors = [line for line in complaints if re.match(r"^\w*Error\b", line)]
        if ours or errors or complaints:
            return f"The local OpenID provider did not start: {(ours or errors or complaints)[-1]}"
        return f"The local OpenID provider did not start within {timeout:g} s"

    def _read_stdout(self, stream: IO[str]) -> None:
        for line in stream:
            try:
                record = json.loads(line)
            except ValueError:
                self._errors.append(line.strip())
                continue
            if not isinstance(record, dict):
                continue
            if "ready" in record:
                self._ready.set()
            elif self._on_request is not None:
                self._on_request(record)

    def _read_stderr(self, stream: IO[str]) -> None:
        for line in stream:
            if line.strip():
                self._errors.append(line.strip())

    def stop(self) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdin is not None:
            process.stdin.close()
        for thread in self._threads:
            thread.join(timeout=1)
