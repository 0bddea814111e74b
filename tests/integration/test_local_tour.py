"""The README's local tour with vendor stand-ins on: every vendor ends on "Signed in as ...", offline.

One stack for the module (``VENDOR_STANDINS=on``), stopped by the last test with SIGTERM, as `make run` is
stopped; the port checks start stacks that must refuse to start.
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
from urllib.parse import urljoin, urlsplit

import pytest

from local.demo_platform import LOGIN_PATH
from tests.helpers import ROOT, WORKSPACE
from tests.integration.client import Client, Response
from tests.integration.stack import STACK_ENV, RunningStack, free, free_block, start_stack

EMAIL = "jane.doe+vip@example.com"
# In port order after the function URLs: ClickFunnels, Kustomer's default portal, the demo brand's, HappyFox.
STANDIN_HOSTS = (WORKSPACE, "yourcompany.kustomer.help", "acme.kustomer.help", "yourcompany.happyfox.com")
LOCAL_HOSTS = ("localhost", "127.0.0.1")
REDIRECTS = (301, 302, 303, 307, 308)
LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d [A-Z]+ /\S* \d{3}( [a-z_]+)*( {2}\([^()]+\))?$")


@pytest.fixture(scope="module")
def tour_stack() -> Iterator[RunningStack]:
    stack = start_stack({"VENDOR_STANDINS": "on"}, extra_ports=len(STANDIN_HOSTS))
    yield stack
    stack.stop()


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


def sign_in_and_land(client: Client, link: str) -> Response:
    """Follow ``link`` signed out: demo sign-in, back to the bridge, then on to where the bridge sends us."""
    trip = client.sign_in(link, email=EMAIL, name="Jane Doe")
    assert trip.final.status == 302, trip.final.text
    landing, trail = follow(client, trip.final.location)
    assert urlsplit(trail[-1]).hostname in LOCAL_HOSTS, f"the bridge sent us off the stack: {trail}"
    return landing


# The tour, one vendor at a time.


def test_clickfunnels_link_ends_signed_in_at_the_customer_center(client: Client, tour_stack: RunningStack) -> None:
    landing = sign_in_and_land(client, tour_stack.url("/clickfunnels/sso"))
    assert landing.status == 200
    assert h1(landing) == f"Signed in as {EMAIL}"
    assert WORKSPACE in landing.text


@pytest.mark.parametrize(
    ("host", "expected_path"),
    [("yourcompany.kustomer.help", "/kustomer/login"), ("acme.kustomer.help", "/kustomer/brands/acme/login")],
)
def test_kustomer_portal_log_in_ends_signed_in_at_the_portal(
    client: Client, tour_stack: RunningStack, host: str, expected_path: str
) -> None:
    portal = client.get(standin_url(tour_stack, host, "/login"))
    assert portal.status == 200
    link = log_in_link(portal)
    assert link.startswith(tour_stack.url(f"{expected_path}?"))  # the brand's Redirect URI on the stack

    landing = sign_in_and_land(client, link)

    assert landing.status == 200
    assert h1(landing) == f"Signed in as {EMAIL}"
    assert host in landing.text


def test_kustomer_link_without_redirect_uri_lands_in_the_default_portal(
    client: Client, tour_stack: RunningStack
) -> None:
    landing = sign_in_and_land(client, tour_stack.url("/kustomer/login"))
    assert landing.status == 200
    assert h1(landing) == f"Signed in as {EMAIL}"
    assert "yourcompany.kustomer.help" in landing.text


def test_happyfox_log_in_ends_signed_in_at_the_support_centre(client: Client, tour_stack: RunningStack) -> None:
    home = client.get(standin_url(tour_stack, "yourcompany.happyfox.com"))
    assert home.status == 200
    link = log_in_link(home)
    assert link == tour_stack.url("/happyfox/login")

    landing = sign_in_and_land(client, link)

    assert landing.status == 200
    assert h1(landing) == f"Signed in as {EMAIL}"


def test_function_url_link_ends_at_the_stand_in_too(client: Client, tour_stack: RunningStack) -> None:
    landing = sign_in_and_land(client, tour_stack.function_url("clickfunnels"))
    assert landing.status == 200
    assert h1(landing) == f"Signed in as {EMAIL}"


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


def test_every_link_on_the_index_and_in_the_banner_works(client: Client, tour_stack: RunningStack) -> None:
    links = index_links(client, tour_stack)
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
    ):
        assert url in links
        assert url in shown
    assert all("{" not in url for url in links + shown)

    broken = {}
    for url in dict.fromkeys(links + shown):
        assert urlsplit(url).hostname in LOCAL_HOSTS, f"a link off the local stack: {url}"
        response, trail = follow(client, url)
        if response.status >= 400:
            broken[url] = (response.status, trail)
    assert not broken


def test_the_index_says_vendor_hosts_are_served_locally(client: Client, tour_stack: RunningStack) -> None:
    index = client.get(tour_stack.url("/")).text
    assert "Vendor hosts are served locally" in index
    for host in STANDIN_HOSTS:
        assert host in index
    assert "vendor hosts are served locally" in tour_stack.output()


# Ports.


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
    base = free_block(5)  # the API, 3 function URLs, moto: the stack may get as far as listening
    env = {**passed, **STACK_ENV, "VENDOR_STANDINS": "off", "PYTHONUNBUFFERED": "1"}
    env |= {"PORT": str(base), "LOCAL_AWS_PORT": str(base + 4), "LOCAL_STACK_FILE": str(tmp_path / "state.json")}
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


# Last: it stops the module's stack.


def test_sigterm_stops_quietly_and_removes_the_state_file(client: Client, tour_stack: RunningStack) -> None:
    # Given a stack that served a few requests, tokens in their queries
    client.get(tour_stack.url("/clickfunnels/sso?login_token=nonsense"))
    sign_in_and_land(client, tour_stack.url("/clickfunnels/sso"))
    state = json.loads(tour_stack.state_file.read_text())
    assert state["pid"] == tour_stack.process.pid
    assert state["api_url"] == tour_stack.url("").rstrip("/")
    assert state["function_urls"] == {name: tour_stack.function_url(name) for name in tour_stack.function_url_ports}
    assert state["settings"]["LINK_TOKEN_MAX_TTL"] == "604800"

    # When it gets SIGTERM
    tour_stack.process.send_signal(signal.SIGTERM)
    assert tour_stack.process.wait(timeout=10) == 0

    # Then it says so, leaves no traceback and no state file behind
    output = tour_stack.output()
    assert output.rstrip().endswith("stopped")
    assert "Traceback" not in output
    assert not tour_stack.state_file.exists()
    # and logged one readable line per request, never a query string (tokens), never the handlers' JSON
    requests = output[output.index("Ctrl-C to stop") :].splitlines()[1:-1]
    assert requests
    for line in requests:
        assert LOG_LINE.match(line), line
    assert "?" not in "".join(requests)
    assert "login_token=" not in output
    assert "token=" not in output
    assert '"level"' not in output
    assert '"_aws"' not in output
    lines = [line[9:] for line in requests]
    assert "GET /clickfunnels/sso 400 refused login_token_malformed" in lines
    assert "GET /clickfunnels/sso 302 login_redirect login_token_missing" in lines
    assert "POST /_platform/login 302 demo_platform signed_in" in lines
    assert "GET /clickfunnels/sso 302 issued" in lines
    assert f"GET /sso 200 signed_in  (stand-in for {WORKSPACE})" in lines
