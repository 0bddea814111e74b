"""HTTP to API Gateway payload v2 and back, as the HTTP API and Lambda function URLs do it.

Handlers see the event shape they meet in AWS (``events/*.json``), with two local facts: the domain is the
Host header (``localhost:3000``) and ``x-forwarded-proto`` is ``http``, so absolute URLs the handlers build
point back at the local stack. With ``vendor_origins``, a redirect to a vendor host that has a local
stand-in (``https://yourworkspace.myclickfunnels.com/sso?...``) is sent to the stand-in instead
(``http://localhost:3004/sso?...``), path and query untouched; so is a page's form that posts to one (Zendesk's),
with the page's ``form-action`` policy to match.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from local.console import note
from local.server import Reply, Request

__all__ = [
    "DEFAULT_ROUTE",
    "ApiRoute",
    "Invoke",
    "RouteTable",
    "function_url_app",
    "http_api_app",
    "local_forms",
    "local_location",
    "local_policy",
    "to_event",
    "to_reply",
]

Invoke = Callable[[dict[str, Any]], Any]
DEFAULT_ROUTE = "$default"  # the route key of paths no other route matches
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded", "+json", "+xml")


@dataclass(frozen=True)
class ApiRoute:
    method: str
    path: str
    invoke: Invoke

    @property
    def key(self) -> str:
        return DEFAULT_ROUTE if self.path == DEFAULT_ROUTE else f"{self.method} {self.path}"

    def pattern(self) -> re.Pattern[str]:
        # {name} is one segment, {name+} the rest of the path, as in HTTP API route keys.
        parts = re.split(r"(\{[^}]+\})", self.path)
        regex = ""
        for part in parts:
            if part.startswith("{") and part.endswith("+}"):
                regex += f"(?P<{part[1:-2]}>.+)"
            elif part.startswith("{"):
                regex += f"(?P<{part[1:-1]}>[^/]+)"
            else:
                regex += re.escape(part)
        return re.compile(f"^{regex}$")


class RouteTable:
    def __init__(self, routes: Sequence[ApiRoute]) -> None:
        self._routes = [(route, route.pattern()) for route in routes]

    def match(self, method: str, path: str) -> tuple[ApiRoute, dict[str, str]] | None:
        for route, pattern in self._routes:
            found = pattern.match(path)
            if found and route.method in (method, "ANY"):
                return route, found.groupdict()
        return None


def _headers(request: Request) -> tuple[dict[str, str], list[str]]:
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        key = name.lower()
        if key == "cookie":
            cookies += [part.strip() for part in value.split(";") if part.strip()]
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    forwarded = headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = f"{forwarded}, {request.client_ip}" if forwarded else request.client_ip
    headers["x-forwarded-port"] = str(request.server_port)
    headers["x-forwarded-proto"] = "http"
    return headers, cookies


def _is_text(content_type: str | None) -> bool:
    content_type = (content_type or "").lower()
    return any(marker in content_type for marker in _TEXT_TYPES)


def to_event(
    request: Request,
    *,
    route_key: str,
    api_id: str,
    account_id: str,
    path_parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The payload v2 event for ``request``: raw path and query exactly as received."""
    headers, cookies = _headers(request)
    raw_path, _, raw_query = request.target.partition("?")
    host = headers.get("host", f"localhost:{request.server_port}")
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path or "/",
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": account_id,
            "apiId": api_id,
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0].split(":", 1)[0],
            "http": {
                "method": request.method,
                "path": unquote(raw_path or "/"),
                "protocol": request.protocol,
                "sourceIp": request.client_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": base64.b64encode(uuid.uuid4().bytes[:10]).decode(),
            "routeKey": route_key,
            "stage": "$default",
            "time": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        params: dict[str, str] = {}
        for name, value in parse_qsl(raw_query, keep_blank_values=True):
            params[name] = f"{params[name]},{value}" if name in params else value
        event["queryStringParameters"] = params
    if path_parameters:
        event["pathParameters"] = path_parameters
    if request.body:
        if _is_text(headers.get("content-type")):
            with contextlib.suppress(UnicodeDecodeError):
                event["body"] = request.body.decode()
        if "body" not in event:
            event["body"] = base64.b64encode(request.body).decode()
            event["isBase64Encoded"] = True
    return event


def to_reply(result: Any) -> Reply:
    """The HTTP response API Gateway makes of a handler's return value (payload v2 rules)."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # v2: anything else is a 200 JSON body.
        text = result if isinstance(result, str) else json.dumps(result)
        return Reply(200, [("Content-Type", "application/json")], text.encode())
    headers: list[tuple[str, str]] = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    single = {name.lower() for name, _ in headers}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        if name.lower() not in single:
            headers += [(str(name), str(value)) for value in values]
    headers += [("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or []]
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    return Reply(int(result["statusCode"]), headers, body)


def local_location(location: str, vendor_origins: Mapping[str, str]) -> str:
    """``location`` with ``https://<host>`` replaced by the stand-in's origin when ``host`` has one.

    Only an exact ``https://host`` followed by ``/``, ``?``, ``#`` or nothing: a port, userinfo or a longer
    host name (``host.evil.example``) is left alone, and so is everything after the host.
    """
    for host, origin in vendor_origins.items():
        prefix = f"https://{host}"
        if location.startswith(prefix) and location[len(prefix) : len(prefix) + 1] in ("", "/", "?", "#"):
            return origin + location[len(prefix) :]
    return location


def local_policy(policy: str, vendor_origins: Mapping[str, str]) -> str:
    """A Content-Security-Policy with each ``form-action`` source that is exactly ``https://<host>`` of a stand-in
    replaced by the stand-in's origin (its form posts there now: ``local_forms``). Anything else is left as is."""
    directives = policy.split(";")
    for index, directive in enumerate(directives):
        words = directive.split()
        if not words or words[0].lower() != "form-action":
            continue
        local = [vendor_origins.get(word.removeprefix("https://"), word) if _https(word) else word for word in words]
        if local != words:
            directives[index] = (" " if index else "") + " ".join(local)
    return ";".join(directives)


def _https(source: str) -> bool:
    return source.startswith("https://") and "/" not in source.removeprefix("https://")


def local_forms(body: bytes, vendor_origins: Mapping[str, str]) -> bytes:
    """An HTML page whose forms post to ``https://<host>`` of a stand-in (Zendesk's ``/access/jwt``): posting to
    the stand-in instead, the rest of the action untouched, as ``local_location`` does for redirects."""
    for host, origin in vendor_origins.items():
        action = re.compile(rb'\baction="https://' + re.escape(host.encode()) + rb'(?=[/?#"])')
        body = action.sub(b'action="' + origin.encode().replace(b"\\", b"\\\\"), body)
    return body


def _to_local(reply: Reply, vendor_origins: Mapping[str, str]) -> Reply:
    """The reply with its way to a vendor (a redirect, or a form and the policy that lets it post) on the stand-in."""
    if not vendor_origins:
        return reply
    headers = []
    for name, value in reply.headers:
        lowered = name.lower()
        if lowered == "location":
            value = local_location(value, vendor_origins)
        elif lowered == "content-security-policy":
            value = local_policy(value, vendor_origins)
        headers.append((name, value))
    reply.headers = headers
    content_type = next((value for name, value in headers if name.lower() == "content-type"), "")
    if content_type.lower().startswith("text/html"):
        reply.body = local_forms(reply.body, vendor_origins)
    return reply


def _json_reply(status: int, message: str, request_id_header: str) -> Reply:
    body = json.dumps({"message": message}, separators=(",", ":")).encode()
    return Reply(status, [("Content-Type", "application/json"), (request_id_header, str(uuid.uuid4()))], body)


def _call(invoke: Invoke, event: dict[str, Any], *, failure: Reply) -> Reply:
    try:
        result = invoke(event)
    except Exception:  # a crashed handler is a 5xx, as in AWS; invoke printed the trace
        note("crashed")
        return failure
    return to_reply(result)


def http_api_app(
    routes: RouteTable,
    *,
    fallback: Callable[[Request], Reply | None],
    vendor_origins: Mapping[str, str] | None = None,
    default: Invoke | None = None,
) -> Callable[[Request], Reply]:
    """The HTTP API: template routes first, then local extras (``fallback``), then the ``$default`` route's
    function (``default``, when the template has one), else API Gateway's own 404.

    ``vendor_origins``: vendor host -> local stand-in origin, for the handlers' redirects (see ``local_location``).
    """
    origins = dict(vendor_origins or {})

    def app(request: Request) -> Reply:
        matched = routes.match(request.method, unquote(request.path))
        if matched is None:
            reply = fallback(request)
            if reply is not None:
                return reply
            if default is None:
                note("no_route")
                return _json_reply(404, "Not Found", "apigw-requestid")
            matched = ApiRoute("ANY", DEFAULT_ROUTE, default), {}
        route, params = matched
        event = to_event(
            request, route_key=route.key, api_id="local", account_id="123456789012", path_parameters=params
        )
        failure = _json_reply(500, "Internal Server Error", "apigw-requestid")
        reply = _to_local(_call(route.invoke, event, failure=failure), origins)
        reply.headers.append(("apigw-requestid", event["requestContext"]["requestId"]))
        return reply

    return app


def function_url_app(
    invoke: Invoke, *, function_id: str, vendor_origins: Mapping[str, str] | None = None
) -> Callable[[Request], Reply]:
    """A function URL: every method and path goes to the one function, route key ``$default``."""
    origins = dict(vendor_origins or {})

    def app(request: Request) -> Reply:
        event = to_event(request, route_key="$default", api_id=function_id, account_id="anonymous")
        failure = Reply(502, [("Content-Type", "application/json")], b'{"Message":"Internal Server Error"}')
        reply = _to_local(_call(invoke, event, failure=failure), origins)
        reply.headers.append(("x-amzn-RequestId", event["requestContext"]["requestId"]))
        return reply

    return app
