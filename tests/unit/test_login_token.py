"""Login-token verification: what signs a user in, what sends them to sign in, what is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest

from sso_bridge.errors import BadRequest, BridgeError, InputTooLarge, InvalidLoginToken, LoginRequired, WrongAudience
from sso_bridge.login_token import TokenKind, check_email, email_key, verify_login_token
from tests.helpers import LOGIN_TOKEN_KEY, make_login_token

MAX_TTL = 300
LINK_MAX_TTL = 7 * 86400
DAY = 86400
LINK_JTI = "0123456789abcdef0123456789abcdef"


def verify(token: str | None, audience: str = "clickfunnels") -> Any:
    return verify_login_token(
        token, keys=[LOGIN_TOKEN_KEY], audience=audience, max_ttl=MAX_TTL, link_max_ttl=LINK_MAX_TTL, leeway=30
    )


def make_link(**claims: Any) -> str:
    """A link token as `make link` mints it: one audience, a jti, use "link", days to live."""
    defaults: dict[str, Any] = {"lifetime": 3 * DAY, "jti": LINK_JTI, "use": "link"}
    return make_login_token(**{**defaults, **claims})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], payload: dict[str, Any], key: str = LOGIN_TOKEN_KEY) -> str:
    """A token built without PyJWT, for headers PyJWT refuses to write."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def valid_payload(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"email": "a@example.com", "aud": "clickfunnels", "iat": now, "exp": now + 60, **extra}


def test_valid_token_gives_the_identity() -> None:
    token = make_login_token("jane@example.com", name="Jane Doe", jti="j-1", redirect_to="https://x.example.com/")
    identity = verify(token)
    assert (identity.email, identity.name, identity.jti, identity.redirect_to) == (
        "jane@example.com",
        "Jane Doe",
        "j-1",
        "https://x.example.com/",
    )


def test_audience_list_including_ours_is_accepted() -> None:
    assert verify(make_login_token(aud=["kustomer", "clickfunnels"])).email == "jane.doe+vip@example.com"


def test_small_clock_skew_is_tolerated() -> None:
    assert verify(make_login_token(issued=int(time.time()) + 10)).email


@pytest.mark.parametrize("token", [None, ""])
def test_missing_token_asks_to_sign_in(token: str | None) -> None:
    with pytest.raises(LoginRequired):
        verify(token)


def test_expired_token_asks_to_sign_in() -> None:
    with pytest.raises(LoginRequired) as caught:
        verify(make_login_token(issued=int(time.time()) - 7200, lifetime=3600))
    assert caught.value.reason == "login_token_expired"


def _tampered() -> str:
    header, payload, signature = make_login_token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["email"] = "ceo@example.com"
    return f"{header}.{b64(json.dumps(claims).encode())}.{signature}"


