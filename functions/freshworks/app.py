"""Freshworks JWT SSO (Freshdesk, Freshservice): a support-portal visitor comes back signed in.

Freshworks' contract (support.freshworks.com article 50000000670; supportsandbox.freshdesk.com articles
11000000028069 and 11000000028109): an OAuth 2.0 implicit flow that Freshworks starts. Its portal sends the
browser to our Authorization URL with ``response_type=id_token``, ``client_id``, ``scope``, ``state``, ``nonce``
and ``redirect_uri`` (``https://<account>.freshworks.com/sp/OIDC/<id>/implicit``); we send it back to
``{redirect_uri}?state=<state>&id_token=<jwt>``, in the query (their article 11000000028109 gives that format),
the JWT RS256-signed with the private half of the key pair whose public half the admin pasted into Freshworks.

Everything Freshworks sends is checked before the sign-in round trip (a bad request fails before anyone types a
password): the response type, the client id, the ``redirect_uri`` (https, an allowed host, exactly the implicit
endpoint's path, no query of its own), ``state`` and ``nonce``. A visitor with none of those parameters (an
email link just spent, or the platform's own "Help" link) is handed to Freshworks to start the flow
(``flow.hand_off``), and comes back here with them.

RS256 needs RSA arithmetic, so ``cryptography``, which only this function's OIDC layer carries, off ``sys.path``
(``/opt/oidc-packages``). joserfc signs, loaded on the first token by the layer's own loader
(``sso_bridge.id_token.load_jose``), so a cold start that refuses or redirects never imports it; the private key
is parsed once per key value (about 30 ms: OpenSSL checks the key), not per token.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from sso_bridge.entry import lambda_entry
from sso_bridge.errors import BadRequest, BridgeError, ConfigurationError, DependencyUnavailable, RedirectNotAllowed
from sso_bridge.flow import SIGN_IN_METHODS, SignIn, new_app
from sso_bridge.http import Response
from sso_bridge.i18n import N_
from sso_bridge.id_token import load_jose
from sso_bridge.login_token import LoginIdentity
from sso_bridge.observability import Logger, Metrics
from sso_bridge.redirects import MAX_URL_LENGTH, allowed_url
from sso_bridge.request import Query
from sso_bridge.settings import OIDC_PACKAGES_DEFAULT, CommonSettings, env_hostnames, env_str, env_url

AUDIENCE = "freshworks"
# The id_token's lifetime: it goes straight from our redirect to Freshworks; five minutes covers a slow browser and
# a clock a little off. Freshworks' articles name no limit of their own.
TOKEN_TTL_SECONDS = 300
# Freshworks' header, exactly as its articles show it: no kid (Freshworks holds one public key per SSO config).
TOKEN_HEADER = {"alg": "RS256", "typ": "JWT"}
MIN_KEY_BITS = 2048  # Freshworks' articles generate 1024-bit keys; NIST has not allowed those for signing since 2013
# The only parameters Freshworks sends; any of them means the request is Freshworks', to be checked in full.
FRESHWORKS_PARAMETERS = ("response_type", "client_id", "scope", "state", "nonce", "redirect_uri")
MAX_STATE_LENGTH = 1024  # Freshworks' state is base64 of its host and two random values: about 130 characters
MAX_NONCE_LENGTH = 255
MAX_CLIENT_ID_LENGTH = 255
_IMPLICIT_PATH = re.compile(r"/sp/OIDC/[0-9]{1,32}/implicit", re.ASCII)
# state and nonce go back to Freshworks, state in a URL and nonce in the token: printable ASCII, no blanks.
_OPAQUE = re.compile(r"[\x21-\x7e]+", re.ASCII)


class FreshworksRequestInvalid(BadRequest):
    """Freshworks' authorization request with a parameter missing or not as Freshworks sends it."""

    reason = "freshworks_request_invalid"
    title = N_("This sign-in request cannot be used")
    message = N_(
        "The support portal's sign-in request is incomplete or was changed on the way. "
        "Please start again from the support portal's Log in button."
    )


class FreshworksClientUnknown(BadRequest):
    """A ``client_id`` that is not this deployment's: another Freshworks SSO configuration, or a made-up request."""

    reason = "freshworks_client_id"
    title = FreshworksRequestInvalid.title
    message = N_(
        "This sign-in request was made for another sign-in configuration. "
        "Please start again from the support portal's Log in button, or ask your administrator."
    )


class FreshworksRequestMissing(BadRequest):
    """No Freshworks parameters and no ``FRESHWORKS_PORTAL_URL`` to start the flow at: signing in would not help."""

    reason = "freshworks_request_missing"
    title = N_("This sign-in link is incomplete")
    message = N_(
        "The link has no sign-in request from the support portal, so we do not know where to sign you in. "
        "Please start again from the support portal's Log in button."
    )


