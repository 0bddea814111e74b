"""Sign-in through the company's OpenID provider: the Authorization Code flow with PKCE, for every vendor flow.

A signed-out user is sent to the provider (``start``) instead of the platform. The provider sends them back
to ``/oidc/callback`` (``callback``), which checks everything a forged, replayed or misdirected answer could
get wrong, and then does what the platform does: sends the browser back to the URL it first asked for with a
fresh login token, signed with the login-token key for that URL's vendor. From there the vendor's own route
runs unchanged, so OpenID sign-in and platform login tokens cannot drift apart, and the HTTP API's one
callback path can be served by any function (it needs no vendor key).

Only a verified email reaches a vendor: the provider's ``email_verified`` must be true. An unverified
address is one the user typed, and a portal account is opened by email.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt

from .errors import (
    BridgeError,
    DependencyUnavailable,
    InvalidIdToken,
    OidcRefused,
    ProviderUnavailable,
    UnverifiedIdentity,
)
from .http import Event, Response
from .id_token import verify_id_token
from .link_store import LinkStore
from .login_token import (
    MAX_TOKEN_LENGTH,
    Profile,
    check_email,
    check_name,
    profile_claims,
    read_profile,
)
from .observability import Logger, Metrics
from .oidc_provider import ClientCredentials, Provider
from .oidc_state import CALLBACK_PATH, COOKIE_PREFIX, SignInState, StateSigner, cookie_name
from .redirects import with_query_param
from .request import Query, public_origin, request_url
from .responses import redirect_response
from .secrets import KeyCache
from .settings import OidcSettings

__all__ = ["CALLBACK_PATH", "LOGIN_TOKEN_TTL", "REAUTHENTICATE", "OidcSignIn", "callback_url"]

# The login token the callback hands to the vendor's route is used at once, one redirect later.
LOGIN_TOKEN_TTL = 60
# On a "Try again" after a refused account, the provider is asked to sign the user in afresh (prompt=login):
# its session is still that account's, and the user would land on the same refusal without a chance to switch.
REAUTHENTICATE = "oidc_prompt"
_MAX_CODE_LENGTH = 2048
_MAX_SID_LENGTH = 64
_ERROR_CODE = re.compile(r"[a-z_]{1,40}", re.ASCII)  # RFC 6749 §4.1.2.1 codes; anything else is not logged


def callback_url(event: Event, public_host: str | None = None) -> str:
    """``/oidc/callback`` on the host (and API stage) the browser used for this request (``public_origin``): the
    cookie lives on that host."""
    stage = event.request_context.stage
    prefix = f"/{stage}" if stage != "$default" and event.raw_path.startswith(f"/{stage}/") else ""
    return f"{public_origin(event, public_host)}{prefix}{CALLBACK_PATH}"


@dataclass(frozen=True, slots=True)
class _Identity:
    email: str
    name: str | None
    profile: Profile = field(default_factory=Profile)


def _profile(subject: str, source: dict[str, Any], claims: dict[str, Any]) -> Profile:
    """The provider's stable subject and the names some portals take; an odd one is dropped, like the name."""
    found = {"sub": subject, **{claim: source.get(claim, claims.get(claim)) for claim in ("given_name", "family_name")}}
    kept: dict[str, Any] = {}
    for claim, value in found.items():
        try:
            read_profile({claim: value})
        except BridgeError:
            continue
        kept[claim] = value
    return read_profile(kept)