HOSTILE: list[tuple[str, Any, type[BridgeError], int]] = [
    (
        "forged with another key",
        lambda: make_login_token(key="attacker-key-0123456789abcdef0123"),
        InvalidLoginToken,
        401,
    ),
    ("tampered payload", _tampered, InvalidLoginToken, 401),
    ("signature stripped", lambda: make_login_token().rsplit(".", 1)[0] + ".", InvalidLoginToken, 401),
    ("alg none", lambda: jwt.encode(valid_payload(), None, algorithm="none"), InvalidLoginToken, 401),
    ("alg HS512", lambda: make_login_token(algorithm="HS512"), InvalidLoginToken, 401),
    ("alg RS256 header", lambda: hand_made({"alg": "RS256", "typ": "JWT"}, valid_payload()), InvalidLoginToken, 401),
    ("wrong audience", lambda: make_login_token(aud="kustomer"), WrongAudience, 403),
    ("audience list without ours", lambda: make_login_token(aud=["kustomer", "happyfox"]), WrongAudience, 403),
    ("no audience", lambda: make_login_token(drop=("aud",)), InvalidLoginToken, 401),
    ("no email", lambda: make_login_token(drop=("email",)), InvalidLoginToken, 401),
    ("no exp", lambda: make_login_token(drop=("exp",)), InvalidLoginToken, 401),
    ("no iat", lambda: make_login_token(drop=("iat",)), InvalidLoginToken, 401),
    ("issued in the future", lambda: make_login_token(issued=int(time.time()) + 3600), InvalidLoginToken, 401),
    ("not yet valid", lambda: make_login_token(nbf=int(time.time()) + 3600), InvalidLoginToken, 401),
    ("lifetime over the cap", lambda: make_login_token(lifetime=MAX_TTL + 1), InvalidLoginToken, 401),
    ("interactive token lasting a day", lambda: make_login_token(lifetime=DAY), InvalidLoginToken, 401),
    ("link over the link cap", lambda: make_link(lifetime=LINK_MAX_TTL + 1), InvalidLoginToken, 401),
    ("link for two vendors", lambda: make_link(aud=["clickfunnels", "kustomer"]), InvalidLoginToken, 401),
    ("link without jti", lambda: make_link(drop=("jti",)), InvalidLoginToken, 401),
    ("link with a short jti", lambda: make_link(jti="abc"), InvalidLoginToken, 401),
    ("link with a jti of odd characters", lambda: make_link(jti="a" * 20 + "/../x"), InvalidLoginToken, 401),
    ("link with a numeric jti", lambda: make_link(jti=12345678901234567890), InvalidLoginToken, 401),
    ("unknown use", lambda: make_login_token(use="admin"), InvalidLoginToken, 401),
    ("use as a list", lambda: make_login_token(use=["link"]), InvalidLoginToken, 401),
    ("campaign with a newline", lambda: make_link(campaign="spring\nsale"), BadRequest, 400),
    ("campaign with non-ASCII", lambda: make_link(campaign="sal\u00e9"), BadRequest, 400),
    ("campaign too long", lambda: make_link(campaign="c" * 65), BadRequest, 400),
    ("campaign as a number", lambda: make_link(campaign=7), InvalidLoginToken, 401),
    ("exp as text", lambda: hand_made({"alg": "HS256"}, valid_payload(exp="tomorrow")), BadRequest, 400),
    ("iat as bool", lambda: hand_made({"alg": "HS256"}, valid_payload(iat=True)), InvalidLoginToken, 401),
    ("email as list", lambda: make_login_token(email=["a@example.com"]), InvalidLoginToken, 401),
    ("email without @", lambda: make_login_token(email="not-an-email"), BadRequest, 400),
    ("email with header injection", lambda: make_login_token(email="a@example.com\r\nBcc: x@y.z"), BadRequest, 400),
    ("email with spaces", lambda: make_login_token(email="a b@example.com"), BadRequest, 400),
    ("email too long", lambda: make_login_token(email="a" * 250 + "@example.com"), BadRequest, 400),
    ("name too long", lambda: make_login_token(name="n" * 201), BadRequest, 400),
    ("name with control characters", lambda: make_login_token(name="Jane\x00Doe"), InvalidLoginToken, 401),
    ("name as number", lambda: make_login_token(name=42), InvalidLoginToken, 401),
    ("garbage", lambda: "not.a.jwt", BadRequest, 400),
    ("one segment", lambda: "abc", BadRequest, 400),
    ("bad base64 header", lambda: "!!!." + make_login_token().split(".", 1)[1], BadRequest, 400),
    (
        "payload not json",
        lambda: hand_made({"alg": "HS256"}, {}).split(".")[0] + ".bm90IGpzb24." + "x",
        BadRequest,
        400,
    ),
    ("oversized", lambda: make_login_token(padding="x" * 5000), InputTooLarge, 414),
]


@pytest.mark.parametrize(
    ("make", "error", "status"),
    [pytest.param(make, error, status, id=case) for case, make, error, status in HOSTILE],
)
def test_hostile_tokens_are_refused(make: Any, error: type[BridgeError], status: int) -> None:
    with pytest.raises(error) as caught:
        verify(make())
    assert caught.value.status == status
    assert not isinstance(caught.value, LoginRequired)