class RedirectUriNotImplicitEndpoint(RedirectNotAllowed):
    """An allowed host, but not Freshworks' implicit endpoint (``/sp/OIDC/<id>/implicit``, no query): the token
    would land on a page of that host it was never meant for, or beside a ``state``/``id_token`` someone planted."""

    reason = "freshworks_redirect_uri_path"


@dataclass(frozen=True, slots=True)
class Settings:
    common: CommonSettings
    client_id: str
    redirect_hosts: frozenset[str]
    portal_url: str | None  # the portal's login page, which starts Freshworks' SSO
    secret_id: str
    packages_path: str  # where the OIDC layer puts joserfc and cryptography

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        common = CommonSettings.from_env(env, portal_name="the support portal")
        client_id = env_str(env, "FRESHWORKS_CLIENT_ID")
        if len(client_id) > MAX_CLIENT_ID_LENGTH or not _OPAQUE.fullmatch(client_id):
            raise ConfigurationError(
                f"FRESHWORKS_CLIENT_ID must be the client id Freshworks sends (printable, no spaces), got {client_id!r}"
            )
        hosts = env_hostnames(env, "FRESHWORKS_REDIRECT_HOSTS")
        if not hosts:
            raise ConfigurationError(
                "FRESHWORKS_REDIRECT_HOSTS is required but not set: the host of Freshworks' redirect URL "
                "(yourcompany.freshworks.com or yourcompany.myfreshworks.com)"
            )
        portal_url = None
        if env.get("FRESHWORKS_PORTAL_URL", "").strip():
            raw = env_url(env, "FRESHWORKS_PORTAL_URL")
            try:
                portal_url = allowed_url(raw, {(urlsplit(raw).hostname or "").lower()})
            except BridgeError as exc:
                raise ConfigurationError(
                    f"FRESHWORKS_PORTAL_URL must be a plain https:// URL like https://yourcompany.freshdesk.com/"
                    f"support/login, got {raw!r}"
                ) from exc
        secret_id = common.vendor_secret_id(env, "FRESHWORKS_SECRET_ID")
        return cls(
            common=common,
            client_id=client_id,
            redirect_hosts=hosts,
            portal_url=portal_url,
            secret_id=secret_id,
            packages_path=env_str(env, "OIDC_PACKAGES_PATH", OIDC_PACKAGES_DEFAULT),
        )


# Read once per container; a bad variable stops the cold start with its name.
settings = Settings.from_env(os.environ)

app = new_app()
logger = Logger()
metrics = Metrics()
flow = SignIn(app, settings=settings.common, audience=AUDIENCE, logger=logger, metrics=metrics)


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """What Freshworks sent, checked: where the token goes and the two values it must carry back."""

    redirect_uri: str
    state: str
    nonce: str


def _opaque(query: Query, name: str, max_length: int) -> str:
    value = query.get(name, max_length=max_length)  # over the cap: 414, before anything else
    if value is None:
        raise FreshworksRequestInvalid(f"freshworks_{name}_missing")
    if not _OPAQUE.fullmatch(value):
        raise FreshworksRequestInvalid(f"freshworks_{name}_invalid")
    return value


def authorization_request(query: Query) -> AuthorizationRequest:
    """Freshworks' parameters, each as Freshworks sends it, or a refusal naming the first one that is not."""
    response_type = query.get("response_type", max_length=64)
    if response_type != "id_token":
        raise FreshworksRequestInvalid("freshworks_response_type")  # its value is not logged: it is the query
    if query.get("client_id", max_length=MAX_CLIENT_ID_LENGTH) != settings.client_id:
        raise FreshworksClientUnknown()
    raw_uri = query.get("redirect_uri", max_length=MAX_URL_LENGTH)
    if raw_uri is None:
        raise FreshworksRequestInvalid("freshworks_redirect_uri_missing")
    redirect_uri = allowed_url(raw_uri, settings.redirect_hosts)
    parts = urlsplit(redirect_uri)
    if not _IMPLICIT_PATH.fullmatch(parts.path) or parts.query or parts.fragment or "?" in raw_uri or "#" in raw_uri:
        raise RedirectUriNotImplicitEndpoint()
    # scope is not checked: the token carries what Freshworks' articles ask for, whatever scope says.
    return AuthorizationRequest(
        redirect_uri=redirect_uri,
        state=_opaque(query, "state", MAX_STATE_LENGTH),
        nonce=_opaque(query, "nonce", MAX_NONCE_LENGTH),
    )


