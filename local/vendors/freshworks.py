"""A Freshworks support portal with JWT SSO, played locally (the README's Freshworks section has the sources).

Freshworks' side of its custom JWT SSO (support.freshworks.com article 50000000670, supportsandbox.freshdesk.com
articles 11000000028069 and 11000000028109): the portal's login page starts an OAuth 2.0 implicit flow, sending
the browser to the configured Authorization URL with ``response_type=id_token``, ``client_id``, ``scope``,
``state``, ``redirect_uri`` (``https://<account>.freshworks.com/sp/OIDC/<id>/implicit``) and ``nonce``; the
identity provider sends it back to ``{redirect_uri}?state=...&id_token=...``, a JWT signed RS256 with the private
key whose public half the admin pasted into Freshworks, with ``sub``, ``email``, ``iat`` and the ``nonce``.

Like Freshworks' own (base64 of ``host;digest;nonce``), the stand-in's ``state`` carries its nonce and is
authenticated rather than stored, so the portal page and the implicit endpoint may be served on different hosts
(``standin_hosts``); it is good for ``STATE_SECONDS`` and once. The token is verified with the public key only
(the stand-in never uses the private half), RS256 only: ``none``, HMAC with the public key as its secret and
every other algorithm are refused before the claims are read. ``exp`` is checked when present; the articles
name no lifetime of their own, the state's bounds the token's.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Mapping
from html import escape
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import jwt
from jwt.types import Options

from local.server import App, Reply, Request
from local.vendors.operations import LinkRules, Probe, Settings, first_host, jwt_header
from local.vendors.portal import Portal, first_of, hosts_of, plain_query
from local.vendors.site import (
    Refused,
    Site,
    StandInContext,
    StandInSpec,
    check_exp_nbf,
    check_iat,
    decode,
    link,
    param,
    query,
    signed_in,
    site_app,
    text,
)

__all__ = [
    "FRESHWORKS_SKEW_SECONDS",
    "SPEC",
    "STATE_SECONDS",
    "freshworks",
    "implicit_path",
    "make",
    "public_key_pem",
    "standin_hosts",
]

# The articles name no tolerance for a clock ahead of theirs; a minute, as for the other stand-ins.
FRESHWORKS_SKEW_SECONDS = 60
# How long a sign-in started at the portal may take to come back (the stand-in's choice: the articles say nothing).
STATE_SECONDS = 600
_PORTAL_HOST = "yourcompany.freshdesk.com"  # the placeholder portal `make run` serves
_ACCOUNT_HOST = "yourcompany.freshworks.com"  # the placeholder account host of Freshworks' redirect URL
_LOGIN_PATH = "/support/login"
# Freshworks names its SSO configuration by one number, in client_id and the redirect URL's path (made up here).
_SAMPLE_ID = "100000000000000001"
_SCOPE = "openid email profile"
_DIGITS = re.compile(r"[0-9]{1,32}", re.ASCII)
# One key per process for the states it issues: the portal page and the implicit endpoint share it across hosts.
_STATE_KEY = secrets.token_bytes(32)


def public_key_pem(private_pem: str) -> str:
    """The public half (SubjectPublicKeyInfo PEM) of the private key `make run` seeded: what the admin pastes in."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


# A test run builds the portal hundreds of times with the same key: parse it once.
_public_pem = functools.cache(public_key_pem)


def implicit_path(client_id: str) -> str:
    """``/sp/OIDC/<id>/implicit``: the id is the configuration's number (the client id, in Freshworks' sample)."""
    return f"/sp/OIDC/{client_id if _DIGITS.fullmatch(client_id) else _SAMPLE_ID}/implicit"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _mac(host: str, issued: int, nonce: str) -> str:
    return _b64(hmac.new(_STATE_KEY, f"{host};{issued};{nonce}".encode(), hashlib.sha256).digest())


def _new_state(host: str, nonce: str) -> str:
    """Base64 (the standard alphabet, with ``+``, ``/`` and ``=``, as Freshworks' own) of host, time, digest, nonce."""
    issued = int(time.time())
    return _b64(f"{host};{issued};{_mac(host, issued, nonce)};{nonce}".encode())


def _read_state(state: str, host: str) -> str:
    """The nonce ``state`` carries, once it is shown to be this portal's, recent; ``Refused`` otherwise."""
    try:
        parts = base64.b64decode(state, validate=True).decode().split(";")
    except (binascii.Error, UnicodeDecodeError):
        raise Refused(400, "The state was not issued by this portal.") from None
    if len(parts) != 4 or not parts[1].isdigit():
        raise Refused(400, "The state was not issued by this portal.")
    state_host, issued, digest, nonce = parts[0], int(parts[1]), parts[2], parts[3]
    if state_host != host or not hmac.compare_digest(digest, _mac(state_host, issued, nonce)):
        raise Refused(400, "The state was not issued by this portal.")
    if time.time() - issued > STATE_SECONDS:
        raise Refused(400, "The sign-in took too long: start again from the portal's Log in button.")
    return nonce


