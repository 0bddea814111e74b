"""The README's local tour, as `make run` starts it: every vendor ends on "Signed in as ...", offline.

One stack for the module as `make run` has it by default: vendor stand-ins on, and signed-out users sent to the
local OpenID provider (``OIDC=on``), where the tour's users log in; the demo platform still mints login tokens
beside it. Stopped by the last test with SIGTERM, as `make run` is stopped; the port checks start stacks that
must refuse to start.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

import pytest

from local.demo_platform import LOGIN_PATH
from local.identity_provider import ACCOUNTS, CALLBACK_PATH
from local.template import functions
from tests.helpers import ROOT, WORKSPACE
from tests.integration.client import Client, Response
from tests.integration.stack import (
    OIDC_CLIENT_SECRET,
    STACK_ENV,
    STANDIN_HOSTS,
    CookieClient,
    RunningStack,
    free,
    free_block,
    provider_missing,
    require_provider,
    sign_in_at_provider,
    start_stack,
)

JANE, MALLORY = ACCOUNTS
EMAIL = JANE.email
PLATFORM_EMAIL = "jane.doe+vip@example.com"  # whoever the demo platform is told
LOCAL_HOSTS = ("localhost", "127.0.0.1")
REDIRECTS = (301, 302, 303, 307, 308)
LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d [A-Z]+ /\S* \d{3}( [a-z_]+)*( {2}\([^()]+\))?$")


@pytest.fixture(scope="module")
def tour_stack() -> Iterator[RunningStack]:
    require_provider()
    stack = start_stack({"VENDOR_STANDINS": "on"}, extra_ports=len(STANDIN_HOSTS), oidc=True)
    yield stack
    stack.stop()


@pytest.fixture
def browser() -> CookieClient:
    """Signed out everywhere: no cookie for the bridge or the provider."""
    return CookieClient()


def standin_url(stack: RunningStack, host: str, path: str = "/") -> str:
    return f"http://localhost:{stack.port + 1 + len(stack.function_url_ports) + STANDIN_HOSTS.index(host)}{path}"


def follow(client: Client, url: str, *, limit: int = 10) -> tuple[Response, list[str]]:
    """GET ``url`` and the redirects after it while they stay on the local stack; the last answer and the trail."""
    trail = [url]
    response = client.get(url)
    while response.status in REDIRECTS and len(trail) < limit:
        url = urljoin(url, response.location)
        if urlsplit(url).hostname not in LOCAL_HOSTS:
            break
        trail.append(url)
        response = client.get(url)
    return response, trail


def h1(response: Response) -> str:
    found = re.search(r"<h1>(.*?)</h1>", response.text, re.S)
    assert found, response.text
    return unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


def log_in_link(page: Response) -> str:
    found = re.search(r'<a href="([^"]+)">Log in</a>', page.text)
    assert found, page.text
    return unescape(found.group(1))


def sign_in_and_land(client: CookieClient, stack: RunningStack, link: str, *, login: str = JANE.login) -> Response:
    """Follow ``link`` signed out: the provider's login page, back through the bridge, then where it sends us."""
    trip = sign_in_at_provider(client, stack, link, login=login)
    assert trip.final.status == 302, trip.final.text
    landing, trail = follow(client, trip.final.location)
    assert urlsplit(trail[-1]).hostname in LOCAL_HOSTS, f"the bridge sent us off the stack: {trail}"
    return landing


# The tour, one vendor at a time.


def test_clickfunnels_link_ends_signed_in_at_the_customer_center(
    browser: CookieClient, tour_stack: RunningStack
) -> None:
    landing = sign_in_and_land(browser, tour_stack, tour_stack.url("/clickfunnels/sso"))
    assert landing.status == 200
    assert h1(landing) == f"Signed in as {EMAIL}"
    assert WORKSPACE in landing.text


@pytest.mark.parametrize(
    ("host", "expected_path"),
    [("yourcompany.kustomer.help", "/kustomer/login"), ("acme.kustomer.help", "/kustomer/brands/acme/login")],
)
def test_kustomer_portal_log_in_ends_signed_in_at_the_portal(
    browser: CookieClient, tour_stack: RunningStack, host: str, expected_path: str
) -> None:
    portal = browser.get(standin_url(tour_stack, host, "/login"))
    assert portal.status == 200
    link = log_in_link(portal)
    assert link.startswith(tour_stack.url(f"{expected_path}?"))  # the brand's Redirect URI on the stack

    landing = sign_in_and_land(browser, tour_stack, link)

    assert landing.status == 200
    assert h1(landing) == f"Signed in as {EMAIL}"
    assert host in landing.text


