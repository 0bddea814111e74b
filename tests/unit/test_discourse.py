"""DiscourseConnect as the community meets it: Discourse's signed request in, ``return_sso_url`` out, signed in.

Discourse sends ``?sso=<base64 of nonce and return_sso_url>&sig=<hex HMAC-SHA256 of that base64>``; the browser must
come back to ``return_sso_url?sso=...&sig=...`` signed the same way, or, for anything forged or hostile, see a
refusal. What the bridge answers is checked here with plain ``hmac``, ``base64`` and ``parse_qs``, never with the
bridge's own code: the check Discourse itself makes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import io
import json
import secrets
import time
from collections.abc import Callable
from html import unescape
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, urlencode, urlsplit

import jwt
import pytest

from local.server import App, Reply, Request
from local.vendors.site import StandInContext
from tests.helpers import (
    DISCOURSE_URL,
    LOGIN_TOKEN_KEY,
    PLATFORM_LOGIN_URL,
    SECRET_IDS,
    VENDOR_KEYS,
    LambdaContext,
    LinkPage,
    load_event,
    make_login_token,
    pressed,
)

# The module, whatever local.vendors' __init__ binds the name "discourse" to.
standin = importlib.import_module("local.vendors.discourse")
KEY = VENDOR_KEYS["discourse"]
HOST = urlsplit(DISCOURSE_URL).hostname or ""
RETURN_URL = f"{DISCOURSE_URL}/session/sso_login"
START_URL = f"{DISCOURSE_URL}/session/sso?return_path=/"
API_HOST = "abc123.execute-api.eu-west-1.amazonaws.com"
EMAIL = "jane.doe+vip@example.com"
HANDOFF = "sso_bridge_handoff_discourse"
DAY = 86400
EVENTS = ("discourse-login-httpapi", "discourse-login-function-url")
EVENT_NONCE = "cb68251eefb5211e58c00ff1395f0c0b"  # the nonce signed into the events' sso


@pytest.fixture
def discourse(aws: Any, load_function: Callable[..., ModuleType]) -> ModuleType:
    return load_function("discourse")


# --- Discourse's side, written as Discourse writes it -----------------------------------------------------------


def hmac_hex(text: str, key: str = KEY) -> str:
    return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()


def discourse_sso(fields: dict[str, str] | None = None, *, nonce: str | None = None, **extra: str) -> str:
    """``Base64.strict_encode64(Rack::Utils.build_query(...))`` of Discourse's request (nonce, return_sso_url)."""
    payload = fields if fields is not None else {"nonce": nonce or secrets.token_hex(16), "return_sso_url": RETURN_URL}
    return base64.b64encode(urlencode({**payload, **extra}).encode()).decode()


def connect_query(sso: str | None = None, sig: str | None = None, *, token: str | None = None) -> str:
    """The query Discourse's redirect carries (``CGI.escape`` of the base64), plus the platform's login token."""
    sso = discourse_sso() if sso is None else sso
    query = f"sso={quote_plus(sso)}&sig={hmac_hex(sso) if sig is None else sig}"
    return f"{query}&login_token={token}" if token else query


def invoke(
    module: ModuleType,
    query: str | None = None,
    *,
    event: str = EVENTS[0],
    path: str | None = None,
    method: str = "GET",
    cookies: list[str] | None = None,
    **headers: str,
) -> Any:
    payload = load_event(event, query=query, headers=headers)
    if path is not None:
        payload["rawPath"] = payload["requestContext"]["http"]["path"] = path
    payload["requestContext"]["http"]["method"] = method
    if cookies:
        payload["cookies"] = cookies
    return module.lambda_handler(payload, LambdaContext())


def answer(location: str, key: str = KEY) -> dict[str, str]:
    """What Discourse reads from the bridge's redirect: ``sig`` the HMAC of ``sso`` as the query gives it, ``sso``
    strict base64 of a query string of single values. Plain hmac and base64, not the bridge's code."""
    params = parse_qs(urlsplit(location).query, keep_blank_values=True)
    [sso], [sig] = params["sso"], params["sig"]
    assert hmac.compare_digest(hmac_hex(sso, key), sig), "sig is not the HMAC-SHA256 of the sso text"
    decoded = base64.b64decode(sso, validate=True)
    assert base64.b64encode(decoded).decode() == sso, "not strict base64"
    fields = parse_qs(decoded.decode(), keep_blank_values=True, strict_parsing=True)
    assert all(len(values) == 1 for values in fields.values())
    return {name: values[0] for name, values in fields.items()}


def unsigned_payload(location: str) -> str:
    [sso] = parse_qs(urlsplit(location).query)["sso"]
    return base64.b64decode(sso).decode()


