"""The one check for every URL the bridge redirects to or signs into a vendor token.

Browsers and URL parsers disagree about odd URLs (backslashes, control characters, userinfo, encoded dots),
and open redirects live in those gaps. So the rules are narrow, https, an exact allowed host, the default
port, nothing odd, and the URL we return is rebuilt from the parsed parts, never the caller's string.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from urllib.parse import quote, urlsplit, urlunsplit

from .errors import InputTooLarge, RedirectNotAllowed

__all__ = ["MAX_URL_LENGTH", "allowed_url", "with_query_param"]

MAX_URL_LENGTH = 2048
# Printable ASCII only, without space, backslash, quotes or angle brackets.
_URL_CHARS = re.compile(r"^[!#$%&()*+,\-./0-9:;=?@A-Z\[\]^_a-z{|}~]+$")
_HOST_CHARS = re.compile(r"^[a-z0-9.-]+$")


def allowed_url(raw: str, allowed_hosts: Collection[str]) -> str:
    """Return ``raw`` rebuilt from its parts when it is an https URL on one of ``allowed_hosts``."""
    if len(raw) > MAX_URL_LENGTH:
        raise InputTooLarge("url_too_long", detail=f"{len(raw)} characters")
    if not _URL_CHARS.fullmatch(raw):
        raise RedirectNotAllowed("url_characters")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise RedirectNotAllowed("url_unparsable") from exc
    if parts.scheme.lower() != "https":
        raise RedirectNotAllowed("url_scheme")
    if "@" in parts.netloc or port not in (None, 443):
        raise RedirectNotAllowed("url_authority")
    host = (parts.hostname or "").lower()
    if not _HOST_CHARS.fullmatch(host) or host not in allowed_hosts:
        raise RedirectNotAllowed("url_host", detail=host[:100])
    path = parts.path or "/"
    if not path.startswith("/") or path.startswith("//"):
        raise RedirectNotAllowed("url_path")
    return urlunsplit(("https", host, path, parts.query, parts.fragment))


def with_query_param(url: str, name: str, value: str) -> str:
    """Append ``name=value`` keeping the existing query byte for byte (vendors compare it)."""
    parts = urlsplit(url)
    pair = f"{quote(name, safe='')}={quote(value, safe='')}"
    query = f"{parts.query}&{pair}" if parts.query else pair
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
