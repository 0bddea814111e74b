"""Payload v2 requests (HTTP API and function URLs alike) routed to a flow's functions, and what they answer.

Powertools' event resolver did this job. Measured as Lambda runs the built layer, importing it cost about 200 ms
of a 600 ms cold start (``aws_lambda_powertools`` alone loads its logger, metrics and tracer packages; the
resolver adds its OpenAPI and middleware machinery) and about 40 µs of each warm request, against about 60 µs
for the unavoidable work. The bridge used a sliver of it: exact routes with one path parameter, one handler per
exception type, a 404. This is that sliver, with the same names (``route``, ``current_event``, ``Response``).

Every field of an event is read defensively: a hostile or malformed event gets the flow's 4xx, never a 500.
The request being answered is kept per thread, so one app never mixes two requests.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["App", "Event", "NoRoute", "Response"]

E = TypeVar("E", bound=BaseException)
RouteFunction = Callable[..., "Response"]
_PARAMETER = re.compile(r"<(\w+)>")


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


class NoRoute(Exception):
    """No route for this method and path: the app's ``not_found`` handler answers."""


@dataclass(slots=True)
class Response:
    """What a route returns; ``content_type`` becomes the ``Content-Type`` header, each of ``cookies`` a
    ``Set-Cookie`` (payload v2 keeps them in a list of their own: a dict of headers holds only one)."""

    status_code: int
    body: str = ""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    cookies: list[str] = field(default_factory=list)

    def to_payload(self) -> dict[str, Any]:
        headers = dict(self.headers)
        if self.content_type:
            headers["Content-Type"] = self.content_type
        payload = {"statusCode": self.status_code, "isBase64Encoded": False, "headers": headers, "body": self.body}
        if self.cookies:
            payload["cookies"] = list(self.cookies)
        return payload


class _Http:
    __slots__ = ("_raw", "method", "path")

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self._raw = raw
        self.method = _text(raw.get("method")).upper()
        self.path = _text(raw.get("path"))

    def get(self, name: str) -> str | None:
        """``sourceIp``, ``userAgent``, ... as text, or None."""
        value = self._raw.get(name)
        return value if isinstance(value, str) else None


class _RequestContext:
    __slots__ = ("domain_name", "http", "request_id", "stage")

    def __init__(self, raw: Mapping[str, Any]) -> None:
        http = raw.get("http")
        self.http = _Http(http if isinstance(http, Mapping) else {})
        self.request_id = _text(raw.get("requestId"))
        self.domain_name = _text(raw.get("domainName"))
        self.stage = _text(raw.get("stage")) or "$default"


class Event:
    """The parts of a payload v2 event the bridge reads; header names lower-case, as API Gateway sends them."""

    __slots__ = ("body", "body_base64", "cookies", "headers", "raw_path", "raw_query_string", "request_context")

    def __init__(self, raw: Mapping[str, Any]) -> None:
        context = raw.get("requestContext")
        self.request_context = _RequestContext(context if isinstance(context, Mapping) else {})
        self.raw_path = _text(raw.get("rawPath"))
        self.raw_query_string = _text(raw.get("rawQueryString"))
        # As sent; decoded only by whoever reads a form (an email link's POST), with its own length cap.
        self.body = _text(raw.get("body"))
        self.body_base64 = raw.get("isBase64Encoded") is True
        headers = raw.get("headers")
        items = headers.items() if isinstance(headers, Mapping) else ()
        self.headers: dict[str, str] = {
            name.lower(): value for name, value in items if isinstance(name, str) and isinstance(value, str)
        }
        # Payload v2 moves the Cookie header into a list of "name=value" strings.
        cookies = raw.get("cookies")
        pairs = cookies if isinstance(cookies, list) else []
        self.cookies: dict[str, str] = {}
        for pair in pairs:
            if isinstance(pair, str) and "=" in pair:
                name, _, value = pair.strip().partition("=")
                self.cookies.setdefault(name, value)

    @property
    def path(self) -> str:
        """The path the route table sees: a named stage's prefix removed, as API Gateway's own routing does."""
        stage = self.request_context.stage
        if stage != "$default" and self.raw_path.startswith(f"/{stage}"):
            return self.raw_path[len(stage) + 1 :] or "/"
        return self.raw_path or "/"


@dataclass(frozen=True, slots=True)
class _Route:
    methods: frozenset[str]
    pattern: re.Pattern[str]
    function: RouteFunction


class App:
    """Routes (exact paths, ``<name>`` for one segment), exception handlers by type, and a 404 handler."""

    def __init__(self) -> None:
        self._routes: list[_Route] = []
        self._handlers: dict[type[BaseException], Callable[[Any], Response]] = {}
        self._local = threading.local()

    @property
    def current_event(self) -> Event:
        """The request this thread is answering."""
        event: Event = self._local.event
        return event

    def route(self, path: str, method: str | Iterable[str]) -> Callable[[RouteFunction], RouteFunction]:
        methods = frozenset([method.upper()] if isinstance(method, str) else [m.upper() for m in method])
        pattern = re.compile("^" + _PARAMETER.sub(r"(?P<\1>[^/]+)", re.escape(path)) + "$")

        def register(function: RouteFunction) -> RouteFunction:
            self._routes.append(_Route(methods, pattern, function))
            return function

        return register

    def get(self, path: str) -> Callable[[RouteFunction], RouteFunction]:
        return self.route(path, "GET")

    def exception_handler(self, kind: type[E]) -> Callable[[Callable[[E], Response]], Callable[[E], Response]]:
        def register(handler: Callable[[E], Response]) -> Callable[[E], Response]:
            self._handlers[kind] = handler
            return handler

        return register

    def not_found(self, handler: Callable[[NoRoute], Response]) -> Callable[[NoRoute], Response]:
        return self.exception_handler(NoRoute)(handler)

    def resolve(self, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        self._local.event = request = Event(event if isinstance(event, Mapping) else {})
        try:
            response = self._call_route(request)
        except Exception as exc:  # the registered handlers decide; one for Exception answers the rest
            try:
                response = self._handle(exc)
            except Exception as again:  # a handler may refuse in turn (sign-in's provider is down): once more
                if again is exc:
                    raise
                response = self._handle(again)
        return response.to_payload()

    def _call_route(self, request: Event) -> Response:
        method, path = request.request_context.http.method, request.path
        for route in self._routes:
            if method in route.methods:
                match = route.pattern.match(path)
                if match:
                    return route.function(**match.groupdict())
        raise NoRoute(path[:200])

    def _handle(self, exc: Exception) -> Response:
        for kind in type(exc).__mro__:
            handler = self._handlers.get(kind)
            if handler is not None:
                return handler(exc)
        raise exc