def login_redirect(response: dict[str, Any]) -> str:
    """The return_to of a redirect to the platform's sign-in page."""
    assert response["statusCode"] in (302, 303), (response["statusCode"], response.get("body", "")[:300])
    location = urlsplit(response["headers"]["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == PLATFORM_LOGIN_URL
    return str(parse_qs(location.query)["return_to"][0])


def cookie(response: dict[str, Any], name: str) -> str:
    """The response's ``Set-Cookie`` for ``name``."""
    [found] = [str(raw) for raw in response.get("cookies", []) if raw.startswith(f"{name}=")]
    return found


def a_link(email: str = EMAIL, **claims: Any) -> str:
    defaults: dict[str, Any] = {"aud": "discourse", "lifetime": 7 * DAY, "use": "link", "jti": secrets.token_hex(16)}
    return make_login_token(email, **{**defaults, **claims})


# --- the answer ----------------------------------------------------------------------------------------------


def test_a_signed_in_member_goes_back_to_return_sso_url_with_a_payload_discourse_verifies(
    discourse: ModuleType,
) -> None:
    # Given Discourse's request, as in events/, and a login token for an email with + in it
    sample = load_event(EVENTS[0])
    token = make_login_token(EMAIL, aud="discourse")

    # When the browser arrives with the platform's login token appended
    response = invoke(discourse, f"{sample['rawQueryString']}&login_token={token}")

    # Then it goes back to return_sso_url with sso and sig, which verify with the connect secret
    assert response["statusCode"] == 302
    location = response["headers"]["Location"]
    assert location.startswith(f"{RETURN_URL}?sso=")
    assert answer(location) == {
        "nonce": EVENT_NONCE,
        "email": EMAIL,
        "external_id": EMAIL,
        "require_activation": "false",
    }
    assert response["headers"]["Cache-Control"] == "no-store"
    assert response["headers"]["Referrer-Policy"] == "no-referrer"


def test_the_payload_escapes_as_rack_does_so_a_plus_stays_a_plus(discourse: ModuleType) -> None:
    # Rack::Utils.parse_query reads "+" as a space: a raw one would sign Jane in as "jane.doe vip@example.com"
    token = make_login_token(EMAIL, aud="discourse", name="Zoë O'Hara & Co = 1")
    location = invoke(discourse, connect_query(token=token))["headers"]["Location"]
    raw = unsigned_payload(location)
    assert "email=jane.doe%2Bvip%40example.com" in raw
    assert "name=Zo%C3%AB+O%27Hara+%26+Co+%3D+1" in raw
    assert answer(location)["name"] == "Zoë O'Hara & Co = 1"


def test_the_platforms_subject_is_the_external_id_and_the_name_goes_along(discourse: ModuleType) -> None:
    token = make_login_token("Jane@Example.com", aud="discourse", sub="user-4711", name="Jane Doe")
    fields = answer(invoke(discourse, connect_query(token=token))["headers"]["Location"])
    assert (fields["external_id"], fields["email"], fields["name"]) == ("user-4711", "Jane@Example.com", "Jane Doe")
    assert "username" not in fields  # Discourse suggests one; the bridge has none of its own


def test_without_a_subject_the_external_id_is_the_email_in_one_case(discourse: ModuleType) -> None:
    # Capitalisation must not make a second Discourse account key for one person
    ids = {
        answer(invoke(discourse, connect_query(token=make_login_token(email, aud="discourse")))["headers"]["Location"])[
            "external_id"
        ]
        for email in ("Jane@Example.com", "jane@example.com")
    }
    assert ids == {"jane@example.com"}


def test_given_and_family_names_make_the_name_and_none_at_all_sends_no_name(discourse: ModuleType) -> None:
    named = make_login_token(aud="discourse", given_name="Jane", family_name="Doe")
    assert answer(invoke(discourse, connect_query(token=named))["headers"]["Location"])["name"] == "Jane Doe"
    nameless = answer(invoke(discourse, connect_query(token=make_login_token(aud="discourse")))["headers"]["Location"])
    assert "name" not in nameless


def test_the_nonce_goes_back_exactly_as_discourse_made_it(discourse: ModuleType) -> None:
    nonce = secrets.token_hex(16)
    location = invoke(discourse, connect_query(discourse_sso(nonce=nonce), token=make_login_token(aud="discourse")))
    assert answer(location["headers"]["Location"])["nonce"] == nonce


def test_the_answer_does_not_verify_with_another_key(discourse: ModuleType) -> None:
    location = invoke(discourse, connect_query(token=make_login_token(aud="discourse")))["headers"]["Location"]
    with pytest.raises(AssertionError, match="not the HMAC"):
        answer(location, key=LOGIN_TOKEN_KEY)


def test_a_return_sso_url_with_a_query_gets_the_answer_appended_as_discourse_appends_it(discourse: ModuleType) -> None:
    sso = discourse_sso({"nonce": "abc", "return_sso_url": f"{RETURN_URL}?locale=de&x="})
    location = invoke(discourse, connect_query(sso, token=make_login_token(aud="discourse")))["headers"]["Location"]
    assert location.startswith(f"{RETURN_URL}?locale=de&x=&sso=")
    assert answer(location)["nonce"] == "abc"


def test_an_older_discourse_with_line_breaks_in_its_base64_is_understood(discourse: ModuleType) -> None:
    # Base64.encode64 (Discourse before 2017, PR #5241) breaks lines every 60 characters; the sig covers them
    payload = urlencode({"nonce": "f" * 32, "return_sso_url": RETURN_URL}).encode()
    sso = base64.encodebytes(payload).decode()
    assert "\n" in sso.rstrip("\n")
    response = invoke(discourse, connect_query(sso, token=make_login_token(aud="discourse")))
    assert response["statusCode"] == 302
    assert answer(response["headers"]["Location"])["nonce"] == "f" * 32


def test_login_token_for_several_services_including_discourse_is_accepted(discourse: ModuleType) -> None:
    token = make_login_token(aud=["canny", "discourse"])
    assert invoke(discourse, connect_query(token=token))["statusCode"] == 302


def test_head_with_a_login_token_mints_nothing(discourse: ModuleType) -> None:
    response = invoke(discourse, connect_query(token=make_login_token(aud="discourse")), method="HEAD")
    assert response["statusCode"] == 200
    assert "Location" not in response["headers"]
    assert response["body"] == ""


# --- the signature: over the base64 text, checked before anything is read ----------------------------------------

# A payload whose base64 holds "+" and "=" (Discourse's never holds "/": its payload is URL-encoded ASCII), so the
# base64 text, its URL-encoded form and the decoded payload all differ: a sig over the wrong one shows.
AWKWARD = {"nonce": "~~~~~~", "return_sso_url": RETURN_URL}


def test_the_classic_mistake_a_sig_over_the_decoded_payload_is_refused(discourse: ModuleType) -> None:
    sso = discourse_sso(AWKWARD)
    decoded = base64.b64decode(sso).decode()
    for token in (None, make_login_token(aud="discourse")):
        response = invoke(discourse, connect_query(sso, hmac_hex(decoded), token=token), accept="application/json")
        assert response["statusCode"] == 403
        assert json.loads(response["body"])["reason"] == "discourse_signature_invalid"
        assert "Location" not in response["headers"]
    # While the sig over the base64 text is taken
    assert invoke(discourse, connect_query(sso, token=make_login_token(aud="discourse")))["statusCode"] == 302


@pytest.mark.parametrize(
    ("what", "make_sig"),
    [
        ("over the URL-encoded base64", lambda sso: hmac_hex(quote_plus(sso))),
        ("with another key", lambda sso: hmac_hex(sso, LOGIN_TOKEN_KEY)),
        ("upper-case hex", lambda sso: hmac_hex(sso).upper()),
        ("truncated", lambda sso: hmac_hex(sso)[:-2]),
        ("base64 digest", lambda sso: base64.b64encode(hmac.digest(KEY.encode(), sso.encode(), "sha256")).decode()),
        ("SHA-1", lambda sso: hmac.new(KEY.encode(), sso.encode(), hashlib.sha1).hexdigest()),
        ("not hex", lambda sso: "z" * 64),
        ("not ASCII", lambda sso: quote("é" * 32)),
        ("markup", lambda sso: quote("<script>alert(1)</script>")),
    ],
)
def test_a_sig_discourse_did_not_make_is_refused(
    discourse: ModuleType, what: str, make_sig: Callable[[str], str]
) -> None:
    sso = discourse_sso(AWKWARD)
    response = invoke(discourse, connect_query(sso, make_sig(sso), token=make_login_token(aud="discourse")))
    assert response["statusCode"] == 403, what
    assert "Location" not in response["headers"]
    assert "<script>" not in response["body"]


@pytest.mark.parametrize(
    "sso",
    [
        "!!!not base64!!!",
        base64.b64encode(b"nonce=a&return_sso_url=x").decode().rstrip("="),
        base64.b64encode(b"\xff\xfe\xfd").decode(),
        "eyJub3QiOiAiYSBxdWVyeSJ9",
    ],
)
def test_the_signature_is_checked_before_the_payload_is_read(discourse: ModuleType, sso: str) -> None:
    # A payload that is refused once signed is, unsigned, a signature failure: nothing was read before the check
    response = invoke(discourse, connect_query(sso, "0" * 64), accept="application/json")
    assert (response["statusCode"], json.loads(response["body"])["reason"]) == (403, "discourse_signature_invalid")


# --- refusals of what Discourse signed (as if the secret had leaked): before the sign-in round trip ---------------


def signed_raw(decoded: bytes) -> str:
    """A query whose sso is the base64 of ``decoded`` exactly, correctly signed."""
    sso = base64.b64encode(decoded).decode()
    return connect_query(sso)


MALFORMED = {
    "not base64 but signed": connect_query("!!!!"),
    "bad padding": connect_query(base64.b64encode(b"nonce=ab").decode().rstrip("=")),
    "data after padding": connect_query(base64.b64encode(b"nonce=ab").decode() + "QQ=="),
    "not UTF-8": signed_raw(b"nonce=\xff&return_sso_url=" + quote(RETURN_URL, safe="").encode()),
    "raw semicolon": signed_raw(f"nonce=a;return_sso_url={quote(RETURN_URL, safe='')}".encode()),
    "raw control character": signed_raw(f"nonce=a\x00&return_sso_url={quote(RETURN_URL, safe='')}".encode()),
    "raw non-ASCII": signed_raw(f"nonce=é&return_sso_url={quote(RETURN_URL, safe='')}".encode()),
    "a field without =": signed_raw(f"nonce=a&junk&return_sso_url={quote(RETURN_URL, safe='')}".encode()),
    "repeated nonce": signed_raw(f"nonce=a&nonce=b&return_sso_url={quote(RETURN_URL, safe='')}".encode()),
    "repeated return_sso_url": signed_raw(
        f"nonce=a&return_sso_url={quote(RETURN_URL, safe='')}&return_sso_url=https%3A%2F%2Fevil.net%2F".encode()
    ),
    "nonce with a space": connect_query(discourse_sso({"nonce": "a b", "return_sso_url": RETURN_URL})),
    "nonce with a line break": connect_query(discourse_sso({"nonce": "a\nb", "return_sso_url": RETURN_URL})),
    "nonce too long": connect_query(discourse_sso({"nonce": "a" * 129, "return_sso_url": RETURN_URL})),
}
INCOMPLETE = {
    "no nonce": connect_query(discourse_sso({"return_sso_url": RETURN_URL})),
    "empty nonce": connect_query(discourse_sso({"nonce": "", "return_sso_url": RETURN_URL})),
    "no return_sso_url": connect_query(discourse_sso({"nonce": "abc"})),
    "empty payload": connect_query(""),
    "sso only": f"sso={quote_plus(discourse_sso())}",
    "sig only": f"sig={'a' * 64}",
    "empty sso": f"sso=&sig={hmac_hex('')}",
}


@pytest.mark.parametrize(
    ("raw_query", "reason"),
    [pytest.param(q, "discourse_sso_malformed", id=k) for k, q in MALFORMED.items()]
    + [pytest.param(q, None, id=k) for k, q in INCOMPLETE.items()],
)
def test_a_request_discourse_would_never_sign_is_refused_before_sign_in(
    discourse: ModuleType, raw_query: str, reason: str | None
) -> None:
    for token in (None, make_login_token(aud="discourse")):
        query = f"{raw_query}&login_token={token}" if token else raw_query
        response = invoke(discourse, query, accept="application/json")
        assert response["statusCode"] == 400, response["body"]
        assert "Location" not in response["headers"]
        found = json.loads(response["body"])["reason"]
        assert found == reason if reason else found.startswith("discourse_"), found


@pytest.mark.parametrize(
    ("raw_query", "status"),
    [
        (f"sso={'A' * 4097}&sig={'a' * 64}", 414),
        (f"sso={quote_plus(discourse_sso())}&sig={'a' * 129}", 414),
        (f"{connect_query()}&sso=QQ==", 400),
        (f"{connect_query()}&sig={'a' * 64}", 400),
        (f"sso=QQ==&{connect_query()}", 400),
    ],
    ids=["sso too long", "sig too long", "repeated sso", "repeated sig", "sso first repeated"],
)
def test_oversized_or_repeated_parameters_are_refused(discourse: ModuleType, raw_query: str, status: int) -> None:
    response = invoke(discourse, f"{raw_query}&login_token={make_login_token(aud='discourse')}")
    assert response["statusCode"] == status
    assert "Location" not in response["headers"]


# The redirect corpus the other flows use (tests/unit/test_redirects.py HOSTILE), on Discourse's host.
C = HOST
HOSTILE_RETURN_URLS = {
    "other host": ["https://evil.example.net/session/sso_login", "https://example.com/session/sso_login"],
    "suffix trick": [f"https://{C}.evil.net/", f"https://{C}./session/sso_login", f"https://{C}%2eevil.net/"],
    "prefix trick": [f"https://evil{C}/", f"https://x.{C}/", f"https://evil.net/{C}", f"https://evil.net?{C}"],
    "userinfo": [
        f"https://{C}@evil.net/",
        f"https://user:pw@{C}/",
        f"https://evil.net%40{C}/",
        f"https://evil.net@{C}/",
    ],
    "backslash": [
        f"https://evil.net\\{C}/",
        f"https://evil.net\\@{C}/",
        "https:\\\\evil.net/",
        f"https://{C}\\.evil.net/",
    ],
    "scheme-relative": ["//evil.net/", "///evil.net/", "/\\evil.net/", f"//{C}/session/sso_login", "\\\\evil.net/"],
    "relative": ["/session/sso_login", "session/sso_login", "?x=1"],
    "other schemes": [
        f"http://{C}/session/sso_login",
        f"javascript:alert(1)//https://{C}/",
        "data:text/html,<script>alert(1)</script>",
        f"ftp://{C}/",
        f"https:{C}/session/sso_login",
        f"https:/{C}/session/sso_login",
        f" https://{C}/session/sso_login",
    ],
    "encoded dots": [
        "https://community%2eexample%2ecom/",
        "https://community.example%2Ecom.evil.net/",
        f"https://evil.net%2f@{C}/",
        "https://community%252eexample.com/",
    ],
    "unicode dots and look-alikes": [
        "https://community\u3002example\u3002com/",
        "https://community\uff0eexample\uff0ecom/",
        f"https://{C}\u2025evil.net/",
        "https://c\u043emmunity.example.com/",
        f"https://{C}\u200b/",
    ],
    "control characters": [
        f"https://{C}/session/sso_login\r\nLocation: https://evil.net/",
        f"https://{C}/\x00",
        f"https://evil.net\t.{C}/",
        f"https://{C}/\x7f",
        f"\x01https://{C}/",
        f"https://{C}/session/sso_login\n",
    ],
    "ports": [f"https://{C}:8443/", f"https://{C}:0/", f"https://{C}:99999/", f"https://{C}:443:443/"],
    "ip literals": ["https://127.0.0.1/", "https://[::1]/", "https://0x7f000001/", "https://169.254.169.254/"],
    "path tricks": [f"https://{C}//evil.net/", f"https://{C}/session/sso_login<script>"],
    "too long": [f"{RETURN_URL}?x=" + "a" * 2100],
    # Discourse would read two of each: whoever wrote the first would choose the session
    "answer already in it": [f"{RETURN_URL}?sso=x&sig=y", f"{RETURN_URL}?SIG=y", f"{RETURN_URL}?a=1&%73so=x"],
}


@pytest.mark.parametrize(
    "url", [pytest.param(url, id=f"{kind}: {url[:60]!r}") for kind, urls in HOSTILE_RETURN_URLS.items() for url in urls]
)
def test_a_hostile_return_sso_url_is_refused_even_when_signed(discourse: ModuleType, url: str) -> None:
    sso = discourse_sso({"nonce": "abc", "return_sso_url": url})
    for token in (None, make_login_token(aud="discourse")):
        response = invoke(discourse, connect_query(sso, token=token))
        assert 400 <= response["statusCode"] < 500, url
        assert "Location" not in response["headers"]
        assert "evil.net" not in response["body"]
        assert "<script>" not in response["body"]


def test_a_return_url_on_discourses_host_with_another_path_is_followed(discourse: ModuleType) -> None:
    # Discourse signed it; only the host is ours to hold it to (a subfolder site answers on another path)
    sso = discourse_sso({"nonce": "abc", "return_sso_url": f"{DISCOURSE_URL}/forum/session/sso_login"})
    location = invoke(discourse, connect_query(sso, token=make_login_token(aud="discourse")))["headers"]["Location"]
    assert location.startswith(f"{DISCOURSE_URL}/forum/session/sso_login?sso=")


# --- sign-in round trips -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("event", EVENTS)
def test_whole_round_trip_through_the_platform(discourse: ModuleType, event: str) -> None:
    # Given Discourse's request and no login token
    original = load_event(event)
    first = invoke(discourse, event=event)

    # Then the member is sent to sign in, with everything Discourse sent carried back unchanged
    return_to = login_redirect(first)
    host = original["requestContext"]["domainName"]
    assert return_to == f"https://{host}{original['rawPath']}?{original['rawQueryString']}"

    # When the platform sends them back with a login token
    url = urlsplit(return_to)
    token = make_login_token("amy@example.com", aud="discourse")
    second = invoke(discourse, f"{url.query}&login_token={token}", event=event, path=url.path)

    # Then they land on return_sso_url, signed in as themselves, with Discourse's nonce
    assert second["statusCode"] == 302
    fields = answer(second["headers"]["Location"])
    assert (fields["email"], fields["nonce"]) == ("amy@example.com", EVENT_NONCE)


def test_an_expired_login_token_goes_round_trip_without_the_stale_token(discourse: ModuleType) -> None:
    stale = make_login_token(aud="discourse", issued=int(time.time()) - 3600, lifetime=600)
    query = connect_query()
    return_to = login_redirect(invoke(discourse, f"{query}&login_token={stale}"))
    assert return_to == f"https://{API_HOST}/discourse/login?{query}"


def test_the_platform_sending_a_member_straight_here_hands_them_to_discourse_first(discourse: ModuleType) -> None:
    # Given the platform's "Community" link: a login token, nothing from Discourse
    response = invoke(discourse, f"login_token={make_login_token(EMAIL, aud='discourse', name='Jane')}")

    # Then Discourse must start (it makes the nonce); who they are waits in a short-lived cookie
    assert response["statusCode"] == 302
    assert response["headers"]["Location"] == START_URL
    handoff = cookie(response, HANDOFF)
    assert all(flag in handoff for flag in ("HttpOnly", "Secure", "SameSite=Lax"))
    assert "sso=" not in response["headers"]["Location"]

    # When Discourse sends the browser back with its request, the cookie signs them in, and is cleared
    back = invoke(discourse, connect_query(), cookies=[handoff.split(";", 1)[0]])
    assert back["statusCode"] == 302
    fields = answer(back["headers"]["Location"])
    assert (fields["email"], fields["name"]) == (EMAIL, "Jane")
    assert cookie(back, HANDOFF).startswith(f"{HANDOFF}=;")


def test_with_nothing_at_all_the_member_signs_in_then_goes_to_discourse(discourse: ModuleType) -> None:
    return_to = login_redirect(invoke(discourse, ""))
    assert return_to == f"https://{API_HOST}/discourse/login"
    response = invoke(discourse, f"login_token={make_login_token(aud='discourse')}")
    assert response["headers"]["Location"] == START_URL


def test_back_from_discourse_without_the_cookie_goes_through_sign_in(discourse: ModuleType) -> None:
    # The cookie expired or another browser: the platform, not a guess
    query = connect_query()
    assert login_redirect(invoke(discourse, query)) == f"https://{API_HOST}/discourse/login?{query}"


def test_a_forged_request_with_a_valid_handoff_cookie_is_still_refused(discourse: ModuleType) -> None:
    handoff = cookie(invoke(discourse, f"login_token={make_login_token(aud='discourse')}"), HANDOFF)
    sso = discourse_sso()
    response = invoke(discourse, connect_query(sso, hmac_hex(sso, "forged")), cookies=[handoff.split(";", 1)[0]])
    assert response["statusCode"] == 403
    assert "Location" not in response["headers"]


# --- email links -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("event", EVENTS)
def test_an_email_link_shows_a_page_then_its_button_sends_the_reader_through_discourse(
    discourse: ModuleType, link_tables: Any, event: str
) -> None:
    # Given a link to the Discourse route (Discourse did not start this)
    link = a_link(name="Jane Doe")
    opened = load_event(event, query=f"login_token={link}")

    # When a scanner or the reader opens it, nothing is minted or handed off: a page with one button
    shown = discourse.lambda_handler(opened, LambdaContext())
    assert shown["statusCode"] == 200
    assert "Location" not in shown["headers"]
    assert not any(raw.startswith(HANDOFF) for raw in shown.get("cookies", []))
    assert link_tables.scan(TableName="sso-bridge-spent-links-test")["Items"] == []

    # When the reader presses Continue: spent, and off to Discourse's own start (303: the browser follows with GET)
    pressed_response = discourse.lambda_handler(pressed(opened, LinkPage.from_response(shown)), LambdaContext())
    assert pressed_response["statusCode"] == 303
    assert pressed_response["headers"]["Location"] == START_URL
    [item] = link_tables.scan(TableName="sso-bridge-spent-links-test")["Items"]
    assert item["vendor"] == {"S": "discourse"}

    # Then Discourse comes back with its nonce, and the reader is signed in as the link's person
    handoff = cookie(pressed_response, HANDOFF).split(";", 1)[0]
    back = invoke(discourse, connect_query(), event=event, cookies=[handoff])
    assert back["statusCode"] == 302
    fields = answer(back["headers"]["Location"])
    assert (fields["email"], fields["name"]) == (EMAIL, "Jane Doe")


def test_a_spent_link_goes_through_sign_in_and_never_to_discourse(discourse: ModuleType, link_tables: Any) -> None:
    opened = load_event(EVENTS[0], query=f"login_token={a_link()}")
    page = LinkPage.from_response(discourse.lambda_handler(opened, LambdaContext()))
    assert discourse.lambda_handler(pressed(opened, page), LambdaContext())["statusCode"] == 303
    again = discourse.lambda_handler(pressed(opened, page), LambdaContext())
    assert login_redirect(again) == f"https://{API_HOST}/discourse/login"
    assert HANDOFF not in json.dumps(again.get("cookies", []))


def test_the_handoff_cookie_never_carries_a_links_rights(discourse: ModuleType, link_tables: Any) -> None:
    opened = load_event(EVENTS[0], query=f"login_token={a_link()}")
    page = LinkPage.from_response(discourse.lambda_handler(opened, LambdaContext()))
    handoff = cookie(discourse.lambda_handler(pressed(opened, page), LambdaContext()), HANDOFF)
    claims = jwt.decode(
        handoff.split(";", 1)[0].partition("=")[2], LOGIN_TOKEN_KEY, algorithms=["HS256"], audience="discourse"
    )
    assert "use" not in claims
    assert claims["exp"] - claims["iat"] <= 120


# --- sign-in with an OpenID provider -----------------------------------------------------------------------------


def test_with_openid_the_member_signs_in_at_the_provider_and_comes_back_to_discourse(
    aws: Any, link_tables: Any, load_function: Callable[..., ModuleType]
) -> None:
    from tests.oidc_in_process import InProcessProvider

    provider = InProcessProvider()
    aws.create_secret(Name="sso-bridge/oidc-client", SecretString=provider.client_secret)
    module = load_function(
        "discourse",
        OIDC_ISSUER=provider.issuer,
        OIDC_CLIENT_ID=provider.client_id,
        OIDC_CLIENT_SECRET_ID="sso-bridge/oidc-client",
        OIDC_PACKAGES_PATH="/nonexistent/oidc-packages",
    )
    module.flow.oidc.provider._opener = provider.opener()
    query = connect_query()

    # Discourse's request, signed out: to the provider, Discourse's parameters kept in the state
    started = invoke(module, query)
    assert started["statusCode"] == 302
    assert started["headers"]["Location"].startswith(provider.issuer)
    [state_cookie] = started["cookies"]

    # The provider's answer at /oidc/callback: back to the route, with Discourse's parameters and a login token
    callback = load_event(EVENTS[0], query=provider.authorize_url(started["headers"]["Location"]))
    callback["rawPath"] = callback["requestContext"]["http"]["path"] = "/oidc/callback"
    callback["cookies"] = [state_cookie.split(";", 1)[0]]
    back = module.lambda_handler(callback, LambdaContext())
    assert back["statusCode"] == 302, back["body"][:300]
    url = urlsplit(back["headers"]["Location"])
    assert (url.path, url.query.startswith(f"{query}&login_token=")) == ("/discourse/login", True)

    # And on to Discourse, with the provider's sub as the external id
    fields = answer(invoke(module, url.query)["headers"]["Location"])
    assert fields["email"]
    assert fields["external_id"] != fields["email"]


# --- configuration -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"DISCOURSE_URL": ""}, "DISCOURSE_URL"),
        ({"DISCOURSE_URL": "community.example.com"}, "DISCOURSE_URL"),
        ({"DISCOURSE_URL": "http://community.example.com"}, "DISCOURSE_URL"),
        ({"DISCOURSE_URL": "https://community.example.com/forum"}, "DISCOURSE_URL"),
        ({"DISCOURSE_URL": "https://community.example.com?x=1"}, "DISCOURSE_URL"),
        ({"DISCOURSE_URL": "https://community.example.com#top"}, "DISCOURSE_URL"),
        ({"DISCOURSE_URL": "https://community.example.com:8443"}, "DISCOURSE_URL"),
        ({"DISCOURSE_URL": "https://admin@community.example.com"}, "DISCOURSE_URL"),
        ({"DISCOURSE_URL": "https://community\uff0eexample.com"}, "DISCOURSE_URL"),
        ({"DISCOURSE_SECRET_ID": ""}, "DISCOURSE_SECRET_ID"),
        ({"DISCOURSE_SECRET_ID": SECRET_IDS["login"]}, "DISCOURSE_SECRET_ID"),
    ],
)
def test_bad_configuration_names_the_variable(
    load_function: Callable[..., ModuleType], variables: dict[str, str], named: str
) -> None:
    from sso_bridge.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=named):
        load_function("discourse", **variables)


