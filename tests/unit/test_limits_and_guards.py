"""Each size limit at its edge, each type guard, and the reason a refusal carries (the code beside it in JSON,
the metric and the log line), for the modules that decide who gets in; `make mutate` showed them missing.

Every other surviving mutant of login_token, redirects, request and link_store is equivalent: the list, with why,
is in the issue note ("make mutate").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import types
from typing import Any

import boto3
import jwt
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber

from sso_bridge import login_token
from sso_bridge.errors import (
    BadRequest,
    BridgeError,
    DependencyUnavailable,
    InputTooLarge,
    InvalidLoginToken,
    LoginRequired,
    MalformedLoginToken,
    RedirectNotAllowed,
)
from sso_bridge.http import Event
from sso_bridge.link_store import LinkSpend, LinkState, LinkStore
from sso_bridge.login_token import (
    MAX_CAMPAIGN_LENGTH,
    MAX_EMAIL_LENGTH,
    MAX_NAME_LENGTH,
    MAX_TOKEN_LENGTH,
    TokenKind,
    verify_login_token,
)
from sso_bridge.redirects import MAX_URL_LENGTH, allowed_url, with_query_param
from sso_bridge.request import MAX_QUERY_LENGTH, Query, request_url
from tests.helpers import LOGIN_TOKEN_KEY, load_event, make_login_token

MAX_TTL = 300
LINK_MAX_TTL = 7 * 86400
LEEWAY = 30
LINK_JTI = "0123456789abcdef0123456789abcdef"
ALLOWED = frozenset({"portal.example.com"})


def verify(token: str | None, *, keys: Any = (LOGIN_TOKEN_KEY,)) -> Any:
    return verify_login_token(
        token, keys=keys, audience="clickfunnels", max_ttl=MAX_TTL, link_max_ttl=LINK_MAX_TTL, leeway=LEEWAY
    )


def refusal(token: str | None, **kwargs: Any) -> BridgeError:
    """What the bridge answers ``token`` with: the exception, for its class, status, reason and detail."""
    with pytest.raises(BridgeError) as caught:
        verify(token, **kwargs)
    return caught.value


def make_link(**claims: Any) -> str:
    return make_login_token(**{"lifetime": 3 * 86400, "jti": LINK_JTI, "use": "link", **claims})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(payload: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    """A token signed with our key whose claims PyJWT would not write (booleans, text for times, ...)."""
    signing_input = f"{b64(json.dumps(header or {'alg': 'HS256'}).encode())}.{b64(json.dumps(payload).encode())}"
    signature = hmac.new(LOGIN_TOKEN_KEY.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"email": "a@example.com", "aud": "clickfunnels", "iat": now, "exp": now + 60, **extra}


# --- login token: size limits, exactly at the edge --------------------------------------------------------------


def token_of_length(length: int) -> str:
    """A valid token exactly ``length`` characters long (padded with a claim the bridge ignores)."""
    now = int(time.time())
    for pad in range(length):
        token = make_login_token(issued=now, padding="x" * pad)
        if len(token) == length:
            return token
        if len(token) > length:
            break
    raise AssertionError(f"no token of {length} characters")


def test_a_token_of_exactly_the_maximum_length_is_accepted() -> None:
    token = token_of_length(MAX_TOKEN_LENGTH)
    assert len(token) == 4096
    assert verify(token).email == "jane.doe+vip@example.com"


def test_a_token_one_character_over_the_maximum_is_refused_for_its_length_alone() -> None:
    token = token_of_length(MAX_TOKEN_LENGTH + 1)
    # It is otherwise a good HS256 token: PyJWT would accept it
    assert jwt.decode(token, LOGIN_TOKEN_KEY, algorithms=["HS256"], audience="clickfunnels")["email"]
    error = refusal(token)
    assert isinstance(error, InputTooLarge)
    assert (error.status, error.reason, error.detail) == (414, "login_token_too_long", "4097 characters")


def test_an_email_of_exactly_the_maximum_length_is_accepted_and_one_more_is_refused() -> None:
    email = "a" * (MAX_EMAIL_LENGTH - len("@example.com")) + "@example.com"
    assert len(email) == 254
    assert verify(make_login_token(email)).email == email
    error = refusal(make_login_token("a" + email))
    assert isinstance(error, MalformedLoginToken)
    assert (error.status, error.reason) == (400, "email_too_long")


def test_a_name_of_exactly_the_maximum_length_is_accepted_and_one_more_is_refused() -> None:
    name = "n" * MAX_NAME_LENGTH
    assert len(name) == 200
    assert verify(make_login_token(name=name)).name == name
    error = refusal(make_login_token(name=name + "n"))
    assert isinstance(error, MalformedLoginToken)
    assert (error.status, error.reason, error.detail) == (400, "claim_too_long", "name")


@pytest.mark.parametrize("length", [16, 128])
def test_a_link_jti_at_either_edge_of_its_length_is_accepted(length: int) -> None:
    jti = "J" * length
    identity = verify(make_link(jti=jti))
    assert (identity.is_link, identity.jti) == (True, jti)


def test_a_link_jti_one_under_the_minimum_is_refused() -> None:
    error = refusal(make_link(jti="J" * 15))
    assert isinstance(error, InvalidLoginToken)
    assert (error.status, error.reason) == (401, "link_jti_invalid")


def test_a_jti_one_over_the_maximum_is_refused() -> None:
    error = refusal(make_link(jti="J" * 129))
    assert isinstance(error, MalformedLoginToken)
    assert (error.status, error.reason, error.detail) == (400, "claim_too_long", "jti")


def test_a_campaign_of_exactly_the_maximum_length_is_accepted_and_one_more_is_refused() -> None:
    campaign = "c" * MAX_CAMPAIGN_LENGTH
    assert len(campaign) == 64
    assert verify(make_link(campaign=campaign)).campaign == campaign
    error = refusal(make_link(campaign=campaign + "c"))
    assert isinstance(error, MalformedLoginToken)
    assert (error.status, error.reason, error.detail) == (400, "claim_too_long", "campaign")


def test_a_redirect_to_claim_of_exactly_2048_characters_is_accepted_and_one_more_is_refused() -> None:
    redirect_to = "https://portal.example.com/" + "a" * (2048 - len("https://portal.example.com/"))
    assert verify(make_login_token(redirect_to=redirect_to)).redirect_to == redirect_to
    error = refusal(make_login_token(redirect_to=redirect_to + "a"))
    assert isinstance(error, MalformedLoginToken)
    assert (error.status, error.reason, error.detail) == (400, "claim_too_long", "redirect_to")


# --- login token: the types of iat and exp -----------------------------------------------------------------------

# Each case from the time of the test (a mutation run may import this module minutes before it runs it).
WRONG_TYPES: dict[str, Any] = {
    "iat true": lambda now: {"iat": True},
    "iat false": lambda now: {"iat": False},
    # PyJWT takes int("...") of a numeric string: only the bridge's own type check refuses these
    "iat numeric text": lambda now: {"iat": str(now)},
    "exp numeric text": lambda now: {"exp": str(now + 60)},
    "both numeric text": lambda now: {"iat": str(now), "exp": str(now + 60)},
}


@pytest.mark.parametrize("times", WRONG_TYPES.values(), ids=WRONG_TYPES.keys())
def test_iat_and_exp_of_the_wrong_type_are_refused(times: Any) -> None:
    error = refusal(hand_made({**claims(), **times(int(time.time()))}))
    assert type(error) is InvalidLoginToken
    assert (error.status, error.reason) == (401, "login_token_times")


@pytest.mark.parametrize("claim", ["iat", "exp"])
def test_iat_or_exp_as_null_is_a_missing_claim(claim: str) -> None:
    error = refusal(hand_made({**claims(), claim: None}))
    assert type(error) is InvalidLoginToken
    assert (error.status, error.reason, error.detail) == (401, "login_token_claims", claim)


@pytest.mark.parametrize("exp", [True, False])
def test_exp_as_a_boolean_never_signs_anyone_in(exp: bool) -> None:
    # PyJWT reads true as 1 (1970) before the bridge sees the type: the token is already expired.
    error = refusal(hand_made({**claims(), "exp": exp}))
    assert isinstance(error, LoginRequired)
    assert (error.status, error.reason) == (401, "login_token_expired")


def test_iat_as_text_is_refused_by_pyjwt_before_the_bridge_reads_it() -> None:
    error = refusal(hand_made({**claims(), "iat": "yesterday"}))
    assert type(error) is InvalidLoginToken
    assert (error.status, error.reason, error.detail) == (401, "login_token_invalid", "InvalidIssuedAtError")


def test_exp_as_text_is_a_malformed_token() -> None:
    error = refusal(hand_made({**claims(), "exp": "tomorrow"}))
    assert isinstance(error, MalformedLoginToken)
    assert (error.status, error.reason) == (400, "login_token_malformed")


def test_fractional_times_are_accepted_and_read_as_whole_seconds() -> None:
    now = int(time.time())
    identity = verify(hand_made({**claims(), "iat": now + 0.75, "exp": now + 60.5}))
    assert (identity.issued_at, identity.expires_at) == (now, now + 60)


def test_the_identity_carries_the_token_times() -> None:
    now = int(time.time())
    identity = verify(make_login_token(issued=now, lifetime=120))
    assert (identity.issued_at, identity.expires_at) == (now, now + 120)


# --- login token: the iat checks, PyJWT's and the bridge's own -----------------------------------------------------


def test_a_token_issued_in_the_future_is_refused_by_pyjwt() -> None:
    now = int(time.time())
    error = refusal(make_login_token(issued=now + LEEWAY + 60))
    assert type(error) is InvalidLoginToken
    assert (error.status, error.reason, error.detail) == (401, "login_token_invalid", "ImmatureSignatureError")


def frozen_clock(monkeypatch: pytest.MonkeyPatch, now: float) -> None:
    """The bridge's clock (not PyJWT's, which keeps the real time) reads ``now``."""
    monkeypatch.setattr(login_token, "time", types.SimpleNamespace(time=lambda: now))


def test_the_bridge_refuses_a_future_token_even_where_pyjwt_let_it_through(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the bridge's clock 100 s behind PyJWT's: PyJWT accepts iat = now + 10, the bridge's own check does not
    now = int(time.time())
    frozen_clock(monkeypatch, now - 100)
    error = refusal(make_login_token(issued=now + 10, lifetime=60))
    assert type(error) is InvalidLoginToken
    assert (error.status, error.reason) == (401, "login_token_future")


def test_a_token_issued_exactly_at_the_leeway_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    now = int(time.time())
    frozen_clock(monkeypatch, float(now))
    assert verify(make_login_token(issued=now + LEEWAY, lifetime=60)).issued_at == now + LEEWAY


# --- login token: the reason each refusal carries -----------------------------------------------------------------


def test_a_token_signed_with_the_previous_key_is_accepted_during_a_rotation() -> None:
    token = make_login_token()
    assert verify(token, keys=["the-new-login-key-0123456789abcdef0123456789", LOGIN_TOKEN_KEY]).email


def test_reasons_of_token_refusals() -> None:
    cases: list[tuple[str | None, type[BridgeError], int, str, str]] = [
        (None, LoginRequired, 401, "login_token_missing", ""),
        ("e\u0301yJ.e30.x", MalformedLoginToken, 400, "login_token_malformed", ""),
        ("not.a.jwt", MalformedLoginToken, 400, "login_token_malformed", ""),
        (
            make_login_token(key="another-key-0123456789abcdef0123456789ab"),
            InvalidLoginToken,
            401,
            "login_token_signature",
            "",
        ),
        (make_login_token(algorithm="HS512"), InvalidLoginToken, 401, "login_token_alg", ""),
        (make_login_token(drop=("email",)), InvalidLoginToken, 401, "login_token_claims", "email"),
        (
            make_login_token(nbf=int(time.time()) + 3600),
            InvalidLoginToken,
            401,
            "login_token_invalid",
            "ImmatureSignatureError",
        ),
        (
            make_login_token(lifetime=MAX_TTL + 1),
            InvalidLoginToken,
            401,
            "login_token_lifetime",
            f"interactive {MAX_TTL + 1}s",
        ),
        (
            make_link(lifetime=LINK_MAX_TTL + 1),
            InvalidLoginToken,
            401,
            "login_token_lifetime",
            f"link {LINK_MAX_TTL + 1}s",
        ),
        (make_login_token(use="u" * 30), InvalidLoginToken, 401, "login_token_use", "u" * 20),
        (make_link(aud=["clickfunnels", "kustomer"]), InvalidLoginToken, 401, "link_audience", "2 audiences"),
        (make_link(drop=("jti",)), InvalidLoginToken, 401, "link_jti_missing", ""),
        (make_link(jti="a" * 20 + "/../x"), InvalidLoginToken, 401, "link_jti_invalid", ""),
    ]
    for token, kind, status, reason, detail in cases:
        error = refusal(token)
        assert (type(error), error.status, error.reason, error.detail) == (kind, status, reason, detail), token


def test_reasons_of_claim_refusals() -> None:
    cases: list[tuple[str, type[BridgeError], int, str, str]] = [
        (hand_made(claims(email=["a@example.com"])), InvalidLoginToken, 401, "email_type", ""),
        (make_login_token(email="not-an-email"), MalformedLoginToken, 400, "email_invalid", ""),
        # passes the pattern (a zero-width space is no \s) and is caught by the hidden-character check
        (make_login_token(email="jane\u200bdoe@example.com"), MalformedLoginToken, 400, "email_invalid", ""),
        (make_login_token(name=42), InvalidLoginToken, 401, "claim_type", "name"),
        (make_login_token(name="Jane\u202eDoe"), InvalidLoginToken, 401, "claim_characters", "name"),
        (make_login_token(redirect_to=["x"]), InvalidLoginToken, 401, "claim_type", "redirect_to"),
        (make_link(campaign=7), InvalidLoginToken, 401, "claim_type", "campaign"),
        (make_link(campaign="spring\nsale"), MalformedLoginToken, 400, "claim_characters", "campaign"),
        (make_link(campaign=" spring"), MalformedLoginToken, 400, "claim_characters", "campaign"),
    ]
    for token, kind, status, reason, detail in cases:
        error = refusal(token)
        assert (type(error), error.status, error.reason, error.detail) == (kind, status, reason, detail), token


def test_the_kind_of_a_valid_token() -> None:
    assert verify(make_login_token()).kind is TokenKind.INTERACTIVE
    assert verify(make_link(aud=["clickfunnels"])).kind is TokenKind.LINK


# --- redirects ----------------------------------------------------------------------------------------------------

BASE_URL = "https://portal.example.com/"


def test_a_url_of_exactly_the_maximum_length_is_allowed_and_one_more_is_refused() -> None:
    url = BASE_URL + "a" * (MAX_URL_LENGTH - len(BASE_URL))
    assert len(url) == 2048
    assert allowed_url(url, ALLOWED) == url
    with pytest.raises(InputTooLarge) as caught:
        allowed_url(url + "a", ALLOWED)
    assert (caught.value.status, caught.value.reason, caught.value.detail) == (414, "url_too_long", "2049 characters")


@pytest.mark.parametrize(
    ("raw", "reason", "detail"),
    [
        ("https://portal.example.com/a b", "url_characters", ""),
        ("https://portal.example.com:99999/", "url_unparsable", ""),
        ("https://[portal.example.com/", "url_unparsable", ""),
        ("http://portal.example.com/", "url_scheme", ""),
        ("https://user@portal.example.com/", "url_authority", ""),
        ("https://portal.example.com:8443/", "url_authority", ""),
        ("https://evil.example.net/", "url_host", "evil.example.net"),
        ("https:///path", "url_host", ""),
        ("https://" + "h" * 150 + ".example.com/", "url_host", "h" * 100),
        ("https://portal.example.com//evil.net/", "url_path", ""),
    ],
)
def test_reasons_of_redirect_refusals(raw: str, reason: str, detail: str) -> None:
    with pytest.raises(RedirectNotAllowed) as caught:
        allowed_url(raw, ALLOWED)
    assert (caught.value.status, caught.value.reason, caught.value.detail) == (400, reason, detail)


def test_a_query_parameter_name_is_escaped_whole() -> None:
    assert with_query_param("https://p.example.com/", "a/b&c", "x/y") == "https://p.example.com/?a%2Fb%26c=x%2Fy"


# --- request -------------------------------------------------------------------------------------------------------


def test_a_query_of_exactly_the_maximum_length_is_read_and_one_more_is_refused() -> None:
    raw = "x=" + "a" * (MAX_QUERY_LENGTH - 2)
    assert len(raw) == 8192
    assert Query(raw).get("x", max_length=MAX_QUERY_LENGTH) == "a" * 8190
    with pytest.raises(InputTooLarge) as caught:
        Query(raw + "a")
    assert (caught.value.status, caught.value.reason, caught.value.detail) == (414, "query_too_long", "8193 characters")


def test_32_query_fields_are_read_and_33_are_refused() -> None:
    fields = [f"p{i}={i}" for i in range(33)]
    assert Query("&".join(fields[:32])).get("p31", max_length=10) == "31"
    with pytest.raises(BadRequest) as caught:
        Query("&".join(fields))
    assert (caught.value.status, caught.value.reason) == (400, "query_malformed")


def test_a_query_that_is_not_utf8_is_a_bad_request() -> None:
    with pytest.raises(BadRequest) as caught:
        Query("login_token=\udcff")
    assert (caught.value.status, caught.value.reason, caught.value.detail) == (400, "query_malformed", "not UTF-8")


def test_a_blank_copy_of_a_parameter_still_counts_as_a_repeat() -> None:
    # ?login_token=&login_token=... must not be read as the second value alone
    with pytest.raises(BadRequest) as caught:
        Query("login_token=&login_token=abc")
    assert (caught.value.reason, caught.value.detail) == ("query_repeated", "login_token")


def test_a_repeated_parameter_is_named_in_the_log_up_to_40_characters() -> None:
    name = "n" * 60
    with pytest.raises(BadRequest) as caught:
        Query(f"{name}=1&{name}=2")
    assert (caught.value.reason, caught.value.detail) == ("query_repeated", "n" * 40)


def test_a_value_of_exactly_its_limit_is_read_and_one_more_is_refused() -> None:
    assert Query("redirect_to=" + "a" * 40).get("redirect_to", max_length=40) == "a" * 40
    with pytest.raises(InputTooLarge) as caught:
        Query("redirect_to=" + "a" * 41).get("redirect_to", max_length=40)
    assert (caught.value.status, caught.value.reason, caught.value.detail) == (
        414,
        "redirect_to_too_long",
        "41 characters",
    )


def event(query: str = "a=1", *, proto: str | None = None, path: str | None = None) -> Event:
    raw = load_event("clickfunnels-sso-httpapi", query=query)
    raw["headers"].pop("x-forwarded-proto", None)
    if proto is not None:
        raw["headers"]["x-forwarded-proto"] = proto
    if path is not None:
        raw["rawPath"] = path
    return Event(raw)


HOST = "abc123.execute-api.eu-west-1.amazonaws.com"


@pytest.mark.parametrize(
    ("proto", "scheme"),
    [
        (None, "https"),
        ("https", "https"),
        ("http", "http"),  # the local stack
        ("HTTP", "http"),
        ("javascript", "https"),
        ("ftp", "https"),
    ],
)
def test_the_return_url_scheme_is_http_or_https_only(proto: str | None, scheme: str) -> None:
    assert request_url(event(proto=proto)) == f"{scheme}://{HOST}/clickfunnels/sso?a=1"


def test_the_return_url_of_an_empty_path_is_the_root() -> None:
    assert request_url(event(path="")) == f"https://{HOST}/?a=1"


def test_a_stale_login_token_holding_an_equals_sign_is_dropped_too() -> None:
    assert request_url(event("login_token=a=b&x=1")) == f"https://{HOST}/clickfunnels/sso?x=1"


# --- link store ----------------------------------------------------------------------------------------------------

JTI = "5f0c3a8e3c1b4c5e9a531b8f0e6d2a11"
NOW = int(time.time())


def dynamodb() -> Any:
    return boto3.client("dynamodb", region_name="eu-west-1")


def a_spend(**fields: Any) -> LinkSpend:
    values: dict[str, Any] = {
        "jti": JTI,
        "vendor": "clickfunnels",
        "email": "Jane@Example.com",
        "campaign": None,
        "issued_at": NOW - 60,
        "expires_at": NOW + 86400,
        "spent_at": NOW,
        "request_id": "req-1",
        "source_ip": "203.0.113.7",
        "user_agent": "Mozilla/5.0",
    }
    return LinkSpend(**{**values, **fields})


def stubbed_state(response: dict[str, Any]) -> LinkState:
    """``state`` against DynamoDB's ``response``, checking the read is strongly consistent on both tables."""
    client = dynamodb()
    stubber = Stubber(client)
    stubber.add_response(
        "batch_get_item",
        response,
        expected_params={
            "RequestItems": {
                "spent": {"Keys": [{"jti": {"S": JTI}}], "ConsistentRead": True},
                "revoked": {"Keys": [{"email_lower": {"S": "jane@example.com"}}], "ConsistentRead": True},
            }
        },
    )
    with stubber:
        return LinkStore("spent", "revoked", client=client).state(jti=JTI, email="Jane@Example.com", issued_at=NOW)


