"""An OpenID provider stand-in on a real loopback socket, scripted by the test that runs it.

The bridge talks to it exactly as to a real provider (discovery, JWKS, token and userinfo endpoints over HTTP),
and a test plays the browser at its authorization endpoint. Everything a provider can get wrong, or an attacker
can make it look like it got wrong, is a switch here: whose ID token it returns, with which claims, header,
algorithm and key; what userinfo says; whether it sends RFC 9207's ``iss``; whether an endpoint hangs or fails.

It is strict where a real provider is strict, so a bridge that skips a step fails here too: the token endpoint
checks the client's authentication (``client_secret_basic`` or ``client_secret_post``, as configured), the
``redirect_uri`` against the authorization request's, PKCE (S256) against the recorded challenge, and spends each
code once (``invalid_grant`` on replay, as RFC 6749 §4.1.2 asks). Refusals are recorded with a reason, so a test
can tell *why* the provider said no.

It never prints or logs: the standard library's request log would write codes and states to stderr, which the
log-leak tests capture.

    with FakeProvider() as provider:
        provider.id_token.claims["email_verified"] = False
        provider.fail("token", "hang", seconds=5)

``FakeProvider(cognito=CognitoShape())`` publishes an Amazon Cognito user pool's addresses instead of its own
(the issuer on ``cognito-idp.<region>.amazonaws.com``, the rest on the pool's domain); the bridge reaches them
through ``provider.opener()``, which sends each to this server on loopback, as DNS would send them to AWS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

__all__ = [
    "DROP",
    "ENDPOINTS",
    "Authorization",
    "CognitoShape",
    "FakeProvider",
    "Fault",
    "IdTokenScript",
    "KeyPair",
    "TokenRequest",
    "User",
    "b64url",
    "iter_secrets",
    "new_key",
    "sign_jws",
]

# Where the endpoints live, under the issuer's path; the names double as the fault and hit-counter keys.
ENDPOINTS = {
    "discovery": "/.well-known/openid-configuration",
    "jwks": "/jwks",
    "authorize": "/authorize",
    "token": "/token",
    "userinfo": "/userinfo",
    "end_session": "/logout",
}
ClientAuth = Literal["client_secret_basic", "client_secret_post"]
FaultKind = Literal["hang", "500", "502", "close", "not_json"]


@dataclass(frozen=True)
class CognitoShape:
    """Where an Amazon Cognito user pool publishes its endpoints (AWS's "Identity provider and relying party
    endpoints" page): discovery and keys under the issuer ``https://cognito-idp.<region>.amazonaws.com/<pool
    id>``, the OAuth endpoints and ``/logout`` on the pool's domain."""

    region: str = "eu-west-1"
    pool_id: str = "eu-west-1_AbCdEf123"
    domain: str = "sso-bridge-test.auth.eu-west-1.amazoncognito.com"

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.pool_id}"

    def url(self, endpoint: str) -> str:
        return {
            "discovery": f"{self.issuer}/.well-known/openid-configuration",
            "jwks": f"{self.issuer}/.well-known/jwks.json",
            "authorize": f"https://{self.domain}/oauth2/authorize",
            "token": f"https://{self.domain}/oauth2/token",
            "userinfo": f"https://{self.domain}/oauth2/userInfo",
            "end_session": f"https://{self.domain}/logout",
        }[endpoint]


class _Drop:
    """Marks a claim or header member to leave out: ``claims["nonce"] = DROP``."""

    def __repr__(self) -> str:
        return "DROP"


DROP: Any = _Drop()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def _merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = {**base, **overrides}
    return {name: value for name, value in merged.items() if value is not DROP}


# --- keys --------------------------------------------------------------------------------------------------