def test_a_token_without_use_is_interactive() -> None:
    identity = verify(make_login_token(lifetime=MAX_TTL))
    assert identity.kind is TokenKind.INTERACTIVE
    assert not identity.is_link


def test_a_link_lives_days_and_says_so() -> None:
    # Given a link minted for an email campaign, valid for a week
    token = make_link(lifetime=LINK_MAX_TTL, campaign="spring-sale 2027", name="Jane Doe")

    # Then the bridge accepts it as a link, with its jti and campaign
    identity = verify(token)
    assert identity.kind is TokenKind.LINK
    assert (identity.jti, identity.campaign, identity.name) == (LINK_JTI, "spring-sale 2027", "Jane Doe")


def test_a_link_audience_may_be_a_list_of_one() -> None:
    assert verify(make_link(aud=["clickfunnels"])).is_link


def test_an_expired_link_asks_to_sign_in() -> None:
    with pytest.raises(LoginRequired) as caught:
        verify(make_link(issued=int(time.time()) - 8 * DAY, lifetime=LINK_MAX_TTL))
    assert caught.value.reason == "login_token_expired"


DEEP_LINK = "https://shop.example.com/customers/orders?tab=recent&page=2"


def expired_link(**claims: Any) -> str:
    """A link `make link` minted eight days ago (links live up to a week)."""
    return make_link(issued=int(time.time()) - 8 * DAY, lifetime=LINK_MAX_TTL, **claims)


def refusal(token: str, audience: str = "clickfunnels") -> LoginRequired:
    with pytest.raises(LoginRequired) as caught:
        verify(token, audience)
    assert caught.value.reason == "login_token_expired"
    return caught.value


@pytest.mark.parametrize("length", [len(DEEP_LINK), 2048])
def test_an_expired_link_still_says_where_its_reader_was_going(length: int) -> None:
    deep_link = DEEP_LINK + "x" * (length - len(DEEP_LINK))
    assert refusal(expired_link(redirect_to=deep_link)).deep_link == deep_link


def test_an_expired_link_signed_with_the_previous_key_still_says_where_its_reader_was_going() -> None:
    with pytest.raises(LoginRequired) as caught:
        verify_login_token(
            expired_link(redirect_to=DEEP_LINK, key="previous-login-token-key-0123456789abcdef"),
            keys=["current-login-token-key-0123456789abcdef", "previous-login-token-key-0123456789abcdef"],
            audience="clickfunnels",
            max_ttl=MAX_TTL,
            link_max_ttl=LINK_MAX_TTL,
            leeway=30,
        )
    assert caught.value.deep_link == DEEP_LINK


@pytest.mark.parametrize(
    ("token", "audience"),
    [
        (expired_link(), "clickfunnels"),  # no destination
        (expired_link(redirect_to=DEEP_LINK), "kustomer"),  # another vendor's link replayed here
        (expired_link(redirect_to=DEEP_LINK + "x" * (2049 - len(DEEP_LINK))), "clickfunnels"),  # over the limit
        (expired_link(redirect_to=DEEP_LINK + "\u202e"), "clickfunnels"),  # a hidden character
        (expired_link(redirect_to=["https://shop.example.com/"]), "clickfunnels"),  # not a string
    ],
    ids=["none", "other-audience", "too-long", "hidden-character", "not-a-string"],
)
def test_an_expired_link_with_a_bad_destination_says_nothing(token: str, audience: str) -> None:
    assert refusal(token, audience).deep_link is None


def hand_made_raw(header: bytes, payload: dict[str, Any], key: str = LOGIN_TOKEN_KEY) -> str:
    """A token whose header is any bytes at all, correctly signed: only the header's shape is wrong."""
    signing_input = f"{b64(header)}.{b64(json.dumps(payload).encode())}"
    signature = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