@pytest.mark.parametrize("url", ["https://Community.Example.com/", "https://community.example.com:443"])
def test_an_origin_with_a_slash_capitals_or_the_default_port_is_the_same_community(
    aws: Any, load_function: Callable[..., ModuleType], url: str
) -> None:
    module = load_function("discourse", DISCOURSE_URL=url)
    assert module.settings.discourse_url == DISCOURSE_URL
    response = invoke(module, f"login_token={make_login_token(aud='discourse')}")
    assert response["headers"]["Location"] == START_URL


# --- outages, pages, logs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("with_token", [True, False])
def test_secrets_manager_outage_is_a_503_with_retry_after_and_no_answer(
    discourse: ModuleType, aws: Any, with_token: bool
) -> None:
    # The secret is needed to check Discourse's request, so even a signed-out member gets the 503, not a round trip
    aws.delete_secret(SecretId=SECRET_IDS["discourse"], ForceDeleteWithoutRecovery=True)
    token = make_login_token(aud="discourse") if with_token else None
    response = invoke(discourse, connect_query(token=token))
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"].isdigit()
    assert "Location" not in response["headers"]


def test_placeholder_connect_secret_is_never_used(discourse: ModuleType, aws: Any) -> None:
    aws.put_secret_value(SecretId=SECRET_IDS["discourse"], SecretString="REPLACE_ME with the connect secret")
    sso = discourse_sso()
    response = invoke(discourse, connect_query(sso, hmac_hex(sso, "REPLACE_ME with the connect secret")))
    assert response["statusCode"] == 503
    assert "Location" not in response["headers"]


