"""Talking to the company's OpenID provider: its discovery document, its keys, its token and userinfo endpoints.

Plain ``urllib`` on purpose: four small JSON calls do not need an HTTP library in the layer, and nothing here
needs ``cryptography`` (signatures are checked in ``sso_bridge.id_token``).

Every call is bounded: 2 s per connect and per read, no retry, at most 1 MB, redirects not followed (a token
request must not be replayed elsewhere as a GET). A provider that does not answer is a 503, never a token.
The discovery document and the key set are cached per container; an unknown ``kid`` fetches the key set again,
at most once every ``JWKS_REFETCH_SECONDS``, so a flood of tokens with made-up ``kid`` values costs the provider
one request per interval, not one per token.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from .errors import InvalidIdToken, OidcRefused, ProviderUnavailable
from .redirects import with_query_param
from .settings import LOCAL_HOSTS

__all__ = [
    "JWKS_MAX_AGE",
    "JWKS_REFETCH_SECONDS",
    "METADATA_MAX_AGE",
    "TIMEOUT_SECONDS",
    "ClientCredentials",
    "Metadata",
    "Provider",
    "Tokens",
    "is_cognito_issuer",
]

TIMEOUT_SECONDS = 2.0
METADATA_MAX_AGE = 3600
JWKS_MAX_AGE = 600
JWKS_REFETCH_SECONDS = 10
MAX_BODY_BYTES = 1 << 20
# An Amazon Cognito user pool's issuer: https://cognito-idp.<region>.amazonaws.com/<pool id> (.com.cn in China).
_COGNITO_ISSUER = re.compile(
    r"https://cognito-idp\.[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}\.amazonaws\.com(?:\.cn)?/[A-Za-z0-9_-]+", re.ASCII
)


def is_cognito_issuer(issuer: str) -> bool:
    """Whether ``issuer`` is an Amazon Cognito user pool's, read from the issuer alone: its logout endpoint takes
    Cognito's own parameters. Not from the endpoints' host: a pool with a custom domain serves them on the
    company's host (auth.example.com), while its issuer never moves, is ASCII, and is the operator's setting that
    the discovery document must repeat byte for byte."""
    return _COGNITO_ISSUER.fullmatch(issuer) is not None


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    client_id: str
    client_secret: str

    def __repr__(self) -> str:  # never the secret, even in a traceback's locals
        return f"ClientCredentials(client_id={self.client_id!r})"


@dataclass(frozen=True, slots=True)
class Metadata:
    """The parts of the discovery document the bridge uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    end_session_endpoint: str | None
    signing_algorithms: frozenset[str]
    sends_iss: bool  # RFC 9207: authorization_response_iss_parameter_supported


@dataclass(frozen=True, slots=True)
class Tokens:
    id_token: str
    access_token: str | None

    def __repr__(self) -> str:
        return "Tokens(...)"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _endpoint(metadata: Mapping[str, Any], name: str, *, local: bool, required: bool = True) -> str | None:
    value = metadata.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ProviderUnavailable(detail=f"discovery: {name} missing")
    parts = urlsplit(value)
    secure = parts.scheme == "https" or (local and parts.scheme == "http" and parts.hostname in LOCAL_HOSTS)
    if not secure or not parts.hostname or parts.fragment:
        raise ProviderUnavailable(detail=f"discovery: {name} not https")
    return value