def test_kustomer_link_without_redirect_uri_lands_in_the_default_portal(
    browser: CookieClient, tour_stack: RunningStack
) -> None:
    landing = sign_in_and_land(browser, tour_stack, tour_stack.url("/kustomer/login"))
    assert landing.status == 200
    assert h1(landing) == f"Signed in as {EMAIL}"
    assert "yourcompany.kustomer.help" in landing.text


def test_happyfox_log_in_ends_signed_in_at_the_support_centre(browser: CookieClient, tour_stack: RunningStack) -> None:
    home = browser.get(standin_url(tour_stack, "yourcompany.happyfox.com"))
    assert home.status == 200
    link = log_in_link(home)
    assert link == tour_stack.url("/happyfox/login")

    landing = sign_in_and_land(browser, tour_stack, link)

    assert landing.status == 200
    assert h1(landing) == f"Signed in as {EMAIL}"
    assert f"Name: <strong>{JANE.name}</strong>" in landing.text


def test_function_url_link_ends_at_the_stand_in_too(browser: CookieClient, tour_stack: RunningStack) -> None:
    trip = sign_in_at_provider(browser, tour_stack, tour_stack.function_url("clickfunnels"), login=JANE.login)
    # The provider sends the user back to the function URL they started on
    assert trip.callback_url.startswith(tour_stack.function_url("clickfunnels", f"{CALLBACK_PATH}?"))
    landing, _ = follow(browser, trip.final.location)
    assert landing.status == 200
    assert h1(landing) == f"Signed in as {EMAIL}"


def test_any_other_login_is_that_email_and_verified(browser: CookieClient, tour_stack: RunningStack) -> None:
    landing = sign_in_and_land(browser, tour_stack, tour_stack.url("/clickfunnels/sso"), login="Sam")
    assert h1(landing) == "Signed in as sam@example.com"


def test_the_unverified_user_is_refused_with_a_way_to_try_again(
    browser: CookieClient, tour_stack: RunningStack
) -> None:
    link = tour_stack.url("/clickfunnels/sso")
    trip = sign_in_at_provider(browser, tour_stack, link, login=MALLORY.login)
    assert trip.final.status == 403
    assert h1(trip.final) == "This account cannot be used here"
    # (asking the provider to sign someone in afresh: its session is still mallory's)
    assert f'<a href="{link}?oidc_prompt=login">Try again</a>' in trip.final.text
    assert "Location" not in trip.final.headers
    assert MALLORY.email not in trip.final.text


def test_the_demo_platform_still_mints_login_tokens_beside_the_provider(
    client: Client, tour_stack: RunningStack
) -> None:
    # A platform that signs login tokens keeps working when the provider signs users in
    link = tour_stack.url("/clickfunnels/sso")
    minted = client.post_form(
        tour_stack.url(f"{LOGIN_PATH}?return_to={quote(link, safe='')}"), {"email": PLATFORM_EMAIL}
    )
    assert minted.status == 302
    assert minted.location.startswith(f"{link}?login_token=")
    landing, _ = follow(client, minted.location)
    assert h1(landing) == f"Signed in as {PLATFORM_EMAIL}"


# Every link shown works.


def index_links(client: Client, stack: RunningStack) -> list[str]:
    index = client.get(stack.url("/"))
    assert index.status == 200
    return [urljoin(stack.url("/"), unescape(href)) for href in re.findall(r'<a href="([^"]+)"', index.text)]


def banner_urls(stack: RunningStack) -> list[str]:
    output = stack.output()
    banner = output[output.index("sso-bridge local stack") : output.index("Ctrl-C to stop")]
    aws = f"http://127.0.0.1:{stack.aws_port}"  # the AWS endpoint, for SDKs: shown, never a page to open
    return [url for url in re.findall(r"https?://[^\s()]+", banner) if url != aws]


def test_every_link_on_the_index_and_in_the_banner_works(browser: CookieClient, tour_stack: RunningStack) -> None:
    links = index_links(browser, tour_stack)
    shown = banner_urls(tour_stack)
    # Everything the tour needs is shown, stand-ins included, and nothing on a made-up path
    for url in (
        tour_stack.url("/clickfunnels/sso"),
        tour_stack.url("/kustomer/login"),
        tour_stack.url("/kustomer/brands/acme/login"),
        tour_stack.url("/happyfox/login"),
        tour_stack.url(LOGIN_PATH),
        standin_url(tour_stack, "yourcompany.kustomer.help", "/login"),
        standin_url(tour_stack, "acme.kustomer.help", "/login"),
        standin_url(tour_stack, "yourcompany.happyfox.com"),
        tour_stack.provider_url("/.well-known/openid-configuration"),
    ):
        assert url in links
        assert url in shown
    assert all("{" not in url for url in links + shown)

    broken = {}
    for url in dict.fromkeys(links + shown):
        assert urlsplit(url).hostname in LOCAL_HOSTS, f"a link off the local stack: {url}"
        response, trail = follow(browser, url)  # sign-in links end on the provider's login page
        if response.status >= 400:
            broken[url] = (response.status, trail)
    assert not broken