def test_unknown_path_on_the_function_url_is_a_404_page(discourse: ModuleType) -> None:
    response = invoke(discourse, event=EVENTS[1], path="/wp-admin")
    assert response["statusCode"] == 404


def test_a_refusal_page_says_what_to_do_and_echoes_nothing(discourse: ModuleType) -> None:
    sso = discourse_sso({"nonce": "<b>nonce</b>", "return_sso_url": "https://evil.example.net/<i>"})
    response = invoke(discourse, connect_query(sso, hmac_hex(sso, "wrong")))
    assert response["statusCode"] == 403
    assert response["headers"]["Content-Type"].startswith("text/html")
    assert "press Log in again" in unescape(response["body"])
    for echoed in ("<b>", "<i>", "evil.example.net", sso[:20]):
        assert echoed not in response["body"]


def test_logs_name_the_outcome_but_never_the_request_the_answer_or_a_token(
    discourse: ModuleType, log_stream: Callable[[ModuleType], io.StringIO]
) -> None:
    logs = log_stream(discourse)
    nonce = secrets.token_hex(16)
    sso = discourse_sso(nonce=nonce)
    token = make_login_token(aud="discourse", jti="login-321")
    invoke(discourse, connect_query(sso))  # round trip
    invoke(discourse, connect_query(sso, "0" * 64))  # refusal
    handed = invoke(discourse, f"login_token={token}")  # hand-off
    issued = invoke(discourse, connect_query(sso, token=token))
    out = logs.getvalue()
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line.get("outcome") for line in lines] == ["login_redirect", "refused", "handed_off", "issued"]
    assert lines[1]["reason"] == "discourse_signature_invalid"
    assert (lines[3]["login_jti"], lines[3]["service"]) == ("login-321", "discourse")
    answered = parse_qs(urlsplit(issued["headers"]["Location"]).query)
    handoff = cookie(handed, HANDOFF).split(";", 1)[0].partition("=")[2]
    for secret in (sso, nonce, hmac_hex(sso), token, answered["sso"][0], answered["sig"][0], handoff, KEY):
        assert secret not in out


