"""Every response the bridge sends: redirects that carry tokens, and short pages for people.

Redirects are never cached and never leak their URL through Referer. Pages (``sso_bridge.pages``: the brand,
the reader's language, the policy) are fixed text plus a request id the user can quote to support, and always a
way forward: the button, signing in again, the platform, the company's support page. Nothing from the request
is echoed into them but the URLs of the bridge's own sign-in, escaped, and a vendor's own words about why it
refused a sign-in (``quote``: plain text, escaped, set apart as the vendor's).

A vendor token that must not sit in a URL (where browser history, proxies and access logs keep it) leaves in the
body of a POST instead: ``post_form_page`` answers with a form the browser submits at once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from urllib.parse import urlsplit

from .errors import BridgeError
from .http import Response
from .i18n import N_
from .link_form import FIELD_NAME
from .pages import PageContext, actions_html, render_page

__all__ = [
    "AUTO_SUBMIT_SCRIPT",
    "MAX_QUOTE_LENGTH",
    "RETRY_AFTER_SECONDS",
    "SECURITY_HEADERS",
    "PageContext",
    "confirmation_page",
    "error_response",
    "mask_email",
    "page_response",
    "post_form_page",
    "redirect_response",
    "signed_out_page",
    "wants_json",
]

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    # Redirects have no body; each page sends its own policy (sso_bridge.pages: its stylesheet's hash, the logo).
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    # Browsers keep to https for this host for a year (they ignore it on the local stack's plain http).
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

# Pages are never indexed (they sit at URLs that may carry a token) and never kept by caches.
_PAGE_HEADERS = {**SECURITY_HEADERS, "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow"}
RETRY_AFTER_SECONDS = 60

# Unbranded, in English: for callers that know nothing of the request (the flows pass the reader's own).
_PLAIN = PageContext()

# No action attribute: the form posts back to this very URL, so nothing from the request is written into the page.
# The hidden field binds the POST to this page in this browser (sso_bridge.link_form).
_CONFIRM_FORM = '<form method="post">{hidden}<button type="submit">{label}</button></form>'
# A vendor token's form: posted by the script below at once, or by the reader's press when scripts are off.
_POST_FORM = '<form method="post" action="{action}">{hidden}<button type="submit">{label}</button></form>'
# Fixed text (its hash is in the page's policy); it runs after the form exists, and calls submit through the
# prototype so that a field named "submit" could never stand in for the method.
AUTO_SUBMIT_SCRIPT = "HTMLFormElement.prototype.submit.call(document.forms[0]);"
# A vendor's own words on a page: one short line; longer is cut.
MAX_QUOTE_LENGTH = 300


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
    context: PageContext = _PLAIN,
    values: dict[str, str] | None = None,
    quote: str | None = None,
) -> Response:
    """A page: ``title`` and ``message`` are msgids (marked ``N_``), shown in the reader's language with their
    ``{name}`` placeholders filled from ``values`` (plain text, escaped here); ``action`` is HTML.

    ``quote``: what another party said (a vendor's reason for refusing), plain text the caller has checked for
    hidden characters; escaped, cut to ``MAX_QUOTE_LENGTH`` and set apart under "The reason given:", never read as
    our own words or as markup.
    """
    values = values or {}
    if quote:
        cut = quote if len(quote) <= MAX_QUOTE_LENGTH else f"{quote[: MAX_QUOTE_LENGTH - 1]}…"
        label = escape(context.text(N_("The reason given:")))
        action = f"<p>{label}</p><blockquote>{escape(cut)}</blockquote>{action}"
    rendered = render_page(
        context,
        title=context.text(title, **values),
        message_html=escape(context.text(message, **values)),
        action_html=action,
        request_id=request_id,
    )
    return Response(
        status_code=status,
        content_type="text/html; charset=utf-8",
        headers={**_PAGE_HEADERS, **rendered.headers, **(headers or {})},
        body=rendered.body,
    )


def confirmation_page(
    *,
    portal_name: str,
    email: str,
    request_id: str,
    form_field: str | None = None,
    context: PageContext = _PLAIN,
) -> Response:
    """What a link shows on GET: one button, no script, so a mail scanner that fetches it spends nothing."""
    hidden = f'<input type="hidden" name="{FIELD_NAME}" value="{escape(form_field, quote=True)}">' if form_field else ""
    return page_response(
        200,
        N_("Continue to {portal}"),
        N_("You are signing in as {email}. This link works once."),
        values={"portal": context.name(portal_name), "email": mask_email(email)},
        request_id=request_id,
        action=_CONFIRM_FORM.format(hidden=hidden, label=escape(context.text(N_("Continue")))),
        context=context,
    )


def post_form_page(
    action: str,
    fields: Mapping[str, str],
    *,
    portal_name: str,
    request_id: str,
    context: PageContext = _PLAIN,
    referrer_policy: str = "no-referrer",
    redirect_origins: Sequence[str] = (),
) -> Response:
    """A page whose form posts ``fields`` (hidden) to ``action`` at once, or at the reader's press of Continue when
    scripts are off: how a vendor token reaches a vendor that takes it in a POST body, out of every URL.

    ``action`` is the vendor's endpoint (an absolute URL the caller built from its settings); the policy lets the
    form post only to its origin and to ``redirect_origins`` (``https://host``), where the vendor's answer may send
    the browser next: browsers check each redirect after a form's POST against ``form-action`` too. The page is
    never stored (``no-store``) and sends no Referer unless ``referrer_policy`` says otherwise.
    """
    parts = urlsplit(action)
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    hidden = "".join(
        f'<input type="hidden" name="{escape(name, quote=True)}" value="{escape(value, quote=True)}">'
        for name, value in fields.items()
    )
    form = _POST_FORM.format(
        action=escape(action, quote=True), hidden=hidden, label=escape(context.text(N_("Continue")))
    )
    portal = context.name(portal_name)
    rendered = render_page(
        context,
        title=context.text(N_("Continue to {portal}"), portal=portal),
        message_html=escape(context.text(N_("Taking you there now. If nothing happens, press Continue."))),
        action_html=form,
        request_id=request_id,
        script=AUTO_SUBMIT_SCRIPT,
        form_action=[origin, *redirect_origins],
    )
    return Response(
        status_code=200,
        content_type="text/html; charset=utf-8",
        headers={**_PAGE_HEADERS, **rendered.headers, "Referrer-Policy": referrer_policy},
        body=rendered.body,
    )


def signed_out_page(*, portal_name: str, portal_url: str, request_id: str, context: PageContext = _PLAIN) -> Response:
    """After a portal's logout: back to the platform (when the bridge knows where it is), or to the portal."""
    links: list[tuple[str, str]] = []
    home = context.home_link()
    if home is not None:
        links.append(home)
    links.append((portal_url, context.text(N_("Back to {portal}"), portal=context.name(portal_name))))
    return page_response(
        200,
        N_("You are signed out"),
        N_("You have signed out of {portal}."),
        values={"portal": context.name(portal_name)},
        request_id=request_id,
        action=actions_html(links),
        context=context,
    )


def _ways_forward(error: BridgeError, context: PageContext) -> Sequence[tuple[str, str]]:
    links = [(error.retry_url, context.text(error.retry_label))] if error.retry_url else []
    home = context.home_link()
    if home is not None and home[0] != error.retry_url:
        links.append(home)
    return links


def error_response(error: BridgeError, *, request_id: str, as_json: bool, context: PageContext = _PLAIN) -> Response:
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
    # The retry URL is the bridge's own sign-in URL (checked against the request's host), escaped as an attribute;
    # then the platform, and the company's support page (in every page's footer).
    return page_response(
        error.status,
        error.title,
        error.message,
        request_id=request_id,
        headers=headers,
        action=actions_html(_ways_forward(error, context)),
        context=context,
    )
