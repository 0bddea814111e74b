"""Browser tests: Debian's headless Chromium through the local stack, ending on HTTPS vendor stand-ins.

The stack is the integration tests' (one per session; ``oidc_stack`` for sign-in at the local OpenID provider).
Each vendor is played by ``local.vendors`` over HTTPS under its real host name: Chromium maps those names to
local ports (``--host-resolver-rules``), so nothing leaves the machine and the browser follows every redirect
itself. (Playwright's ``page.route`` cannot stand in: it only sees the first URL of a redirect chain, and the
vendor is reached at the end of one.)

The stand-ins are built from the vendor registry (``local.vendors.SPECS``): every host each vendor's ``SPEC``
names, with the key tests.helpers gave the stack and the bridge's route on the stack's HTTP API, so a new vendor
needs nothing here. ``browser`` is a fresh context (cookies and all) in one Chromium per session
(``browser_without_scripts``: JavaScript off); ``oidc_browser`` the same in one Chromium per module, whose
resolver rules point at ``oidc_stack``'s own stand-ins.

A failed test leaves a screenshot of the page it was on in ``.e2e-screenshots/`` and says where.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local.lambdas import LOCAL_DEFAULTS
from local.server import App, Server, serve
from local.state import read_state
from local.vendors import SPECS
from local.vendors.site import StandInContext
from tests.helpers import ROOT, VENDOR_KEYS
from tests.integration.stack import RunningStack, local_stack, oidc_stack
from tests.tls import self_signed

__all__ = [
    "VendorSites",
    "browser",
    "browser_without_scripts",
    "chromium_for_vendors",
    "local_stack",
    "make_link",
    "oidc_browser",
    "oidc_stack",
    "oidc_vendor_sites",
    "vendor_hosts",
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


def vendor_hosts(vendor: str) -> tuple[str, ...]:
    """The hosts a vendor's stand-ins answer on for the test stacks (the local defaults), where users start first:
    Canny's board then canny.io, Freshworks' portal then its account's host."""
    [spec] = [spec for spec in SPECS if spec.vendor == vendor]
    return spec.hosts_in(LOCAL_DEFAULTS)


_REPORT = pytest.StashKey[dict[str, pytest.TestReport]]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not CHROMIUM.exists():
        skip = pytest.mark.skip(reason="needs Debian's Chromium at /usr/bin/chromium: make chromium")
        for item in items:
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
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


def _stand_ins(stack: RunningStack) -> dict[str, App]:
    """Every vendor's stand-in, by host, built from its ``SPEC`` as ``make run`` builds it: the hosts and settings
    ``stack``'s functions run with (its state file), the key tests.helpers gave the stack, its HTTP API's route.

    Kustomer's brands other than the default are not served: the stack generates their keys."""
    settings = read_state(stack.command_env()).settings
    env = {**LOCAL_DEFAULTS, **settings}
    apps: dict[str, App] = {}
    for spec in SPECS:
        for host in spec.hosts_in(env):
            context = StandInContext(
                host=host, key=VENDOR_KEYS[spec.vendor], login_url=stack.url(spec.login_path), env=env
            )
            apps.setdefault(host, spec.make(context))
    return apps


@contextlib.contextmanager
def _serve_vendor_sites(stack: RunningStack, tls_dir: Path) -> Iterator[VendorSites]:
    """One HTTPS server per vendor host, configured as ``stack``'s functions are (hosts, keys, the bridge's URLs)."""
    apps = _stand_ins(stack)
    tls = self_signed(tls_dir, list(apps))
    servers: list[Server] = []
    try:
        for app in apps.values():
            servers.append(serve("127.0.0.1", 0, app, tls=tls))
        yield VendorSites({host: server.port for host, server in zip(apps, servers, strict=True)})
    finally:
        # Together: each stop waits up to half a second for its server's loop to notice.
        with ThreadPoolExecutor(max_workers=max(len(servers), 1)) as pool:
            list(pool.map(Server.stop, servers))


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


def _launch(playwright: Any, sites: VendorSites) -> Any:
    """Chromium whose resolver sends every vendor host to its stand-in (the rules are fixed at launch)."""
    resolver = f"--host-resolver-rules={sites.resolver_rules}"
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[*CHROMIUM_ARGS, resolver])


@contextlib.contextmanager
def _fresh_page(chromium: Any, request: pytest.FixtureRequest, **options: Any) -> Iterator[Any]:
    """A page in a context of its own: no cookies or storage from another test (signed out everywhere)."""
    context = chromium.new_context(ignore_https_errors=True, **options)  # the stand-ins' certificate is self-signed
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        with _screenshot_on_failure(page, request):
            yield page
    finally:
        context.close()


@pytest.fixture(scope="session")
def chromium_for_vendors(vendor_sites: VendorSites, playwright: Any) -> Iterator[Any]:
    """One Chromium for the session's ``local_stack`` tests; each test gets a context of its own (``browser``)."""
    chromium = _launch(playwright, vendor_sites)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def browser(chromium_for_vendors: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page in a fresh context (a fresh profile costs a second more per test); screenshot on failure."""
    with _fresh_page(chromium_for_vendors, request) as page:
        yield page


@pytest.fixture
def browser_without_scripts(chromium_for_vendors: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """``browser`` with JavaScript turned off, as some readers have it."""
    with _fresh_page(chromium_for_vendors, request, java_script_enabled=False) as page:
        yield page


@pytest.fixture(scope="module")
def oidc_chromium(oidc_vendor_sites: VendorSites, playwright: Any) -> Iterator[Any]:
    """One Chromium for a module of OIDC tests; each test gets a context of its own (``oidc_browser``)."""
    chromium = _launch(playwright, oidc_vendor_sites)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def oidc_browser(oidc_chromium: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page in a fresh context (no cookies: signed out of the bridge and the provider); screenshot on failure."""
    with _fresh_page(oidc_chromium, request) as page:
        yield page


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