# --- the stand-in: Discourse's side, as its code does it ------------------------------------------------------------


def call(app: App, url: str, *, cookies: str | None = None) -> Reply:
    parts = urlsplit(url)
    target = f"{parts.path}?{parts.query}" if parts.query else parts.path
    headers = [("Host", "127.0.0.1:8443")] + ([("Cookie", cookies)] if cookies else [])
    return app(Request("GET", target, headers, b"", "127.0.0.1", "HTTP/1.1", 8443))


def h1(reply: Reply) -> str:
    body = reply.body.decode()
    return unescape(body.split("<h1>", 1)[1].split("</h1>", 1)[0])


def header(reply: Reply, name: str) -> str:
    [value] = [value for key, value in reply.headers if key.lower() == name.lower()]
    return value


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def community(clock: Callable[[], float] = time.time) -> App:
    return standin.discourse(host=HOST, key=KEY, connect_url=f"https://{API_HOST}/discourse/login", clock=clock)


def start(app: App) -> tuple[str, str]:
    """Log in at the community: the bridge URL Discourse sends the browser to, and the session cookie it set."""
    reply = call(app, "/session/sso?return_path=/t/welcome/1")
    assert reply.status == 302
    session = header(reply, "Set-Cookie").split(";", 1)[0]
    return header(reply, "Location"), session