def _authorization_url(authorization_url: str, params: Mapping[str, str]) -> str:
    """The Authorization URL as Freshworks opens it: its own query kept, the implicit flow's parameters added."""
    parts = urlsplit(authorization_url)
    # redirect_uri unencoded, as in Freshworks' sample request; the rest percent-encoded.
    pairs = "&".join(
        f"{name}={value if name == 'redirect_uri' else quote(value, safe='')}" for name, value in params.items()
    )
    return urlunsplit(parts._replace(query=f"{parts.query}&{pairs}" if parts.query else pairs))


def _verify(token: str, public_pem: str) -> dict[str, Any]:
    """RS256 with the public key; ``sub``, ``email``, ``iat`` and ``nonce`` required (Freshworks' articles)."""
    return decode(token, public_pem, ["sub", "email", "iat", "nonce"], algorithm="RS256")


def freshworks(
    *, host: str, account_host: str, public_key: str, client_id: str, authorization_url: str, login_path: str
) -> App:
    """A Freshworks account with JWT SSO, as served at ``https://{host}``.

    ``login_path`` (the portal's login page) starts the flow at ``authorization_url`` (the bridge's route) with the
    redirect URL on ``account_host``; ``implicit_path(client_id)`` takes the answer and checks it with
    ``public_key``. Both are answered on any host, so one app serves the portal and the account alike.
    """
    site = Site("Freshworks", "Support portal", host)
    redirect_uri = f"https://{account_host}{implicit_path(client_id)}"
    used: set[str] = set()
    used_lock = threading.Lock()

    def home(request: Request) -> Reply:
        body = f"<p>Log in to see your tickets.</p>{link(login_path, 'Log in')}"
        return site.page(200, "Support portal (local stand-in)", body)

    def start(request: Request) -> Reply:
        nonce = secrets.token_urlsafe(12)
        params = {
            "response_type": "id_token",
            "client_id": client_id,
            "scope": _SCOPE,
            "state": _new_state(account_host, nonce),
            "redirect_uri": redirect_uri,
            "nonce": nonce,
        }
        return Reply(302, [("Location", _authorization_url(authorization_url, params)), ("Cache-Control", "no-store")])

    def implicit(request: Request) -> Reply:
        params = query(request)  # the query: Freshworks reads state and id_token there, never a fragment
        state = param(params, "state")
        token = param(params, "id_token")
        nonce = _read_state(state, account_host)
        claims = _verify(token, public_key)
        if not isinstance(claims["nonce"], str) or not hmac.compare_digest(claims["nonce"], nonce):
            raise Refused(401, "The token's nonce is not the one sent with this state.")
        now = time.time()
        check_exp_nbf(claims, now, FRESHWORKS_SKEW_SECONDS, expired="The token has expired (exp).")
        check_iat(claims, now, FRESHWORKS_SKEW_SECONDS)
        subject, email = text(claims, "sub"), text(claims, "email")
        names = " ".join(text(claims, name) for name in ("given_name", "family_name") if name in claims)
        # Last, so only an answer that would sign someone in uses up its state.
        with used_lock:
            if state in used:
                raise Refused(400, "This sign-in was completed already: start again from the portal's Log in button.")
            used.add(state)
        details = f"<p>Name: <strong>{escape(names or '(none given)')}</strong>, id <code>{escape(subject)}</code>.</p>"
        return signed_in(site, email, details, claims)

    return site_app(site, {"/": home, login_path: start, implicit_path(client_id): implicit})


def _host(url: str) -> str:
    return (urlsplit(url.strip()).hostname or "").lower()


def _redirect_hosts(env: Mapping[str, str]) -> list[str]:
    return [host.strip().lower() for host in env.get("FRESHWORKS_REDIRECT_HOSTS", "").split(",") if host.strip()]


def standin_hosts(env: Mapping[str, str]) -> tuple[str, ...]:
    """Every host Freshworks' side answers on: the portal's (``FRESHWORKS_PORTAL_URL``), then the redirect hosts."""
    hosts = [_host(env["FRESHWORKS_PORTAL_URL"])] if env.get("FRESHWORKS_PORTAL_URL", "").strip() else []
    return tuple(dict.fromkeys(host for host in [*hosts, *_redirect_hosts(env)] if host))


def make(ctx: StandInContext) -> App:
    """The app for ``ctx.host``, from the function's settings (read leniently: the function refuses bad ones).

    ``ctx.key`` is the private key's PEM `make run` seeded; only its public half reaches the stand-in."""
    env = ctx.env
    portal_url = env.get("FRESHWORKS_PORTAL_URL", "").strip()
    hosts = _redirect_hosts(env)
    return freshworks(
        host=ctx.host,
        account_host=hosts[0] if hosts else _ACCOUNT_HOST,
        public_key=public_key_pem(ctx.key),
        client_id=env.get("FRESHWORKS_CLIENT_ID", "").strip() or _SAMPLE_ID,
        authorization_url=ctx.login_url,
        login_path=(urlsplit(portal_url).path or _LOGIN_PATH) if portal_url else _LOGIN_PATH,
    )