@cache
def _rsa_material(index: int) -> rsa.RSAPrivateKey:
    """RSA generation costs tens of milliseconds: material is pooled across providers, ``kid`` values never."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True)
class KeyPair:
    """A signing key of the provider (or of nobody: an attacker's), RS256 or ES256."""

    kid: str
    alg: Literal["RS256", "ES256"]
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    def public_jwk(self) -> dict[str, Any]:
        if isinstance(self.private, rsa.RSAPrivateKey):
            numbers = self.private.public_key().public_numbers()
            n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
            e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
            return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256", "n": b64url(n), "e": b64url(e)}
        point = self.private.public_key().public_numbers()
        return {
            "kty": "EC",
            "kid": self.kid,
            "use": "sig",
            "alg": "ES256",
            "crv": "P-256",
            "x": b64url(point.x.to_bytes(32, "big")),
            "y": b64url(point.y.to_bytes(32, "big")),
        }

    def public_pem(self) -> bytes:
        """What an attacker downloads and uses as an HMAC secret (the RS256/HS256 confusion)."""
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, signing_input: bytes) -> bytes:
        if isinstance(self.private, rsa.RSAPrivateKey):
            return self.private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        r, s = decode_dss_signature(self.private.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")  # JWS wants r || s, not DER (RFC 7518 §3.4)


_pool = Counter[str]()


def new_key(alg: Literal["RS256", "ES256"] = "RS256", *, kid: str | None = None) -> KeyPair:
    """A key with a fresh ``kid``; RSA material comes from a small pool (a rotation still gets other material)."""
    kid = kid or f"{alg.lower()}-{secrets.token_hex(6)}"
    if alg == "ES256":
        return KeyPair(kid, alg, ec.generate_private_key(ec.SECP256R1()))
    index = _pool["RS256"] % 4
    _pool["RS256"] += 1
    return KeyPair(kid, alg, _rsa_material(index))


def sign_jws(
    header: dict[str, Any], claims: dict[str, Any], *, key: KeyPair | None = None, hmac_secret: bytes | None = None
) -> str:
    """A compact JWS with exactly this header: signed by ``key``, by HMAC-SHA256 with ``hmac_secret``, or not at
    all (``alg: none``, empty signature). Made by hand, because JOSE libraries refuse to make the bad ones."""
    signing_input = f"{_b64_json(header)}.{_b64_json(claims)}".encode()
    if key is not None:
        signature = key.sign(signing_input)
    elif hmac_secret is not None:
        signature = hmac.new(hmac_secret, signing_input, hashlib.sha256).digest()
    else:
        signature = b""
    return f"{signing_input.decode()}.{b64url(signature)}"


# --- what the test scripts ---------------------------------------------------------------------------------


@dataclass
class User:
    """Who signs in at the provider's login page. ``None`` leaves a claim out."""

    sub: str = "248289761001"
    email: str | None = "jane.doe@example.com"
    email_verified: Any = True
    name: str | None = "Jane Doe"

    def claims(self) -> dict[str, Any]:
        values = {"email": self.email, "email_verified": self.email_verified, "name": self.name}
        return {"sub": self.sub, **{name: value for name, value in values.items() if value is not None}}


@dataclass
class IdTokenScript:
    """How the next ID tokens are made. Defaults: a correct token signed with the provider's current key of
    ``alg``. Overrides apply on top of the correct claims and header (``DROP`` removes a member)."""

    alg: Literal["RS256", "ES256", "none", "HS256"] = "RS256"
    claims: dict[str, Any] = field(default_factory=dict)
    header: dict[str, Any] = field(default_factory=dict)
    key: KeyPair | None = None  # sign with this key (published or not) instead of the current one
    hmac_secret: bytes | None = None  # HS256: default, the current RSA key's public PEM
    raw: str | None = None  # the id_token string itself (malformed tokens)
    # Claims asked for by scope go in the ID token (many providers) or only to userinfo (panva's, and the spec's
    # reading for the code flow: conformIdTokenClaims).
    user_claims_in_id_token: bool = True
    omit: bool = False  # no id_token in the token response at all


@dataclass
class Fault:
    kind: FaultKind
    seconds: float = 0.0  # for "hang": how long before answering (released early when the provider stops)
    times: int | None = None  # how many requests it hits (None: all)


@dataclass
class Authorization:
    """One authorization request, as the browser brought it."""

    query: dict[str, str]
    code: str | None = None

    def __getattr__(self, name: str) -> str | None:  # client_id, redirect_uri, state, nonce, code_challenge, ...
        if name.startswith("_"):
            raise AttributeError(name)
        return self.query.get(name)

    @property
    def method(self) -> str | None:
        return self.query.get("code_challenge_method")


@dataclass
class TokenRequest:
    """One call to the token endpoint and what the provider made of it."""

    form: dict[str, str]
    authorization_header: str | None
    auth_method: str | None  # how the client authenticated, when it did
    outcome: str  # "issued" or the refusal reason (invalid_client, code_reused, pkce_mismatch, ...)
    id_token: str | None = None
    access_token: str | None = None


@dataclass
class _Grant:
    code: str
    authorization: Authorization
    user: User
    issued_at: float
    used: bool = False


@dataclass
class _Access:
    user: User
    issued_at: float


# --- the provider ------------------------------------------------------------------------------------------


class FakeProvider:
    """The provider; start it as a context manager (or ``start()``/``stop()``).

    Attributes a test may set at any time: ``user``, ``id_token`` (an ``IdTokenScript``), ``userinfo_claims``
    (merged over the user's claims; ``DROP`` removes), ``userinfo_status``, ``client_auth``, ``advertise_iss``,
    ``send_iss`` (True: the issuer, False: nothing, a string: that value), ``authorize_error``,
    ``discovery_overrides``, ``token_response_overrides``, ``code_lifetime``.
    """

    def __init__(
        self,
        *,
        client_id: str = "sso-bridge-client",
        client_secret: str = "Xk8Q~fake.client-secret_0123456789abcdefABCDEF",  # noqa: S107 - a test value
        path: str = "",
        trailing_slash: bool = False,
        host: str = "127.0.0.1",
        cognito: CognitoShape | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.client_auth: ClientAuth = "client_secret_basic"
        self.user = User()
        self.id_token = IdTokenScript()
        self.userinfo_claims: dict[str, Any] = {}
        self.userinfo_status = 200
        self.advertise_iss = True
        self.send_iss: bool | str = True
        self.authorize_error: str | None = None
        self.discovery_overrides: dict[str, Any] = {}
        self.token_response_overrides: dict[str, Any] = {}
        self.code_lifetime = 60.0
        self._path = path.rstrip("/")
        self._trailing_slash = trailing_slash
        self._host = host
        self.cognito = cognito

        # What the provider saw and handed out, for assertions (and for the log-leak needles).
        self.authorizations: list[Authorization] = []
        self.token_requests: list[TokenRequest] = []
        self.userinfo_requests: list[str | None] = []  # the Authorization header of each
        self.hits: Counter[str] = Counter()
        self.issued_codes: list[str] = []
        self.issued_access_tokens: list[str] = []
        self.issued_id_tokens: list[str] = []

        self._lock = threading.Lock()
        self._keys: dict[str, KeyPair] = {}
        self._published: list[str] = []  # kids in the JWKS, in order
        self._current: dict[str, str] = {}  # alg -> kid that signs
        for alg in ("RS256", "ES256"):
            self.add_key(new_key(alg))
        self._grants: dict[str, _Grant] = {}
        self._access: dict[str, _Access] = {}
        self._faults: dict[str, Fault] = {}
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> FakeProvider:
        server = ThreadingHTTPServer((self._host, 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases hanging handlers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # addresses

    @property
    def port(self) -> int:
        assert self._server is not None, "start the provider first"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}{self._path}"

    @property
    def issuer(self) -> str:
        """The exact issuer string (OIDC_ISSUER), with a trailing slash when asked for (Auth0 has one)."""
        if self.cognito is not None:
            return self.cognito.issuer
        return self.base_url + ("/" if self._trailing_slash else "")

    def url(self, endpoint: str) -> str:
        """The endpoint's address as the discovery document publishes it."""
        return self.cognito.url(endpoint) if self.cognito is not None else self.local_url(endpoint)

    def local_url(self, endpoint: str) -> str:
        """Where this server answers for the endpoint, on loopback."""
        return self.base_url + ENDPOINTS[endpoint]

    def route(self, url: str) -> str:
        """The loopback address of a published endpoint URL (the URL itself unless Cognito-shaped), query kept."""
        address, separator, query = url.partition("?")
        for endpoint in ENDPOINTS:
            if address == self.url(endpoint):
                return self.local_url(endpoint) + separator + query
        raise ValueError(f"not one of this provider's endpoints: {address[:80]}")

    def opener(self) -> _Resolver:
        """For the bridge's ``Provider._opener``: every published URL is fetched from this server."""
        return _Resolver(self)

    @property
    def authorization_endpoint(self) -> str:
        return self.url("authorize")

    # keys

    def add_key(self, key: KeyPair, *, current: bool = True, publish: bool = True) -> KeyPair:
        with self._lock:
            self._keys[key.kid] = key
            if publish and key.kid not in self._published:
                self._published.append(key.kid)
            if current:
                self._current[key.alg] = key.kid
        return key

    def current_key(self, alg: Literal["RS256", "ES256"] = "RS256") -> KeyPair:
        return self._keys[self._current[alg]]

    def rotate(self, alg: Literal["RS256", "ES256"] = "RS256", *, keep_old: bool = False) -> tuple[KeyPair, KeyPair]:
        """A new signing key for ``alg``; the old one leaves the JWKS unless ``keep_old``. Returns (old, new)."""
        old = self.current_key(alg)
        new = self.add_key(new_key(alg))
        if not keep_old:
            with self._lock:
                self._published.remove(old.kid)
        return old, new

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            return {"keys": [self._keys[kid].public_jwk() for kid in self._published]}

    # faults

    def fail(self, endpoint: str, kind: FaultKind, *, seconds: float = 5.0, times: int | None = None) -> None:
        """Make ``endpoint`` hang for ``seconds``, answer 500/502, close the connection or answer non-JSON."""
        assert endpoint in ENDPOINTS, endpoint
        self._faults[endpoint] = Fault(kind, seconds, times)

    def heal(self, endpoint: str | None = None) -> None:
        if endpoint is None:
            self._faults.clear()
        else:
            self._faults.pop(endpoint, None)

    def _fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            fault = self._faults.get(endpoint)
            if fault is None:
                return None
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del self._faults[endpoint]
            return fault

    # documents

    def discovery(self) -> dict[str, Any]:
        document = {
            "issuer": self.issuer,
            "authorization_endpoint": self.url("authorize"),
            "token_endpoint": self.url("token"),
            "jwks_uri": self.url("jwks"),
            "userinfo_endpoint": self.url("userinfo"),
            "end_session_endpoint": self.url("end_session"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "email", "email_verified", "name"],
            "authorization_response_iss_parameter_supported": self.advertise_iss,
        }
        return _merged(document, self.discovery_overrides)

    def make_id_token(self, authorization: Authorization, user: User, *, access_token: str | None = None) -> str:
        """The ID token for a code, as scripted by ``self.id_token``."""
        script = self.id_token
        if script.raw is not None:
            return script.raw
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": user.sub,
            "aud": self.client_id,
            "exp": now + 300,
            "iat": now,
            "auth_time": now,
        }
        if authorization.nonce is not None:
            claims["nonce"] = authorization.nonce
        if script.user_claims_in_id_token:
            claims |= user.claims()
        claims = _merged(claims, script.claims)
        header: dict[str, Any] = {"typ": "JWT"}
        if script.alg == "none":
            return sign_jws(_merged({**header, "alg": "none"}, script.header), claims)
        if script.alg == "HS256":
            secret = script.hmac_secret or self.current_key("RS256").public_pem()
            header |= {"alg": "HS256", "kid": self.current_key("RS256").kid}
            return sign_jws(_merged(header, script.header), claims, hmac_secret=secret)
        key = script.key or self.current_key(script.alg)
        header |= {"alg": script.alg, "kid": key.kid}
        return sign_jws(_merged(header, script.header), claims, key=key)

    def userinfo_for(self, user: User) -> dict[str, Any]:
        return _merged(user.claims(), self.userinfo_claims)

    # the browser's side

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], str]:
        """The authorization endpoint: (status, headers, body). The user is ``self.user``, already signed in."""
        authorization = Authorization(dict(query))
        with self._lock:
            self.authorizations.append(authorization)
        redirect_uri = query.get("redirect_uri", "")
        target = urlsplit(redirect_uri)
        # Like a real provider: an unknown client or a non-absolute redirect_uri is never redirected to.
        if query.get("client_id") != self.client_id or target.scheme not in ("http", "https") or not target.netloc:
            return 400, {"Content-Type": "text/plain"}, "unknown client or redirect_uri"
        params: dict[str, str] = {}
        if self.authorize_error:
            params["error"] = self.authorize_error
            params["error_description"] = "The resource owner denied the request"
        elif not _valid_code_request(query):
            params["error"] = "invalid_request"
        else:
            code = secrets.token_urlsafe(24)
            authorization.code = code
            with self._lock:
                self._grants[code] = _Grant(code, authorization, User(**vars(self.user)), time.time())
                self.issued_codes.append(code)
            params["code"] = code
        if "state" in query:
            params["state"] = query["state"]
        if self.send_iss is True:
            params["iss"] = self.issuer
        elif isinstance(self.send_iss, str):
            params["iss"] = self.send_iss
        separator = "&" if target.query else "?"
        return 302, {"Location": redirect_uri + separator + urlencode(params)}, ""

    # the bridge's side

    def token(self, form: dict[str, str], authorization_header: str | None) -> tuple[int, dict[str, Any]]:
        method, client_id, secret = _client_credentials(form, authorization_header)
        record = TokenRequest(dict(form), authorization_header, method, outcome="issued")
        with self._lock:
            self.token_requests.append(record)

        def refuse(status: int, error: str, reason: str) -> tuple[int, dict[str, Any]]:
            record.outcome = reason
            return status, {"error": error, "error_description": reason}

        if method is None:
            return refuse(401, "invalid_client", "no_client_authentication")
        if method != self.client_auth:
            return refuse(401, "invalid_client", f"unexpected_{method}")
        if client_id != self.client_id or not hmac.compare_digest(str(secret).encode(), self.client_secret.encode()):
            return refuse(401, "invalid_client", "bad_client_credentials")
        if form.get("grant_type") != "authorization_code":
            return refuse(400, "unsupported_grant_type", "grant_type")
        with self._lock:
            grant = self._grants.get(form.get("code", ""))
            reused = grant is not None and grant.used
            if grant is not None:
                grant.used = True  # a code is spent by its first presentation, good or bad
        if grant is None:
            return refuse(400, "invalid_grant", "unknown_code")
        if reused:
            return refuse(400, "invalid_grant", "code_reused")
        if time.time() - grant.issued_at > self.code_lifetime:
            return refuse(400, "invalid_grant", "code_expired")
        if grant.authorization.client_id != client_id:
            return refuse(400, "invalid_grant", "code_of_another_client")
        if form.get("redirect_uri") != grant.authorization.redirect_uri:
            return refuse(400, "invalid_grant", "redirect_uri_mismatch")
        verifier = form.get("code_verifier")
        if not verifier:
            return refuse(400, "invalid_grant", "pkce_verifier_missing")
        if b64url(hashlib.sha256(verifier.encode()).digest()) != grant.authorization.code_challenge:
            return refuse(400, "invalid_grant", "pkce_mismatch")

        access_token = secrets.token_urlsafe(32)
        with self._lock:
            self._access[access_token] = _Access(grant.user, time.time())
            self.issued_access_tokens.append(access_token)
        answer: dict[str, Any] = {"access_token": access_token, "token_type": "Bearer", "expires_in": 300}
        if not self.id_token.omit:
            id_token = self.make_id_token(grant.authorization, grant.user, access_token=access_token)
            answer["id_token"] = id_token
            record.id_token = id_token
            with self._lock:
                self.issued_id_tokens.append(id_token)
        record.access_token = access_token
        return 200, _merged(answer, self.token_response_overrides)

    def userinfo(self, authorization_header: str | None) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.userinfo_requests.append(authorization_header)
        scheme, _, token = (authorization_header or "").partition(" ")
        access = self._access.get(token) if scheme.lower() == "bearer" else None
        if access is None:
            return 401, {"error": "invalid_token"}
        if self.userinfo_status != 200:
            return self.userinfo_status, {"error": "server_error"}
        return 200, self.userinfo_for(access.user)


