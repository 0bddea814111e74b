"""Fuzz target: the OpenID callback, ``GET /oidc/callback`` (``sso_bridge.oidc.OidcSignIn.callback``), through a
flow's routes as a browser meets it: its query (``code``, ``state``, ``iss``, ``error``, anything else) and its
cookies.

Whatever arrives, the answer is a 4xx, never a 5xx (nothing here can be down: keys are in memory and the provider
is a stand-in that always answers); its "Try again" link stays on the bridge's host or is the platform's sign-in
page. The provider's token endpoint is reached only for a state the bridge signed itself, for this browser (its
cookie), this host, this provider and this ``state`` parameter, once: the stand-in checks each call against what
the bridge derived for that state. The ID token it answers with is fuzzed too, a third of them signed with the
provider's key, so the claims' checks run: a sign-in (a redirect with a login token) must be back to the state's
return URL, as the email of an ID token the provider signed for this client and this sign-in, verified.

The first byte of an input says how the rest becomes a request:

- ``r``: raw text: the query, then (after the first ``\\n``) the cookies, ``;``-separated, as payload v2 lists them;
- ``s``: a structured callback: a state cookie the bridge signed (or another key did), with fuzzed fields (its
  URLs as the bridge could have made them: on its own host, or another it was given), under its name or another,
  beside fuzzed cookies; a query with that state or another, a code, an ``iss`` and extra parameters; and the ID
  token the provider answers with.

Any other first byte picks one of those by its value.
"""

from __future__ import annotations

import base64
import json
import math
import os
import time
import urllib.request
from dataclasses import dataclass
from typing import Any
from unittest import mock
from urllib.parse import parse_qsl, quote, urlsplit

import atheris
import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from fuzz._harness import Broken, check, fuzz

with atheris.instrument_imports(include=["sso_bridge"]):
    from sso_bridge.errors import BridgeError, InvalidIdToken
    from sso_bridge.flow import SignIn, new_app
    from sso_bridge.link_store import LinkStore
    from sso_bridge.observability import Logger, Metrics
    from sso_bridge.oidc_provider import ClientCredentials, Metadata, Provider, Tokens
    from sso_bridge.oidc_state import STATE_TTL, SignInState, StateSigner, cookie_name
    from sso_bridge.secrets import CURRENT, KeyCache, SecretVersion
    from sso_bridge.settings import CommonSettings