def bridge_answer(discourse: ModuleType, connect_url: str, email: str = EMAIL, **claims: Any) -> str:
    token = make_login_token(email, aud="discourse", **claims)
    response = invoke(discourse, f"{urlsplit(connect_url).query}&login_token={token}")
    assert response["statusCode"] == 302, response["body"][:300]
    return str(response["headers"]["Location"])


def test_the_stand_in_signs_in_whom_the_bridge_signed_for(discourse: ModuleType) -> None:
    app = community()
    # The community's Log in goes to the bridge with Discourse's request, signed as Discourse signs it
    connect_url, session = start(app)
    assert connect_url.startswith(f"https://{API_HOST}/discourse/login?sso=")
    fields = parse_qs(urlsplit(connect_url).query)
    assert hmac.compare_digest(hmac_hex(fields["sso"][0]), fields["sig"][0])
    assert parse_qs(base64.b64decode(fields["sso"][0]).decode())["return_sso_url"] == [RETURN_URL]

    # The bridge answers it; the community takes the answer in this browser
    location = bridge_answer(discourse, connect_url, sub="user-4711", name="Jane Doe")
    assert location.startswith(f"{RETURN_URL}?sso=")
    reply = call(app, location, cookies=session)
    assert (reply.status, h1(reply)) == (200, f"Signed in as {EMAIL}")
    assert "user-4711" in reply.body.decode()
    assert "/t/welcome/1" in reply.body.decode()

    # Each nonce signs in once
    again = call(app, location, cookies=session)
    assert again.status == 419
    assert "Nonce has already been used" in again.body.decode()