def test_a_link_state_is_read_consistently_and_missing_tables_in_the_answer_mean_nothing_found() -> None:
    assert stubbed_state({}) is LinkState.USABLE
    assert stubbed_state({"Responses": {}}) is LinkState.USABLE
    assert stubbed_state({"Responses": {"spent": [{"jti": {"S": JTI}}]}}) is LinkState.SPENT
    assert stubbed_state({"Responses": {"revoked": [{"not_before": {"N": str(NOW)}}]}}) is LinkState.REVOKED


def failing(operation: str, error: Exception) -> Any:
    client = dynamodb()

    def fail(**_: Any) -> Any:
        raise error

    setattr(client, operation, fail)
    return LinkStore("spent", "revoked", client=client)


OUTAGES = [
    (ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "op"), "ResourceNotFoundException"),
    (ClientError({"Error": {"Code": ""}}, "op"), "ClientError"),
    (ClientError({"Error": {}}, "op"), "ClientError"),
    (ClientError({}, "op"), "ClientError"),
    (EndpointConnectionError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com"), "EndpointConnectionError"),
]


@pytest.mark.parametrize(("error", "detail"), OUTAGES, ids=[detail for _, detail in OUTAGES])
def test_a_failed_read_is_an_outage_named_in_the_log(error: Exception, detail: str) -> None:
    with pytest.raises(DependencyUnavailable) as caught:
        failing("batch_get_item", error).state(jti=JTI, email="jane@example.com", issued_at=NOW)
    assert (caught.value.status, caught.value.reason, caught.value.detail) == (503, "link_store_unavailable", detail)


