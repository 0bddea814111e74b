"""A Discourse community with DiscourseConnect turned on, played locally.

Discourse's side of the contract, as its code does it (discourse/discourse: ``lib/discourse_connect_base.rb``,
``app/models/discourse_connect.rb``, ``SessionController#sso`` and ``#sso_login``; meta.discourse.org/t/13045):

- ``/session/sso`` makes a nonce (``SecureRandom.hex``), remembers it for ten minutes with the ``return_path``, bound
  to this browser's session (``discourse_connect_csrf_protection``, on by default), and redirects to the
  ``discourse_connect_url`` with ``sso`` (strict Base64 of ``nonce`` and ``return_sso_url``) and ``sig`` (hex
  HMAC-SHA256 of that Base64 text under ``discourse_connect_secret``).
- ``/session/sso_login`` checks the Base64 alphabet (422), the signature over ``sso`` exactly as the query gives it
  (422), then the nonce: known, from this browser, unexpired and unused (419; a used one is remembered 24 hours).
  The nonce is spent before the user is looked up; then ``external_id`` must be set and not ``none``, ``nil``,
  ``blank`` or ``null``, and ``email`` must be there (Discourse answers those with 500s).

The session cookie has no ``Secure`` flag: the stand-in is also reached on plain http ports (``make run``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html import escape
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlencode

from local.server import App, Reply, Request
from local.vendors.operations import LinkRules, Probe, Settings, carries_no_token, setting_host
from local.vendors.portal import Overrides, Portal, Query, hosts_of
from local.vendors.site import Refused, Site, StandInSpec, link, param, query, signed_in, site_app

__all__ = [
    "DISCOURSE_NONCE_SECONDS",
    "DISCOURSE_USED_NONCE_SECONDS",
    "SESSION_COOKIE",
    "SPEC",
    "discourse",
    "discourse_sign",
]

DISCOURSE_NONCE_SECONDS = 10 * 60  # DiscourseConnectBase.nonce_expiry_time
DISCOURSE_USED_NONCE_SECONDS = 24 * 3600  # DiscourseConnectBase.used_nonce_expiry_time
SESSION_COOKIE = "_forum_session"  # Discourse's session cookie, which its server session (and the nonce) hang on
_BASE64 = re.compile(r"[A-Za-z0-9=\r\n/+]*", re.ASCII)  # what DiscourseConnectBase.parse lets through
_BANNED_EXTERNAL_IDS = frozenset({"none", "nil", "blank", "null"})  # DiscourseConnect::BANNED_EXTERNAL_IDS


def discourse_sign(payload: str, secret: str) -> str:
    """``OpenSSL::HMAC.hexdigest("sha256", secret, payload)``: over the Base64 text."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


@dataclass
class _Nonce:
    session: str
    return_path: str
    expires_at: float