class _Resolver:
    """An opener that sends each published endpoint URL to the provider's loopback address."""

    def __init__(self, provider: FakeProvider) -> None:
        self._provider = provider
        self._inner = urllib.request.build_opener()

    def open(self, request: urllib.request.Request, timeout: float) -> Any:
        request.full_url = self._provider.route(request.full_url)
        return self._inner.open(request, timeout=timeout)


def _valid_code_request(query: dict[str, str]) -> bool:
    """The code flow with PKCE S256 and the openid scope: what this provider (like panva's) insists on."""
    return (
        query.get("response_type") == "code"
        and query.get("code_challenge_method") == "S256"
        and bool(query.get("code_challenge"))
        and "openid" in query.get("scope", "").split()
    )


def _client_credentials(
    form: dict[str, str], authorization_header: str | None
) -> tuple[str | None, str | None, str | None]:
    """(method, client_id, secret); both methods at once is a refusal (RFC 6749 §2.3: one method per request)."""
    basic = None
    if authorization_header and authorization_header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization_header[6:], validate=True).decode()
        except ValueError:
            return "client_secret_basic", None, None
        user, _, password = decoded.partition(":")
        basic = (unquote_plus(user), unquote_plus(password))  # each part form-encoded (RFC 6749 §2.3.1)
    posted = "client_secret" in form
    if basic and posted:
        return "both", None, None
    if basic:
        return "client_secret_basic", *basic
    if posted:
        return "client_secret_post", form.get("client_id"), form.get("client_secret")
    return None, None, None


