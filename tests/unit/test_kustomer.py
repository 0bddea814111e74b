"""The Kustomer custom sign-on flow as a portal visitor meets it: Kustomer's request in, the portal out, signed in.

Kustomer sends ``?trackingToken=...&kustomerRedirectUri=...``; the visitor must come back to
``{kustomerRedirectUri}&externalToken=<HS256 {email, iat}>`` or, for anything hostile, see a refusal.
"""

from __future__ import annotations

import base64
import io
import json
import time
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import jwt
import pytest

from tests.helpers import (
    KUSTOMER_CUSTOM_DOMAIN,
    KUSTOMER_PORTAL_HOST,
    LOGIN_TOKEN_KEY,
    PLATFORM_LOGIN_URL,
    SECRET_IDS,
    VENDOR_KEYS,
    LambdaContext,
    load_event,
    make_login_token,
)

KB_KEY = VENDOR_KEYS["kustomer"]
PORTAL_LOGIN = f"https://{KUSTOMER_PORTAL_HOST}/login?referralUrl=https%3A%2F%2F{KUSTOMER_PORTAL_HOST}"
TRACKING = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzZXNzaW9uIjoidHJhY2stbWUtNDI0MiJ9."
API_HOST = "abc123.execute-api.eu-west-1.amazonaws.com"
FUNCTION_URL_HOST = "abcdefghijklmnopqrstuvwxyz654321.lambda-url.eu-west-1.on.aws"
MAX_AGE = 15 * 60  # Kustomer accepts an externalToken for 15 minutes after its iat

ACME_KEY = "test-kustomer-acme-key-0123456789abcdef01234567"
ACME_SECRET_ID = "sso-bridge/kustomer/acme"
ACME_HOST = "acme.kustomer.help"
ACME_BRANDS = json.dumps(
    {"acme": {"secret_id": ACME_SECRET_ID, "redirect_hosts": [ACME_HOST], "portal_url": f"https://{ACME_HOST}/login"}}
)


@pytest.fixture
def kustomer(aws: Any, load_function: Callable[..., ModuleType]) -> ModuleType:
    return load_function("kustomer")


@pytest.fixture
def branded(aws: Any, load_function: Callable[..., ModuleType]) -> ModuleType:
    aws.create_secret(Name=ACME_SECRET_ID, SecretString=ACME_KEY)
    return load_function("kustomer", KUSTOMER_BRANDS=ACME_BRANDS)


def kustomer_query(uri: str | None = PORTAL_LOGIN, *, token: str | None = None, tracking: str = TRACKING) -> str:
    """The query Kustomer sends (as a browser encodes it), plus the login token the platform appends."""
    query = f"trackingToken={tracking}"
    if uri is not None:
        query += f"&kustomerRedirectUri={quote(uri, safe='')}"
    if token is not None:
        query += f"&login_token={token}"
    return query


def invoke(
    module: ModuleType,
    query: str | None = None,
    *,
    event: str = "kustomer-login-httpapi",
    path: str | None = None,
    **headers: str,
) -> Any:
    payload = load_event(event, query=query, headers=headers)
    if path is not None:
        payload["rawPath"] = payload["requestContext"]["http"]["path"] = path
    return module.lambda_handler(payload, LambdaContext())


def external_token(location: str) -> str:
    tokens = parse_qs(urlsplit(location).query)["externalToken"]
    assert len(tokens) == 1
    return tokens[0]


def kustomer_claims(location: str, *, key: str = KB_KEY) -> dict[str, Any]:
    """Verify as Kustomer would: HS256 with the knowledge base's secret, at most 15 minutes after iat."""
    claims: dict[str, Any] = jwt.decode(
        external_token(location), key, algorithms=["HS256"], options={"require": ["email", "iat"]}
    )
    age = time.time() - claims["iat"]
    assert -1 <= age <= MAX_AGE
    return claims