def test_the_index_says_vendor_hosts_are_served_locally(client: Client, tour_stack: RunningStack) -> None:
    index = client.get(tour_stack.url("/")).text
    assert "Vendor hosts are served locally" in index
    for host in STANDIN_HOSTS:
        assert host in index
    assert "vendor hosts are served locally" in tour_stack.output()


def test_the_banner_and_index_show_the_provider_and_who_to_log_in_as(client: Client, tour_stack: RunningStack) -> None:
    output = tour_stack.output()
    banner = output[output.index("sso-bridge local stack") : output.index("Ctrl-C to stop")]
    index = unescape(client.get(tour_stack.url("/")).text)
    for shown in (banner, index):
        assert tour_stack.issuer in shown
        assert f"log in as {JANE.login}" in shown
        assert f"log in as {MALLORY.login}" in shown
        assert "OIDC=off" in shown
    lines = banner.splitlines()
    [jane] = [line for line in lines if f"log in as {JANE.login} " in line]
    [mallory] = [line for line in lines if f"log in as {MALLORY.login} " in line]
    assert JANE.email in jane
    assert "signed in" in jane
    assert MALLORY.email in mallory
    assert "NOT verified: refused with a 403" in mallory
    # and the provider's own login page says so too
    login_page = sign_in_page(tour_stack)
    assert f"<strong>{JANE.login}</strong> ({JANE.email}, verified)" in login_page
    assert f"<strong>{MALLORY.login}</strong> ({MALLORY.email}, not verified)" in login_page
    # and the demo platform is still there for login tokens
    assert f"Login tokens work beside it: {tour_stack.url(LOGIN_PATH)}" in banner


def sign_in_page(stack: RunningStack) -> str:
    """The provider's login page, reached as a signed-out user reaches it."""
    browser = CookieClient()
    response, trail = follow(browser, stack.url("/clickfunnels/sso"))
    assert response.status == 200
    assert "/interaction/" in trail[-1]
    return response.text


# Ports.


def listening(port: int) -> bool:
    """Whether anything accepts connections on ``port`` (a port in TIME_WAIT is not bindable, yet free)."""
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def held_port() -> socket.socket:
    """A listening socket whose port has two free ports before it (PORT and PORT+1 of a stack)."""
    for _ in range(20):
        holder = socket.socket()
        holder.bind(("127.0.0.1", 0))
        port = int(holder.getsockname()[1])
        if free(port - 2) and free(port - 1):
            holder.listen()
            return holder
        holder.close()
    raise RuntimeError("no port with two free ports before it")