KEY = "fuzz-login-token-key-0123456789abcdef0123456789"
OTHER_KEY = "fuzz-attackers-key-0123456789abcdef0123456789ab"
ISSUER = "https://login.example.com"
OTHER_ISSUER = "https://login.other-idp.example.com"
HOST = "abc123.execute-api.eu-west-1.amazonaws.com"
CALLBACK = f"https://{HOST}/oidc/callback"
RETURN_URL = f"https://{HOST}/clickfunnels/sso?redirect_to=https%3A%2F%2Fyourworkspace.myclickfunnels.com%2F"
PLATFORM_LOGIN_URL = "https://platform.example.com/login"
CLIENT_ID = "sso-bridge-client"
CLIENT_SECRET = "fuzz-client-secret"  # noqa: S105 - a stand-in
LOGIN_SECRET_ID = "sso-bridge/login-token"  # noqa: S105 - a name
CLIENT_SECRET_ID = "sso-bridge/oidc-client"  # noqa: S105 - a name
SIDS = ["c2lkLTAxMjM0NTY3ODlhYmNkZWYwMTIz", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAX", "c2lkLTAxMjM0NTY3ODlhYmNkZWYw"]
RETURN_URLS = [RETURN_URL, f"https://{HOST}/", "https://evil.example.net/", f"http://{HOST}/", f"https://{HOST}.evil/"]
REDIRECT_URIS = [CALLBACK, f"https://{HOST}/prod/oidc/callback", "https://evil.example.net/oidc/callback"]
ISSUERS = [ISSUER, OTHER_ISSUER, ISSUER + "/"]
NAMES = ["code", "state", "iss", "error", "error_description", "session_state", "login_token", "oidc_prompt"]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# The provider's one signing key: it signs a third of the fuzzed ID tokens, whose claims are then what is checked.
_SIGNING_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _public_jwk() -> dict[str, Any]:
    numbers = _SIGNING_KEY.public_key().public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    return {"kty": "RSA", "kid": "fuzz", "use": "sig", "alg": "RS256", "e": "AQAB", "n": _b64(n)}


class _Secrets(KeyCache):
    def _fetch(self, secret_id: str, stage: str) -> SecretVersion | None:
        values = {LOGIN_SECRET_ID: KEY, CLIENT_SECRET_ID: CLIENT_SECRET}
        return SecretVersion(values[secret_id], created_at=0.0) if stage == CURRENT else None


class _States(LinkStore):
    """Sign-in states, each spent once (emptied for every input: each input is a browser's fresh try)."""

    def __init__(self) -> None:
        super().__init__("spent", "revocations")
        self.spent: set[str] = set()

    def spend_sign_in_state(self, *, sid: str, vendor: str, expires_at: int, spent_at: int, request_id: str) -> bool:
        first = sid not in self.spent
        self.spent.add(sid)
        return first


@dataclass
class _Signed:
    """The state cookie this input carries, as the bridge signed it (``None``: not signed with the bridge's key)."""

    state: SignInState | None = None
    issued_at: int = 0
    id_claims: dict[str, Any] | None = None  # the claims of the ID token the provider signed for it, if it did


class _Provider(Provider):
    """The provider, answering without a network: its metadata, one key, and a code exchange that checks it was
    asked for the state cookie the bridge signed, with everything about it right, at most once."""

    def __init__(self) -> None:
        with mock.patch.object(urllib.request, "build_opener"):  # no opener: nothing here leaves the process
            super().__init__(ISSUER)
        self.jwk = _public_jwk()
        self.sends_iss = True
        self.id_token = ""
        self.signed = _Signed()
        self.query = ""
        self.exchanged: set[str] = set()
        self.finding: Broken | None = None

    def metadata(self) -> Metadata:
        return Metadata(
            issuer=ISSUER,
            authorization_endpoint=f"{ISSUER}/authorize",
            token_endpoint=f"{ISSUER}/token",
            jwks_uri=f"{ISSUER}/jwks",
            userinfo_endpoint=None,
            end_session_endpoint=None,
            signing_algorithms=frozenset({"RS256", "ES256"}),
            sends_iss=self.sends_iss,
        )

    def signing_key(self, kid: str | None, key_type: str) -> dict[str, Any]:
        if key_type != "RSA" or kid not in (None, "fuzz"):
            raise InvalidIdToken("oidc_id_token_kid")
        return dict(self.jwk)

    def exchange(
        self, code: str, *, redirect_uri: str, code_verifier: str, client: ClientCredentials, auth: str
    ) -> Tokens:
        try:
            self._check_exchange(redirect_uri, code_verifier, client, auth)
        except Broken as exc:  # the flow would answer it as any bug, with a 500: kept for the report
            self.finding = exc
            raise
        return Tokens(id_token=self.id_token, access_token=None)

    def _check_exchange(self, redirect_uri: str, code_verifier: str, client: ClientCredentials, auth: str) -> None:
        state, asked = self.signed.state, f"{self.query!r}"
        check(state is not None, f"{asked}: a code exchanged without a state cookie the bridge signed")
        assert state is not None
        check(code_verifier == StateSigner(KEY).code_verifier(state.sid), f"{asked}: the verifier of another state")
        check(state.sid not in self.exchanged, f"{asked}: the state {state.sid!r} exchanged twice")
        check(redirect_uri == state.redirect_uri == CALLBACK, f"{asked}: redirect_uri {state.redirect_uri!r}")
        check(urlsplit(state.return_to)[:2] == ("https", HOST), f"{asked}: return URL {state.return_to!r}")
        check(state.issuer == ISSUER, f"{asked}: a state for the provider {state.issuer!r}")
        check(state.expires_at > self.signed.issued_at - 2, f"{asked}: an expired state")
        parameters = parse_qsl(self.query, keep_blank_values=True)
        check(parameters.count(("state", state.sid)) == 1, f"{asked}: the state parameter is not the cookie's")
        iss = next((value for name, value in parameters if name == "iss"), "")  # empty is absent, as Query reads it
        check(iss == ISSUER or (not iss and not self.sends_iss), f"{asked}: iss {iss!r}")
        expected = (CLIENT_ID, CLIENT_SECRET, "client_secret_basic")
        check((client.client_id, client.client_secret, auth) == expected, f"{asked}: client {client!r}, {auth}")
        self.exchanged.add(state.sid)

    def userinfo(self, access_token: str) -> dict[str, Any]:
        raise Broken("userinfo asked without an access token handed out")


def _setup() -> tuple[Any, _States, _Provider]:
    settings = CommonSettings.from_env(
        {
            "LOGIN_TOKEN_SECRET_ID": LOGIN_SECRET_ID,
            "PLATFORM_LOGIN_URL": PLATFORM_LOGIN_URL,
            "SPENT_LINKS_TABLE_NAME": "spent",
            "LINK_REVOCATIONS_TABLE_NAME": "revocations",
            "OIDC_ISSUER": ISSUER,
            "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_CLIENT_SECRET_ID": CLIENT_SECRET_ID,
            "OIDC_PACKAGES_PATH": os.devnull,
        }
    )
    logger = Logger("fuzz", stream=open(os.devnull, "w"))  # noqa: SIM115 - open for the process's life
    metrics = Metrics(namespace="fuzz", service="fuzz")
    metrics.disabled = True  # one line per input on stdout otherwise
    app = new_app()
    states = _States()
    with mock.patch.object(urllib.request, "build_opener"):
        flow = SignIn(
            app,
            settings=settings,
            audience="clickfunnels",
            logger=logger,
            metrics=metrics,
            links=states,
            keys=_Secrets(max_age=300, max_stale=900, previous_grace=0, logger=logger),
        )
    assert flow.oidc is not None
    provider = _Provider()
    flow.oidc.provider = provider
    return app, states, provider


_APP, _STATES, _PROVIDER = _setup()


# Every choice below reads 0 (what the provider returns once the input runs out) as the value of a genuine sign-in:
# the input "s" alone signs Jane in, and the fuzzer works outwards from there.


def _text(fdp: atheris.FuzzedDataProvider, size: int) -> str:
    return str(fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, size)))