def _session(request: Request) -> str | None:
    raw = request.header("cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(SESSION_COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


def _payload(sso: str) -> dict[str, str]:
    """``Base64.decode64`` then ``Rack::Utils.parse_query``; a repeated key has no one value, so it is refused."""
    try:
        decoded = base64.b64decode(sso.replace("\r", "").replace("\n", "")).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Refused(422, "The sso payload is not valid Base64 of UTF-8 text.") from None
    fields: dict[str, str] = {}
    for name, value in parse_qsl(decoded, keep_blank_values=True):
        if name in fields:
            raise Refused(422, "The sso payload names a field more than once.")
        fields[name] = value
    return fields


def discourse(
    *,
    host: str,
    key: str,
    connect_url: str,
    csrf_protection: bool = True,
    clock: Callable[[], float] = time.time,
) -> App:
    """A Discourse community at ``https://{host}`` whose ``discourse_connect_url`` is ``connect_url`` (the bridge's
    ``/discourse/login``) and whose ``discourse_connect_secret`` is ``key``."""
    site = Site("Discourse", "Community", host)
    nonces: dict[str, _Nonce] = {}
    used: dict[str, float] = {}
    lock = threading.Lock()

    def home(request: Request) -> Reply:
        body = f"<p>Join the conversation.</p>{link('/session/sso?return_path=/', 'Log in')}"
        return site.page(200, "Community (local stand-in)", body)

    def start(request: Request) -> Reply:
        # SessionController#sso: DiscourseConnect.generate_sso(return_path).to_url
        session = _session(request) or secrets.token_urlsafe(24)
        nonce = secrets.token_hex(16)
        now = clock()
        with lock:
            for stale in [name for name, entry in nonces.items() if entry.expires_at <= now]:
                del nonces[stale]
            nonces[nonce] = _Nonce(session, query(request).get("return_path") or "/", now + DISCOURSE_NONCE_SECONDS)
        # Rack::Utils.build_query of the accessors in order (nonce, return_sso_url); Base64.strict_encode64.
        unsigned = urlencode({"nonce": nonce, "return_sso_url": f"https://{host}/session/sso_login"})
        sso = base64.b64encode(unsigned.encode()).decode("ascii")
        separator = "&" if "?" in connect_url else "?"
        location = f"{connect_url}{separator}sso={quote_plus(sso)}&sig={discourse_sign(sso, key)}"
        headers = [("Location", location), ("Cache-Control", "no-store")]
        if csrf_protection:
            headers.append(("Set-Cookie", f"{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Lax"))
        return Reply(302, headers)

    def check_nonce(nonce: str, request: Request) -> _Nonce:
        """``nonce_valid?`` and ``nonce_error``, then ``expire_nonce!``: a valid nonce is spent here."""
        now = clock()
        session = _session(request)
        with lock:
            entry = nonces.get(nonce)
            # With CSRF protection the nonce lives in this browser's server session: another browser has none.
            same_browser = not csrf_protection or (entry is not None and entry.session == session)
            if entry is None or entry.expires_at <= now or not same_browser:
                if used.get(nonce, 0) > now:
                    raise Refused(419, "Nonce has already been used")
                raise Refused(419, "Nonce is incorrect, was generated in a different browser session, or has expired")
            del nonces[nonce]
            used[nonce] = now + DISCOURSE_USED_NONCE_SECONDS
            return entry

    def sso_login(request: Request) -> Reply:
        params = query(request)
        sso, sig = param(params, "sso"), param(params, "sig")
        if not _BASE64.fullmatch(sso):
            raise Refused(422, "The sso field is not Base64 (A-Z, a-z, 0-9, +, / and =).")
        if not hmac.compare_digest(discourse_sign(sso, key).encode(), sig.encode()):
            raise Refused(422, "Bad signature for payload: sig is not the HMAC-SHA256 of sso with the secret.")
        fields = _payload(sso)
        entry = check_nonce(fields.get("nonce", ""), request)
        external_id = fields.get("external_id", "").strip()
        if not external_id:
            raise Refused(500, "The payload has no external_id.")
        if external_id.lower() in _BANNED_EXTERNAL_IDS:
            raise Refused(500, "The payload's external_id is not allowed.")
        email = fields.get("email", "").strip()
        if "@" not in email:
            raise Refused(500, "The payload has no email.")
        name = fields.get("name") or ""
        if fields.get("require_activation") == "true":
            # No match by email, and the new account waits for its activation mail.
            body = f"<p>We sent an activation mail to <strong>{escape(email)}</strong>.</p>"
            return site.page(200, "Confirm your email", body, title="Account created")
        details = f"<p>External id: <code>{escape(external_id)}</code></p>"
        if name:
            details += f"<p>Name: <strong>{escape(name)}</strong></p>"
        details += f"<p>Return path: <code>{escape(entry.return_path)}</code></p>"
        return signed_in(site, email, details, {name: value for name, value in fields.items() if name != "nonce"})

    return site_app(site, {"/": home, "/session/sso": start, "/session/sso_login": sso_login})


def _smoke_probe(settings: Settings, key: str | None) -> Probe:
    """`make smoke`: a DiscourseConnect request signed as Discourse signs it (a fresh nonce, ``return_sso_url`` on
    the community's host), answered on that URL with a payload for the nonce and its ``sig`` under the same secret.
    Without the key (the placeholder) no request can be signed: the bridge must then hand off to ``/session/sso``."""
    host = setting_host(settings("DISCOURSE_URL"))
    if key is None or host is None:
        return Probe("discourse", host=host, path="/session/sso", handoff=True, carries=carries_no_token)
    secret = key
    nonce = secrets.token_hex(16)
    sso = base64.b64encode(urlencode({"nonce": nonce, "return_sso_url": f"https://{host}/session/sso_login"}).encode())

    def carries(params: Mapping[str, str]) -> str | None:
        answer, sig = params.get("sso", ""), params.get("sig", "")
        if not answer or not sig:
            return "without sso and sig"
        if not hmac.compare_digest(discourse_sign(answer, secret), sig):
            return "with a sig that is not the HMAC of its sso under the key in the secret"
        try:
            fields = _payload(answer)
        except Refused:
            return "with an sso that is not Base64 of a query string"
        if fields.get("nonce") != nonce:
            return "for another nonce than the one sent"
        if not fields.get("email") or not fields.get("external_id"):
            return "without an email and an external_id"
        return None

    query = {"sso": sso.decode(), "sig": discourse_sign(sso.decode(), secret)}
    return Probe("discourse", query=query, host=host, path="/session/sso_login", carries=carries)


def _portal(env: Mapping[str, str], key: str) -> Portal:
    """DiscourseConnect as Discourse sends it: ``sso`` (Base64 of a fresh nonce and ``return_sso_url``) and ``sig``.

    Overriding ``nonce`` or ``return_sso_url`` signs the changed payload (what Discourse itself could send);
    overriding ``sso`` alone signs that text; ``sig`` replaces the signature. The answer is read strictly (Base64
    without line breaks, a well-formed query): what the bridge sends, not the most Discourse would take."""
    origin = env["DISCOURSE_URL"].rstrip("/")
    signed = ("nonce", "return_sso_url")

    def build(overrides: Overrides) -> Query:
        payload: dict[str, str | None] = {
            "nonce": secrets.token_hex(16),
            "return_sso_url": f"{origin}/session/sso_login",
        }
        payload |= {name: value for name, value in overrides.items() if name in signed}
        fields = {name: value for name, value in payload.items() if value is not None}
        sso = overrides["sso"] if "sso" in overrides else base64.b64encode(urlencode(fields).encode()).decode()
        sig = overrides["sig"] if "sig" in overrides else discourse_sign(sso or "", key)
        rest = {name: value for name, value in overrides.items() if name not in {*signed, "sso", "sig"}}
        return {name: value for name, value in {"sso": sso, "sig": sig, **rest}.items() if value is not None}

    def read(values: Mapping[str, str]) -> dict[str, Any]:
        # As Discourse reads the answer: the HMAC of the sso text first, then its Base64 payload.
        assert hmac.compare_digest(discourse_sign(values["sso"], key), values["sig"]), "sig is not sso's HMAC"
        return dict(parse_qsl(base64.b64decode(values["sso"], validate=True).decode(), strict_parsing=True))

    return Portal(
        "discourse",
        params=("sso", "sig", *signed),
        build=build,
        hosts=hosts_of(origin),
        credentials=("sso", "sig"),
        read=read,
        destination="return_sso_url",
        hands_off=True,
    )


SPEC = StandInSpec(
    vendor="discourse",
    title="Discourse community",
    host_setting="DISCOURSE_URL",
    secret_setting="DISCOURSE_SECRET_ID",  # noqa: S106 - a variable's name, not a secret
    seed_var="DISCOURSE_CONNECT_SECRET",
    login_path="/discourse/login",
    entry="/",
    defaults={"DISCOURSE_URL": "https://yourcompany.discourse.group"},
    make=lambda context: discourse(host=context.host, key=context.key, connect_url=context.login_url),
    probe=_smoke_probe,
    links=LinkRules(on_route=True),
    portal=_portal,
)