# Header shapes PyJWT refuses: each was a 500 while the header was read before decoding.
ODD_HEADERS: dict[str, bytes] = {
    "kid as a number": b'{"alg":"HS256","kid":5}',
    "kid as an object": b'{"alg":"HS256","kid":{"a":1}}',
    "crit naming a claim": b'{"alg":"HS256","crit":["exp"]}',
    "crit as text": b'{"alg":"HS256","crit":"exp"}',
    "crit empty": b'{"alg":"HS256","crit":[]}',
    "header a list": b'["HS256"]',
    "header a string": b'"HS256"',
    "header null": b"null",
    "header a number": b"256",
    "alg a list": b'{"alg":["HS256"]}',
    "alg null": b'{"alg":null}',
    "alg missing": b'{"typ":"JWT"}',
    "b64 false": b'{"alg":"HS256","b64":false,"crit":["b64"]}',
    "header not UTF-8": b'{"alg":"HS256","x":"\xff"}',
    "header with duplicate alg": b'{"alg":"none","alg":"HS256","kid":[]}',
}


@pytest.mark.parametrize("header", ODD_HEADERS.values(), ids=ODD_HEADERS.keys())
def test_odd_headers_are_refused_as_bad_tokens(header: bytes) -> None:
    with pytest.raises(BridgeError) as caught:
        verify(hand_made_raw(header, valid_payload()))
    assert caught.value.status in (400, 401)


@pytest.mark.parametrize("header", ODD_HEADERS.values(), ids=ODD_HEADERS.keys())
def test_odd_headers_are_refused_before_any_key_is_needed(header: bytes) -> None:
    """Even with a key that would verify, a header PyJWT refuses wins; a broken key source is never reached."""

    def keys() -> Any:
        yield LOGIN_TOKEN_KEY
        raise AssertionError("the previous key was asked for")

    with pytest.raises(BridgeError):
        verify_login_token(
            hand_made_raw(header, valid_payload()),
            keys=keys(),
            audience="clickfunnels",
            max_ttl=MAX_TTL,
            link_max_ttl=LINK_MAX_TTL,
            leeway=30,
        )


def test_an_unknown_header_field_is_not_trusted_but_not_refused() -> None:
    # jku/x5u point at keys elsewhere: ignored, the signature is checked with our key only.
    token = hand_made({"alg": "HS256", "jku": "https://attacker.example/keys", "kid": "attacker"}, valid_payload())
    assert verify(token).email == "a@example.com"
    forged = hand_made({"alg": "HS256", "jku": "https://attacker.example/keys"}, valid_payload(), key="a" * 40)
    with pytest.raises(InvalidLoginToken):
        verify(forged)


# Characters that must never pass, each by its Unicode category; the lists are examples, the rule is the category.
HIDDEN = {
    "NUL (Cc)": "\x00",
    "DEL (Cc)": "\x7f",
    "C1 NEL (Cc)": "\x85",
    "C1 CSI (Cc)": "\x9b",
    "right-to-left override (Cf)": "\u202e",
    "left-to-right isolate (Cf)": "\u2066",
    "pop directional isolate (Cf)": "\u2069",
    "zero-width space (Cf)": "\u200b",
    "zero-width joiner (Cf)": "\u200d",
    "byte order mark (Cf)": "\ufeff",
    "soft hyphen (Cf)": "\u00ad",
    "line separator (Zl)": "\u2028",
    "paragraph separator (Zp)": "\u2029",
    "private use (Co)": "\ue000",
    "unassigned (Cn)": "\u0378",
    "lone surrogate (Cs)": "\udcff",
}


@pytest.mark.parametrize("char", HIDDEN.values(), ids=HIDDEN.keys())
def test_hidden_characters_in_a_name_are_refused(char: str) -> None:
    with pytest.raises(InvalidLoginToken):
        verify(hand_made({"alg": "HS256"}, valid_payload(name=f"Jane{char}Doe")))


