"""Hostile input at scale: whole payload v2 events, as the HTTP API and function URLs deliver them, made up
by Hypothesis for every route and method of every vendor's function in template.yaml.

Whatever arrives (odd methods and paths, broken percent-escapes, repeated and huge parameters, login tokens
that are noise, JWT-shaped noise or really signed with hostile claims, the vendor's own request with hostile values
in its own parameters (for Discourse, signed with its secret, so they reach what the signature guards), odd headers
and cookies, base64 bodies that are not base64), the handler answers a well-formed 2xx, 3xx or 4xx: never a 5xx,
never an exception. Every redirect, and every form a page posts, goes to the platform's sign-in or one of that
vendor's allowed hosts, over https.

The vendors and their routes come from template.yaml and what each vendor sends from tests/vendor_requests.py; each
test runs once per vendor with the example counts it had when three vendors shared them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

import hypothesis
import hypothesis.configuration
import jwt
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from tests.helpers import LOGIN_TOKEN_KEY, PLATFORM_LOGIN_URL, VENDOR_KEYS, WORKSPACE, LambdaContext, make_login_token
from tests.vendor_requests import VENDORS, deployed, form_posts, portal

# Hypothesis keeps a Unicode table cache (and, with a database, examples) in .hypothesis/ under the working
# directory: keep it out of the repo, and keep no example database at all.
hypothesis.configuration.set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "sso-bridge-hypothesis")
HOSTILE = settings(
    database=None,
    print_blob=True,  # a failure prints the @reproduce_failure line that replays it
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

ODD_METHODS = ("PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "get", "Post", "", "GET ", "PROPFIND")
# The example counts per vendor: those three vendors had between them (400, 300, 150), kept for each vendor.
SHARED_BY = 3


def per_vendor(examples: int) -> int:
    return -(-examples // SHARED_BY)


def routes(vendor: str) -> list[tuple[str, tuple[str, ...]]]:
    """The vendor's HTTP API routes and their methods, from template.yaml; "/" is each function URL's sign-in."""
    return list(deployed(vendor).routes)


def allowed_hosts(vendor: str) -> set[str | None]:
    """Where a redirect may go: the platform's sign-in, or one of the vendor's hosts its settings allow."""
    return {urlsplit(PLATFORM_LOGIN_URL).hostname, *portal(vendor).hosts}


API_DOMAIN = "abc123.execute-api.eu-west-1.amazonaws.com"
URL_DOMAIN = "abcdefghijklmnopqrstuvwxyz123456.lambda-url.eu-west-1.on.aws"

# --- text: valid Unicode (what JSON from API Gateway decodes to), with the characters parsers trip over ------

SPICY = [
    "",
    " ",
    "%",
    "%%",
    "%z",
    "%zz",
    "%0",
    "%00",
    "%ff%fe",
    "%C0%AF",
    "%E2%80%AE",
    "%252e",
    "+",
    "++",
    "&",
    "=",
    "==",
    ";",
    "?",
    "#",
    "\x00",
    "\r\n",
    "\t",
    "..",
    "%2e%2e/",
    "\\",
    "/\\evil.example",
    "//evil.example",
    "javascript:alert(1)",
    "data:text/html,x",
    "\u202e",
    "\ufeff",
    "\ufffd",
    "\u212a",  # Kelvin sign, folds to k
    "\u017f",  # long s, folds to s
    "\u0130",  # dotted capital I
    "\uff20",  # fullwidth @
    "\U0001f600",
    "login_token",
    "eyJhbGciOiJIUzI1NiJ9",
]
TEXT = st.text(st.characters(codec="utf-8"), max_size=24)
ASCII = st.text(st.characters(max_codepoint=127), max_size=24)
# Big but under the layer's limits, and well over them (8 KiB query, 4 KiB token, 2 KiB URL).
HUGE = st.builds(
    lambda unit, n: unit * n, st.sampled_from(["a", "%41", "é", "&", "=", "\U0001f600", "a="]), st.integers(1000, 9000)
)
HOSTILE_TEXT = st.one_of(ASCII, TEXT, st.sampled_from(SPICY), HUGE)
# One time in ten. Not integers(0, 9) == 0 nor sampled_from's first item: Hypothesis leans to those.
rarely = st.integers(0, 9).map(lambda n: n == 5)
SURROGATES = st.sampled_from(["\udcff", "\ud800", "\udfff", "\ud83d", "a\udc80b"])

# --- login tokens ------------------------------------------------------------------------------------------

# Fixed for the run, so a strategy draws from the same ranges every time (Hypothesis replays them).
NOW = int(time.time())
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sign(header: object, payload: object, key: str = LOGIN_TOKEN_KEY) -> str:
    """An HS256 JWS over any JSON, as the platform would sign it (PyJWT's encode refuses odd claims)."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    signature = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def claim_values(now: int) -> st.SearchStrategy[Any]:
    times = st.one_of(
        st.integers(now - 10**6, now + 10**6),
        st.integers(),
        st.floats(),
        st.sampled_from([True, False, None, "1", str(now), [now], {"t": now}, 10**400, -(10**400)]),
    )
    return st.one_of(times, JSON_VALUES, HOSTILE_TEXT)


@st.composite
def signed_tokens(draw: st.DrawFn, vendor: str) -> str:
    """Really signed with the login-token key, mostly valid, with a few claims made hostile."""
    now = NOW
    claims: dict[str, Any] = {
        "email": "jane.doe+vip@example.com",
        "aud": vendor,
        "iat": now,
        "exp": now + 60,
    }
    if draw(st.booleans()):  # an email link: days long, single use
        claims.update(use="link", jti=draw(st.text("abcdef0123456789", min_size=16, max_size=40)), exp=now + 86400)
    overrides = draw(
        st.dictionaries(
            st.sampled_from(
                ["email", "aud", "iat", "exp", "nbf", "name", "jti", "use", "redirect_to", "campaign", "iss", "sub"]
            ),
            st.one_of(
                claim_values(now),
                st.sampled_from([*VENDORS, [vendor, "x"], [vendor], "link", "https://evil.example/"]),
                st.sampled_from([f"https://{host}/x" for host in sorted(portal(vendor).hosts)]),
            ),
            max_size=draw(st.sampled_from([0, 1, 1, 3])),  # a quarter stay valid, to reach the vendor
        )
    )
    claims.update(overrides)
    dropped = st.lists(st.sampled_from(["email", "aud", "iat", "exp"]), max_size=draw(st.sampled_from([0, 0, 0, 2])))
    for claim in draw(dropped):
        claims.pop(claim, None)
    header: dict[str, Any] = {"alg": "HS256", "typ": "JWT"}
    header.update(
        draw(
            st.dictionaries(
                st.sampled_from(["alg", "typ", "kid", "crit", "b64", "zip"]),
                JSON_VALUES,
                max_size=draw(st.sampled_from([0, 0, 0, 2])),
            )
        )
    )
    payload: Any = draw(JSON_VALUES) if draw(rarely) else claims  # sometimes not even an object
    key = draw(st.sampled_from([LOGIN_TOKEN_KEY] * 6 + [VENDOR_KEYS[vendor], ""]))
    return sign(header, payload, key)


@st.composite
def jwt_shaped(draw: st.DrawFn) -> str:
    """Three (or so) base64url segments of random JSON or bytes: structurally a JWT, signed by nobody."""
    header = draw(
        st.one_of(
            st.fixed_dictionaries({"alg": st.sampled_from(["HS256", "none", "RS256", "HS512", "", "hs256"])}),
            JSON_VALUES,
        )
    )
    segments = [
        b64url(json.dumps(header).encode()),
        b64url(json.dumps(draw(JSON_VALUES)).encode()),
        b64url(draw(st.binary(max_size=40))),
    ]
    for _ in range(draw(st.integers(0, 2))):
        mutation = draw(st.sampled_from(["drop", "extra", "bytes", "pad", "junk"]))
        index = draw(st.integers(0, len(segments) - 1))
        if mutation == "drop" and len(segments) > 1:
            segments.pop(index)
        elif mutation == "extra":
            segments.insert(index, b64url(draw(st.binary(max_size=20))))
        elif mutation == "bytes":
            segments[index] = b64url(draw(st.binary(max_size=40)))
        elif mutation == "pad":
            segments[index] += "=="
        else:
            segments[index] = draw(HOSTILE_TEXT)
    return ".".join(segments)


def login_tokens(vendor: str) -> st.SearchStrategy[str]:
    other_vendor = VENDORS[(VENDORS.index(vendor) + 1) % len(VENDORS)]
    return st.one_of(HOSTILE_TEXT, jwt_shaped(), signed_tokens(vendor), signed_tokens(other_vendor))


# --- URLs for the vendors' destinations (redirect_to, kustomerRedirectUri, return_to, redirect, ...) ----------


@st.composite
def urls(draw: st.DrawFn, vendor: str) -> str:
    """A URL near the vendor's allowed hosts: one of them, or one of them bent (case, dot, suffix, userinfo)."""
    allowed = sorted(portal(vendor).hosts)
    near = draw(st.sampled_from(allowed))
    scheme = draw(st.sampled_from(["https", "https", "HTTPS", "http", "javascript", "", "ftp", "hTTps"]))
    userinfo = draw(st.sampled_from(["", "", "user@", "user:pass@", f"{near}@", "@", "%40@"]))
    host = draw(
        st.sampled_from(
            [
                *allowed,
                near.upper(),
                f"{near}.",
                f"{near}.evil.example",
                f"evil.example\\@{near}",
                f"evil.example%2f{near}",
                "evil.example",
                "127.0.0.1",
                "[::1]",
                "",
                "xn--80ak6aa92e.com",
                f"{near}\u3002evil.example",
            ]
        )
    )
    port = draw(st.sampled_from(["", "", ":443", ":444", ":", ":abc", ":99999", ":-1", ":0443"]))
    path = draw(
        st.one_of(
            st.sampled_from(["", "/", "/customers/orders", "//evil.example", "/\\evil", "/%2e%2e/"]),
            TEXT.map(lambda t: "/" + t),
        )
    )
    tail = draw(st.sampled_from(["", "?a=1", "?referralUrl=https%3A%2F%2Fevil.example", "#frag", "?#", "?x=%zz"]))
    separator = draw(st.sampled_from(["://", "://", ":/", ":", "//", ":\\\\", "://\t"]))
    return f"{scheme}{separator}{userinfo}{host}{port}{path}{tail}"


def allowed_targets(vendor: str) -> list[str]:
    """Good destinations for the vendor: each allowed host, with a path and a query."""
    return [
        f"https://{host}/{path}"
        for host in sorted(portal(vendor).hosts)
        for path in ("customers/orders", "login?referralUrl=https%3A%2F%2Fexample.com", "")
    ]


# --- query strings ----------------------------------------------------------------------------------------


def _utf8(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


PARAM_NAMES = ["login_token", "redirect_to", "return_to", "brand", "x"]


def param_names(vendor: str) -> list[str]:
    """The bridge's own parameter names and the vendor's (for Discourse also the fields it signs into sso)."""
    return [*PARAM_NAMES, *portal(vendor).params]


def encode(value: str, how: str) -> str:
    if how != "raw" and not _utf8(value):
        return value  # a lone surrogate cannot be percent-encoded: it arrives raw, as an escaped event carries it
    if how == "quote":
        return quote(value, safe="")
    if how == "quote_plus":
        return quote_plus(value)
    if how == "double":
        return quote(quote(value, safe=""), safe="")
    return value  # as it is: raw '&', '=', '%', '+' and non-ASCII


@st.composite
def vendor_requests(draw: st.DrawFn, vendor: str) -> list[tuple[str, str]]:
    """The vendor's own well-formed request, up to two of its parameters made hostile or left out. Discourse's
    payload fields (nonce, return_sso_url) are signed again with its secret, so hostile ones pass the signature."""
    signs_in = portal(vendor)
    if not signs_in.params:
        return []
    hostile = st.one_of(HOSTILE_TEXT, urls(vendor), st.sampled_from(allowed_targets(vendor)), st.none())
    overrides = draw(st.dictionaries(st.sampled_from(signs_in.params), hostile, max_size=2))
    return signs_in.pairs(**overrides)


@st.composite
def query_strings(draw: st.DrawFn, vendor: str, *, text: st.SearchStrategy[str] = HOSTILE_TEXT) -> str:
    if draw(rarely):
        return draw(text)  # not even pairs
    values = st.one_of(text, urls(vendor), login_tokens(vendor))
    names = param_names(vendor)
    pairs = draw(
        st.lists(
            st.tuples(
                st.one_of(st.sampled_from(names), text),
                values,
                st.sampled_from(["quote", "quote_plus", "raw", "double"]),
                st.sampled_from(["=", "=", "", "=="]),
            ),
            max_size=draw(st.sampled_from([4, 4, 40])),  # sometimes past the 32-field limit
        )
    )
    if draw(st.booleans()):  # half the time the vendor's own request comes first, so the rest reaches past it
        hows = st.sampled_from(["quote", "quote", "quote_plus", "raw", "double"])
        pairs = [(name, value, draw(hows), "=") for name, value in draw(vendor_requests(vendor))] + pairs
    parts = [f"{encode(name, how)}{eq}{encode(value, how)}" for name, value, how, eq in pairs]
    separator = draw(st.sampled_from(["&", "&", "&&", ";", "&amp;"]))
    return separator.join(parts)


# --- whole events -----------------------------------------------------------------------------------------

HEADER_NAMES = [
    "accept",
    "x-forwarded-proto",
    "user-agent",
    "cookie",
    "content-type",
    "content-length",
    "host",
    "referer",
    "origin",
    "x-forwarded-for",
    "authorization",
    "accept-encoding",
    "x-amzn-trace-id",
]
ACCEPT = [
    "application/json",
    "text/html",
    "application/json, text/html",
    "*/*",
    "APPLICATION/JSON",
    "",
    "application/json;q=0",
]
PROTO = ["https", "http", "HTTP", "ftp", "https, http", "", "javascript"]


def header_values(name: str, text: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    if name == "accept":
        return st.one_of(st.sampled_from(ACCEPT), text)
    if name == "x-forwarded-proto":
        return st.one_of(st.sampled_from(PROTO), text)
    return text


@st.composite
def headers(draw: st.DrawFn, domain: str, text: st.SearchStrategy[str]) -> dict[str, str]:
    result = {"host": domain}
    for name in draw(st.lists(st.one_of(st.sampled_from(HEADER_NAMES), TEXT.map(str.lower)), max_size=5)):
        result[name] = draw(header_values(name, text))
    return result


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str | None, bool]:
    kind = draw(st.sampled_from(["none", "text", "base64", "bad-base64", "form"]))
    if kind == "none":
        return None, draw(st.booleans())
    if kind == "text":
        return draw(HOSTILE_TEXT), draw(st.booleans())
    if kind == "base64":  # valid base64 of any bytes, invalid UTF-8 included
        return base64.b64encode(draw(st.binary(max_size=64) | st.just(b"\xff\xfe\xc0\xaf"))).decode(), True
    if kind == "form":
        return f"login_token={draw(HOSTILE_TEXT)}", draw(st.booleans())
    return draw(st.sampled_from(["!!!", "abc", "a===", "====", "\U0001f600", "YQ", "Zm9v\n"])), True


@st.composite
def events(draw: st.DrawFn, vendor: str, *, text: st.SearchStrategy[str] = HOSTILE_TEXT) -> dict[str, Any]:
    """One payload v2 event for ``vendor``'s function, from the HTTP API or its function URL."""
    function_url = draw(st.booleans())
    route, methods = draw(st.sampled_from(routes(vendor)))
    shape = draw(st.sampled_from(["route", "route", "odd-method", "unknown-path"]))
    method = (
        draw(st.sampled_from(methods))
        if shape == "route"
        else draw(st.sampled_from([*ODD_METHODS, "GET", "HEAD", "POST"]))
    )
    path_parameters: dict[str, str] | None = None
    if shape == "unknown-path":
        path = draw(
            st.one_of(
                st.sampled_from(["", "//", "/%2e%2e/", "/wp-admin/setup.php", route + "/", route.upper()]),
                text.map(lambda t: "/" + t),
            )
        )
    elif function_url:
        path = "/"
    elif "{" in route:  # a path parameter (Kustomer's brand)
        name = route[route.index("{") + 1 : route.index("}")]
        value = draw(st.one_of(st.sampled_from(["default", "acme", "-", ".."]), text))
        path = route.replace(f"{{{name}}}", value)
        path_parameters = {name: value}
    else:
        path = route
    domain = URL_DOMAIN if function_url else API_DOMAIN
    stage = draw(st.sampled_from(["prod", "", "v1"])) if not function_url and draw(rarely) else "$default"
    if stage != "$default":
        path = f"/{stage}{path}"
    route_key = "$default" if function_url else f"{method} {route}"
    body, is_base64 = draw(bodies())
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": draw(query_strings(vendor, text=text)),
        "headers": draw(headers(domain, text)),
        "requestContext": {
            "accountId": "anonymous" if function_url else "123456789012",
            "apiId": domain.split(".", 1)[0],
            "domainName": domain,
            "domainPrefix": domain.split(".", 1)[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": draw(st.sampled_from(["HTTP/1.1", "HTTP/2.0", ""])),
                "sourceIp": draw(st.one_of(st.just("203.0.113.7"), text)),
                "userAgent": draw(st.one_of(st.just("Mozilla/5.0"), text)),
            },
            "requestId": draw(st.one_of(st.just("Jz3sJgQYjoEEJ0w="), text)),
            "routeKey": route_key,
            "stage": stage,
            "time": "23/Nov/2026:17:43:56 +0000",
            "timeEpoch": 1795455836000,
        },
        "isBase64Encoded": is_base64,
    }
    if body is not None:
        event["body"] = body
    cookies = draw(st.lists(text, max_size=3))
    if cookies:
        event["cookies"] = cookies
    if path_parameters is not None:
        event["pathParameters"] = path_parameters
    if draw(st.booleans()):  # API Gateway's own parse, which the bridge must not trust
        event["queryStringParameters"] = draw(st.dictionaries(st.sampled_from(param_names(vendor)), text, max_size=3))
    return event


# --- the promise -----------------------------------------------------------------------------------------


def assert_well_formed(vendor: str, response: Any) -> None:
    assert isinstance(response, dict)
    status = response["statusCode"]
    assert type(status) is int
    assert 200 <= status < 500, f"status {status}: {response.get('body', '')[:400]}"
    headers = response.get("headers") or {}
    assert all(isinstance(name, str) and isinstance(value, str) for name, value in headers.items())
    assert isinstance(response.get("body"), str)
    assert all(isinstance(cookie, str) for cookie in response.get("cookies") or [])
    json.dumps(response)  # what the Lambda runtime does with it
    # Where the browser goes next: a redirect, or a form the page posts (Zendesk's token); the bridge's own forms
    # (an email link's page) post back to the request's own URL, relatively.
    targets = [action for action, _ in form_posts(response["body"]) if "//" in action]
    if 300 <= status < 400:
        targets.append(headers["Location"])
    for target in targets:
        location = urlsplit(target)
        assert location.scheme == "https"
        assert location.hostname in allowed_hosts(vendor)
        assert location.username is None
        assert location.port is None
    if 300 <= status < 400:
        location = urlsplit(headers["Location"])
        if vendor == "clickfunnels" and location.hostname == WORKSPACE:
            # The deep link rides inside the vendor token: it must have passed the same check.
            token = parse_qs(location.query)["token"][0]
            claims = jwt.decode(token, VENDOR_KEYS["clickfunnels"], algorithms=["HS256"])
            if "redirect_to" in claims:
                target = urlsplit(claims["redirect_to"])
                assert (target.scheme, target.hostname, target.port, target.username) == (
                    "https",
                    WORKSPACE,
                    None,
                    None,
                )


@pytest.fixture
def handler(
    vendor: str,
    jti_table: Any,
    link_tables: Any,
    load_function: Callable[..., ModuleType],
    log_stream: Callable[..., Any],
) -> ModuleType:
    """The vendor's function, on moto's Secrets Manager and tables, its logs kept out of the test output."""
    module = load_function(vendor)
    log_stream(module)
    return module


def invoke(handler: ModuleType, vendor: str, event: dict[str, Any]) -> None:
    response = handler.lambda_handler(event, LambdaContext())
    assert_well_formed(vendor, response)
    # What the examples reached (pytest --hypothesis-show-statistics): refusals, sign-in, vendor, confirmation.
    location = urlsplit(response["headers"].get("Location", "")).hostname
    if currently_in_test_context():  # the plain tests below call this too
        hypothesis.event(f"{response['statusCode']} {location or ''}".strip())


@pytest.mark.parametrize("vendor", VENDORS)
@settings(HOSTILE, max_examples=per_vendor(400))
@given(data=st.data())
def test_any_event_on_any_route_gets_a_well_formed_answer_below_500(
    handler: ModuleType, vendor: str, data: st.DataObject
) -> None:
    invoke(handler, vendor, data.draw(events(vendor)))


@pytest.mark.parametrize("vendor", VENDORS)
@settings(HOSTILE, max_examples=per_vendor(300))
@given(data=st.data(), method=st.sampled_from(["GET", "HEAD", "POST"]))
def test_signed_and_jwt_shaped_login_tokens_are_answered_below_500(
    handler: ModuleType, vendor: str, method: str, data: st.DataObject
) -> None:
    # The vendor's own request with a login token, so every example reaches the login-token checks and, if it
    # passes, the vendor; the destination the vendor names (or the platform's redirect_to) good or hostile.
    token = data.draw(st.one_of(signed_tokens(vendor), signed_tokens(vendor), jwt_shaped()))
    signs_in = portal(vendor)
    extra = data.draw(st.sampled_from(["", "redirect_to", *([signs_in.destination] if signs_in.destination else [])]))
    overrides: dict[str, str | None] = {}
    if extra:
        overrides[extra] = data.draw(st.one_of(urls(vendor), st.sampled_from(allowed_targets(vendor))))
    own_too = data.draw(st.booleans())
    if own_too and signs_in.params:  # and one of the vendor's own parameters hostile, or left out
        hostile = st.one_of(HOSTILE_TEXT, urls(vendor), st.none())
        overrides |= data.draw(st.dictionaries(st.sampled_from(signs_in.params), hostile, min_size=1, max_size=1))
    query = signs_in.sign_in(quote(token, safe=""), **overrides)
    route = deployed(vendor).sign_in_path
    event = {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": route,
        "rawQueryString": query,
        "headers": {"host": API_DOMAIN, "accept": data.draw(st.sampled_from(ACCEPT)), "x-forwarded-proto": "https"},
        "requestContext": {
            "domainName": API_DOMAIN,
            "http": {"method": method, "path": route, "sourceIp": "203.0.113.7", "userAgent": "Mozilla/5.0"},
            "requestId": "Jz3sJgQYjoEEJ0w=",
            "routeKey": f"{method} {route}",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }
    invoke(handler, vendor, event)


# --- lone surrogates ----------------------------------------------------------------------------------------
# A JSON event may carry "\udcff" (an escaped lone surrogate): Python decodes it to a str that cannot be encoded
# as UTF-8. It reached PyJWT (reading the login token) and quote() (building the sign-in return_to) as a 500.
WITH_SURROGATES = st.one_of(HOSTILE_TEXT, SURROGATES, st.tuples(TEXT, SURROGATES, TEXT).map("".join))


def sign_in_event(vendor: str, query: str) -> dict[str, Any]:
    route = deployed(vendor).sign_in_path
    return {
        "version": "2.0",
        "routeKey": f"GET {route}",
        "rawPath": route,
        "rawQueryString": query,
        "headers": {"host": API_DOMAIN},
        "requestContext": {
            "domainName": API_DOMAIN,
            "http": {"method": "GET", "path": route},
            "requestId": "Jz3sJgQYjoEEJ0w=",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_lone_surrogate_in_the_login_token_is_a_4xx(handler: ModuleType, vendor: str) -> None:
    invoke(handler, vendor, sign_in_event(vendor, portal(vendor).sign_in("\udcff")))


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_lone_surrogate_elsewhere_in_the_query_is_kept_out_of_the_sign_in_redirect(
    handler: ModuleType, vendor: str
) -> None:
    query = portal(vendor).query()
    invoke(handler, vendor, sign_in_event(vendor, f"{query}&a=\udcff" if query else "a=\udcff"))


@pytest.mark.parametrize("with_token", [False, True], ids=["signed out", "with a login token"])
@pytest.mark.parametrize("vendor", VENDORS)
def test_a_lone_surrogate_in_each_of_the_vendors_own_parameters_gets_a_well_formed_answer(
    handler: ModuleType, vendor: str, with_token: bool
) -> None:
    # Signed out, the query goes back into the sign-in redirect's return_to; with a token, to the vendor's checks.
    signs_in = portal(vendor)
    for name in signs_in.params:
        pairs = [(key, "\udcff" if key == name else quote(value, safe="")) for key, value in signs_in.pairs()]
        if name not in dict(pairs):  # a field signed into Discourse's sso: sent beside it instead
            pairs.append((name, "\udcff"))
        if with_token:
            pairs.append(("login_token", quote(make_login_token(aud=vendor), safe="")))
        invoke(handler, vendor, sign_in_event(vendor, "&".join(f"{key}={value}" for key, value in pairs)))


@pytest.mark.parametrize("vendor", VENDORS)
@settings(HOSTILE, max_examples=per_vendor(150), phases=[Phase.generate])  # the failure, not its shrinking
@given(data=st.data())
def test_events_with_lone_surrogates_anywhere_get_a_well_formed_answer_below_500(
    handler: ModuleType, vendor: str, data: st.DataObject
) -> None:
    invoke(handler, vendor, data.draw(events(vendor, text=WITH_SURROGATES)))
