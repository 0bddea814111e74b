"""Discourse: DiscourseConnect, the community's own single sign-on, answered by the bridge.

DiscourseConnect is not a JWT (meta.discourse.org/t/13045; discourse's ``lib/discourse_connect_base.rb``,
``app/models/discourse_connect.rb``, ``app/controllers/session_controller.rb``). The community's Log in goes to
``/session/sso``, which makes a nonce, remembers it for ten minutes and sends the browser to the
``discourse_connect_url`` (this route) with ``sso``, the Base64 of a query string holding ``nonce`` and
``return_sso_url``, and ``sig``, the hex HMAC-SHA256 of that Base64 text under ``discourse_connect_secret``. We answer
``return_sso_url?sso=...&sig=...``: the Base64 of ``nonce``, ``email``, ``external_id`` and the rest, and its HMAC.
Discourse spends the nonce once.

The signature covers the ``sso`` value as Discourse's own parser reads it (URL-decoded from the query, as Rack does)
and before Base64 decoding: signing or checking the decoded payload is the classic mistake. It is checked in
constant time before anything in the payload is read, with the lengths capped first; the payload is then decoded
strictly (Discourse's Base64 alphabet, the line breaks its older versions wrote every 60 characters allowed), and
``return_sso_url`` must be https on ``DISCOURSE_URL``'s host. All of it before the sign-in round trip.

Discourse must start the flow: only it can make the nonce. A reader whose email link was just spent, or whom the
platform sent here directly, is handed off to ``/session/sso`` (``SignIn.hand_off``) and comes back with ``sso``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

from sso_bridge.entry import lambda_entry
from sso_bridge.errors import BadRequest, BridgeError, RedirectNotAllowed
from sso_bridge.flow import SIGN_IN_METHODS, SignIn, new_app
from sso_bridge.http import Response
from sso_bridge.i18n import N_
from sso_bridge.login_token import LoginIdentity, email_key
from sso_bridge.observability import Logger, Metrics
from sso_bridge.redirects import allowed_url, with_query_param
from sso_bridge.request import Query
from sso_bridge.settings import CommonSettings, env_origin

AUDIENCE = "discourse"
# TRANSLATORS: a portal's name (see "the portal").
PORTAL_NAME = N_("the community")
# Where Discourse starts its own sign-in (SessionController#sso); return_path is where it lands the user after.
START_PATH = "/session/sso?return_path=/"
# Base64 of a nonce and a return URL (at most 2,048 characters), percent-encoded, with room for line breaks.
MAX_SSO_LENGTH = 4096
MAX_SIG_LENGTH = 128  # longer is refused as too large; anything but 64 hex digits fails the check
MAX_NONCE_LENGTH = 128  # Discourse's are 32 hex digits (SecureRandom.hex)
# DiscourseConnectBase.parse refuses anything outside this alphabet; its old encoder wrote \n every 60 characters.
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/=\r\n]+", re.ASCII)
_SIG = re.compile(r"[0-9a-f]{64}", re.ASCII)
_NONCE = re.compile(r"[\x21-\x7e]+", re.ASCII)
_MAX_PAYLOAD_FIELDS = 32


class ConnectRequestIncomplete(BadRequest):
    """``sso`` without ``sig`` or the other way round, or a payload without ``nonce`` or ``return_sso_url``: no
    answer Discourse would take can be made, and signing in would not help."""

    reason = "discourse_sso_incomplete"
    title = N_("This sign-in link is incomplete")
    message = N_(
        "The community's sign-in request is incomplete or damaged. "
        "Please go back to the community and press Log in again."
    )


class ConnectRequestMalformed(ConnectRequestIncomplete):
    """A signed ``sso`` that is not what Discourse writes: not Base64, not UTF-8, not one value per key."""

    reason = "discourse_sso_malformed"


class ConnectSignatureInvalid(BridgeError):
    """``sig`` is not the HMAC of ``sso`` under our secret: not from our community, tampered with, or signed with
    another secret (the one in Discourse's settings and the one in DiscourseSecret differ)."""

    status = 403
    code = reason = "discourse_signature_invalid"
    title = N_("We could not sign you in")
    message = N_(
        "The community's sign-in request does not carry a valid signature, so we did not sign you in. "
        "Please go back to the community and press Log in again."
    )


class ReturnUrlCarriesSignature(RedirectNotAllowed):
    """A ``return_sso_url`` that already holds ``sso`` or ``sig``: with ours appended Discourse would read two."""

    reason = "discourse_return_url_signed"


@dataclass(frozen=True, slots=True)
class Settings:
    common: CommonSettings
    discourse_url: str
    secret_id: str

    @property
    def host(self) -> str:
        return self.discourse_url.removeprefix("https://")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        common = CommonSettings.from_env(env, portal_name=PORTAL_NAME)
        secret_id = common.vendor_secret_id(env, "DISCOURSE_SECRET_ID")
        return cls(
            common=common,
            discourse_url=env_origin(env, "DISCOURSE_URL", example="https://community.example.com"),
            secret_id=secret_id,
        )


# Read once per container; a bad variable stops the cold start with its name.
settings = Settings.from_env(os.environ)

app = new_app()
logger = Logger()
metrics = Metrics()
flow = SignIn(app, settings=settings.common, audience=AUDIENCE, logger=logger, metrics=metrics)


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    """What a verified ``sso`` asks for: the nonce to sign back, and where Discourse waits for the answer."""

    nonce: str
    return_url: str


def sign(payload: str, secret: str) -> str:
    """``OpenSSL::HMAC.hexdigest("sha256", secret, payload)``: of the Base64 text, never of what it decodes to."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def check_signature(sso: str, sig: str, secret: str) -> None:
    """``sig`` must be the HMAC of ``sso`` exactly as received; compared in constant time, before ``sso`` is read."""
    if not hmac.compare_digest(sign(sso, secret).encode(), sig.encode()):
        raise ConnectSignatureInvalid(detail="mismatch" if _SIG.fullmatch(sig) else "not 64 lowercase hex digits")


def _payload_fields(sso: str) -> dict[str, str]:
    """The signed payload as Discourse wrote it: Base64 (line breaks allowed) of a URL-encoded query string."""
    if not _BASE64_TEXT.fullmatch(sso):
        raise ConnectRequestMalformed(detail="not base64")
    try:
        decoded = binascii.a2b_base64(sso.replace("\r", "").replace("\n", ""), strict_mode=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ConnectRequestMalformed(detail=f"payload: {type(exc).__name__}") from exc
    # Rack::Utils.build_query escapes ';', controls and non-ASCII: a raw one was not written by Discourse.
    if ";" in decoded or not decoded.isascii() or not decoded.isprintable():
        raise ConnectRequestMalformed(detail="payload characters")
    try:
        pairs = parse_qsl(decoded, keep_blank_values=True, strict_parsing=True, max_num_fields=_MAX_PAYLOAD_FIELDS)
    except ValueError as exc:
        raise ConnectRequestMalformed(detail="payload query") from exc
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:  # Rack would make an array of it: no single value to trust
            raise ConnectRequestMalformed(detail=f"repeated {name[:40]}")
        fields[name] = value
    return fields


def read_request(sso: str, sig: str, secret: str) -> ConnectRequest:
    """The nonce and return URL of a request Discourse signed; anything else refused before it is used."""
    check_signature(sso, sig, secret)
    fields = _payload_fields(sso)
    nonce, raw_return = fields.get("nonce"), fields.get("return_sso_url")
    if not nonce:
        raise ConnectRequestIncomplete("discourse_nonce_missing")
    if not raw_return:
        raise ConnectRequestIncomplete("discourse_return_url_missing")
    if len(nonce) > MAX_NONCE_LENGTH or not _NONCE.fullmatch(nonce):
        raise ConnectRequestMalformed(detail="nonce")
    return_url = allowed_url(raw_return, {settings.host})
    names = {name.lower() for name, _ in parse_qsl(urlsplit(return_url).query, keep_blank_values=True)}
    if names & {"sso", "sig"}:
        raise ReturnUrlCarriesSignature()
    return ConnectRequest(nonce=nonce, return_url=return_url)


def display_name(user: LoginIdentity) -> str | None:
    """The name when the login token has one (or given and family names); else none, and Discourse suggests one."""
    if user.name:
        return user.name
    parts = [part for part in (user.profile.given_name, user.profile.family_name) if part]
    return " ".join(parts) or None


def external_id(user: LoginIdentity) -> str:
    """Discourse keys its users on it: the platform's ``sub`` when it sends one, else the email in the one form the
    bridge stores addresses in (``email_key``), so capitalisation never makes a second id for one person."""
    return user.profile.subject or email_key(user.email)


def answer_payload(user: LoginIdentity, nonce: str) -> str:
    """The unsigned payload, a query string as ``Rack::Utils.build_query`` writes it (space as ``+``, ``+`` escaped).

    ``require_activation=false``: every identity the bridge signs for has a verified email (a platform login token,
    or an OpenID sign-in whose ``email_verified`` was true), so Discourse may match it to an existing account by
    email without sending an activation mail. No ``username``: the bridge has none of its own, and Discourse suggests
    one from the name or email (and would rename users at each sign-in with ``auth_overrides_username``).
    """
    fields = {"nonce": nonce, "email": user.email, "external_id": external_id(user)}
    name = display_name(user)
    if name:
        fields["name"] = name
    fields["require_activation"] = "false"
    return urlencode(fields)


def answer_location(user: LoginIdentity, request: ConnectRequest, secret: str) -> str:
    """``return_sso_url`` with ``sso`` (strict Base64: no line breaks) and its ``sig`` appended, as Discourse's own
    ``to_url`` appends them (``&`` when the URL has a query)."""
    sso = base64.b64encode(answer_payload(user, request.nonce).encode()).decode("ascii")
    return with_query_param(with_query_param(request.return_url, "sso", sso), "sig", sign(sso, secret))


@app.route("/discourse/login", method=SIGN_IN_METHODS)
@app.route("/", method=SIGN_IN_METHODS)
def login() -> Response:
    query = Query(app.current_event.raw_query_string)
    sso = query.get("sso", max_length=MAX_SSO_LENGTH)
    sig = query.get("sig", max_length=MAX_SIG_LENGTH)
    if sso is None and sig is None:
        # An email link just spent, or the platform sent the user here: Discourse must make the nonce first.
        user = flow.identify(query)
        return flow.hand_off(user, f"{settings.discourse_url}{START_PATH}")
    if sso is None or sig is None:
        raise ConnectRequestIncomplete(detail="sso" if sso is None else "sig")
    # Checked before the sign-in round trip, so a forged or broken request fails before the user types anything.
    secret = flow.vendor_key(settings.secret_id)
    request = read_request(sso, sig, secret)
    user = flow.identify(query)

    location = answer_location(user, request, secret)
    flow.issued(user, external_id_source="sub" if user.profile.subject else "email")
    return flow.redirect(location)


lambda_handler = lambda_entry(app, logger=logger, metrics=metrics, trace_subsegments=settings.common.trace_subsegments)