def test_the_stand_in_signs_in_a_reader_who_came_from_an_email_link(discourse: ModuleType, link_tables: Any) -> None:
    app = community()
    opened = load_event(EVENTS[0], query=f"login_token={a_link(name='Jane')}")
    page = LinkPage.from_response(discourse.lambda_handler(opened, LambdaContext()))
    handed = discourse.lambda_handler(pressed(opened, page), LambdaContext())
    # The browser follows the 303 to Discourse's start, which sends it back to the bridge with its request
    assert handed["headers"]["Location"] == START_URL
    connect_url, session = start(app)
    back = invoke(discourse, urlsplit(connect_url).query, cookies=[cookie(handed, HANDOFF).split(";", 1)[0]])
    assert h1(call(app, back["headers"]["Location"], cookies=session)) == f"Signed in as {EMAIL}"


def test_the_stand_in_refuses_an_answer_in_another_browser_or_too_late(discourse: ModuleType) -> None:
    clock = Clock()
    app = community(clock)
    connect_url, session = start(app)
    location = bridge_answer(discourse, connect_url)
    # Another browser (discourse_connect_csrf_protection): the nonce is not in its session
    assert call(app, location).status == 419
    assert call(app, location, cookies="_forum_session=someone-else").status == 419
    # Ten minutes later the nonce is gone
    clock.now += standin.DISCOURSE_NONCE_SECONDS + 1
    assert call(app, location, cookies=session).status == 419


