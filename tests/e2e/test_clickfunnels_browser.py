"""A real browser through the local stack: ClickFunnels link, demo sign-in, customer center.

Debian's headless Chromium (never a browser download). ClickFunnels is played by a local HTTPS server the
browser reaches through ``--host-resolver-rules``, so nothing leaves the machine and the browser follows every
redirect itself. (Playwright's ``page.route`` cannot stand in for it: it only sees the first URL of a redirect
chain, and ClickFunnels is reached at the end of one.)
"""

from __future__ import annotations

import datetime
import ssl
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from tests.helpers import VENDOR_KEYS, WORKSPACE
from tests.integration.stack import RunningStack

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
SCREENSHOT = Path(tempfile.gettempdir()) / "sso-bridge-demo-login.png"
EMAIL = "jane.doe+vip@example.com"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium: make chromium"
)


@dataclass
class VendorSite:
    port: int
    requests: list[str] = field(default_factory=list)  # request-targets, in arrival order


def _self_signed(directory: Path, host: str) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.fixture
def clickfunnels_site(tmp_path: Path) -> Iterator[VendorSite]:
    """Stands in for https://WORKSPACE: records what the browser asks for, answers a small page."""
    site = VendorSite(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.requests.append(self.path)
            body = b"<!doctype html><title>Customer center</title><h1>Customer center</h1>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # the request carries a token

    cert_file, key_file = _self_signed(tmp_path, WORKSPACE)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_file, key_file)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    site.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def page(clickfunnels_site: VendorSite) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Only the workspace host is mapped; everything else resolves as usual (localhost for the stack).
    resolver = f"--host-resolver-rules=MAP {WORKSPACE} 127.0.0.1:{clickfunnels_site.port}"
    with tempfile.TemporaryDirectory(prefix="sso-bridge-chromium-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            headless=True,
            args=[*CHROMIUM_ARGS, resolver],
            ignore_https_errors=True,  # the stand-in's certificate is self-signed
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def test_user_signs_in_on_the_demo_platform_and_arrives_in_the_customer_center(
    page: Any, local_stack: RunningStack, clickfunnels_site: VendorSite
) -> None:
    # When a signed-out user opens the ClickFunnels link
    page.goto(local_stack.url("/clickfunnels/sso"))
    # Then they see the demo platform's sign-in form
    assert urlsplit(page.url).path == "/_platform/login"
    page.fill("#email", EMAIL)
    page.fill("#name", "Jane Doe")
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # When they submit it
    with page.expect_navigation(url=f"https://{WORKSPACE}/**"):
        page.click("button[type=submit]")

    # Then the browser is at ClickFunnels' SSO endpoint with a token ClickFunnels accepts
    page.wait_for_selector("h1")
    assert page.locator("h1").inner_text() == "Customer center"
    url = urlsplit(page.url)
    assert (url.scheme, url.hostname, url.path) == ("https", WORKSPACE, "/sso")
    assert [target for target in clickfunnels_site.requests if target != "/favicon.ico"] == [f"/sso?{url.query}"]
    query = parse_qs(url.query)
    assert query["identifier"] == [EMAIL]
    assert query["strategy"] == ["email"]
    claims = jwt.decode(
        query["token"][0],
        VENDOR_KEYS["clickfunnels"],
        algorithms=["HS256"],
        options={"require": ["sub", "nbf", "exp", "iat"]},
    )
    assert claims["sub"] == f"{EMAIL}:{WORKSPACE}"