def login_redirect(response: dict[str, Any]) -> str:
    """The return_to of a redirect to the platform's sign-in page."""
    assert response["statusCode"] == 302
    location = urlsplit(response["headers"]["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == PLATFORM_LOGIN_URL
    return parse_qs(location.query)["return_to"][0]


def come_back(module: ModuleType, return_to: str, token: str, *, event: str = "kustomer-login-httpapi") -> Any:
    """What the platform does after sign-in: send the browser to return_to with &login_token= appended."""
    url = urlsplit(return_to)
    query = f"{url.query}&login_token={token}" if url.query else f"login_token={token}"
    return invoke(module, query, event=event, path=url.path)


# --- the happy path ---------------------------------------------------------------------------------------


def test_signed_in_visitor_goes_back_to_the_portal_with_an_external_token(kustomer: ModuleType) -> None:
    # Given Kustomer's request, as in events/, and a login token for an email with + in it
    token = make_login_token("jane.doe+vip@example.com", aud="kustomer")

    # When the browser arrives with the platform's login token appended
    response = invoke(kustomer, f"{load_event('kustomer-login-httpapi')['rawQueryString']}&login_token={token}")

    # Then it goes back to kustomerRedirectUri, its referralUrl untouched, plus &externalToken=
    assert response["statusCode"] == 302
    location = response["headers"]["Location"]
    assert location.startswith(f"{PORTAL_LOGIN}&externalToken=")
    assert location == f"{PORTAL_LOGIN}&externalToken={external_token(location)}"
    claims = kustomer_claims(location)
    assert set(claims) == {"email", "iat"}  # Kustomer's sample: no exp, its 15 minutes run from iat
    assert claims["email"] == "jane.doe+vip@example.com"
    assert abs(claims["iat"] - time.time()) <= 2  # the true time, not backdated
    assert response["headers"]["Cache-Control"] == "no-store"
    assert response["headers"]["Referrer-Policy"] == "no-referrer"


def test_external_token_header_is_exactly_kustomers(kustomer: ModuleType) -> None:
    location = invoke(kustomer, kustomer_query(token=make_login_token(aud="kustomer")))["headers"]["Location"]
    assert jwt.get_unverified_header(external_token(location)) == {"alg": "HS256", "typ": "JWT"}


def test_external_token_does_not_verify_with_another_key(kustomer: ModuleType) -> None:
    location = invoke(kustomer, kustomer_query(token=make_login_token(aud="kustomer")))["headers"]["Location"]
    with pytest.raises(jwt.InvalidSignatureError):
        kustomer_claims(location, key=LOGIN_TOKEN_KEY)


@pytest.mark.parametrize("event", ["kustomer-login-httpapi", "kustomer-login-function-url"])
def test_whole_round_trip_through_the_platform(kustomer: ModuleType, event: str) -> None:
    # Given Kustomer's request and no login token
    first = invoke(kustomer, event=event)

    # Then the visitor is sent to sign in, with everything Kustomer sent carried back unchanged
    return_to = login_redirect(first)
    original = load_event(event)
    host = original["requestContext"]["domainName"]
    assert return_to == f"https://{host}{original['rawPath']}?{original['rawQueryString']}"

    # When the platform sends them back with a login token
    second = come_back(kustomer, return_to, make_login_token("amy@example.com", aud="kustomer"), event=event)

    # Then they land on kustomerRedirectUri&externalToken=..., signed in as themselves
    assert second["statusCode"] == 302
    assert second["headers"]["Location"].startswith(f"{PORTAL_LOGIN}&externalToken=")
    assert kustomer_claims(second["headers"]["Location"])["email"] == "amy@example.com"


def test_expired_login_token_goes_round_trip_without_the_stale_token(kustomer: ModuleType) -> None:
    stale = make_login_token(aud="kustomer", issued=int(time.time()) - 3600, lifetime=600)
    return_to = login_redirect(invoke(kustomer, kustomer_query(token=stale)))
    assert return_to == f"https://{API_HOST}/kustomer/login?{kustomer_query()}"
    assert stale not in return_to


def test_login_token_for_several_services_including_kustomer_is_accepted(kustomer: ModuleType) -> None:
    token = make_login_token(aud=["clickfunnels", "kustomer"])
    assert invoke(kustomer, kustomer_query(token=token))["statusCode"] == 302


@pytest.mark.parametrize(
    ("uri", "expected_prefix"),
    [
        (PORTAL_LOGIN, f"{PORTAL_LOGIN}&externalToken="),
        (f"https://{KUSTOMER_PORTAL_HOST}/login", f"https://{KUSTOMER_PORTAL_HOST}/login?externalToken="),
        (f"https://{KUSTOMER_PORTAL_HOST}", f"https://{KUSTOMER_PORTAL_HOST}/?externalToken="),
        (
            f"https://{KUSTOMER_CUSTOM_DOMAIN}/en_us/login?referralUrl=https%3A%2F%2F{KUSTOMER_CUSTOM_DOMAIN}%2Fen_us%2Fcategories%3Fa%3D1%26b%3D2",
            f"https://{KUSTOMER_CUSTOM_DOMAIN}/en_us/login?referralUrl=https%3A%2F%2F{KUSTOMER_CUSTOM_DOMAIN}%2Fen_us%2Fcategories%3Fa%3D1%26b%3D2&externalToken=",
        ),
        (
            f"https://{KUSTOMER_PORTAL_HOST}/login?lang=fr&x=",
            f"https://{KUSTOMER_PORTAL_HOST}/login?lang=fr&x=&externalToken=",
        ),
        (f"HTTPS://{KUSTOMER_PORTAL_HOST.upper()}/login", f"https://{KUSTOMER_PORTAL_HOST}/login?externalToken="),
        (f"https://{KUSTOMER_PORTAL_HOST}:443/login", f"https://{KUSTOMER_PORTAL_HOST}/login?externalToken="),
    ],
)
def test_legitimate_redirect_uri_is_always_followed(kustomer: ModuleType, uri: str, expected_prefix: str) -> None:
    response = invoke(kustomer, kustomer_query(uri, token=make_login_token(aud="kustomer")))
    assert response["statusCode"] == 302
    location = response["headers"]["Location"]
    assert location.startswith(expected_prefix)
    assert location == f"{expected_prefix}{external_token(location)}"
    kustomer_claims(location)


def test_fragment_stays_after_the_token(kustomer: ModuleType) -> None:
    uri = f"https://{KUSTOMER_PORTAL_HOST}/login?referralUrl=x#top"
    location = invoke(kustomer, kustomer_query(uri, token=make_login_token(aud="kustomer")))["headers"]["Location"]
    assert location.startswith(f"https://{KUSTOMER_PORTAL_HOST}/login?referralUrl=x&externalToken=")
    assert location.endswith("#top")
    kustomer_claims(location)


def test_tracking_token_is_optional_and_never_checked(kustomer: ModuleType) -> None:
    token = make_login_token(aud="kustomer")
    for query in (
        f"kustomerRedirectUri={quote(PORTAL_LOGIN, safe='')}&login_token={token}",
        kustomer_query(token=token, tracking="not-a-jwt"),
    ):
        assert invoke(kustomer, query)["statusCode"] == 302


# --- no kustomerRedirectUri -------------------------------------------------------------------------------


def test_missing_redirect_uri_is_a_page_saying_what_is_missing(kustomer: ModuleType) -> None:
    for token in (None, make_login_token(aud="kustomer")):
        response = invoke(kustomer, kustomer_query(None, token=token))
        # Before any sign-in round trip: signing in would not help.
        assert response["statusCode"] == 400
        assert "Location" not in response["headers"]
        assert "kustomerRedirectUri" in response["body"]
        assert response["headers"]["Content-Type"].startswith("text/html")


def test_missing_redirect_uri_is_json_when_asked(kustomer: ModuleType) -> None:
    response = invoke(kustomer, kustomer_query(None), accept="application/json")
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["reason"] == "kustomer_redirect_uri_missing"


def test_missing_redirect_uri_falls_back_to_the_configured_portal(
    aws: Any, load_function: Callable[..., ModuleType]
) -> None:
    portal = f"https://{KUSTOMER_PORTAL_HOST}/login"
    module = load_function("kustomer", KUSTOMER_PORTAL_URL=portal)
    # A "Help centre" link in the platform: /kustomer/login with nothing from Kustomer
    return_to = login_redirect(invoke(module, ""))
    response = come_back(module, return_to, make_login_token("kim@example.com", aud="kustomer"))
    assert response["headers"]["Location"].startswith(f"{portal}?externalToken=")
    assert kustomer_claims(response["headers"]["Location"])["email"] == "kim@example.com"


def test_configured_portal_host_is_allowed_without_listing_it(
    aws: Any, load_function: Callable[..., ModuleType]
) -> None:
    module = load_function("kustomer", KUSTOMER_PORTAL_URL="https://other.kustomer.help/", KUSTOMER_REDIRECT_HOSTS="")
    uri = "https://other.kustomer.help/login?referralUrl=a"
    response = invoke(module, kustomer_query(uri, token=make_login_token(aud="kustomer")))
    assert response["headers"]["Location"].startswith(f"{uri}&externalToken=")


# --- hostile kustomerRedirectUri --------------------------------------------------------------------------

P = KUSTOMER_PORTAL_HOST
HOSTILE_URIS = {
    "other host": ["https://evil.example.net/login", "https://kustomer.help/login", "https://other.kustomer.help/"],
    "suffix trick": [f"https://{P}.evil.net/", f"https://{P}./login", f"https://{P}%2eevil.net/", f"https://{P}.:443/"],
    "prefix trick": [f"https://evil{P}/", f"https://x.{P}/", f"https://evil.net/{P}", f"https://evil.net?{P}"],
    "userinfo": [
        f"https://{P}@evil.net/",
        f"https://user:pw@{P}/",
        f"https://evil.net%40{P}/",
        f"https://evil.net@{P}/",
    ],
    "backslash": [
        f"https://evil.net\\{P}/",
        f"https://evil.net\\@{P}/",
        "https:\\\\evil.net/",
        f"https://{P}\\.evil.net/",
    ],
    "scheme-relative": ["//evil.net/", "///evil.net/", "/\\evil.net/", f"//{P}/login", "\\\\evil.net/"],
    "relative": ["/login", "login", "?referralUrl=x"],
    "other schemes": [
        f"http://{P}/login",
        f"javascript:alert(1)//https://{P}/",
        "data:text/html,<script>alert(1)</script>",
        f"ftp://{P}/",
        f"https:{P}/login",
        f"https:/{P}/login",
        f"wss://{P}/",
        f" https://{P}/login",
    ],
    "percent-encoded dots": [
        "https://yourcompany%2ekustomer%2ehelp/",
        "https://yourcompany%2Ekustomer%2Ehelp/",
        "https://yourcompany%252ekustomer%252ehelp/",
        f"https://evil.net%2f@{P}/",
        f"https%3A%2F%2F{P}%2Flogin",
    ],
    "unicode dots and look-alikes": [
        "https://yourcompany\u3002kustomer\u3002help/",
        "https://yourcompany\uff0ekustomer\uff0ehelp/",
        "https://yourcompany\uff61kustomer\uff61help/",
        f"https://{P}\u2025evil.net/",
        "https://y\u043eurcompany.kustomer.help/",
        f"https://{P}\u200b/",
        "https://xn--yourcompany-kustomer-help.evil.net/",
    ],
    "control characters": [
        f"https://{P}/login\r\nLocation: https://evil.net/",
        f"https://{P}/\x00",
        f"https://evil.net\t.{P}/",
        f"https://{P}/\x7f",
        f"\x01https://{P}/",
        f"https://{P}/login\n",
    ],
    "ports": [f"https://{P}:8443/", f"https://{P}:0/", f"https://{P}:99999/", f"https://{P}:443:443/"],
    "ip literals": ["https://127.0.0.1/", "https://[::1]/", "https://0x7f000001/", "https://169.254.169.254/"],
    "path tricks": [f"https://{P}//evil.net/", f"https://{P}/login<script>"],
    "too long": [f"https://{P}/login?referralUrl=" + "a" * 2100],
}


@pytest.mark.parametrize(
    "uri", [pytest.param(uri, id=f"{kind}: {uri[:60]!r}") for kind, uris in HOSTILE_URIS.items() for uri in uris]
)
def test_hostile_redirect_uri_is_never_followed(kustomer: ModuleType, uri: str) -> None:
    # With or without a login token: refused at once, no redirect anywhere, nothing echoed
    for token in (None, make_login_token(aud="kustomer")):
        response = invoke(kustomer, kustomer_query(uri, token=token))
        assert response["statusCode"] in (400, 414)
        assert "Location" not in response["headers"]
        assert TRACKING not in response["body"]
        assert "evil" not in response["body"]


@pytest.mark.parametrize(
    "raw_query",
    [
        # As sent, not re-encoded by a test helper: whatever reaches the query string
        f"kustomerRedirectUri=https://{P}.evil.net/",
        f"kustomerRedirectUri=https:%2F%2Fevil.net%2F%40{P}",
        f"kustomerRedirectUri=https://{P}%00.evil.net/",
        f"kustomerRedirectUri=https://{P}%E3%80%82evil.net/",
        f"kustomerRedirectUri=https://evil.net%5C%40{P}/",
        f"kustomerRedirectUri=https://{P}+.evil.net/",
        f"kustomerRedirectUri={quote(PORTAL_LOGIN, safe='')}&kustomerRedirectUri=https%3A%2F%2Fevil.net%2F",
        f"kustomerRedirectUri=https%3A%2F%2Fevil.net%2F&kustomerRedirectUri={quote(PORTAL_LOGIN, safe='')}",
        "kustomerRedirectUri=https%3A%2F%2Fevil.net%2F&kustomerRedirectUri",
    ],
)
def test_hostile_raw_queries_are_refused(kustomer: ModuleType, raw_query: str) -> None:
    response = invoke(kustomer, f"trackingToken={TRACKING}&{raw_query}&login_token={make_login_token(aud='kustomer')}")
    assert response["statusCode"] == 400
    assert "Location" not in response["headers"]


# A return address that already carries externalToken: with ours appended the portal would see two, and the
# attacker's (their own session) could be the one it reads.
PLANTED_TOKENS = {
    "plain": f"https://{P}/login?externalToken=attacker.jwt.value",
    "empty": f"https://{P}/login?externalToken=",
    "bare": f"https://{P}/login?externalToken",
    "among others": f"https://{P}/login?a=1&externalToken=x&b=2",
    "other case": f"https://{P}/login?EXTERNALTOKEN=x",
    "percent-encoded name": f"https://{P}/login?external%54oken=x",
}


@pytest.mark.parametrize("uri", PLANTED_TOKENS.values(), ids=PLANTED_TOKENS.keys())
def test_a_redirect_uri_that_already_carries_an_external_token_is_refused(kustomer: ModuleType, uri: str) -> None:
    response = invoke(kustomer, kustomer_query(uri, token=make_login_token(aud="kustomer")))
    assert response["statusCode"] == 400
    assert "Location" not in response["headers"]
    assert "attacker" not in response["body"]


def test_a_redirect_uri_with_a_look_alike_parameter_is_followed(kustomer: ModuleType) -> None:
    uri = f"https://{P}/login?externalTokenHint=x&myexternalToken=y"
    response = invoke(kustomer, kustomer_query(uri, token=make_login_token(aud="kustomer")))
    assert response["statusCode"] == 302
    assert kustomer_claims(response["headers"]["Location"])["email"]


# --- hostile login tokens ---------------------------------------------------------------------------------


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _unsigned(claims: dict[str, Any]) -> str:
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


def _quietly(make: Callable[..., str], **kwargs: Any) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return make(**kwargs)


NOW = int(time.time())
# Built when the test runs, not at collection: a login token lives minutes, a full test run longer.
HOSTILE_LOGIN_TOKENS: dict[str, Callable[[], str]] = {
    "forged key": lambda: make_login_token(aud="kustomer", key="forged-key-0123456789abcdef0123456789"),
    "signed with the knowledge base key": lambda: make_login_token(aud="kustomer", key=KB_KEY),
    "alg none": lambda: _unsigned({"email": "a@example.com", "aud": "kustomer", "iat": NOW, "exp": NOW + 600}),
    "HS512": lambda: _quietly(make_login_token, aud="kustomer", algorithm="HS512"),
    "another service": lambda: make_login_token(aud="clickfunnels"),
    "other services only": lambda: make_login_token(aud=["clickfunnels", "happyfox"]),
    "no audience": lambda: make_login_token(aud="kustomer", drop=("aud",)),
    "no email": lambda: make_login_token(aud="kustomer", drop=("email",)),
    "no expiry": lambda: make_login_token(aud="kustomer", drop=("exp",)),
    "issued in the future": lambda: make_login_token(aud="kustomer", issued=NOW + 3600),
    "lifetime over the cap": lambda: make_login_token(aud="kustomer", lifetime=400 * 86400),
    "email not a string": lambda: make_login_token(["a@example.com"], aud="kustomer"),  # type: ignore[arg-type]
    "email with markup": lambda: make_login_token("<script>@example.com", aud="kustomer"),
    "email with a line break": lambda: make_login_token("a@example.com\r\nx", aud="kustomer"),
    "email with a trailing line break": lambda: make_login_token("a@example.com\n", aud="kustomer"),
    "tampered payload": lambda: ".".join(
        (lambda parts: [parts[0], _b64({"email": "boss@example.com", "aud": "kustomer", "exp": NOW + 600}), parts[2]])(
            make_login_token(aud="kustomer").split(".")
        )
    ),
    "truncated signature": lambda: make_login_token(aud="kustomer")[:-6],
    "not a jwt": lambda: "not-a-jwt",
    "markup": lambda: "<script>alert(1)</script>",
    "too long": lambda: "a" * 5000,
}


@pytest.mark.parametrize("make", HOSTILE_LOGIN_TOKENS.values(), ids=HOSTILE_LOGIN_TOKENS.keys())
def test_hostile_login_token_never_reaches_kustomer(kustomer: ModuleType, make: Callable[[], str]) -> None:
    response = invoke(kustomer, kustomer_query(token=quote(make(), safe="")))
    assert 400 <= response["statusCode"] < 500
    assert "Location" not in response["headers"]
    assert "externalToken" not in response["body"]
    assert "<script>" not in response["body"]


# --- brands -----------------------------------------------------------------------------------------------


def test_brand_route_signs_with_the_brands_own_key(branded: ModuleType) -> None:
    uri = f"https://{ACME_HOST}/login?referralUrl=https%3A%2F%2F{ACME_HOST}"
    response = invoke(
        branded, kustomer_query(uri, token=make_login_token(aud="kustomer")), path="/kustomer/brands/acme/login"
    )
    location = response["headers"]["Location"]
    assert location.startswith(f"{uri}&externalToken=")
    assert kustomer_claims(location, key=ACME_KEY)["email"] == "jane.doe+vip@example.com"
    with pytest.raises(jwt.InvalidSignatureError):
        kustomer_claims(location, key=KB_KEY)


def test_default_brand_keeps_its_key_when_brands_are_configured(branded: ModuleType) -> None:
    location = invoke(branded, kustomer_query(token=make_login_token(aud="kustomer")))["headers"]["Location"]
    kustomer_claims(location, key=KB_KEY)


def test_brand_round_trip_comes_back_to_the_brand(branded: ModuleType) -> None:
    uri = f"https://{ACME_HOST}/login"
    return_to = login_redirect(invoke(branded, kustomer_query(uri), path="/kustomer/brands/acme/login"))
    assert return_to == f"https://{API_HOST}/kustomer/brands/acme/login?{kustomer_query(uri)}"
    response = come_back(branded, return_to, make_login_token(aud="kustomer"))
    kustomer_claims(response["headers"]["Location"], key=ACME_KEY)


def test_brand_portal_is_the_fallback_destination(branded: ModuleType) -> None:
    query = f"login_token={make_login_token(aud='kustomer')}"
    location = invoke(branded, query, path="/kustomer/brands/acme/login")["headers"]["Location"]
    assert location.startswith(f"https://{ACME_HOST}/login?externalToken=")


@pytest.mark.parametrize(
    ("path", "uri"),
    [
        ("/kustomer/brands/acme/login", PORTAL_LOGIN),  # the default brand's portal, through acme
        ("/kustomer/login", f"https://{ACME_HOST}/login"),  # acme's portal, through the default brand
    ],
)
def test_brands_do_not_share_destinations(branded: ModuleType, path: str, uri: str) -> None:
    response = invoke(branded, kustomer_query(uri, token=make_login_token(aud="kustomer")), path=path)
    assert response["statusCode"] == 400
    assert "Location" not in response["headers"]


@pytest.mark.parametrize(
    "brand", ["unknown", "default-x", "ACME", "acme%2F..", "..", "acme.", "%61cme", "a" * 60, "<script>"]
)
def test_unknown_brand_is_a_404_and_never_the_default_key(branded: ModuleType, brand: str) -> None:
    for token in (None, make_login_token(aud="kustomer")):
        response = invoke(branded, kustomer_query(token=token), path=f"/kustomer/brands/{brand}/login")
        assert response["statusCode"] == 404
        assert "Location" not in response["headers"]
        assert "<script>" not in response["body"]


def test_default_brand_also_answers_by_name(branded: ModuleType) -> None:
    response = invoke(
        branded, kustomer_query(token=make_login_token(aud="kustomer")), path="/kustomer/brands/default/login"
    )
    kustomer_claims(response["headers"]["Location"], key=KB_KEY)


def test_brand_secret_missing_is_a_503_and_no_token(aws: Any, load_function: Callable[..., ModuleType]) -> None:
    module = load_function("kustomer", KUSTOMER_BRANDS=ACME_BRANDS)  # acme's secret never created
    response = invoke(
        module,
        kustomer_query(f"https://{ACME_HOST}/", token=make_login_token(aud="kustomer")),
        path="/kustomer/brands/acme/login",
    )
    assert response["statusCode"] == 503
    assert "Location" not in response["headers"]


# --- configuration ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"KUSTOMER_BRANDS": "{not json"}, "KUSTOMER_BRANDS"),
        ({"KUSTOMER_BRANDS": '["acme"]'}, "KUSTOMER_BRANDS"),
        ({"KUSTOMER_BRANDS": '{"acme": "sso-bridge/kustomer/acme"}'}, "KUSTOMER_BRANDS"),
        ({"KUSTOMER_BRANDS": '{"acme": {"redirect_hosts": ["acme.kustomer.help"]}}'}, "KUSTOMER_BRANDS"),
        (
            {"KUSTOMER_BRANDS": '{"acme": {"secret_id": "s", "redirect_hosts": "acme.kustomer.help"}}'},
            "KUSTOMER_BRANDS",
        ),
        (
            {"KUSTOMER_BRANDS": '{"acme": {"secret_id": "s", "redirect_hosts": ["https://acme.kustomer.help"]}}'},
            "KUSTOMER_BRANDS",
        ),
        (
            {"KUSTOMER_BRANDS": '{"acme": {"secret_id": "s", "redirect_hosts": ["a.example.com,b.example.com"]}}'},
            "KUSTOMER_BRANDS",
        ),
        ({"KUSTOMER_BRANDS": '{"acme": {"secret_id": "s"}}'}, "KUSTOMER_BRANDS"),
        (
            {"KUSTOMER_BRANDS": '{"acme": {"secret_id": "s", "redirect_hosts": ["a.example.com"], "portal": "x"}}'},
            "KUSTOMER_BRANDS",
        ),
        (
            {"KUSTOMER_BRANDS": '{"acme": {"secret_id": "s", "portal_url": "http://acme.kustomer.help/"}}'},
            "KUSTOMER_BRANDS",
        ),
        (
            {"KUSTOMER_BRANDS": '{"Acme Inc": {"secret_id": "s", "redirect_hosts": ["a.example.com"]}}'},
            "KUSTOMER_BRANDS",
        ),
        (
            {"KUSTOMER_BRANDS": '{"default": {"secret_id": "s", "redirect_hosts": ["a.example.com"]}}'},
            "KUSTOMER_BRANDS",
        ),
        (
            {
                "KUSTOMER_BRANDS": json.dumps(
                    {"acme": {"secret_id": SECRET_IDS["login"], "redirect_hosts": ["a.example.com"]}}
                )
            },
            "KUSTOMER_BRANDS",
        ),
        ({"KUSTOMER_BRANDS": ACME_BRANDS, "KUSTOMER_BRAND_SECRET_PREFIX": "prod/kustomer/"}, "KUSTOMER_BRANDS"),
        (
            {"KUSTOMER_BRANDS": json.dumps({"acme\n": {"secret_id": "s", "redirect_hosts": ["a.example.com"]}})},
            "KUSTOMER_BRANDS",
        ),
        ({"KUSTOMER_REDIRECT_HOSTS": ""}, "KUSTOMER_REDIRECT_HOSTS"),
        ({"KUSTOMER_REDIRECT_HOSTS": "https://yourcompany.kustomer.help"}, "KUSTOMER_REDIRECT_HOSTS"),
        ({"KUSTOMER_REDIRECT_HOSTS": "*.kustomer.help"}, "KUSTOMER_REDIRECT_HOSTS"),
        ({"KUSTOMER_PORTAL_URL": "http://yourcompany.kustomer.help/"}, "KUSTOMER_PORTAL_URL"),
        ({"KUSTOMER_PORTAL_URL": "https://yourcompany.kustomer.help:8443/"}, "KUSTOMER_PORTAL_URL"),
        ({"KUSTOMER_SECRET_ID": SECRET_IDS["login"]}, "KUSTOMER_SECRET_ID"),
    ],
)
def test_bad_configuration_names_the_variable(
    load_function: Callable[..., ModuleType], variables: dict[str, str], named: str
) -> None:
    from sso_bridge.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=named):
        load_function("kustomer", **variables)