def run_stack(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A stack that is expected to stop by itself (it refuses to start)."""
    passed = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    return subprocess.run(
        [sys.executable, "-m", "local.stack"],
        cwd=ROOT,
        env={**passed, **STACK_ENV, "VENDOR_STANDINS": "off", "PYTHONUNBUFFERED": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_moto_port_among_the_function_url_ports_names_both_settings(tmp_path: Path) -> None:
    result = run_stack({"PORT": "47100", "LOCAL_AWS_PORT": "47101", "LOCAL_STACK_FILE": str(tmp_path / "state.json")})
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "LOCAL_AWS_PORT=47101 collides with PORT=47100" in message
    assert "clickfunnels function URL (PORT+1)" in message
    assert not (tmp_path / "state.json").exists()


def test_a_port_another_program_holds_names_the_setting_to_change(tmp_path: Path) -> None:
    with held_port() as holder:
        held = int(holder.getsockname()[1])
        # The kustomer function URL (PORT+2) lands on the held port
        env = {"PORT": str(held - 2), "LOCAL_AWS_PORT": str(held + 50), "LOCAL_STACK_FILE": str(tmp_path / "s")}
        result = run_stack(env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    message = result.stderr.strip()
    assert message == (
        f"Port {held} (the kustomer function URL, PORT+2) is in use by another program: "
        "set PORT to the first of a block of free ports"
    )


# Stopping.


@pytest.mark.parametrize(
    ("signum", "after"),
    [(signal.SIGINT, 0.5), (signal.SIGTERM, 0.9)],
    ids=["ctrl-c-while-loading", "sigterm-while-starting"],
)
def test_a_stop_during_start_up_is_quiet(tmp_path: Path, signum: int, after: float) -> None:
    passed = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    # The API, a function URL per vendor, the OpenID provider (when Node.js is here), moto: it may get as far as
    # listening
    oidc = "off" if provider_missing() else "on"
    size = 1 + len(functions()) + 2
    base = free_block(size)
    env = {**passed, **STACK_ENV, "VENDOR_STANDINS": "off", "PYTHONUNBUFFERED": "1", "OIDC": oidc}
    env |= {"PORT": str(base), "LOCAL_AWS_PORT": str(base + size - 1), "LOCAL_STACK_FILE": str(tmp_path / "state.json")}
    process = subprocess.Popen(
        [sys.executable, "-m", "local.stack"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        try:
            process.wait(timeout=after)
        except subprocess.TimeoutExpired:
            process.send_signal(signum)
        output, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:  # never leave a stack behind, whatever failed
            process.kill()
            process.communicate()
    text = output.decode(errors="replace")
    assert "Traceback" not in text
    assert process.returncode == 0, text
    assert text.rstrip().endswith("stopped")
    assert not (tmp_path / "state.json").exists()
    assert not any(listening(port) for port in range(base, base + size)), "something the stack started still listens"


# Last: it stops the module's stack.


def test_sigterm_stops_quietly_and_removes_the_state_file(
    client: Client, browser: CookieClient, tour_stack: RunningStack
) -> None:
    # Given a stack that served a few requests, tokens and codes in their queries
    client.get(tour_stack.url("/clickfunnels/sso?login_token=nonsense"))
    sign_in_and_land(browser, tour_stack, tour_stack.url("/clickfunnels/sso"))
    link = tour_stack.url("/happyfox/login")
    minted = client.post_form(tour_stack.url(f"{LOGIN_PATH}?return_to={quote(link, safe='')}"), {"email": EMAIL})
    follow(client, minted.location)
    state = json.loads(tour_stack.state_file.read_text())
    assert state["pid"] == tour_stack.process.pid
    assert state["api_url"] == tour_stack.url("").rstrip("/")
    assert state["function_urls"] == {name: tour_stack.function_url(name) for name in tour_stack.function_url_ports}
    assert state["settings"]["LINK_TOKEN_MAX_TTL"] == "604800"

    # When it gets SIGTERM
    tour_stack.process.send_signal(signal.SIGTERM)
    assert tour_stack.process.wait(timeout=10) == 0

    # Then it says so, leaves no traceback, no state file and no OpenID provider behind
    output = tour_stack.output()
    assert output.rstrip().endswith("stopped")
    assert "Traceback" not in output
    assert not tour_stack.state_file.exists()
    assert tour_stack.provider_port is not None
    assert not listening(tour_stack.provider_port)
    # and logged one readable line per request, never a query string (tokens), never the handlers' JSON
    requests = output[output.index("Ctrl-C to stop") :].splitlines()[1:-1]
    assert requests
    for line in requests:
        assert LOG_LINE.match(line), line
    assert "?" not in "".join(requests)
    assert "login_token=" not in output
    assert "token=" not in output
    assert "code=" not in output
    assert OIDC_CLIENT_SECRET not in output
    assert "oidc-provider WARNING" not in output  # its notices are expected locally, and kept quiet
    assert '"level"' not in output
    assert '"_aws"' not in output
    lines = [line[9:] for line in requests]
    assert "GET /clickfunnels/sso 400 refused login_token_malformed" in lines
    assert "GET /clickfunnels/sso 302 login_redirect login_token_missing" in lines
    assert "POST /_platform/login 302 demo_platform signed_in" in lines
    assert "GET /clickfunnels/sso 302 issued" in lines
    assert f"GET /sso 200 signed_in  (stand-in for {WORKSPACE})" in lines
    # the provider's requests among them, its interaction ids left out
    for line in (
        "GET /auth 303 authorization  (OpenID provider)",
        "GET /interaction/:id 200 interaction  (OpenID provider)",
        "POST /interaction/:id 303 submit  (OpenID provider)",
        "POST /token 200 token  (OpenID provider)",
        "GET /me 200 userinfo  (OpenID provider)",
        "GET /oidc/callback 302 oidc_signed_in",
        "GET /happyfox/login 302 issued",
    ):
        assert line in lines
