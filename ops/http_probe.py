"""One HTTP request as `make smoke` makes it: redirects never followed, TLS verified, short timeouts.

A redirect is the answer under test (its ``Location`` carries a vendor token): following it would deliver the
token to the vendor and make an account there. Nothing here logs or returns a URL's query.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urlsplit

__all__ = ["MAX_BODY", "TIMEOUT", "Answer", "Unreachable", "fetch", "origin"]

TIMEOUT = 10.0  # seconds per request: a cold start with OpenID Connect takes a few
MAX_BODY = 65536


class Unreachable(Exception):
    """No HTTP answer at all (connection refused, DNS, TLS, timeout); the message names the origin."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Message
    body: bytes

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return None if value is None else str(value)

    def json(self) -> object:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def fetch(method: str, url: str, *, headers: Mapping[str, str] | None = None, timeout: float = TIMEOUT) -> Answer:
    """One request, redirects never followed, TLS verified against the system's (or ``SSL_CERT_FILE``'s) CAs."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Unreachable(f"{origin(url)} is not an http(s) URL")
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request(method, target, headers={"User-Agent": "sso-bridge-smoke", **(headers or {})})
        response = connection.getresponse()
        body = b"" if method == "HEAD" else response.read(MAX_BODY)
        return Answer(response.status, response.msg, body)
    except ssl.SSLError as exc:
        raise Unreachable(f"TLS to {origin(url)} failed: {exc.reason or exc}") from exc
    except (OSError, http.client.HTTPException) as exc:
        reason = "timed out" if isinstance(exc, socket.timeout | TimeoutError) else str(exc) or type(exc).__name__
        raise Unreachable(f"cannot reach {origin(url)}: {reason}") from exc
    finally:
        connection.close()
