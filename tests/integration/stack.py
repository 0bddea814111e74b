"""`python -m local.stack` as a subprocess on free ports, shared by the integration and browser tests.

The stack gets a clean environment (the unit tests' variables in this process point elsewhere) with the
keys from tests.helpers, so tests verify what it signs with keys they know.

Two stacks at most per session: ``local_stack`` signs signed-out users in at the demo platform (``OIDC=off``),
``oidc_stack`` at the local OpenID provider (``OIDC=on``, with ``OIDC_LOGOUT``), on the port after the others.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from html import unescape
from http.cookies import SimpleCookie
from pathlib import Path
from typing import IO
from urllib.parse import urljoin

import pytest

from local.template import functions
from local.vendors import SPECS
from tests.helpers import LOGIN_TOKEN_KEY, ROOT, VENDOR_KEYS, WORKSPACE
from tests.integration.client import Client, Response
from tests.integration.dynamodb import stack_dynamodb

__all__ = [
    "OIDC_CLIENT_SECRET",
    "STACK_ENV",
    "STANDIN_HOSTS",
    "CookieClient",
    "ProviderTrip",
    "RunningStack",
    "free",
    "free_block",
    "local_stack",
    "oidc_stack",
    "provider_missing",
    "sign_in_at_provider",
    "start_stack",
]

OIDC_CLIENT_SECRET = "test-oidc-client-secret-0123456789abcdef0123"
# Shell variables the stack reads; every vendor's key, in the variable its stand-in module names (SPEC.seed_var:
# DISCOURSE_CONNECT_SECRET, FRESHWORKS_PRIVATE_KEY_PEM, ...).
STACK_ENV = {
    "LOGIN_TOKEN_SECRET": LOGIN_TOKEN_KEY,
    **{spec.seed_var: VENDOR_KEYS[spec.vendor] for spec in SPECS},
    "CLICKFUNNELS_WORKSPACE_DOMAIN": WORKSPACE,
    "OIDC_CLIENT_SECRET": OIDC_CLIENT_SECRET,
}
_PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
_START_TIMEOUT = 60.0
_KEY = pytest.StashKey["RunningStack"]()
_OIDC_KEY = pytest.StashKey["RunningStack"]()

# Every vendor host `make run` serves by default, in port order after the function URLs (local.standins):
# ClickFunnels, Kustomer's default portal and the demo brand's, HappyFox, then the vendors that came after.
STANDIN_HOSTS = (
    WORKSPACE,
    "yourcompany.kustomer.help",
    "acme.kustomer.help",
    "yourcompany.happyfox.com",
    "yourcompany.zendesk.com",
    "yourcompany.canny.io",
    "canny.io",
    "yourcompany.discourse.group",
    "yourcompany.freshdesk.com",
    "yourcompany.freshworks.com",
)


@dataclass
class RunningStack:
    port: int
    aws_port: int
    function_url_ports: dict[str, int]  # function name (functions/<name>) -> port
    process: subprocess.Popen[bytes]
    log: IO[bytes] = field(repr=False)
    state_file: Path = field(default=Path(), repr=False)  # LOCAL_STACK_FILE: how local commands find this stack
    provider_port: int | None = None  # the local OpenID provider's (OIDC=on)

    @property
    def issuer(self) -> str:
        assert self.provider_port is not None, "this stack runs without the local OpenID provider"
        return f"http://localhost:{self.provider_port}"

    def provider_url(self, path: str = "/") -> str:
        return f"{self.issuer}{path}"

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


_RANDOM = random.SystemRandom()  # not reseeded by a test's random.seed


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_block(size: int) -> int:
    """A port with the ``size - 1`` ports after it free too (the API, then one per function URL).

    Taken below the kernel's ephemeral range: a port the kernel hands out for ``bind(0)`` or as the source of an
    outgoing connection (the stack's own DynamoDB Local, any client) can be taken between this check and the
    stack's bind, which once made `make run` refuse a port of its block in CI.
    """
    top = _ephemeral_low() - size
    for _ in range(200):
        base = _RANDOM.randrange(10000, top)
        if all(free(base + offset) for offset in range(size)):
            return base
    raise RuntimeError("no block of free ports")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def provider_missing() -> str | None:
    """Why the local OpenID provider cannot run here (no Node.js, not installed), or None."""
    from local.identity_provider import unavailable

    return unavailable()


def require_provider() -> None:
    """Skip a test that needs the local OpenID provider where it cannot run; in CI (``CI`` set), fail instead:
    `make test` installs it there, so its absence is a broken set-up, not a machine without Node.js."""
    missing = provider_missing()
    if missing and os.environ.get("CI"):
        pytest.fail(f"no local OpenID provider in CI: {missing}")
    if missing:
        pytest.skip(f"no local OpenID provider: {missing}")


def start_stack(extra_env: dict[str, str] | None = None, *, extra_ports: int = 0, oidc: bool = False) -> RunningStack:
    """Start the stack and wait until its index answers; stops it again if it never does.

    Vendor stand-ins are off unless ``extra_env`` turns them on (with ``extra_ports`` for them): tests look at
    the redirects to the vendors' real hosts, and browser tests map those hosts to their own stand-ins.
    ``oidc``: with the local OpenID provider, on the port after the stand-ins'. Else OIDC is off, unless
    ``extra_env`` names a provider of its own (``OIDC_ISSUER``, with ``OIDC_CLIENT_ID``).
    """
    # VENDORS: only those vendors' function URLs take ports (a bad value is the stack's to refuse).
    names = [name.strip().lower() for name in (extra_env or {}).get("VENDORS", "").split(",") if name.strip()]
    url_functions = [s for s in functions() if s.function_url and (not names or Path(s.code_uri).name in names)]
    port = free_block(1 + len(url_functions) + extra_ports + int(oidc))
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
        **({} if extra_env and "OIDC_ISSUER" in extra_env else {"OIDC": "on" if oidc else "off"}),
        **stack_dynamodb(),  # one DynamoDB Local for every test stack, a database each (tests/integration/dynamodb.py)
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
        provider_port=port + 1 + len(url_functions) + extra_ports if oidc else None,
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


@pytest.fixture(scope="session")
def oidc_stack(request: pytest.FixtureRequest) -> RunningStack:
    """One stack per session that signs users in at the local OpenID provider (skipped without Node.js).

    ``OIDC_LOGOUT`` is on: ``/happyfox/logout`` ends the provider's session too.
    """
    require_provider()
    config = request.config
    if _OIDC_KEY not in config.stash:
        stack = start_stack({"OIDC_LOGOUT": "true"}, oidc=True)
        config.stash[_OIDC_KEY] = stack
        config.add_cleanup(stack.stop)
    return config.stash[_OIDC_KEY]


# Signing in at the local OpenID provider over plain HTTP, as a browser would.


class CookieClient(Client):
    """``Client`` with a cookie jar, for the provider's round trip: its session cookies and the bridge's state
    cookie. One jar for every port on localhost, as browsers keep them (cookies ignore ports). It also sends the
    bridge's ``Secure`` cookie over http://localhost, as Chromium does and Python's cookie jars do not."""

    def __init__(self) -> None:
        self.jar: dict[str, str] = {}

    def request(
        self, method: str, url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        # A Cookie header the caller sends (an email link page's cookie) is merged into the jar's, not sent twice.
        given, cookies = headers or {}, dict(self.jar)
        for value in (value for name, value in given.items() if name.lower() == "cookie"):
            cookies |= {key: val for key, _, val in (pair.strip().partition("=") for pair in value.split(";")) if key}
        headers = {name: value for name, value in given.items() if name.lower() != "cookie"}
        if cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
        response = super().request(method, url, body=body, headers=headers)
        for raw in response.headers.get_all("Set-Cookie") or []:
            cookie: SimpleCookie = SimpleCookie()
            cookie.load(raw)
            for name, morsel in cookie.items():
                if morsel["max-age"] == "0" or "1970" in morsel["expires"]:
                    self.jar.pop(name, None)
                else:
                    self.jar[name] = morsel.value
        return response


@dataclass(frozen=True)
class ProviderTrip:
    login_redirect: Response  # the bridge sending the signed-out user to the provider
    callback_url: str  # where the provider sent them back: the bridge's /oidc/callback?code=...&state=...&iss=...
    final: Response  # the bridge's answer to the callback


def sign_in_at_provider(client: CookieClient, stack: RunningStack, link: str, *, login: str) -> ProviderTrip:
    """Follow ``link`` signed out: to the provider, its login page (any password), and back to the callback."""
    login_redirect = client.get(link)
    assert login_redirect.status in (302, 303), login_redirect.text
    assert login_redirect.location.startswith(f"{stack.issuer}/auth?"), login_redirect.location
    response = client.get(login_redirect.location)
    while response.status in (302, 303) and response.location.startswith(("/", stack.issuer)):
        url = urljoin(stack.issuer, response.location)
        if "/interaction/" not in url:
            response = client.get(url)
            continue
        page = client.get(url)
        assert page.status == 200, page.text
        found = re.search(r'<form[^>]* action="([^"]+)"', page.text)
        assert found, page.text
        action = urljoin(url, unescape(found.group(1)))
        response = client.post_form(action, {"prompt": "login", "login": login, "password": "any password"})
    callback_url = response.location
    assert response.status == 303, response.text
    final = client.get(callback_url)
    return ProviderTrip(login_redirect, callback_url, final)