def _odd(fdp: atheris.FuzzedDataProvider, one_in: int) -> bool:
    return bool(fdp.ConsumeIntInRange(0, one_in - 1) == one_in - 1)


def _pick(fdp: atheris.FuzzedDataProvider, choices: list[str], size: int = 40) -> str:
    """Mostly one of ``choices`` (the first one by default), sometimes anything."""
    return _text(fdp, size) if _odd(fdp, 4) else str(fdp.PickValueInList(choices))


def _own_url(fdp: atheris.FuzzedDataProvider, choices: list[str]) -> str:
    """A URL the bridge could have put in a state it signed: one of ``choices``, or any path and query on its host
    (it builds them from the request's path and query, on the host API Gateway names, never from the request)."""
    return f"https://{HOST}/{_text(fdp, 120)}" if _odd(fdp, 4) else str(fdp.PickValueInList(choices))


def _claim(fdp: atheris.FuzzedDataProvider, good: Any) -> Any:
    """Mostly the value a provider should send, sometimes another value of any JSON type (NaN and Infinity too)."""
    kind = fdp.ConsumeIntInRange(0, 10)
    if kind < 5:
        return good
    others = [
        lambda: _text(fdp, 60),
        fdp.ConsumeFloat,
        lambda: fdp.PickValueInList([math.inf, -math.inf, math.nan, 10**400]),  # what Python's JSON reads and writes
        lambda: fdp.ConsumeInt(9),
        fdp.ConsumeBool,
        lambda: [good],
    ]
    return others[kind - 5]()


