"""The local vendor stand-ins accept what each vendor's docs accept and refuse the rest, never showing a token.

The apps are called directly with ``Request`` objects: no sockets in unit tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import json
import re
import threading
import time
import warnings
from collections.abc import Callable
from html import unescape
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import jwt
import pytest

from local.server import App, Reply, Request
from local.vendors import clickfunnels, happyfox, kustomer
from tests.helpers import HAPPYFOX_ACCOUNT_URL, KUSTOMER_PORTAL_HOST, VENDOR_KEYS, WORKSPACE

CF_KEY, KU_KEY, HF_KEY = VENDOR_KEYS["clickfunnels"], VENDOR_KEYS["kustomer"], VENDOR_KEYS["happyfox"]
HF_HOST = urlsplit(HAPPYFOX_ACCOUNT_URL).hostname or ""
KU_REDIRECT_URI = "https://sso.example.com/kustomer/login"
HF_REMOTE_LOGIN_URL = "https://sso.example.com/happyfox/login"
EMAIL = "jane.doe+vip@example.com"
AWKWARD_EMAIL = "o'hara+<x>@example.com"  # + and HTML metacharacters; no vendor doc forbids them
WRONG_KEY = "another-key-0123456789abcdef0123456789abcdef"
HS256_HEADER = {"alg": "HS256", "typ": "JWT"}


# Helpers.


def call(app: App, target: str, method: str = "GET") -> Reply:
    request = Request(
        method=method,
        target=target,
        headers=[("Host", "127.0.0.1:8443")],  # never the public host: the apps must not care
        body=b"",
        client_ip="127.0.0.1",
        protocol="HTTP/1.1",
        server_port=8443,
    )
    return app(request)


def text(reply: Reply) -> str:
    return reply.body.decode()


def h1(reply: Reply) -> str:
    found = re.search(r"<h1>(.*?)</h1>", text(reply), re.S)
    assert found, text(reply)
    return unescape(found.group(1))


def title(reply: Reply) -> str:
    found = re.search(r"<title>(.*?)</title>", text(reply), re.S)
    assert found
    return unescape(found.group(1))


def hrefs(reply: Reply) -> list[str]:
    return [unescape(href) for href in re.findall(r'href="([^"]*)"', text(reply))]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], payload: dict[str, Any], key: str) -> str:
    """An HS256-signed token with any header, for headers PyJWT will not write."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def hs512(payload: dict[str, Any], key: str) -> str:
    """The right key, the wrong algorithm (PyJWT warns that a 46-byte key is short for SHA-512: beside the point)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
        return jwt.encode(payload, key, algorithm="HS512")


def unsigned(payload: dict[str, Any]) -> str:
    return f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{b64(json.dumps(payload).encode())}."


def tampered(token: str, payload: dict[str, Any]) -> str:
    """``token`` with another payload and its original signature."""
    header, _, signature = token.split(".")
    return f"{header}.{b64(json.dumps(payload).encode())}.{signature}"


def assert_refused(reply: Reply, status: int, reason: str, token: str) -> None:
    assert reply.status == status, text(reply)
    assert h1(reply) == "Sign-in refused"
    assert reason in unescape(text(reply))
    assert_token_not_shown(reply, token)


def assert_token_not_shown(reply: Reply, token: str) -> None:
    body = text(reply)
    assert token not in body
    signature = token.rsplit(".", 1)[-1]
    if len(signature) > 8:
        assert signature not in body


TokenMaker = Callable[[], str]


# ClickFunnels: GET /sso?identifier=<email>&strategy=email&token=<jwt>, sub = EMAIL:WORKSPACE.


@pytest.fixture
def cf() -> App:
    return clickfunnels(workspace_domain=WORKSPACE, key=CF_KEY)


def cf_claims(email: str = EMAIL, *, drop: tuple[str, ...] = (), **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": f"{email}:{WORKSPACE}", "iat": now, "nbf": now - 30, "exp": now + 300}
    claims.update(overrides)
    for name in drop:
        del claims[name]
    return claims


def cf_token(email: str = EMAIL, *, key: str = CF_KEY, **kw: Any) -> str:
    return jwt.encode(cf_claims(email, **kw), key, algorithm="HS256")


def cf_target(token: str, identifier: str = EMAIL, strategy: str = "email") -> str:
    return f"/sso?identifier={quote(identifier, safe='')}&strategy={strategy}&token={token}"


def test_clickfunnels_signs_in_the_contact_the_token_names(cf: App) -> None:
    # Given a token made as ClickFunnels' docs say, for the contact in the identifier
    token = cf_token()
    # When the browser arrives at /sso with it
    reply = call(cf, cf_target(token))
    # Then the customer center shows the contact signed in, and never the token
    assert reply.status == 200, text(reply)
    assert h1(reply) == f"Signed in as {EMAIL}"
    assert "Customer center" in title(reply)
    assert "local stand-in" in text(reply)
    assert f"{EMAIL}:{WORKSPACE}" in unescape(text(reply))  # the verified claims are listed
    assert_token_not_shown(reply, token)


def test_clickfunnels_escapes_the_email(cf: App) -> None:
    reply = call(cf, cf_target(cf_token(AWKWARD_EMAIL), AWKWARD_EMAIL))
    assert reply.status == 200, text(reply)
    assert h1(reply) == f"Signed in as {AWKWARD_EMAIL}"
    assert "<x>" not in text(reply)
    assert "Signed in as o&#x27;hara+&lt;x&gt;@example.com" in text(reply)


def test_clickfunnels_shows_redirect_to(cf: App) -> None:
    target = f"https://{WORKSPACE}/customers/profiles/qKOLEpy/orders?a=1&b=<2>"
    reply = call(cf, cf_target(cf_token(redirect_to=target)))
    assert reply.status == 200, text(reply)
    assert f"<code>{target.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')}</code>" in text(reply)


def test_clickfunnels_custom_domain_needs_its_www_in_sub() -> None:
    # Given a workspace on a custom domain (ClickFunnels: "including the www.")
    app = clickfunnels(workspace_domain="www.shop.example.com", key=CF_KEY)
    good = cf_token(sub=f"{EMAIL}:www.shop.example.com")
    without_www = cf_token(sub=f"{EMAIL}:shop.example.com")
    default_domain = cf_token()  # sub names yourworkspace.myclickfunnels.com
    # Then only the custom domain with www. signs in
    assert call(app, cf_target(good)).status == 200
    assert_refused(call(app, cf_target(without_www)), 401, "subject", without_www)
    assert_refused(call(app, cf_target(default_domain)), 401, "subject", default_domain)


CF_HOSTILE_TOKENS: list[tuple[str, TokenMaker, str]] = [
    ("wrong key", lambda: cf_token(key=WRONG_KEY), "signature does not match"),
    ("alg none", lambda: unsigned(cf_claims()), "not signed with HS256"),
    ("alg HS512", lambda: hs512(cf_claims(), CF_KEY), "not signed with HS256"),
    ("no sub", lambda: cf_token(drop=("sub",)), "no sub claim"),
    ("no nbf", lambda: cf_token(drop=("nbf",)), "no nbf claim"),
    ("no exp", lambda: cf_token(drop=("exp",)), "no exp claim"),
    ("no iat", lambda: cf_token(drop=("iat",)), "no iat claim"),
    ("expired", lambda: cf_token(exp=int(time.time()) - 1), "expired"),
    ("not valid yet", lambda: cf_token(nbf=int(time.time()) + 120), "not valid yet"),
    ("issued in the future", lambda: cf_token(iat=int(time.time()) + 120), "issued in the future"),
    ("iat a numeric string", lambda: cf_token(iat=str(int(time.time()))), "whole number"),
    ("exp a float", lambda: cf_token(exp=time.time() + 300), "whole number"),
    ("sub another email", lambda: cf_token(sub=f"ceo@example.com:{WORKSPACE}"), "subject"),
    ("sub another workspace", lambda: cf_token(sub=f"{EMAIL}:other.myclickfunnels.com"), "subject"),
    ("sub email only", lambda: cf_token(sub=EMAIL), "subject"),
    ("sub in other case", lambda: cf_token(sub=f"{EMAIL.upper()}:{WORKSPACE}"), "subject"),
    ("sub not a string", lambda: cf_token(sub=["x"]), "not a non-empty string"),
    ("redirect_to not a string", lambda: cf_token(redirect_to={"url": "x"}), "not a non-empty string"),
    ("not a JWT", lambda: "not-a-jwt", "well-formed"),
    ("payload swapped", lambda: tampered(cf_token(), cf_claims("ceo@example.com")), "signature does not match"),
]


@pytest.mark.parametrize(
    ("token_maker", "reason"), [c[1:] for c in CF_HOSTILE_TOKENS], ids=[c[0] for c in CF_HOSTILE_TOKENS]
)
def test_clickfunnels_refuses_hostile_tokens(cf: App, token_maker: TokenMaker, reason: str) -> None:
    token = token_maker()
    assert_refused(call(cf, cf_target(token)), 401, reason, token)


def test_clickfunnels_refuses_another_strategy(cf: App) -> None:
    token = cf_token()
    assert_refused(call(cf, cf_target(token, strategy="password")), 401, "strategy must be email", token)


def test_clickfunnels_identifier_must_be_url_encoded(cf: App) -> None:
    # Given an identifier sent raw: its + reads as a space, as ClickFunnels' docs warn
    token = cf_token()
    reply = call(cf, f"/sso?identifier={EMAIL}&strategy=email&token={token}")
    assert_refused(reply, 401, "subject", token)


@pytest.mark.parametrize("missing", ["identifier", "strategy", "token"])
def test_clickfunnels_missing_parameter_is_a_400(cf: App, missing: str) -> None:
    token = cf_token()
    params = {"identifier": quote(EMAIL, safe=""), "strategy": "email", "token": token}
    del params[missing]
    target = "/sso?" + "&".join(f"{k}={v}" for k, v in params.items())
    assert_refused(call(cf, target), 400, f"no {missing} parameter", token)


@pytest.mark.parametrize(
    "extra",
    ["&identifier=ceo%40example.com", "&strategy=email", "&token=x", f"&identifier={quote(EMAIL, safe='')}"],
)
def test_clickfunnels_refuses_repeated_parameters(cf: App, extra: str) -> None:
    token = cf_token()
    assert_refused(call(cf, cf_target(token) + extra), 400, "more than once", token)


def test_clickfunnels_home_and_other_paths(cf: App) -> None:
    home = call(cf, "/")
    assert (home.status, h1(home)) == (200, "Customer center (local stand-in)")
    missing = call(cf, "/customers/sign_in")
    assert missing.status == 404
    assert "Customer center (local stand-in)" in title(missing)


def test_bridge_minted_clickfunnels_token_is_accepted() -> None:
    # The bridge's own minting (as already imported by the unit tests' environment) against the stand-in.
    bridge = importlib.import_module("functions.clickfunnels.app")
    app = clickfunnels(workspace_domain=bridge.settings.workspace_domain, key=CF_KEY)
    token = bridge.mint_token(EMAIL, CF_KEY, redirect_to=None, now=int(time.time()))
    assert call(app, cf_target(token)).status == 200


# Kustomer: GET /login?referralUrl=...&externalToken=<jwt>, header exactly {"alg":"HS256","typ":"JWT"}.


@pytest.fixture
def ku() -> App:
    return kustomer(portal_host=KUSTOMER_PORTAL_HOST, key=KU_KEY, redirect_uri=KU_REDIRECT_URI)


def ku_claims(email: str = EMAIL, *, drop: tuple[str, ...] = (), **overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {"email": email, "iat": int(time.time()), **overrides}
    for name in drop:
        del claims[name]
    return claims


def ku_token(email: str = EMAIL, *, key: str = KU_KEY, **kw: Any) -> str:
    # Kustomer's sample: jwt.sign({email, iat}, secret, {header: {alg: 'HS256', typ: 'JWT'}}).
    return jwt.encode(ku_claims(email, **kw), key, algorithm="HS256", headers={"typ": "JWT"})


def ku_token_with_headers(headers: dict[str, Any]) -> str:
    return jwt.encode(ku_claims(), KU_KEY, algorithm="HS256", headers={"typ": "JWT", **headers})


def ku_target(token: str) -> str:
    referral = quote(f"https://{KUSTOMER_PORTAL_HOST}", safe="")
    return f"/login?referralUrl={referral}&externalToken={token}"


def test_kustomer_signs_in_the_email_in_the_token(ku: App) -> None:
    token = ku_token()
    reply = call(ku, ku_target(token))
    assert reply.status == 200, text(reply)
    assert h1(reply) == f"Signed in as {EMAIL}"
    assert "Help center" in title(reply)
    assert "local stand-in" in text(reply)
    assert f"https://{KUSTOMER_PORTAL_HOST}" in text(reply)  # where Kustomer would go next (referralUrl)
    assert_token_not_shown(reply, token)


def test_kustomer_escapes_the_email(ku: App) -> None:
    reply = call(ku, ku_target(ku_token(AWKWARD_EMAIL)))
    assert reply.status == 200, text(reply)
    assert h1(reply) == f"Signed in as {AWKWARD_EMAIL}"
    assert "<x>" not in text(reply)


@pytest.mark.parametrize("age", [0, 14 * 60 + 30])
def test_kustomer_accepts_a_token_within_15_minutes(ku: App, age: int) -> None:
    assert call(ku, ku_target(ku_token(iat=int(time.time()) - age))).status == 200


def test_kustomer_tolerates_a_little_clock_skew(ku: App) -> None:
    assert call(ku, ku_target(ku_token(iat=int(time.time()) + 30))).status == 200


def test_kustomer_header_key_order_does_not_matter(ku: App) -> None:
    token = hand_made({"typ": "JWT", "alg": "HS256"}, ku_claims(), KU_KEY)
    assert call(ku, ku_target(token)).status == 200


KU_HOSTILE_TOKENS: list[tuple[str, TokenMaker, str]] = [
    ("wrong key", lambda: ku_token(key=WRONG_KEY), "signature does not match"),
    ("alg none", lambda: unsigned(ku_claims()), "not signed with HS256"),
    ("alg HS512", lambda: hs512(ku_claims(), KU_KEY), "not signed with HS256"),
    ("no email", lambda: ku_token(drop=("email",)), "no email claim"),
    ("no iat", lambda: ku_token(drop=("iat",)), "no iat claim"),
    ("iat 15 minutes and a bit old", lambda: ku_token(iat=int(time.time()) - 15 * 60 - 5), "expired"),
    ("iat a day old", lambda: ku_token(iat=int(time.time()) - 86400), "expired"),
    ("iat two minutes ahead", lambda: ku_token(iat=int(time.time()) + 120), "issued in the future"),
    ("iat a numeric string", lambda: ku_token(iat=str(int(time.time()))), "whole number"),
    ("iat true", lambda: ku_token(iat=True), "whole number"),
    ("exp passed", lambda: ku_token(exp=int(time.time()) - 120), "expired"),
    ("email empty", lambda: ku_token(""), "not a non-empty string"),
    ("email a number", lambda: ku_token(email=42), "not a non-empty string"),  # type: ignore[arg-type]
    ("header without typ", lambda: hand_made({"alg": "HS256"}, ku_claims(), KU_KEY), "header is not exactly"),
    ("header with kid", lambda: ku_token_with_headers({"kid": "k1"}), "header is not exactly"),
    (
        "header with extra field",
        lambda: hand_made({**HS256_HEADER, "cty": "JWT"}, ku_claims(), KU_KEY),
        "header is not exactly",
    ),
    ("header typ lower case", lambda: hand_made({"alg": "HS256", "typ": "jwt"}, ku_claims(), KU_KEY), "header"),
    ("not a JWT", lambda: "a.b.c", "well-formed"),
]


@pytest.mark.parametrize(
    ("token_maker", "reason"), [c[1:] for c in KU_HOSTILE_TOKENS], ids=[c[0] for c in KU_HOSTILE_TOKENS]
)
def test_kustomer_refuses_hostile_tokens(ku: App, token_maker: TokenMaker, reason: str) -> None:
    token = token_maker()
    assert_refused(call(ku, ku_target(token)), 401, reason, token)


def test_kustomer_checks_the_header_only_after_the_signature(ku: App) -> None:
    # A forged token with a bad header is refused for its signature: the header of an unsigned text proves nothing.
    token = hand_made({"alg": "HS256"}, ku_claims(), WRONG_KEY)
    assert_refused(call(ku, ku_target(token)), 401, "signature does not match", token)


@pytest.mark.parametrize(
    ("target", "status", "reason"),
    [
        ("/login?externalToken=", 400, "no externalToken parameter"),
        ("/login?externalToken={t}&externalToken={t}", 400, "more than once"),
        ("/login?referralUrl=a&referralUrl=b&externalToken={t}", 400, "more than once"),
    ],
)
def test_kustomer_refuses_bad_queries(ku: App, target: str, status: int, reason: str) -> None:
    token = ku_token()
    assert_refused(call(ku, target.format(t=token)), status, reason, token)


def _log_in_link(reply: Reply) -> str:
    links = [href for href in hrefs(reply) if "kustomerRedirectUri=" in href]
    assert len(links) == 1, hrefs(reply)
    return links[0]


@pytest.mark.parametrize("path", ["/", "/login"])
def test_kustomer_log_in_link_goes_to_the_redirect_uri_as_kustomer_describes(ku: App, path: str) -> None:
    # When a signed-out visitor looks at the portal
    reply = call(ku, path)
    assert reply.status == 200
    link = _log_in_link(reply)
    # Then Log in goes to the custom sign-on Redirect URI with trackingToken and kustomerRedirectUri
    assert link.startswith(f"{KU_REDIRECT_URI}?trackingToken=")
    query = parse_qs(urlsplit(link).query, keep_blank_values=True)
    assert set(query) == {"trackingToken", "kustomerRedirectUri"}
    assert jwt.get_unverified_header(query["trackingToken"][0])["alg"] == "none"
    host = KUSTOMER_PORTAL_HOST
    assert query["kustomerRedirectUri"] == [f"https://{host}/login?referralUrl=https%3A%2F%2F{host}%2F"]
    # url-encoded once, as one parameter
    assert f"kustomerRedirectUri=https%3A%2F%2F{host}%2Flogin%3FreferralUrl%3Dhttps%253A%252F%252F{host}%252F" in link


def test_kustomer_log_in_link_appends_to_a_redirect_uri_with_a_query() -> None:
    app = kustomer(
        portal_host=KUSTOMER_PORTAL_HOST, key=KU_KEY, redirect_uri="http://localhost:3000/kustomer/login?x=1"
    )
    assert _log_in_link(call(app, "/login")).startswith("http://localhost:3000/kustomer/login?x=1&trackingToken=")


def test_kustomer_other_paths_are_404(ku: App) -> None:
    assert call(ku, "/articles/1").status == 404


def test_bridge_minted_kustomer_token_is_accepted(ku: App) -> None:
    bridge = importlib.import_module("functions.kustomer.app")
    token = bridge.mint_token(EMAIL, KU_KEY, now=int(time.time()))
    assert call(ku, ku_target(token)).status == 200


# HappyFox: GET /jwt/?token=<jwt>, iat/jti/name/email, 120 s, jti single use.


@pytest.fixture
def hf() -> App:
    return happyfox(account_host=HF_HOST, key=HF_KEY, remote_login_url=HF_REMOTE_LOGIN_URL)


_jti_counter = iter(range(10**9))


def hf_claims(email: str = EMAIL, *, drop: tuple[str, ...] = (), **overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iat": int(time.time()),
        "jti": f"jti-{next(_jti_counter)}",
        "name": "Jane Doe",
        "email": email,
        **overrides,
    }
    for name in drop:
        del claims[name]
    return claims


def hf_token(email: str = EMAIL, *, key: str = HF_KEY, **kw: Any) -> str:
    return jwt.encode(hf_claims(email, **kw), key, algorithm="HS256")


def test_happyfox_signs_in_the_user_in_the_token(hf: App) -> None:
    token = hf_token(name="Jane <Doe>")
    reply = call(hf, f"/jwt/?token={token}")
    assert reply.status == 200, text(reply)
    assert h1(reply) == f"Signed in as {EMAIL}"
    assert "Name: <strong>Jane &lt;Doe&gt;</strong>" in text(reply)
    assert "Support Centre" in title(reply)
    assert "local stand-in" in text(reply)
    assert_token_not_shown(reply, token)


def test_happyfox_escapes_the_email(hf: App) -> None:
    reply = call(hf, f"/jwt/?token={hf_token(AWKWARD_EMAIL)}")
    assert reply.status == 200, text(reply)
    assert h1(reply) == f"Signed in as {AWKWARD_EMAIL}"
    assert "<x>" not in text(reply)


def test_happyfox_refuses_a_replayed_jti(hf: App) -> None:
    # Given a token that signed someone in
    token = hf_token()
    assert call(hf, f"/jwt/?token={token}").status == 200
    # When it comes back (or another token with the same jti)
    again = call(hf, f"/jwt/?token={token}")
    same_jti = hf_token(jti=jwt.decode(token, HF_KEY, algorithms=["HS256"])["jti"], name="Someone Else")
    # Then HappyFox refuses it
    assert_refused(again, 401, "Remote token has already been used", token)
    assert_refused(call(hf, f"/jwt/?token={same_jti}"), 401, "Remote token has already been used", same_jti)


def test_happyfox_refused_token_does_not_use_up_its_jti(hf: App) -> None:
    stale = hf_token(jti="reused", iat=int(time.time()) - 600)
    assert_refused(call(hf, f"/jwt/?token={stale}"), 401, "Remote token has expired", stale)
    assert call(hf, f"/jwt/?token={hf_token(jti='reused')}").status == 200


def test_happyfox_jti_is_single_use_across_threads(hf: App) -> None:
    token = hf_token()
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def attempt() -> None:
        start.wait()
        status = call(hf, f"/jwt/?token={token}").status
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [401] * 7


def test_happyfox_jtis_are_per_account() -> None:
    token = hf_token()
    first = happyfox(account_host=HF_HOST, key=HF_KEY, remote_login_url=HF_REMOTE_LOGIN_URL)
    second = happyfox(account_host=HF_HOST, key=HF_KEY, remote_login_url=HF_REMOTE_LOGIN_URL)
    assert call(first, f"/jwt/?token={token}").status == 200
    assert call(second, f"/jwt/?token={token}").status == 200


@pytest.mark.parametrize("offset", [-110, 30])
def test_happyfox_accepts_iat_within_its_window(hf: App, offset: int) -> None:
    assert call(hf, f"/jwt/?token={hf_token(iat=int(time.time()) + offset)}").status == 200


HF_HOSTILE_TOKENS: list[tuple[str, TokenMaker, str]] = [
    ("wrong key", lambda: hf_token(key=WRONG_KEY), "signature does not match"),
    ("alg none", lambda: unsigned(hf_claims()), "not signed with HS256"),
    ("alg HS512", lambda: hs512(hf_claims(), HF_KEY), "not signed with HS256"),
    ("no iat", lambda: hf_token(drop=("iat",)), "no iat claim"),
    ("no jti", lambda: hf_token(drop=("jti",)), "no jti claim"),
    ("no name", lambda: hf_token(drop=("name",)), "no name claim"),
    ("no email", lambda: hf_token(drop=("email",)), "no email claim"),
    ("iat over 120 s old", lambda: hf_token(iat=int(time.time()) - 125), "Remote token has expired"),
    ("iat an hour old", lambda: hf_token(iat=int(time.time()) - 3600), "Remote token has expired"),
    ("exp passed", lambda: hf_token(exp=int(time.time()) - 120), "Remote token has expired"),
    ("iat two minutes ahead", lambda: hf_token(iat=int(time.time()) + 120), "issued in the future"),
    ("iat a float", lambda: hf_token(iat=time.time()), "whole number"),
    ("jti a number", lambda: hf_token(jti=7), "not a non-empty string"),
    ("jti empty", lambda: hf_token(jti=""), "not a non-empty string"),
    ("name empty", lambda: hf_token(name=" "), "not a non-empty string"),
    ("email null", lambda: hf_token(email=None), "no email claim"),  # type: ignore[arg-type]
    ("not a JWT", lambda: "eyJ.eyJ.x", "well-formed"),
]


@pytest.mark.parametrize(
    ("token_maker", "reason"), [c[1:] for c in HF_HOSTILE_TOKENS], ids=[c[0] for c in HF_HOSTILE_TOKENS]
)
def test_happyfox_refuses_hostile_tokens(hf: App, token_maker: TokenMaker, reason: str) -> None:
    token = token_maker()
    assert_refused(call(hf, f"/jwt/?token={token}"), 401, reason, token)


@pytest.mark.parametrize(
    ("target", "status", "reason"),
    [
        ("/jwt/", 400, "no token parameter"),
        ("/jwt/?token=", 400, "no token parameter"),
        ("/jwt/?token={t}&token={t}", 400, "more than once"),
    ],
)
def test_happyfox_refuses_bad_queries(hf: App, target: str, status: int, reason: str) -> None:
    token = hf_token()
    assert_refused(call(hf, target.format(t=token)), status, reason, token)


def test_happyfox_home_links_to_the_remote_login_url(hf: App) -> None:
    reply = call(hf, "/")
    assert reply.status == 200
    assert HF_REMOTE_LOGIN_URL in hrefs(reply)


def test_happyfox_jwt_path_needs_its_slash(hf: App) -> None:
    assert call(hf, f"/jwt?token={hf_token()}").status == 404


def test_bridge_minted_happyfox_token_is_accepted(hf: App) -> None:
    bridge = importlib.import_module("functions.happyfox.app")
    token = bridge.mint_token(jti="a" * 32, name="Jane Doe", email=EMAIL, now=int(time.time()), key=HF_KEY)
    assert call(hf, f"/jwt/?token={token}").status == 200


# Every stand-in.


def _apps() -> list[App]:
    return [
        clickfunnels(workspace_domain=WORKSPACE, key=CF_KEY),
        kustomer(portal_host=KUSTOMER_PORTAL_HOST, key=KU_KEY, redirect_uri=KU_REDIRECT_URI),
        happyfox(account_host=HF_HOST, key=HF_KEY, remote_login_url=HF_REMOTE_LOGIN_URL),
    ]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_only_get_and_head_are_answered(method: str) -> None:
    for app in _apps():
        reply = call(app, "/", method)
        assert reply.status == 405
        assert ("Allow", "GET, HEAD") in reply.headers


def test_head_is_answered_like_get() -> None:
    for app in _apps():
        assert call(app, "/", "HEAD").status == 200


def test_pages_are_not_cached_and_say_they_are_stand_ins() -> None:
    for app in _apps():
        reply = call(app, "/")
        assert ("Cache-Control", "no-store") in reply.headers
        assert "Local stand-in for" in text(reply)


def test_the_apps_print_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    cf, ku, hf = _apps()
    call(cf, cf_target(cf_token()))
    call(cf, cf_target(cf_token(key=WRONG_KEY)))
    call(ku, ku_target(ku_token()))
    call(ku, ku_target("x.y.z"))
    call(hf, f"/jwt/?token={hf_token()}")
    call(hf, f"/jwt/?token={hf_token(iat=0)}")
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")