def sign_answer(fields: dict[str, str], key: str = KEY) -> str:
    sso = base64.b64encode(urlencode(fields).encode()).decode()
    return f"sso={quote_plus(sso)}&sig={hmac_hex(sso, key)}"


@pytest.mark.parametrize(
    ("make", "status", "says"),
    [
        (
            lambda nonce: sign_answer({"nonce": nonce, "email": EMAIL, "external_id": "1"}, "another-key"),
            422,
            "signature",
        ),
        (
            # The classic mistake: the sig over the decoded payload
            lambda nonce: (lambda sso, decoded: f"sso={quote_plus(sso)}&sig={hmac_hex(decoded)}")(
                base64.b64encode(urlencode({"nonce": nonce, "email": EMAIL, "external_id": "1"}).encode()).decode(),
                urlencode({"nonce": nonce, "email": EMAIL, "external_id": "1"}),
            ),
            422,
            "signature",
        ),
        (lambda nonce: f"sso=not%20base64&sig={hmac_hex('not base64')}", 422, "Base64"),
        (lambda nonce: sign_answer({"nonce": "made-up", "email": EMAIL, "external_id": "1"}), 419, "Nonce"),
        (lambda nonce: sign_answer({"nonce": nonce, "email": EMAIL}), 500, "external_id"),
        (lambda nonce: sign_answer({"nonce": nonce, "email": EMAIL, "external_id": "null"}), 500, "external_id"),
        (lambda nonce: sign_answer({"nonce": nonce, "external_id": "1"}), 500, "email"),
        (lambda nonce: f"sig={'a' * 64}", 400, "sso"),
    ],
    ids=[
        "another key",
        "sig over the decoded payload",
        "not base64",
        "unknown nonce",
        "no external_id",
        "banned external_id",
        "no email",
        "no sso",
    ],
)
def test_the_stand_in_refuses_what_discourse_would(make: Callable[[str], str], status: int, says: str) -> None:
    app = community()
    connect_url, session = start(app)
    sso = parse_qs(urlsplit(connect_url).query)["sso"][0]
    nonce = parse_qs(base64.b64decode(sso).decode())["nonce"][0]
    reply = call(app, f"/session/sso_login?{make(nonce)}", cookies=session)
    assert reply.status == status
    assert says in reply.body.decode()
    assert "Signed in as" not in reply.body.decode()


def test_the_stand_in_asks_for_activation_when_told_to(discourse: ModuleType) -> None:
    # require_activation=true: no match by email, an activation mail instead of a session
    app = community()
    connect_url, session = start(app)
    nonce = parse_qs(base64.b64decode(parse_qs(urlsplit(connect_url).query)["sso"][0]).decode())["nonce"][0]
    fields = {"nonce": nonce, "email": EMAIL, "external_id": "1", "require_activation": "true"}
    reply = call(app, f"/session/sso_login?{sign_answer(fields)}", cookies=session)
    assert reply.status == 200
    assert "Signed in as" not in reply.body.decode()


def test_the_spec_builds_the_community_and_its_defaults_start_the_function(
    aws: Any, load_function: Callable[..., ModuleType]
) -> None:
    spec = standin.SPEC
    defaults = dict(spec.defaults)
    host = urlsplit(defaults["DISCOURSE_URL"]).hostname or ""
    login_url = f"http://localhost:3000{spec.login_path}"
    app = spec.make(StandInContext(host=host, key=KEY, login_url=login_url, env=defaults))
    assert "Log in" in call(app, spec.entry).body.decode()
    module = load_function("discourse", **defaults)
    reply = call(app, "/session/sso?return_path=/")
    connect_url, session = header(reply, "Location"), header(reply, "Set-Cookie").split(";", 1)[0]
    assert connect_url.startswith(f"{login_url}?sso=")
    location = bridge_answer(module, connect_url)
    assert location.startswith(f"https://{host}/session/sso_login?sso=")
    assert h1(call(app, location, cookies=session)) == f"Signed in as {EMAIL}"
