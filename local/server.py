"""A plain HTTP server that hands each request to an ``App`` and writes back what it returns.

Kept free of API Gateway knowledge, so the gateway, the function URLs and the demo platform are ordinary
functions from ``Request`` to ``Reply``. The access log leaves out query strings: they carry tokens.
With ``tls`` it speaks HTTPS, for the vendor stand-ins a browser reaches under the vendors' real host names.
"""

from __future__ import annotations

import socket
import ssl
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
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
    access_log: bool

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
        if not self.access_log:  # the app logs its own requests (the local stack's console)
            return
        # Path only: the query holds login and vendor tokens, which must never reach a log.
        path = urlsplit(self.path).path[:200]
        sys.stderr.write(f"{self.address_string()} {self.command} {path} {code}\n")

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


class _HTTPServer(ThreadingHTTPServer):
    # socketserver's default backlog is 5: a burst of clicks (50 at once in the link race test) got resets.
    request_queue_size = 128

    def handle_error(self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any) -> None:
        # A client that gives up on the handshake (an untrusted self-signed certificate) is routine: one line.
        error = sys.exc_info()[1]
        if isinstance(error, ssl.SSLError):
            sys.stderr.write(f"{client_address[0]} TLS handshake failed: {error.reason or error}\n")
            return
        super().handle_error(request, client_address)


class Server:
    """A threaded HTTP server on its own thread; ``stop()`` shuts it down. With ``tls``, HTTPS.

    ``access_log=False`` leaves the one line per request to the app (the local stack prints its own).
    """

    def __init__(
        self, host: str, port: int, app: App, tls: ssl.SSLContext | None = None, *, access_log: bool = True
    ) -> None:
        attributes = {"app": staticmethod(app), "server_port": port, "access_log": access_log}
        handler = type("Handler", (_Handler,), attributes)
        self._httpd = _HTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        if tls is not None:
            # The handshake waits for the connection's own thread (its first read), so one slow or stalled
            # client cannot hold up accept() for everyone else.
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True, do_handshake_on_connect=False)
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


def serve(host: str, port: int, app: App, *, tls: ssl.SSLContext | None = None, access_log: bool = True) -> Server:
    server = Server(host, port, app, tls, access_log=access_log)
    server.start()
    return server
