"""What the bridge reads from a payload v2 request (HTTP API and function URL alike).

The query string is parsed here, strictly, rather than through the event's merged parameters: payload v2
joins repeated parameters with commas, which would let ``?login_token=a&login_token=b`` mean something.

Every absolute URL the bridge builds for a request (the return URL, the OpenID redirect URI) starts with
``public_origin``: the host the browser used, which behind CloudFront or a custom domain is ``PUBLIC_HOST``, not
the one API Gateway names in the event.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from urllib.parse import parse_qsl, quote, unquote_plus, urlunsplit

from .errors import BadRequest, InputTooLarge
from .http import Event
from .redirects import with_query_param

__all__ = [
    "MAX_QUERY_LENGTH",
    "Query",
    "is_function_url_host",
    "login_redirect_url",
    "public_origin",
    "request_scheme",
    "request_url",
]

MAX_QUERY_LENGTH = 8192
_MAX_FIELDS = 32
# A Lambda function URL's own host, as Lambda names it in requestContext.domainName (never the client's Host).
_FUNCTION_URL_HOST = re.compile(r"[a-z0-9]+\.lambda-url\.[a-z0-9-]+\.on\.aws", re.ASCII)


class Query:
    """The query string as single-valued parameters; a repeated one is a bad request."""

    def __init__(self, raw: str) -> None:
        if len(raw) > MAX_QUERY_LENGTH:
            raise InputTooLarge("query_too_long", detail=f"{len(raw)} characters")
        try:
            raw.encode()  # a lone surrogate (from an escaped event) cannot be logged, quoted or passed on
        except UnicodeEncodeError as exc:
            raise BadRequest("query_malformed", detail="not UTF-8") from exc
        try:
            pairs = parse_qsl(raw, keep_blank_values=True, max_num_fields=_MAX_FIELDS)
        except ValueError as exc:
            raise BadRequest("query_malformed") from exc
        self._values: dict[str, str] = {}
        for name, value in pairs:
            if name in self._values:
                raise BadRequest("query_repeated", detail=name[:40])
            self._values[name] = value

    def get(self, name: str, *, max_length: int) -> str | None:
        """The parameter's value, ``None`` when absent or empty; over ``max_length`` is refused."""
        value = self._values.get(name)
        if value is not None and len(value) > max_length:
            raise InputTooLarge(f"{name}_too_long", detail=f"{len(value)} characters")
        return value or None


def request_scheme(event: Event) -> str:
    """``https``, or ``http`` where the local stack says so (``x-forwarded-proto``); nothing else."""
    proto = (event.headers.get("x-forwarded-proto") or "https").lower()
    return proto if proto in ("http", "https") else "https"


def is_function_url_host(host: str) -> bool:
    """``<url-id>.lambda-url.<region>.on.aws``: a request that came to a function URL, not the HTTP API."""
    return _FUNCTION_URL_HOST.fullmatch(host) is not None


def public_origin(event: Event, public_host: str | None = None) -> str:
    """``scheme://host`` of the URL the browser used, for every absolute URL built for this request.

    With ``public_host`` (``PUBLIC_HOST``), a request through the HTTP API gets ``https://<public_host>``: behind
    CloudFront the event names the API's own execute-api host, and with a custom domain users may arrive on
    either, but the cookies and the redirect URIs must be on the one the browser keeps. A function URL's request
    keeps its own host (email links stay on function URLs). Without it, the event's host, as before.
    """
    host = event.request_context.domain_name
    if public_host is not None and not is_function_url_host(host):
        return f"https://{public_host}"
    return f"{request_scheme(event)}://{host}"


def request_url(
    event: Event,
    *,
    public_host: str | None = None,
    without: Collection[str] = ("login_token",),
    add: Mapping[str, str] | None = None,
) -> str:
    """The absolute URL the user asked for (on ``public_origin``), minus the parameters ``without`` (their stale
    login token), with ``add`` appended in place of any parameter of the same name (an email link's deep link).

    The rest of the query is kept byte for byte, so vendor parameters survive the round trip.
    """
    scheme, _, host = public_origin(event, public_host).partition("://")
    added = add or {}
    dropped = {*without, *added}
    parts = event.raw_query_string.split("&")
    kept = [part for part in parts if part and unquote_plus(part.split("=", 1)[0]) not in dropped]
    kept += [f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in added.items()]
    return urlunsplit((scheme, host, event.raw_path or "/", "&".join(kept), ""))


def login_redirect_url(platform_login_url: str, return_to: str) -> str:
    return with_query_param(platform_login_url, "return_to", return_to)