def _handler_for(provider: FakeProvider) -> type[BaseHTTPRequestHandler]:
    routes = {provider._path + path: name for name, path in ENDPOINTS.items()}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "FakeOP/1.0"

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: the request line holds codes and states, and tests capture stderr."""

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the bridge gave up waiting: fine
                pass

        def _json(self, status: int, document: dict[str, Any]) -> None:
            self._send(status, json.dumps(document).encode(), {"Content-Type": "application/json"})

        def _endpoint(self) -> tuple[str | None, dict[str, str]]:
            parts = urlsplit(self.path)
            return routes.get(parts.path), dict(parse_qsl(parts.query, keep_blank_values=True))

        def _faulted(self, endpoint: str) -> bool:
            fault = provider._fault(endpoint)
            if fault is None:
                return False
            if fault.kind == "hang":
                provider._stopping.wait(fault.seconds)
                return True  # by now the bridge has stopped waiting; answer nothing
            if fault.kind == "close":
                self.close_connection = True
                self.connection.close()
                return True
            if fault.kind == "not_json":
                self._send(200, b"<html>maintenance</html>", {"Content-Type": "text/html"})
                return True
            self._json(int(fault.kind), {"error": "server_error"})
            return True

        def do_GET(self) -> None:
            endpoint, query = self._endpoint()
            if endpoint is None or endpoint == "token":
                self._json(404 if endpoint is None else 405, {"error": "not_found"})
                return
            provider.hits[endpoint] += 1
            if self._faulted(endpoint):
                return
            if endpoint == "discovery":
                self._json(200, provider.discovery())
            elif endpoint == "jwks":
                self._json(200, provider.jwks())
            elif endpoint == "authorize":
                status, headers, body = provider.authorize(query)
                self._send(status, body.encode(), headers)
            elif endpoint == "userinfo":
                status, document = provider.userinfo(self.headers.get("Authorization"))
                self._json(status, document)
            else:  # end_session: a page saying goodbye, and where it would go next
                self._send(200, json.dumps(query).encode(), {"Content-Type": "application/json"})

        def do_POST(self) -> None:
            endpoint, _ = self._endpoint()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            if endpoint not in ("token", "userinfo"):
                self._json(404, {"error": "not_found"})
                return
            provider.hits[endpoint] += 1
            if self._faulted(endpoint):
                return
            if endpoint == "userinfo":
                status, document = provider.userinfo(self.headers.get("Authorization"))
            else:
                if not (self.headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
                    self._json(400, {"error": "invalid_request", "error_description": "form expected"})
                    return
                form = dict(parse_qsl(body, keep_blank_values=True))
                status, document = provider.token(form, self.headers.get("Authorization"))
            self._json(status, document)

    return Handler


def iter_secrets(provider: FakeProvider) -> Iterator[tuple[str, str]]:
    """(label, value) of everything the provider handed out or was given that must never be logged."""
    yield "client secret", provider.client_secret
    for code in provider.issued_codes:
        yield "authorization code", code
    for token in provider.issued_access_tokens:
        yield "access token", token
    for token in provider.issued_id_tokens:
        yield "ID token", token
        header, _, rest = token.partition(".")
        payload, _, signature = rest.partition(".")
        yield "ID token header.payload", f"{header}.{payload}"
        if len(signature) >= 16:
            yield "ID token signature", signature
    for request in provider.token_requests:
        if request.form.get("code_verifier"):
            yield "PKCE code_verifier", request.form["code_verifier"]
        if request.authorization_header:
            yield "token request Authorization header", request.authorization_header.partition(" ")[2]
    for authorization in provider.authorizations:
        if authorization.nonce:
            yield "nonce", authorization.nonce