def _id_token(fdp: atheris.FuzzedDataProvider, sid: str) -> tuple[str, dict[str, Any] | None]:
    """The provider's ID token for the state ``sid``, and its claims when signed with the provider's key (two in
    three; the others carry a fuzzed signature, and often a fuzzed header)."""
    if _odd(fdp, 10):
        return _text(fdp, 200), None
    signed = not _odd(fdp, 3)
    header: dict[str, Any] = {"alg": "RS256", "kid": "fuzz"}
    if not signed or _odd(fdp, 10):
        header = {"alg": _pick(fdp, ["RS256", "ES256", "none", "HS256"], 8), "kid": _pick(fdp, ["fuzz"], 8)}
    if _odd(fdp, 10):
        header["crit"] = ["exp"]
    now = int(time.time())
    claims = {
        "iss": _claim(fdp, ISSUER),
        "aud": _claim(fdp, [CLIENT_ID, "another-client"] if _odd(fdp, 2) else CLIENT_ID),
        "sub": _claim(fdp, "248289761001"),
        "exp": _claim(fdp, now + 1000 - fdp.ConsumeIntInRange(0, 1100)),
        "iat": _claim(fdp, now - fdp.ConsumeIntInRange(0, 700) + fdp.ConsumeIntInRange(0, 100)),
        "nonce": _claim(fdp, StateSigner(KEY).nonce(sid)),
        "email": _claim(fdp, "jane.doe@example.com"),
        "email_verified": _claim(fdp, fdp.PickValueInList([True, "true", False])),
        "name": _claim(fdp, "Jane Doe"),
    }
    if _odd(fdp, 2):
        claims["azp"] = _claim(fdp, CLIENT_ID)
    for name in list(claims):
        if _odd(fdp, 20):
            del claims[name]
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if signed:
        signature = _SIGNING_KEY.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 300))
    return f"{signing_input}.{_b64(signature)}", claims if signed else None


def _structured(fdp: atheris.FuzzedDataProvider) -> tuple[str, list[str], _Signed]:
    """The query and cookies of a callback built around a state cookie, and that cookie as signed."""
    now = int(time.time())
    sid = _pick(fdp, SIDS, 70)
    state = SignInState(
        sid=sid,
        audience=_pick(fdp, ["clickfunnels", "kustomer"], 20),
        return_to=_own_url(fdp, RETURN_URLS),
        redirect_uri=_own_url(fdp, REDIRECT_URIS),
        issuer=_pick(fdp, ISSUERS, 60),
        expires_at=now + STATE_TTL - fdp.ConsumeIntInRange(0, 2 * STATE_TTL),
    )
    forged = _odd(fdp, 6)
    issued_at = now - fdp.ConsumeIntInRange(0, 5)
    try:
        value = StateSigner(OTHER_KEY if forged else KEY).cookie(state, now=issued_at).split(";", 1)[0]
        value = value.partition("=")[2]
    except BridgeError:  # too large for a browser: the bridge never sends it
        value = ""
    if _odd(fdp, 8):
        value += _text(fdp, 8)  # tampered: the bridge's signature no longer covers it
    name = _pick(fdp, [cookie_name(s) for s in SIDS[1:]], 30) if _odd(fdp, 6) else cookie_name(sid)
    cookies = [f"{name}={value}"]
    for _ in range(fdp.ConsumeIntInRange(0, 2)):
        cookies.append(f"{_pick(fdp, ['sso_bridge_oidc_', '_ga', ''], 20)}{_text(fdp, 10)}={_text(fdp, 30)}")
    if _odd(fdp, 2):
        cookies.reverse()
    # SIDS[2] shares its first 16 characters, so its cookie's name, with SIDS[0]: another sign-in's state
    parameters = [("state", _pick(fdp, SIDS[1:], 80) if _odd(fdp, 6) else sid)]
    if not _odd(fdp, 6):
        parameters.append(("code", _pick(fdp, ["SplxlOBeZQQYbYS6WxSbIA"], 60)))
    if not _odd(fdp, 4):
        parameters.append(("iss", _pick(fdp, ISSUERS, 60)))
    for _ in range(fdp.ConsumeIntInRange(0, 2)):
        parameters.append((_pick(fdp, NAMES, 12), _text(fdp, 40)))
    if _odd(fdp, 2):
        parameters.reverse()
    query = "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in parameters)
    _PROVIDER.sends_iss = not _odd(fdp, 2)
    _PROVIDER.id_token, id_claims = _id_token(fdp, sid)
    return query, cookies, _Signed(None if forged else state, issued_at, id_claims)


