"""A stand-in OpenID provider for `make bench`: the four things the bridge asks of one, served on localhost.

Discovery, the key set (one RS256 key, made here with cryptography), the authorization endpoint and the token
endpoint, in a thread of the bench's own process (.venv), so what the functions under test pay is what they would
pay any provider: a plain-HTTP round trip per call (TLS is left out, as with moto). It does the checks a provider
does that cost it nothing worth measuring (the client's credentials, the code once, the redirect URI, PKCE S256),
so a broken flow fails here rather than being measured.

The authorization endpoint answers at once with the redirect back (no sign-in page): it keeps the request's
``nonce``, which the bridge derives from the state and nobody else can compute, and signs the ID token for it
then, so the token endpoint only looks the code up. The RSA signature is the provider's cost, not the bridge's:
made before the timed callback, it stays out of the handler's figure and the floor's alike.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

__all__ = ["Authorization", "StandInProvider"]

CODE_LIFETIME = 60
EMAIL, NAME = "jane.doe@example.com", "Jane Doe"


@dataclass(frozen=True)
class Authorization:
    """What the authorization endpoint handed out: a code, and the redirect back that carries it."""

    code: str
    location: str


@dataclass
class StandInProvider(AbstractContextManager["StandInProvider"]):
    """One provider on a free localhost port; ``issuer`` is its URL. Thread-safe."""

    client_id: str
    client_secret: str
    issuer: str = ""
    kid: str = field(default_factory=lambda: secrets.token_urlsafe(8))
    calls: dict[str, int] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        self.jwk: dict[str, Any] = {**public, "kid": self.kid, "use": "sig", "alg": "RS256"}
        self._codes: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> StandInProvider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: no line per request."""

            def do_GET(self) -> None:
                provider._answer(self, "GET")

            def do_POST(self) -> None:
                provider._answer(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.issuer = f"http://{host!s}:{port}"
        threading.Thread(target=self._server.serve_forever, name="stand-in-oidc", daemon=True).start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- what a test of the flow needs from outside -------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
        }

    def sign(self, claims: dict[str, Any]) -> str:
        """An RS256 JWT signed with the provider's key (its ``kid`` in the header)."""
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})

    def id_token(self, nonce: str, *, now: int | None = None) -> str:
        now = int(time.time()) if now is None else now
        claims = {"iss": self.issuer, "sub": "bench-user-1", "aud": self.client_id, "iat": now, "exp": now + 300}
        claims |= {"nonce": nonce, "email": EMAIL, "email_verified": True, "name": NAME}
        return self.sign(claims)

    def authorize(self, query: str) -> Authorization:
        """The authorization endpoint's work for a request's query string: a code, and where the browser goes."""
        params = {name: values[0] for name, values in parse_qs(query).items()}
        wanted = ("response_type", "client_id", "redirect_uri", "state", "nonce", "code_challenge")
        if any(name not in params for name in wanted) or params["client_id"] != self.client_id:
            raise ValueError("authorization request without its parameters, or another client's")
        if params["response_type"] != "code" or params.get("code_challenge_method") != "S256":
            raise ValueError("only the code flow with PKCE S256")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = {
                "redirect_uri": params["redirect_uri"],
                "challenge": params["code_challenge"],
                "id_token": self.id_token(params["nonce"]),
                "expires": time.monotonic() + CODE_LIFETIME,
            }
        back = urlencode({"code": code, "state": params["state"], "iss": self.issuer})
        return Authorization(code=code, location=f"{params['redirect_uri']}?{back}")

    # --- HTTP ---------------------------------------------------------------------------------------------

    def _count(self, name: str) -> None:
        with self._lock:
            self.calls[name] = self.calls.get(name, 0) + 1

    def _answer(self, request: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        route = (method, url.path)
        self._count(f"{method} {url.path}")
        status, headers = 404, {}
        payload: dict[str, Any] = {"error": "not_found"}
        if route == ("GET", "/.well-known/openid-configuration"):
            status, payload = 200, self.discovery()
        elif route == ("GET", "/jwks"):
            status, payload = 200, {"keys": [self.jwk]}
        elif route == ("GET", "/authorize"):
            try:
                status, headers, payload = 302, {"Location": self.authorize(url.query).location}, {}
            except ValueError as exc:
                status, payload = 400, {"error": "invalid_request", "error_description": str(exc)}
        elif route == ("POST", "/token"):
            status, payload = self._token(request.headers.get("Authorization") or "", body.decode())
        if status >= 400:
            with self._lock:
                self.refused.append(f"{method} {url.path}: {payload.get('error')}")
        data = json.dumps(payload).encode()
        request.send_response(status)
        for name, value in {**headers, "Content-Type": "application/json", "Cache-Control": "no-store"}.items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _token(self, authorization: str, form: str) -> tuple[int, dict[str, Any]]:
        params = {name: values[0] for name, values in parse_qs(form).items()}
        client_id, client_secret = params.get("client_id", ""), params.get("client_secret", "")
        if authorization.startswith("Basic "):
            # RFC 6749 §2.3.1: each part form-encoded before the pair is.
            raw_id, _, raw_secret = base64.b64decode(authorization[6:]).decode().partition(":")
            client_id, client_secret = unquote(raw_id), unquote(raw_secret)
        if client_id != self.client_id or not hmac.compare_digest(client_secret, self.client_secret):
            return 401, {"error": "invalid_client"}
        with self._lock:
            grant = self._codes.pop(params.get("code", ""), None)  # a code works once
        verifier = params.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if (
            params.get("grant_type") != "authorization_code"
            or grant is None
            or grant["expires"] < time.monotonic()
            or grant["redirect_uri"] != params.get("redirect_uri")
            or not hmac.compare_digest(grant["challenge"], challenge)
        ):
            return 400, {"error": "invalid_grant"}
        access = secrets.token_urlsafe(24)
        return 200, {"access_token": access, "token_type": "Bearer", "expires_in": 300, "id_token": grant["id_token"]}
