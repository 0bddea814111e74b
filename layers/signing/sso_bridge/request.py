"""What the bridge reads from a payload v2 request (HTTP API and function URL alike).

The query string is parsed here, strictly, rather than through the event's merged parameters: payload v2
joins repeated parameters with commas, which would let ``?login_token=a&login_token=b`` mean something.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import parse_qsl, unquote_plus, urlunsplit

from .errors import BadRequest, InputTooLarge
from .http import Event
from .redirects import with_query_param

__all__ = ["MAX_QUERY_LENGTH", "Query", "login_redirect_url", "request_scheme", "request_url"]

MAX_QUERY_LENGTH = 8192
_MAX_FIELDS = 32


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


def request_url(event: Event, *, without: Collection[str] = ("login_token",)) -> str:
    """The absolute URL the user asked for, minus the parameters ``without`` (their stale login token).

    The rest of the query is kept byte for byte, so vendor parameters survive the round trip.
    """
    scheme = request_scheme(event)
    host = event.request_context.domain_name
    parts = event.raw_query_string.split("&")
    kept = [part for part in parts if part and unquote_plus(part.split("=", 1)[0]) not in without]
    return urlunsplit((scheme, host, event.raw_path or "/", "&".join(kept), ""))


def login_redirect_url(platform_login_url: str, return_to: str) -> str:
    return with_query_param(platform_login_url, "return_to", return_to)