def _event(query: str, cookies: list[str], accept: str) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "GET /oidc/callback",
        "rawPath": "/oidc/callback",
        "rawQueryString": query,
        "cookies": cookies,
        "headers": {"host": HOST, "accept": accept, "x-forwarded-proto": "https"},
        "requestContext": {
            "domainName": HOST,
            "http": {"method": "GET", "path": "/oidc/callback", "sourceIp": "203.0.113.7"},
            "requestId": "fuzz",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }


def _check_answer(response: dict[str, Any], asked: str, accept: str) -> None:
    if _PROVIDER.finding is not None:
        raise _PROVIDER.finding
    status = response["statusCode"]
    if status == 302:
        _check_signed_in(response, asked)
        return
    check(400 <= status < 500, f"{asked}: status {status}: {response.get('body', '')[:300]!r}")
    check("Location" not in response["headers"], f"{asked}: redirected")
    check("login_token" not in json.dumps(response), f"{asked}: a login token in the answer")
    if accept == "application/json":
        retry = json.loads(response["body"]).get("retry_url")
        on_host = retry is None or retry == PLATFORM_LOGIN_URL or urlsplit(retry)[:2] == ("https", HOST)
        check(on_host, f"{asked}: Try again leads to {retry!r}")


def _check_signed_in(response: dict[str, Any], asked: str) -> None:
    """Someone signed in: only with the state the bridge signed and an ID token the provider signed, for this
    client and this sign-in, with a verified email; back to the state's return URL, as that email."""
    state, claims = _PROVIDER.signed.state, _PROVIDER.signed.id_claims
    check(state is not None and claims is not None, f"{asked}: signed in without a genuine state and ID token")
    assert state is not None
    assert claims is not None
    audience = claims.get("aud")
    check(claims.get("iss") == ISSUER, f"{asked}: an ID token from {claims.get('iss')!r}")
    check(audience == CLIENT_ID or (isinstance(audience, list) and CLIENT_ID in audience), f"{asked}: aud {audience!r}")
    check(claims.get("nonce") == StateSigner(KEY).nonce(state.sid), f"{asked}: another sign-in's nonce")
    check(claims.get("email_verified") in (True, "true"), f"{asked}: email_verified {claims.get('email_verified')!r}")
    location = response["headers"]["Location"]
    back, original = urlsplit(location), urlsplit(state.return_to)  # as parsed: urlsplit drops tabs and newlines
    check(back[:3] == original[:3] and back.query.startswith(original.query), f"{asked}: to {location!r}")
    check(back.query.startswith("login_token=", len(original.query) + bool(original.query)), f"{asked}: {location!r}")
    token = back.query.rpartition("login_token=")[2]
    login = jwt.decode(token, KEY, algorithms=["HS256"], options={"verify_aud": False})
    check(login["aud"] == state.audience, f"{asked}: a login token for {login['aud']!r}, not {state.audience!r}")
    check(login["email"] == claims["email"], f"{asked}: signed in as {login['email']!r}, not {claims['email']!r}")


def test_one_input(data: bytes) -> None:
    mode = chr(data[0]) if data else "r"
    if mode not in "rs":
        mode = "rs"[data[0] % 2]
    accept = "text/html" if data and data[0] & 0x80 else "application/json"
    _STATES.spent.clear()
    _PROVIDER.exchanged.clear()
    _PROVIDER.finding = None
    if mode == "r":
        query, _, cookie_header = data[1:].decode("utf-8", "replace").partition("\n")
        cookies = [part.strip() for part in cookie_header.split(";")]
        signed = _Signed()
        _PROVIDER.sends_iss, _PROVIDER.id_token = True, ""
    else:
        query, cookies, signed = _structured(atheris.FuzzedDataProvider(data[1:]))
    _PROVIDER.signed, _PROVIDER.query = signed, query
    event = _event(query, cookies, accept)
    _check_answer(_APP.resolve(event), f"{query!r} {cookies!r}", accept)
    if data and data[0] & 0x20:  # the same callback again (history, a leaked URL): never exchanged twice
        _check_answer(_APP.resolve(event), f"again: {query!r} {cookies!r}", accept)


def main() -> None:
    fuzz(test_one_input)


if __name__ == "__main__":
    main()