def id_token_claims(user: LoginIdentity, *, nonce: str, now: int) -> dict[str, Any]:
    """The id_token's claims: Freshworks' required ``sub``, ``email``, ``iat`` and ``nonce``, then ``exp`` and
    ``aud`` (OpenID's own, harmless where unread), then the names when known.

    ``sub`` is the platform's stable id when the login token has one, else the email. Names: the login token's
    ``given_name``/``family_name``; with only a full ``name``, that whole name as ``given_name``, because cutting
    a name in two is wrong for many of them (family name first, several given names, particles).
    """
    profile = user.profile
    claims: dict[str, Any] = {
        "sub": profile.subject or user.email,
        "email": user.email,
        "iat": now,
        "nonce": nonce,
        "exp": now + TOKEN_TTL_SECONDS,
        "aud": settings.client_id,
    }
    given, family = profile.given_name, profile.family_name
    if given is None and family is None:
        given = user.name
    if given:
        claims["given_name"] = given
    if family:
        claims["family_name"] = family
    return claims


class SigningKey:
    """The RSA private key as joserfc holds it, parsed once per key value (a rotation parses the new one)."""

    def __init__(self, packages_path: str) -> None:
        self.packages_path = packages_path
        self._lock = threading.Lock()
        self._parsed: tuple[str, Any] | None = None  # (the PEM, joserfc's key): one key at a time

    def get(self, pem: str) -> Any:
        """joserfc's key for ``pem``; a key that cannot sign RS256 safely is a 503 naming what is wrong (in the
        log, never on the page), never a token."""
        parsed = self._parsed
        if parsed is not None and parsed[0] == pem:
            return parsed[1]
        try:
            load_jose(self.packages_path)
            from joserfc.errors import JoseError
            from joserfc.jwk import RSAKey
        except ImportError as exc:  # the OIDC layer is not attached to this function
            raise DependencyUnavailable("signing_library_missing", detail=f"{exc.name} not importable") from exc
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # joserfc warns about short keys; refused below, by name
                key = RSAKey.import_key(pem)
        except (JoseError, ValueError, TypeError) as exc:
            raise DependencyUnavailable("freshworks_key_invalid", detail="not a PEM RSA private key") from exc
        private = key.private_key if key.is_private else None
        if private is None:
            raise DependencyUnavailable("freshworks_key_invalid", detail="a public key, not the private key")
        if private.key_size < MIN_KEY_BITS:
            raise DependencyUnavailable("freshworks_key_invalid", detail=f"shorter than {MIN_KEY_BITS} bits")
        with self._lock:
            self._parsed = (pem, key)
        return key


signing_key = SigningKey(settings.packages_path)


def mint_id_token(claims: Mapping[str, Any], pem: str) -> str:
    key = signing_key.get(pem)
    from joserfc import jws  # importable: signing_key put the OIDC layer's folder on the path

    payload = json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode()
    token: str = jws.serialize_compact(dict(TOKEN_HEADER), payload, key, algorithms=["RS256"])
    return token


@app.route("/freshworks/login", method=SIGN_IN_METHODS)
@app.route("/", method=SIGN_IN_METHODS)
def login() -> Response:
    query = Query(app.current_event.raw_query_string)
    # Freshworks' parameters are checked before the sign-in round trip: signing in would not make them right.
    request = None
    if any(query.get(name, max_length=MAX_URL_LENGTH) is not None for name in FRESHWORKS_PARAMETERS):
        request = authorization_request(query)
    elif settings.portal_url is None:
        raise FreshworksRequestMissing()
    user = flow.identify(query)
    if request is None:
        # No request from Freshworks (a link just spent, or the platform's own link): only Freshworks can start the
        # flow, with its own state and nonce; the user comes back here with them, known by the hand-off's cookie.
        assert settings.portal_url is not None
        return flow.hand_off(user, settings.portal_url)

    pem = flow.vendor_key(settings.secret_id)
    token = mint_id_token(id_token_claims(user, nonce=request.nonce, now=int(time.time())), pem)
    flow.issued(user)
    return flow.redirect(f"{request.redirect_uri}?state={quote(request.state, safe='')}&id_token={token}")


@app.get("/freshworks/logout")
def logout() -> Response:
    # Freshworks' Logout URL: PLATFORM_LOGOUT_URL (after the provider's, with OIDC_LOGOUT), else a signed-out page
    # leading back to the portal (its login page, else the account's Freshworks host).
    portal = settings.portal_url or f"https://{min(settings.redirect_hosts)}/"
    return flow.signed_out(portal_url=portal)


lambda_handler = lambda_entry(app, logger=logger, metrics=metrics, trace_subsegments=settings.common.trace_subsegments)