@pytest.mark.parametrize("char", HIDDEN.values(), ids=HIDDEN.keys())
def test_hidden_characters_in_an_email_local_part_are_refused(char: str) -> None:
    with pytest.raises(BadRequest):
        verify(hand_made({"alg": "HS256"}, valid_payload(email=f"jane{char}doe@example.com")))


@pytest.mark.parametrize("char", HIDDEN.values(), ids=HIDDEN.keys())
def test_hidden_characters_in_a_jti_are_refused(char: str) -> None:
    with pytest.raises(InvalidLoginToken):
        verify(hand_made({"alg": "HS256"}, valid_payload(jti=f"login-{char}-0123456789abcdef")))


# Letters that re.IGNORECASE folds into ASCII: each domain would pass as its ASCII look-alike.
FOLDING = {
    "Kelvin sign": "example.\u212aom",  # K
    "long s": "example.\u017fe",  # s
    "dotted capital I": "\u0130nfo.example.com",  # i
    "dotless i": "\u0131nfo.example.com",  # i
    "fullwidth letters": "\uff45xample.com",
    "Cyrillic a": "ex\u0430mple.com",
    "U-label": "b\u00fccher.example",
}


@pytest.mark.parametrize("domain", FOLDING.values(), ids=FOLDING.keys())
def test_non_ascii_domains_are_refused(domain: str) -> None:
    with pytest.raises(BadRequest):
        verify(make_login_token(email=f"jane@{domain}"))


@pytest.mark.parametrize(
    "email",
    [
        "jane@xn--bcher-kva.example",  # an IDNA A-label
        "zo\u00eb@example.com",  # a non-ASCII local part (RFC 6531)
        "o'brien+news@example.co.uk",
        "a`b@example.com",  # legal in a local part; the make targets never run it
        "J.Doe@Example.COM",
    ],
)
def test_real_addresses_still_pass(email: str) -> None:
    assert verify(make_login_token(email=email)).email == email


# Local parts NFKC would change: compatibility look-alikes and accents left uncomposed. The Kelvin sign is the
# dangerous one, as str.lower() folds it into k; each would be mistaken for (or keyed as) the address it imitates.
LOOK_ALIKES = {
    "Kelvin sign": "\u212aate",
    "fullwidth k": "\uff4bate",
    "long s": "\u017fam",
    "Angstrom sign": "\u212bsa",
    "ligature fi": "\ufb01ona",
    "superscript two": "jane\u00b2",
    "decomposed umlaut": "ka\u0308te",
}


@pytest.mark.parametrize("local", LOOK_ALIKES.values(), ids=LOOK_ALIKES.keys())
def test_look_alike_local_parts_are_refused(local: str) -> None:
    with pytest.raises(BadRequest) as refused:
        verify(make_login_token(email=f"{local}@example.com"))
    assert refused.value.reason == "email_invalid"
    # The log line tells the operator why an address that looks right was refused.
    assert refused.value.detail == "not in NFKC form (a look-alike character)"
    with pytest.raises(BadRequest):
        check_email(f"{local}@example.com")


@pytest.mark.parametrize(
    ("email", "key"),
    [
        ("Jane.Doe@Example.COM", "jane.doe@example.com"),
        ("\u00c4nne@example.com", "\u00e4nne@example.com"),  # capitalisation, in any script
        ("\u0130sa@example.com", "i\u0307sa@example.com"),  # Unicode's own lower case of the dotted capital I
        ("\u212aate@example.com", "\u212aate@example.com"),  # a look-alike keeps its own key, never kate@'s
        ("\uff4bATE@example.com", "\uff4bATE@example.com"),
    ],
)
def test_an_address_key_folds_capitalisation_and_never_a_look_alike(email: str, key: str) -> None:
    assert email_key(email) == key


def test_names_in_any_script_still_pass() -> None:
    for name in [
        "Zo\u00eb \u00c5ngstr\u00f6m",
        "\u5c71\u7530 \u592a\u90ce",
        "\u0645\u062d\u0645\u062f",
        "Ana-Mar\u00eda O'Neil",
    ]:
        assert verify(make_login_token(name=name)).name == name
