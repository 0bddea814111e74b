"""Every response the bridge sends: redirects that carry tokens, and short pages for people.

Redirects are never cached and never leak their URL through Referer. Pages are fixed text plus a request
id the user can quote to support; nothing from the request is echoed into them.
"""

from __future__ import annotations

import json
from html import escape

from aws_lambda_powertools.event_handler import Response

from .errors import BridgeError

__all__ = ["SECURITY_HEADERS", "error_response", "page_response", "redirect_response", "wants_json"]

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:12vh auto;padding:0 1rem;color:#222}}
h1{{font-size:1.4rem}}small{{color:#666}}</style></head>
<body><main><h1>{title}</h1><p>{message}</p>{footer}</main></body></html>
"""


def wants_json(accept: str | None) -> bool:
    accept = (accept or "").lower()
    return "application/json" in accept and "text/html" not in accept


def redirect_response(location: str, *, referrer_policy: str = "no-referrer") -> Response[str]:
    return Response(
        status_code=302,
        headers={**SECURITY_HEADERS, "Location": location, "Referrer-Policy": referrer_policy},
        body="",
    )


def page_response(status: int, title: str, message: str, *, request_id: str | None = None) -> Response[str]:
    footer = f"<p><small>Reference: <code>{escape(request_id)}</code></small></p>" if request_id else ""
    body = _PAGE.format(title=escape(title), message=escape(message), footer=footer)
    return Response(
        status_code=status,
        content_type="text/html; charset=utf-8",
        headers={**SECURITY_HEADERS, "Referrer-Policy": "no-referrer"},
        body=body,
    )


def error_response(error: BridgeError, *, request_id: str, as_json: bool) -> Response[str]:
    if as_json:
        payload = {"error": error.code, "reason": error.reason, "message": error.message, "request_id": request_id}
        return Response(
            status_code=error.status,
            content_type="application/json",
            headers={**SECURITY_HEADERS, "Referrer-Policy": "no-referrer"},
            body=json.dumps(payload),
        )
    return page_response(error.status, error.title, error.message, request_id=request_id)
