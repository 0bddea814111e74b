"""A plain HTTP server that hands each request to an ``App`` and writes back what it returns.

Kept free of API Gateway knowledge, so the gateway, the function URLs and the demo platform are ordinary
functions from ``Request`` to ``Reply``. The access log leaves out query strings: they carry tokens.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["MAX_BODY_BYTES", "App", "Reply", "Request", "Server", "serve"]

MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # the request-target as received: path and raw query
    headers: list[tuple[str, str]]
    body: bytes
    client_ip: str
    protocol: str
    server_port: int

    @property
    def path(self) -> str:
        # Split, not urlsplit: a target like //host/x is a path here, never an authority.
        return self.target.partition("?")[0] or "/"

    @property
    def query(self) -> str:
        return self.target.partition("?")[2]

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return ",".join(values) if values else None


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


App = Callable[[Request], Reply]


class _Handler(BaseHTTPRequestHandler):
    server_version = "sso-bridge-local"
    protocol_version = "HTTP/1.1"
    app: App
    server_port: int

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._write(self.command, Reply(413, [("Content-Type", "application/json")], b'{"message":"Too Large"}'))
            return
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            body=body,
            client_ip=self.client_address[0],
            protocol=self.request_version,
            server_port=self.server_port,
        )
        self._write(request.method, self.app(request))

    def _write(self, method: str, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(reply.body)

    do_GET = do_POST = do_HEAD = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Path only: the query holds login and vendor tokens, which must never reach a log.
        path = urlsplit(self.path).path[:200]
        sys.stderr.write(f"{self.address_string()} {self.command} {path} {code}\n")

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


class Server:
    """A threaded HTTP server on its own thread; ``stop()`` shuts it down."""

    def __init__(self, host: str, port: int, app: App) -> None:
        handler = type("Handler", (_Handler,), {"app": staticmethod(app), "server_port": port})
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def serve(host: str, port: int, app: App) -> Server:
    server = Server(host, port, app)
    server.start()
    return server
