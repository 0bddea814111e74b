"""Only an email link's own button spends it: the POST must come from the page a GET showed in this browser.

Without this, any site could spend a link (login CSRF): an attacker mints a link for themselves, and a page of
theirs auto-submits it (a form, or ``fetch(link, {method: "POST", mode: "no-cors"})``) from a victim's browser,
which lands signed in to the attacker's account at the vendor. Three checks, all made before the link is spent;
the first and the last each stop it on their own in a current browser:

- **Fetch metadata.** A ``Sec-Fetch-Site`` other than ``same-origin`` is another site's (or another port's) doing.
  The page's own button sends ``same-origin``.
- **Origin.** An ``Origin`` other than this request's own (``null`` aside) is another site's. The page's own
  button sends ``null``: the page is served with ``Referrer-Policy: no-referrer``, which blanks it. (So can an
  attacker's page, which is why this check is not the only one.)
- **The form binding.** The page comes with a cookie (``sso_bridge_link``: a random value, ``HttpOnly``,
  ``Secure``, ``SameSite=Strict``, sent to this route's path only) and its form carries a hidden field, an HMAC
  of the link's ``jti`` and that value under a key derived from the login-token key. A browser sends a
  ``SameSite=Strict`` cookie with no request another site starts (another origin of the same site, a sibling
  host or port, does get it: fetch metadata stops that one), and nobody else can read the cookie or compute the
  field without the key: a POST without both, or with a field for another link or another cookie, is refused.

The cookie is one per browser and route, kept when a second link is opened, so two links open in two tabs both
work. A refused POST spends nothing; opening the link again shows the page with the cookie, and the button works.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from .errors import LinkPostRefused
from .http import Event
from .request import public_origin, request_scheme

__all__ = ["COOKIE_MAX_AGE", "COOKIE_NAME", "FIELD_NAME", "FormBinding", "bind", "check_post", "field_value"]

COOKIE_NAME = "sso_bridge_link"
FIELD_NAME = "link_form"
# How long a page may stay open before its button needs the link opened again.
COOKIE_MAX_AGE = 86400
# The form's body is one field of 43 characters; anything much longer is not the page's form.
_MAX_BODY_LENGTH = 1024
_KEY_LABEL = b"sso-bridge link form v1"
_NONCE_BYTES = 16
_NONCE = re.compile(r"[A-Za-z0-9_-]{22}", re.ASCII)
# A request path fit for the cookie's Path attribute: no ';', blanks or controls (else the cookie covers "/").
_COOKIE_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,=:@/%-]{0,500}", re.ASCII)
_LOGGABLE = re.compile(r"[\x21-\x7e]{1,100}", re.ASCII)


@dataclass(frozen=True, slots=True)
class FormBinding:
    """What the confirmation page carries: the hidden field's value, and the ``Set-Cookie`` it is bound to."""

    field: str
    cookie: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def field_value(login_key: str, *, jti: str, nonce: str) -> str:
    """The hidden field for link ``jti`` in the browser whose cookie holds ``nonce``."""
    # A key of its own, so a field can never pass for a login token or an OpenID state, nor the other way round.
    key = hmac.new(login_key.encode(), _KEY_LABEL, hashlib.sha256).digest()
    return _b64(hmac.new(key, f"{jti}|{nonce}".encode(), hashlib.sha256).digest())


def _cookie_path(event: Event) -> str:
    path = event.raw_path or "/"
    return path if _COOKIE_PATH.fullmatch(path) else "/"


def bind(event: Event, *, jti: str, login_key: str) -> FormBinding:
    """The field and cookie for the page of link ``jti``; the browser's cookie is kept when it has one."""
    nonce = event.cookies.get(COOKIE_NAME) or ""
    if not _NONCE.fullmatch(nonce):
        nonce = _b64(secrets.token_bytes(_NONCE_BYTES))
    attributes = f"Max-Age={COOKIE_MAX_AGE}; Path={_cookie_path(event)}; HttpOnly; Secure; SameSite=Strict"
    return FormBinding(
        field=field_value(login_key, jti=jti, nonce=nonce), cookie=f"{COOKIE_NAME}={nonce}; {attributes}"
    )


def _loggable(value: str) -> str:
    return value if _LOGGABLE.fullmatch(value) else "other"


def _own_origins(event: Event, public_host: str | None) -> frozenset[str]:
    """The origins this request may come from: the public one, and the host the event names (the API's own)."""
    own = f"{request_scheme(event)}://{event.request_context.domain_name}"
    return frozenset({public_origin(event, public_host).lower(), own.lower()})


def _form_field(event: Event) -> str | None:
    body = event.body
    if len(body) > _MAX_BODY_LENGTH * 2:
        return None
    if event.body_base64:
        try:
            body = base64.b64decode(body, validate=True).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            return None
    if len(body) > _MAX_BODY_LENGTH:
        return None
    try:
        fields = parse_qsl(body, keep_blank_values=True, max_num_fields=8)
    except ValueError:
        return None
    values = [value for name, value in fields if name == FIELD_NAME]
    return values[0] if len(values) == 1 and values[0] else None


def check_post(event: Event, *, jti: str, login_keys: Iterable[str], public_host: str | None) -> None:
    """Refuse (``LinkPostRefused``) a POST of link ``jti`` that its page in this browser did not send."""
    site = event.headers.get("sec-fetch-site")
    if site is not None and site.strip().lower() != "same-origin":
        raise LinkPostRefused("link_post_cross_site", detail=_loggable(site.strip()))
    origin = (event.headers.get("origin") or "").strip().lower()
    if origin and origin != "null" and origin not in _own_origins(event, public_host):
        raise LinkPostRefused("link_post_cross_origin", detail=_loggable(origin))
    nonce = event.cookies.get(COOKIE_NAME) or ""
    if not _NONCE.fullmatch(nonce):
        raise LinkPostRefused("link_post_unbound", detail="no cookie" if not nonce else "cookie malformed")
    field = _form_field(event)
    if field is None:
        raise LinkPostRefused("link_post_unbound", detail="no form field")
    # The current key first; the previous one (within its grace) only for a page shown before a rotation.
    sent = field.encode()
    if not any(hmac.compare_digest(sent, field_value(key, jti=jti, nonce=nonce).encode()) for key in login_keys):
        raise LinkPostRefused("link_post_unbound", detail="field does not match")
