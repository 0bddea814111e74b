"""Every response the bridge sends: redirects that carry tokens, and short pages for people.

Redirects are never cached and never leak their URL through Referer. Pages are fixed text plus a request
id the user can quote to support; nothing from the request is echoed into them.
"""

from __future__ import annotations

import json
from html import escape

from .errors import BridgeError
from .http import Response

__all__ = [
    "RETRY_AFTER_SECONDS",
    "SECURITY_HEADERS",
    "confirmation_page",
    "error_response",
    "mask_email",
    "page_response",
    "redirect_response",
    "wants_json",
]

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    # Browsers keep to https for this host for a year (they ignore it on the local stack's plain http).
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

# Pages are never indexed (they sit at URLs that may carry a token) and never kept by caches.
_PAGE_HEADERS = {**SECURITY_HEADERS, "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow"}
RETRY_AFTER_SECONDS = 60

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex,nofollow"><title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:12vh auto;padding:0 1rem;color:#222}}
h1{{font-size:1.4rem}}small{{color:#666}}
button{{font:inherit;font-weight:600;color:#fff;background:#1f5fd1;border:0;border-radius:8px;padding:.7rem 1.4rem;
cursor:pointer}}button:hover{{background:#184aa3}}</style></head>
<body><main><h1>{title}</h1><p>{message}</p>{action}{footer}</main></body></html>
"""
# No action attribute: the form posts back to this very URL, so nothing from the request is written into the page.
_CONFIRM_FORM = '<form method="post"><button type="submit">Continue</button></form>'


def wants_json(accept: str | None) -> bool:
    accept = (accept or "").lower()
    return "application/json" in accept and "text/html" not in accept


def mask_email(email: str) -> str:
    """``j***@example.com``: enough for the owner to recognise, little for whoever the email was forwarded to."""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}***@{domain}"


def redirect_response(location: str, *, referrer_policy: str = "no-referrer", status: int = 302) -> Response:
    return Response(
        status_code=status,
        headers={**SECURITY_HEADERS, "Location": location, "Referrer-Policy": referrer_policy},
        body="",
    )


def page_response(
    status: int,
    title: str,
    message: str,
    *,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
    action: str = "",
) -> Response:
    footer = f"<p><small>Reference: <code>{escape(request_id)}</code></small></p>" if request_id else ""
    body = _PAGE.format(title=escape(title), message=escape(message), action=action, footer=footer)
    return Response(
        status_code=status,
        content_type="text/html; charset=utf-8",
        headers={**_PAGE_HEADERS, **(headers or {})},
        body=body,
    )


def confirmation_page(*, portal_name: str, email: str, request_id: str) -> Response:
    """What a link shows on GET: one button, no script, so a mail scanner that fetches it spends nothing."""
    return page_response(
        200,
        f"Continue to {portal_name}",
        f"You are signing in as {mask_email(email)}. This link works once.",
        request_id=request_id,
        action=_CONFIRM_FORM,
    )


def error_response(error: BridgeError, *, request_id: str, as_json: bool) -> Response:
    # An outage says when to come back; clients and people should not retry in a loop.
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if error.status == 503 else {}
    if as_json:
        payload = {"error": error.code, "reason": error.reason, "message": error.message, "request_id": request_id}
        if error.retry_url:
            payload["retry_url"] = error.retry_url
        return Response(
            status_code=error.status,
            content_type="application/json",
            headers={**_PAGE_HEADERS, **headers},
            body=json.dumps(payload),
        )
    # The retry URL is the bridge's own sign-in URL (checked against the request's host), escaped as an attribute.
    action = f'<p><a href="{escape(error.retry_url, quote=True)}">Try again</a></p>' if error.retry_url else ""
    return page_response(
        error.status, error.title, error.message, request_id=request_id, headers=headers, action=action
    )