@pytest.mark.parametrize(("error", "detail"), OUTAGES, ids=[detail for _, detail in OUTAGES])
def test_a_failed_spend_is_an_outage_named_in_the_log(error: Exception, detail: str) -> None:
    with pytest.raises(DependencyUnavailable) as caught:
        failing("transact_write_items", error).spend(a_spend())
    assert (caught.value.status, caught.value.reason, caught.value.detail) == (503, "link_store_unavailable", detail)


def test_unprocessed_keys_are_an_outage_named_in_the_log() -> None:
    with pytest.raises(DependencyUnavailable) as caught:
        stubbed_state({"Responses": {}, "UnprocessedKeys": {"spent": {"Keys": [{"jti": {"S": JTI}}]}}})
    assert (caught.value.status, caught.value.reason, caught.value.detail) == (
        503,
        "link_store_unavailable",
        "unprocessed keys",
    )


def test_a_cancelled_spend_without_reasons_is_an_outage() -> None:
    error = ClientError({"Error": {"Code": "TransactionCanceledException"}}, "TransactWriteItems")
    with pytest.raises(DependencyUnavailable) as caught:
        failing("transact_write_items", error).spend(a_spend())
    assert (caught.value.status, caught.value.detail) == (503, "TransactionCanceledException")


def written_item(spend: LinkSpend) -> dict[str, Any]:
    client = dynamodb()
    calls: list[dict[str, Any]] = []
    client.transact_write_items = lambda **kwargs: calls.append(kwargs)
    assert LinkStore("spent", "revoked", client=client).spend(spend) is LinkState.USABLE
    [call] = calls
    item: dict[str, Any] = call["TransactItems"][1]["Put"]["Item"]
    return item


def test_the_spend_record_keeps_who_and_whence_and_a_dash_for_what_is_unknown() -> None:
    item = written_item(a_spend())
    assert (item["request_id"], item["source_ip"], item["user_agent"]) == (
        {"S": "req-1"},
        {"S": "203.0.113.7"},
        {"S": "Mozilla/5.0"},
    )
    assert "campaign" not in item
    item = written_item(a_spend(request_id="", source_ip="", user_agent=""))
    assert (item["request_id"], item["source_ip"], item["user_agent"]) == ({"S": "-"}, {"S": "-"}, {"S": "-"})
