"""Browser tests: Debian's headless Chromium through the local stack, ending on HTTPS vendor stand-ins.

The stack is the integration tests' (one per session; ``oidc_stack`` for sign-in at the local OpenID provider).
Each vendor is played by ``local.vendors`` over HTTPS under its real host name: Chromium maps those names to
local ports (``--host-resolver-rules``), so nothing leaves the machine and the browser follows every redirect
itself. (Playwright's ``page.route`` cannot stand in: it only sees the first URL of a redirect chain, and the
vendor is reached at the end of one.)

``browser`` starts Chromium with a fresh profile per test; ``oidc_browser`` is a fresh context (cookies and all)
in one Chromium per module, whose resolver rules point at ``oidc_stack``'s own stand-ins.

A failed test leaves a screenshot of the page it was on in ``.e2e-screenshots/`` and says where.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local import vendors
from local.lambdas import LOCAL_DEFAULTS
from local.server import Server, serve
from tests.helpers import ROOT, VENDOR_KEYS, WORKSPACE
from tests.integration.stack import RunningStack, local_stack, oidc_stack
from tests.tls import self_signed

__all__ = [
    "VendorSites",
    "browser",
    "local_stack",
    "make_link",
    "oidc_browser",
    "oidc_stack",
    "oidc_vendor_sites",
    "vendor_sites",
]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / ".e2e-screenshots"
KUSTOMER_HOST = LOCAL_DEFAULTS["KUSTOMER_REDIRECT_HOSTS"].split(",")[0]
HAPPYFOX_HOST = LOCAL_DEFAULTS["HAPPYFOX_ACCOUNT_URL"].removeprefix("https://")

_REPORT = pytest.StashKey[dict[str, pytest.TestReport]]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not CHROMIUM.exists():
        skip = pytest.mark.skip(reason="needs Debian's Chromium at /usr/bin/chromium: make chromium")
        for item in items:
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report: pytest.TestReport = yield
    item.stash.setdefault(_REPORT, {})[report.when] = report
    return report


@dataclass(frozen=True)
class VendorSites:
    """The HTTPS stand-ins, by vendor host, and the resolver rule that sends Chromium to them."""

    ports: dict[str, int]

    @property
    def resolver_rules(self) -> str:
        return ", ".join(f"MAP {host} 127.0.0.1:{port}" for host, port in self.ports.items())


@contextlib.contextmanager
def _serve_vendor_sites(stack: RunningStack, tls_dir: Path) -> Iterator[VendorSites]:
    """One stand-in per vendor, configured as ``stack``'s functions are (hosts, keys, the bridge's URLs)."""
    apps = {
        WORKSPACE: vendors.clickfunnels(workspace_domain=WORKSPACE, key=VENDOR_KEYS["clickfunnels"]),
        KUSTOMER_HOST: vendors.kustomer(
            portal_host=KUSTOMER_HOST, key=VENDOR_KEYS["kustomer"], redirect_uri=stack.url("/kustomer/login")
        ),
        HAPPYFOX_HOST: vendors.happyfox(
            account_host=HAPPYFOX_HOST,
            key=VENDOR_KEYS["happyfox"],
            remote_login_url=stack.url("/happyfox/login"),
        ),
    }
    tls = self_signed(tls_dir, list(apps))
    servers: list[Server] = [serve("127.0.0.1", 0, app, tls=tls) for app in apps.values()]
    try:
        yield VendorSites({host: server.port for host, server in zip(apps, servers, strict=True)})
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="session")
def vendor_sites(local_stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VendorSites]:
    with _serve_vendor_sites(local_stack, tmp_path_factory.mktemp("tls")) as sites:
        yield sites


@pytest.fixture(scope="session")
def oidc_vendor_sites(oidc_stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VendorSites]:
    """The same stand-ins for ``oidc_stack``: its Kustomer Redirect URI and HappyFox Remote Login URL."""
    with _serve_vendor_sites(oidc_stack, tmp_path_factory.mktemp("tls")) as sites:
        yield sites


@pytest.fixture(scope="session")
def playwright() -> Iterator[Any]:
    """One Playwright driver for the session (its sync API allows one at a time)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@contextlib.contextmanager
def _screenshot_on_failure(page: Any, request: pytest.FixtureRequest) -> Iterator[None]:
    try:
        yield
    finally:
        report = request.node.stash.get(_REPORT, {}).get("call")
        if report is not None and report.failed:
            SCREENSHOTS.mkdir(exist_ok=True)
            shot = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', request.node.name)}.png"
            page.screenshot(path=str(shot), full_page=True)
            report.sections.append(("screenshot", f"{shot} (page was at {page.url.split('?')[0]})"))


@pytest.fixture
def browser(vendor_sites: VendorSites, playwright: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh Chromium profile and page; on failure, a screenshot of where the page ended up."""
    resolver = f"--host-resolver-rules={vendor_sites.resolver_rules}"
    with tempfile.TemporaryDirectory(prefix="sso-bridge-chromium-") as profile:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=[*CHROMIUM_ARGS, resolver],
            ignore_https_errors=True,  # the stand-ins' certificate is self-signed
        )
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(15_000)
        try:
            with _screenshot_on_failure(page, request):
                yield page
        finally:
            context.close()


@pytest.fixture(scope="module")
def oidc_chromium(oidc_vendor_sites: VendorSites, playwright: Any) -> Iterator[Any]:
    """One Chromium for a module of OIDC tests; each test gets a context of its own (``oidc_browser``)."""
    resolver = f"--host-resolver-rules={oidc_vendor_sites.resolver_rules}"
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[*CHROMIUM_ARGS, resolver])
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def oidc_browser(oidc_chromium: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page in a fresh context (no cookies: signed out of the bridge and the provider); screenshot on failure."""
    context = oidc_chromium.new_context(ignore_https_errors=True)  # the stand-ins' certificate is self-signed
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        with _screenshot_on_failure(page, request):
            yield page
    finally:
        context.close()


def start_page(stack: RunningStack, vendor: str) -> str:
    """Where a signed-out user starts: a platform link, or for Kustomer and HappyFox the portal's own Log in."""
    return {
        "clickfunnels": stack.url("/clickfunnels/sso"),
        "kustomer": f"https://{KUSTOMER_HOST}/login",
        "happyfox": f"https://{HAPPYFOX_HOST}/",
    }[vendor]


def make_link(stack: RunningStack, provider: str, email: str, **variables: str) -> str:
    """What an operator gets from `make link ... LOCAL=1` for this stack: one URL."""
    argv = ["make", "-s", "--no-print-directory", "link", "LOCAL=1", f"PROVIDER={provider}", f"EMAIL={email}"]
    argv += [f"{name}={value}" for name, value in variables.items()]
    result = subprocess.run(
        argv, cwd=ROOT, env=stack.command_env(), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    [url] = result.stdout.split()
    return url