class OidcSignIn:
    """One function's side of OpenID sign-in; ``keys`` and ``links`` are the flow's, shared."""

    def __init__(
        self,
        settings: OidcSettings,
        *,
        keys: KeyCache,
        links: LinkStore,
        login_token_secret_id: str,
        login_token_max_ttl: int,
        leeway: int,
        logger: Logger,
        metrics: Metrics,
        provider: Provider | None = None,
        fallback_retry_url: str | None = None,
        public_host: str | None = None,
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.links = links
        self.login_token_secret_id = login_token_secret_id
        self.login_token_ttl = min(LOGIN_TOKEN_TTL, login_token_max_ttl)
        self.leeway = leeway
        self.logger = logger
        self.metrics = metrics
        self.fallback_retry_url = fallback_retry_url
        self.public_host = public_host
        # No network here: discovery happens with the first signed-out user.
        self.provider = provider or Provider(settings.issuer)

    # Out to the provider

    def start(self, event: Event, *, audience: str, status: int, add: dict[str, str] | None = None) -> Response:
        """The redirect to the provider's sign-in page, and the cookie that will recognise this browser; ``add``:
        parameters for the return URL (an email link's deep link, see ``request_url``)."""
        metadata = self.provider.metadata()
        signer = self._signer()
        now = int(time.time())
        reauthenticate = Query(event.raw_query_string).get(REAUTHENTICATE, max_length=16) == "login"
        state = signer.new(
            audience=audience,
            return_to=request_url(
                event, public_host=self.public_host, without=("login_token", REAUTHENTICATE), add=add
            ),
            redirect_uri=callback_url(event, self.public_host),
            issuer=self.settings.issuer,
            now=now,
        )
        verifier = signer.code_verifier(state.sid)
        parameters = {
            "response_type": "code",
            # Read with the secret even when the settings name the client: a secret not yet put is a 503 here,
            # before the user types a password at the provider, not after.
            "client_id": self._client().client_id,
            "redirect_uri": state.redirect_uri,
            "scope": self.settings.scopes,
            "state": state.sid,
            "nonce": signer.nonce(state.sid),
            "code_challenge": signer.code_challenge(verifier),
            "code_challenge_method": "S256",
        }
        if reauthenticate:
            parameters["prompt"] = "login"
        endpoint = metadata.authorization_endpoint
        location = f"{endpoint}{'&' if urlsplit(endpoint).query else '?'}{urlencode(parameters)}"
        response = redirect_response(location, status=status)
        response.cookies.append(signer.cookie(state, now=now))
        return response

    # Back from the provider

    def callback(self, event: Event) -> Response:
        query = Query(event.raw_query_string)
        sid = query.get("state", max_length=_MAX_SID_LENGTH)
        cookie = event.cookies.get(cookie_name(sid)) if sid else None
        state: SignInState | None = None
        state_error: OidcRefused | None = None
        if cookie == "":  # the name without a value: the bridge never sets that, a proxy or a bot may
            state_error = OidcRefused("oidc_state_cookie_empty")
        elif cookie is not None:
            try:
                state = self._signer().verify(cookie)
            except OidcRefused as exc:
                state_error = exc
        # "Try again" leads to where the user was going, when the bridge itself wrote that down for this host;
        # without a state to trust (another browser, a forged cookie), to the platform's sign-in page if any.
        verified = state is not None and self._same_origin(state.return_to, event)
        retry = state.return_to if state is not None and verified else self.fallback_retry_url
        try:
            return self._complete(event, query, sid, cookie, state, state_error)
        except UnverifiedIdentity as exc:
            exc.retry_url = with_query_param(retry, REAUTHENTICATE, "login") if verified and retry else retry
            raise
        except BridgeError as exc:
            exc.retry_url = retry
            raise

    def _complete(
        self,
        event: Event,
        query: Query,
        sid: str | None,
        cookie: str | None,
        state: SignInState | None,
        state_error: OidcRefused | None,
    ) -> Response:
        error = query.get("error", max_length=256)
        if error is not None:
            # The provider's own refusal (access_denied, login_required, ...): its code is logged, not shown.
            raise OidcRefused("oidc_provider_error", detail=error if _ERROR_CODE.fullmatch(error) else "other")
        code = query.get("code", max_length=_MAX_CODE_LENGTH)
        if code is None or sid is None:
            raise OidcRefused("oidc_callback_malformed")
        if cookie is None:
            # Another sign-in of this browser is in flight, but not this one: someone else's callback (login CSRF).
            if any(name.startswith(COOKIE_PREFIX) for name in event.cookies):
                raise OidcRefused("oidc_state_mismatch", detail="no cookie for this state")
            raise OidcRefused("oidc_state_cookie_missing")
        if state is None:  # an empty cookie, or one the bridge did not sign
            raise state_error or OidcRefused("oidc_state_invalid")
        if not hmac.compare_digest(state.sid.encode(), sid.encode()):
            raise OidcRefused("oidc_state_mismatch")
        if not self._same_origin(state.return_to, event) or state.redirect_uri != callback_url(event, self.public_host):
            raise OidcRefused("oidc_state_invalid", detail="another host")
        if state.issuer != self.settings.issuer:
            raise OidcRefused("oidc_state_invalid", detail="another provider")
        self._check_iss(query)
        request_id = event.request_context.request_id
        now = int(time.time())
        if not self.links.spend_sign_in_state(
            sid=state.sid, vendor=state.audience, expires_at=state.expires_at, spent_at=now, request_id=request_id
        ):
            raise OidcRefused("oidc_state_used")

        signer = self._signer()
        client = self._client()
        tokens = self.provider.exchange(
            code,
            redirect_uri=state.redirect_uri,
            code_verifier=signer.code_verifier(state.sid),
            client=client,
            auth=self.settings.client_auth,
        )
        id_claims = verify_id_token(
            tokens.id_token,
            provider=self.provider,
            client_id=client.client_id,
            nonce=signer.nonce(state.sid),
            now=now,
            leeway=self.leeway,
            packages_path=self.settings.packages_path,
        )
        identity = self._identity(id_claims.subject, id_claims.claims, tokens.access_token)

        login_token = self._login_token(identity, audience=state.audience, now=now)
        self.logger.info("oidc sign-in", extra={"outcome": "oidc_signed_in", "vendor": state.audience})
        self.metrics.count("OidcSignIn")
        response = redirect_response(with_query_param(state.return_to, "login_token", login_token))
        response.cookies.append(StateSigner.clear(state.sid))
        return response

    def _check_iss(self, query: Query) -> None:
        """RFC 9207: the ``iss`` parameter names who answered; another provider's answer is a mix-up attack."""
        iss = query.get("iss", max_length=2048)
        if iss is None:
            if self.provider.metadata().sends_iss:
                raise OidcRefused("oidc_issuer_mismatch", detail="missing")
            return
        if iss != self.settings.issuer:
            raise OidcRefused("oidc_issuer_mismatch")

    def _identity(self, subject: str, claims: dict[str, Any], access_token: str | None) -> _Identity:
        """Email and its verification from one source: the ID token when it has both, else userinfo."""
        source = claims
        if ("email" not in claims or "email_verified" not in claims) and access_token:
            info = self.provider.userinfo(access_token)
            if info:
                if info.get("sub") != subject:  # Core §5.3.2: else the answer may be about someone else
                    raise InvalidIdToken("oidc_userinfo_subject")
                source = info
        email, verified = source.get("email"), source.get("email_verified")
        if not isinstance(email, str) or not email:
            raise UnverifiedIdentity("oidc_email_missing")
        # A JSON true; Cognito's userinfo sends the string "true".
        if verified is not True and verified != "true":
            raise UnverifiedIdentity("oidc_email_unverified")
        try:
            email = check_email(email)
        except BridgeError as exc:
            raise UnverifiedIdentity("oidc_email_invalid") from exc
        allowed = self.settings.allowed_email_domains
        if allowed and email.rpartition("@")[2].lower() not in allowed:
            raise UnverifiedIdentity("oidc_email_domain")
        try:
            name = check_name(source.get("name", claims.get("name")))
        except BridgeError:
            name = None  # an odd display name is dropped, not a reason to refuse the user
        return _Identity(email=email, name=name, profile=_profile(subject, source, claims))

    def _login_token(self, identity: _Identity, *, audience: str, now: int) -> str:
        claims: dict[str, Any] = {
            "email": identity.email,
            "aud": audience,
            "iat": now,
            "exp": now + self.login_token_ttl,
            "jti": secrets.token_urlsafe(16),
        }
        if identity.name:
            claims["name"] = identity.name
        claims.update(profile_claims(identity.profile))
        token = jwt.encode(claims, self._login_key(), algorithm="HS256")
        if len(token) > MAX_TOKEN_LENGTH:  # cannot happen with the checked email and name; never a 500 if it did
            raise UnverifiedIdentity("oidc_email_invalid", detail="login token too long")
        return token

    # Keys

    def _login_key(self) -> str:
        return next(iter(self.keys.login_token_keys(self.login_token_secret_id)))

    def _signer(self) -> StateSigner:
        return StateSigner(self._login_key())

    def _client(self) -> ClientCredentials:
        """The client id from the settings, the secret from Secrets Manager; or both from the secret as JSON."""
        raw = self.keys.secret(self.settings.client_secret_id)
        client_id = self.settings.client_id
        if raw.startswith("{"):
            try:
                document = json.loads(raw)
            except ValueError as exc:
                raise ProviderUnavailable("secret_not_set", detail="OIDC client secret: not JSON") from exc
            secret, stored_id = document.get("client_secret"), document.get("client_id")
            if not isinstance(secret, str) or not secret or (client_id is None and not isinstance(stored_id, str)):
                raise ProviderUnavailable("secret_not_set", detail="OIDC client secret: client_id/client_secret")
            return ClientCredentials(client_id=client_id or str(stored_id), client_secret=secret)
        if client_id is None:
            raise ProviderUnavailable("secret_not_set", detail="OIDC_CLIENT_ID unset and the secret is not JSON")
        return ClientCredentials(client_id=client_id, client_secret=raw)

    def logout_url(self, signed_out_url: str | None) -> str | None:
        """Where to end the provider's session, then land on ``signed_out_url`` (``PLATFORM_LOGOUT_URL``), when
        enabled and offered. A provider (or a secret) that cannot be reached is logged and skipped: signing out of
        the portal must never fail.

        Amazon Cognito's ``/logout`` needs a ``logout_uri`` registered as one of the app client's sign-out URLs
        and shows an error page without one: with no ``signed_out_url`` its part is skipped (and logged), the user
        signs out of the portal only. The bridge's own signed-out page cannot stand in: it is the logout route."""
        if not self.settings.logout:
            return None
        if not signed_out_url and self.provider.cognito:
            detail = "Cognito's /logout needs a logout_uri: set PLATFORM_LOGOUT_URL"
            self.logger.warning("provider logout skipped", extra={"reason": "logout_uri_missing", "detail": detail})
            return None
        try:
            return self.provider.end_session_url(client_id=self._client().client_id, signed_out_url=signed_out_url)
        except DependencyUnavailable as exc:
            self.logger.warning("provider logout skipped", extra={"reason": exc.reason, "detail": exc.detail})
            return None

    def _same_origin(self, url: str, event: Event) -> bool:
        """``url`` is on the origin this request's URLs are built on (scheme, host and port)."""
        mine, theirs = urlsplit(callback_url(event, self.public_host)), urlsplit(url)
        return (theirs.scheme, theirs.netloc) == (mine.scheme, mine.netloc)