class Provider:
    """One OpenID provider, as the bridge sees it; safe to share between threads."""

    def __init__(
        self,
        issuer: str,
        *,
        timeout: float = TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self.timeout = timeout
        self._clock = clock
        self._local = urlsplit(issuer).scheme == "http"  # settings allow http for localhost only
        self.cognito = is_cognito_issuer(issuer)
        self._opener = urllib.request.build_opener(_NoRedirects)
        self._lock = threading.Lock()
        self._metadata: tuple[float, Metadata] | None = None
        self._jwks: tuple[float, list[dict[str, Any]]] | None = None

    # Discovery and keys

    def metadata(self) -> Metadata:
        with self._lock:
            cached = self._metadata
            if cached is not None and self._clock() - cached[0] < METADATA_MAX_AGE:
                return cached[1]
        try:
            fresh = self._discover()
        except ProviderUnavailable:
            if cached is not None:  # an outage of discovery alone should not stop sign-ins
                return cached[1]
            raise
        with self._lock:
            self._metadata = (self._clock(), fresh)
        return fresh

    def _discover(self) -> Metadata:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = self._json("discovery", self._call("discovery", url))
        if document.get("issuer") != self.issuer:  # OpenID Connect Discovery §4.3
            raise ProviderUnavailable(detail="discovery: issuer differs from OIDC_ISSUER")
        algorithms = document.get("id_token_signing_alg_values_supported")
        if not isinstance(algorithms, list):
            algorithms = ["RS256"]  # the spec's default
        return Metadata(
            issuer=self.issuer,
            authorization_endpoint=str(_endpoint(document, "authorization_endpoint", local=self._local)),
            token_endpoint=str(_endpoint(document, "token_endpoint", local=self._local)),
            jwks_uri=str(_endpoint(document, "jwks_uri", local=self._local)),
            userinfo_endpoint=_endpoint(document, "userinfo_endpoint", local=self._local, required=False),
            end_session_endpoint=_endpoint(document, "end_session_endpoint", local=self._local, required=False),
            signing_algorithms=frozenset(alg for alg in algorithms if isinstance(alg, str)),
            sends_iss=document.get("authorization_response_iss_parameter_supported") is True,
        )

    def signing_key(self, kid: str | None, key_type: str) -> dict[str, Any]:
        """The provider's public key for ``kid`` (of ``key_type``, RSA or EC); the key set is fetched again
        once when the ``kid`` is unknown, as after a key rotation."""
        keys, fetched_at = self._keys(refresh=False)
        found = _select(keys, kid, key_type)
        if found is None and self._clock() - fetched_at >= JWKS_REFETCH_SECONDS:
            keys, _ = self._keys(refresh=True)
            found = _select(keys, kid, key_type)
        if found is None:
            raise InvalidIdToken("oidc_id_token_kid")
        return found

    def _keys(self, *, refresh: bool) -> tuple[list[dict[str, Any]], float]:
        with self._lock:
            cached = self._jwks
        if cached is not None and not refresh and self._clock() - cached[0] < JWKS_MAX_AGE:
            return cached[1], cached[0]
        if cached is not None and refresh and self._clock() - cached[0] < JWKS_REFETCH_SECONDS:
            return cached[1], cached[0]
        document = self._json("jwks", self._call("jwks", self.metadata().jwks_uri))
        keys = document.get("keys")
        if not isinstance(keys, list):
            raise ProviderUnavailable(detail="jwks: no keys")
        fresh = (self._clock(), [key for key in keys if isinstance(key, dict)])
        with self._lock:
            self._jwks = fresh
        return fresh[1], fresh[0]

    # The code exchange and userinfo

    def exchange(
        self, code: str, *, redirect_uri: str, code_verifier: str, client: ClientCredentials, auth: str
    ) -> Tokens:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        form["code_verifier"] = code_verifier
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if auth == "client_secret_post":
            form |= {"client_id": client.client_id, "client_secret": client.client_secret}
        else:  # client_secret_basic: each part form-encoded first (RFC 6749 §2.3.1)
            pair = f"{quote(client.client_id, safe='')}:{quote(client.client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        endpoint = self.metadata().token_endpoint
        status, body = self._call("token", endpoint, data=urlencode(form).encode(), headers=headers, answer_errors=True)
        if status == 401 or (status == 400 and _error_code(body) == "invalid_client"):
            # Our credentials, not the user's doing: nobody can sign in until the operator fixes them.
            raise ProviderUnavailable(detail="token: invalid_client")
        if 400 <= status < 500:
            raise OidcRefused("oidc_code_rejected", detail=_error_code(body) or str(status))
        document = self._json("token", (status, body))
        id_token, access_token = document.get("id_token"), document.get("access_token")
        if not isinstance(id_token, str) or not id_token:
            raise InvalidIdToken("oidc_id_token_malformed", detail="no id_token")
        return Tokens(id_token=id_token, access_token=access_token if isinstance(access_token, str) else None)

    def userinfo(self, access_token: str) -> dict[str, Any]:
        endpoint = self.metadata().userinfo_endpoint
        if endpoint is None:
            return {}
        headers = {"Authorization": f"Bearer {access_token}"}
        status, body = self._call("userinfo", endpoint, headers=headers, answer_errors=True)
        if status in (401, 403):
            raise InvalidIdToken("oidc_userinfo_refused", detail=str(status))
        return self._json("userinfo", (status, body))

    def end_session_url(self, *, client_id: str, signed_out_url: str | None) -> str | None:
        """Where the browser ends the provider's session, when the provider offers it: OpenID Connect
        RP-Initiated Logout 1.0 (``client_id``, ``post_logout_redirect_uri``), or Amazon Cognito's ``/logout``
        (``client_id``, ``logout_uri``: one of the app client's sign-out URLs)."""
        endpoint = self.metadata().end_session_endpoint
        if endpoint is None:
            return None
        url = with_query_param(endpoint, "client_id", client_id)
        if signed_out_url:
            name = "logout_uri" if self.cognito else "post_logout_redirect_uri"
            url = with_query_param(url, name, signed_out_url)
        return url

    # HTTP

    def _call(
        self,
        what: str,
        url: str,
        *,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        answer_errors: bool = False,
    ) -> tuple[int, bytes]:
        """``(status, body)``; 4xx answers returned when ``answer_errors`` (the caller reads the OAuth error)."""
        headers = {"Accept": "application/json", "User-Agent": "sso-bridge", **(headers or {})}
        # Only the issuer and the discovery document's endpoints get here, each checked to be https (_endpoint).
        request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return int(response.status), response.read(MAX_BODY_BYTES + 1)
        except urllib.error.HTTPError as exc:
            status = exc.code
            body = exc.read(MAX_BODY_BYTES + 1) if answer_errors and 400 <= status < 500 else b""
            exc.close()
            if answer_errors and 400 <= status < 500:
                return status, body
            raise ProviderUnavailable(detail=f"{what}: HTTP {status}") from exc
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            raise ProviderUnavailable(detail=f"{what}: {type(exc).__name__}") from exc

    @staticmethod
    def _json(what: str, answer: tuple[int, bytes]) -> dict[str, Any]:
        status, body = answer
        if status != 200 or len(body) > MAX_BODY_BYTES:
            raise ProviderUnavailable(detail=f"{what}: HTTP {status}, {len(body)} bytes")
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise ProviderUnavailable(detail=f"{what}: not JSON") from exc
        if not isinstance(document, dict):
            raise ProviderUnavailable(detail=f"{what}: not a JSON object")
        return document


def _error_code(body: bytes) -> str | None:
    """The OAuth ``error`` code of an error answer, if it is a plain one (it is logged)."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return None
    return error if isinstance(error, str) and error.isascii() and error.isidentifier() and len(error) < 40 else None


def _select(keys: list[dict[str, Any]], kid: str | None, key_type: str) -> dict[str, Any] | None:
    """The signing key for ``kid``; without a ``kid``, the only signing key of the right type, if there is one."""
    usable = [key for key in keys if key.get("kty") == key_type and key.get("use", "sig") == "sig" and "d" not in key]
    if kid is not None:
        return next((key for key in usable if key.get("kid") == kid), None)
    return usable[0] if len(usable) == 1 else None