def _smoke_probe(settings: Settings, key: str | None) -> Probe:
    """`make smoke`: Freshworks' authorization request (its fresh ``state`` and ``nonce``, ``redirect_uri`` on the
    first allowed host), answered on ``redirect_uri`` with that state and an RS256 ``id_token`` carrying the nonce,
    verified with the public half of the key in the secret."""
    client_id = (settings("FRESHWORKS_CLIENT_ID") or "").strip()
    host = first_host(settings("FRESHWORKS_REDIRECT_HOSTS"))
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    sent = {"response_type": "id_token", "client_id": client_id, "scope": _SCOPE, "state": state, "nonce": nonce}
    if host:
        sent["redirect_uri"] = f"https://{host}{implicit_path(client_id)}"

    def carries(params: Mapping[str, str]) -> str | None:
        if params.get("state") != state:
            return "without the state Freshworks sent"
        token = params.get("id_token", "")
        if (jwt_header(token) or {}).get("alg") != "RS256":
            return "without an RS256 id_token"
        if key is None:
            return None
        options: Options = {"require": ["sub", "email", "iat", "exp", "nonce"], "verify_aud": False}
        try:
            claims = jwt.decode(token, public_key_pem(key), algorithms=["RS256"], options=options)
        except (jwt.PyJWTError, ValueError, TypeError):
            return "with an id_token the public half of the key in the secret does not verify"
        return None if claims.get("nonce") == nonce else "with an id_token for another nonce than the one sent"

    return Probe("freshworks", query=sent, host=host, path=implicit_path(client_id), carries=carries)


def _portal(env: Mapping[str, str], key: str) -> Portal:
    """Freshworks' implicit flow, as its portal starts it (its ``redirect_uri``, ``state`` and ``nonce`` shapes); the
    ``id_token`` is verified with the public half of ``key``, RS256 only, for the client id."""
    client_id = env["FRESHWORKS_CLIENT_ID"]
    host = first_of(env["FRESHWORKS_REDIRECT_HOSTS"])
    sent = {
        "response_type": "id_token",
        "client_id": client_id,
        "scope": _SCOPE,
        # Base64 (with + / =) of its host, a digest and the nonce.
        "state": "YWNtZS5mcmVzaHdvcmtzLmNvbTtBVHkxSERKd2tjenZzempEU3haMStvbWVl"
        "YWlPa2lZTEZ5dUVtU2ZYUVZNPTt4YjJDZTVBR1NER2hXWVFJ==",
        "redirect_uri": f"https://{host}/sp/OIDC/100000000000000001/implicit",
        "nonce": "xb2Ce5AGSDGhWYQI",
    }
    public = _public_pem(key)

    def read(values: Mapping[str, str]) -> dict[str, Any]:
        claims: dict[str, Any] = jwt.decode(
            values["id_token"], public, algorithms=["RS256"], audience=client_id, options={"verify_exp": False}
        )
        return claims

    return Portal(
        "freshworks",
        params=tuple(sent),
        build=plain_query(sent),
        hosts=hosts_of(env["FRESHWORKS_REDIRECT_HOSTS"], env.get("FRESHWORKS_PORTAL_URL", "")),
        credentials=("id_token",),
        read=read,
        destination="redirect_uri",
        hands_off=True,
    )


SPEC = StandInSpec(
    vendor="freshworks",
    title="Freshworks support portal",
    # The portal's host; the account's (Freshworks' redirect URL) is served too: see standin_hosts.
    host_setting="FRESHWORKS_PORTAL_URL",
    secret_setting="FRESHWORKS_SECRET_ID",  # noqa: S106 - a variable name, not a secret
    seed_var="FRESHWORKS_PRIVATE_KEY_PEM",
    login_path="/freshworks/login",
    entry="/",
    defaults={
        # Made up, in Freshworks' format (the SSO configuration's number): the stand-in and the function agree on it.
        "FRESHWORKS_CLIENT_ID": _SAMPLE_ID,
        "FRESHWORKS_REDIRECT_HOSTS": _ACCOUNT_HOST,
        "FRESHWORKS_PORTAL_URL": f"https://{_PORTAL_HOST}{_LOGIN_PATH}",
    },
    make=make,
    hosts=standin_hosts,
    key_kind="rsa",
    probe=_smoke_probe,
    # No deep link: Freshworks starts the sign-in; a link's reader is sent to FRESHWORKS_PORTAL_URL (a 400 without).
    links=LinkRules(landing="FRESHWORKS_PORTAL_URL", on_route=True),
    portal=_portal,
)