@pytest.mark.parametrize(
    "secret_id", [ACME_SECRET_ID, f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:{ACME_SECRET_ID}-AbCdEf"]
)
def test_brand_secret_under_the_stacks_prefix_is_accepted(
    aws: Any, load_function: Callable[..., ModuleType], secret_id: str
) -> None:
    brands = json.dumps({"acme": {"secret_id": secret_id, "redirect_hosts": [ACME_HOST]}})
    module = load_function("kustomer", KUSTOMER_BRANDS=brands, KUSTOMER_BRAND_SECRET_PREFIX="sso-bridge/kustomer/")
    assert module.settings.brands["acme"].secret_id == secret_id


def test_missing_secret_id_stops_cold_start(
    load_function: Callable[..., ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sso_bridge.errors import ConfigurationError

    monkeypatch.delenv("KUSTOMER_SECRET_ID")
    with pytest.raises(ConfigurationError, match="KUSTOMER_SECRET_ID is required"):
        load_function("kustomer")


# --- outages, pages, logs ---------------------------------------------------------------------------------


def test_secrets_manager_outage_is_a_503_and_no_token(kustomer: ModuleType, aws: Any) -> None:
    aws.delete_secret(SecretId=SECRET_IDS["kustomer"], ForceDeleteWithoutRecovery=True)
    response = invoke(kustomer, kustomer_query(token=make_login_token(aud="kustomer")))
    assert response["statusCode"] == 503
    assert "Location" not in response["headers"]


def test_placeholder_knowledge_base_key_is_never_used_to_sign(kustomer: ModuleType, aws: Any) -> None:
    aws.put_secret_value(SecretId=SECRET_IDS["kustomer"], SecretString="REPLACE_ME with the key")
    response = invoke(kustomer, kustomer_query(token=make_login_token(aud="kustomer")))
    assert response["statusCode"] == 503
    assert "Location" not in response["headers"]


def test_unknown_path_on_function_url_is_a_404_page(kustomer: ModuleType) -> None:
    response = invoke(kustomer, event="kustomer-login-function-url", path="/wp-admin")
    assert response["statusCode"] == 404
    assert "Page not found" in response["body"]


def test_refusal_page_has_a_reference_and_echoes_nothing(kustomer: ModuleType) -> None:
    tracking = "<script>alert('tracking')</script>"
    response = invoke(kustomer, kustomer_query("https://evil.example.net/<b>", tracking=quote(tracking)))
    assert response["statusCode"] == 400
    assert response["headers"]["Content-Type"].startswith("text/html")
    assert "Kq7tLhQYjoEEJ0w=" in response["body"]
    for echoed in ("<script>", "alert", "evil.example.net", "<b>"):
        assert echoed not in response["body"]


def test_logs_name_the_outcome_but_never_a_token(
    kustomer: ModuleType, log_stream: Callable[[ModuleType], io.StringIO]
) -> None:
    logs = log_stream(kustomer)
    token = make_login_token(aud="kustomer", jti="login-321")
    invoke(kustomer, kustomer_query())  # round trip
    invoke(kustomer, kustomer_query("https://evil.example.net/"))  # refusal
    issued = invoke(kustomer, kustomer_query(token=token))
    out = logs.getvalue()
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line.get("outcome") for line in lines] == ["login_redirect", "refused", "issued"]
    assert lines[2]["login_jti"] == "login-321"
    assert lines[2]["brand"] == "default"
    assert lines[2]["service"] == "kustomer"
    for secret in (TRACKING, token, external_token(issued["headers"]["Location"]), KB_KEY, LOGIN_TOKEN_KEY):
        assert secret not in out
