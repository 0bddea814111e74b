"""The scripted OpenID provider of ``tests.oidc_fake_provider``, answered in-process instead of over a socket.

Unit tests cannot open sockets, and `make mutate` runs the OIDC tests once per mutant, so they must take
milliseconds: the bridge's own ``Provider`` (discovery, key selection, the token and userinfo calls, their
refusals) runs unchanged; only its opener is swapped for one that hands each request to the fake provider's
methods, as its HTTP handler would, and turns its faults into what ``urllib`` raises for them.

    provider = InProcessProvider()
    bridge_side = Provider(provider.issuer)
    bridge_side._opener = provider.opener()
"""

from __future__ import annotations

import email.message
import http.client
import io
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.oidc_fake_provider import ENDPOINTS, FakeProvider

__all__ = ["ISSUER", "InProcessProvider"]

ISSUER = "https://login.example.com"


class _Answer:
    """What ``urllib``'s opener returns: a status and a body, usable as a context manager."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self._body = io.BytesIO(body)

    def read(self, size: int = -1) -> bytes:
        return self._body.read(size)

    def __enter__(self) -> _Answer:
        return self

    def __exit__(self, *_: object) -> None:
        self._body.close()


class InProcessProvider(FakeProvider):
    """``FakeProvider`` at ``https://login.example.com`` (or ``issuer``), never started: no port, no thread."""

    def __init__(self, issuer: str = ISSUER, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._issuer = issuer.rstrip("/")

    @property
    def base_url(self) -> str:
        return self._issuer

    def opener(self) -> Any:
        return _InProcessOpener(self)

    def authorize_url(self, location: str) -> str:
        """The browser at the provider's login page (the user is signed in there): the callback's raw query."""
        status, headers, _ = self.authorize(dict(parse_qsl(urlsplit(location).query, keep_blank_values=True)))
        assert status == 302, status
        return headers["Location"].partition("?")[2]


class _InProcessOpener:
    def __init__(self, provider: InProcessProvider) -> None:
        self._provider = provider
        self._routes = {urlsplit(provider.url(name)).path: name for name in ENDPOINTS}

    def open(self, request: urllib.request.Request, timeout: float) -> _Answer:
        provider = self._provider
        url = request.full_url
        endpoint = self._routes.get(urlsplit(url).path)
        if endpoint is None:
            return self._answer(url, 404, {"error": "not_found"})
        provider.hits[endpoint] += 1
        fault = provider._fault(endpoint)
        if fault is not None:
            if fault.kind == "hang":
                raise TimeoutError("timed out")  # what the socket raises once the timeout passes
            if fault.kind == "close":
                raise http.client.RemoteDisconnected("Remote end closed connection without response")
            if fault.kind == "not_json":
                return _Answer(200, b"<html>maintenance</html>")
            return self._answer(url, int(fault.kind), {"error": "server_error"})
        headers = {name.lower(): value for name, value in request.header_items()}
        if endpoint == "discovery":
            return self._answer(url, 200, provider.discovery())
        if endpoint == "jwks":
            return self._answer(url, 200, provider.jwks())
        if endpoint == "userinfo":
            return self._answer(url, *provider.userinfo(headers.get("authorization")))
        if endpoint == "token":
            data = request.data if isinstance(request.data, bytes) else b""
            form = dict(parse_qsl(data.decode(), keep_blank_values=True))
            return self._answer(url, *provider.token(form, headers.get("authorization")))
        return self._answer(url, 404, {"error": "not_found"})

    @staticmethod
    def _answer(url: str, status: int, document: dict[str, Any]) -> _Answer:
        body = json.dumps(document).encode()
        if status >= 400:  # urllib raises for these; the bridge reads the body of 4xx answers
            raise urllib.error.HTTPError(url, status, "error", email.message.Message(), io.BytesIO(body))
        return _Answer(status, body)
