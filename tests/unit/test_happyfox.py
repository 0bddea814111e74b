"""The HappyFox flow as a user meets it: Remote Login in, support centre out, every token on record."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import jwt
import pytest
from botocore.stub import Stubber

from sso_bridge.errors import ConfigurationError
from sso_bridge.jti_store import SMOKE_EMAIL, JtiStore
from tests.helpers import (
    HAPPYFOX_ACCOUNT_URL,
    JTI_TABLE_NAME,
    LOGIN_TOKEN_KEY,
    PLATFORM_LOGIN_URL,
    SECRET_IDS,
    VENDOR_KEYS,
    LambdaContext,
    load_event,
    make_login_token,
)

HF_KEY = VENDOR_KEYS["happyfox"]
HAPPYFOX_WINDOW = 120  # seconds HappyFox accepts a token (its docs)
AUDIT_FIELDS = {
    "jti",
    "vendor",
    "email",
    "email_lower",
    "name",
    "issued_at",
    "expires_at",
    "purge_at",
    "request_id",
    "source_ip",
    "user_agent",
    "login_jti",
}


@pytest.fixture
def happyfox(jti_table: Any, load_function: Callable[..., ModuleType]) -> ModuleType:
    return load_function("happyfox")


def login_token(email: str = "jane.doe+vip@example.com", **claims: Any) -> str:
    return make_login_token(email, aud="happyfox", **claims)


def invoke(module: ModuleType, query: str = "", event: str = "happyfox-login-httpapi", **headers: str) -> Any:
    return module.lambda_handler(load_event(event, query=query, headers=headers), LambdaContext())


def happyfox_claims(location: str, *, key: str = HF_KEY) -> dict[str, Any]:
    """Verify as HappyFox would: HS256 with its key, all four claims, no older than its 120-second window."""
    assert location.startswith(f"{HAPPYFOX_ACCOUNT_URL}/jwt/?token=")
    token = parse_qs(urlsplit(location).query)["token"][0]
    claims: dict[str, Any] = jwt.decode(
        token, key, algorithms=["HS256"], options={"require": ["iat", "jti", "name", "email"]}
    )
    assert 0 <= time.time() - claims["iat"] <= HAPPYFOX_WINDOW
    return claims


def records(table: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = table.scan(TableName=JTI_TABLE_NAME)["Items"]
    return items


def test_signed_in_user_lands_in_the_support_centre(happyfox: ModuleType, jti_table: Any) -> None:
    # Given a login token for HappyFox with a name
    token = login_token(name="Jane Doe", jti="login-42")

    # When HappyFox sends the user to our Remote Login URL with it
    response = invoke(happyfox, f"login_token={token}")

    # Then they go to the account's /jwt/ endpoint with a token HappyFox accepts
    assert response["statusCode"] == 302
    claims = happyfox_claims(response["headers"]["Location"])
    assert set(claims) == {"iat", "jti", "name", "email"}
    assert (claims["email"], claims["name"]) == ("jane.doe+vip@example.com", "Jane Doe")
    assert response["headers"]["Cache-Control"] == "no-store"
    assert response["headers"]["Referrer-Policy"] == "no-referrer"
    # And the jti is on record
    [item] = records(jti_table)
    assert item["jti"] == {"S": claims["jti"]}
    assert item["issued_at"] == {"N": str(claims["iat"])}


def test_token_header_is_hs256_jwt(happyfox: ModuleType) -> None:
    location = invoke(happyfox, f"login_token={login_token()}")["headers"]["Location"]
    assert jwt.get_unverified_header(parse_qs(urlsplit(location).query)["token"][0]) == {"alg": "HS256", "typ": "JWT"}


def test_function_url_root_path_serves_the_login(happyfox: ModuleType) -> None:
    response = invoke(happyfox, f"login_token={login_token()}", event="happyfox-login-function-url")
    assert response["statusCode"] == 302
    assert happyfox_claims(response["headers"]["Location"])["email"] == "jane.doe+vip@example.com"


def test_every_login_gets_its_own_jti(happyfox: ModuleType, jti_table: Any) -> None:
    token = login_token()
    jtis = [happyfox_claims(invoke(happyfox, f"login_token={token}")["headers"]["Location"])["jti"] for _ in range(5)]
    assert len(set(jtis)) == 5
    assert {item["jti"]["S"] for item in records(jti_table)} == set(jtis)


def test_record_holds_the_audit_trail_and_nothing_secret(happyfox: ModuleType, jti_table: Any) -> None:
    token = login_token(name="Jane Doe", jti="login-42")
    response = invoke(happyfox, f"login_token={token}")
    claims = happyfox_claims(response["headers"]["Location"])
    vendor_token = parse_qs(urlsplit(response["headers"]["Location"]).query)["token"][0]

    [item] = records(jti_table)
    assert set(item) == AUDIT_FIELDS
    plain = {name: next(iter(value.values())) for name, value in item.items()}
    assert plain == {
        "jti": claims["jti"],
        "vendor": "happyfox",
        "email": "jane.doe+vip@example.com",
        "email_lower": "jane.doe+vip@example.com",
        "name": "Jane Doe",
        "issued_at": str(claims["iat"]),
        "expires_at": str(claims["iat"] + HAPPYFOX_WINDOW),
        "purge_at": str(claims["iat"] + 90 * 86400),
        "request_id": "Kq7vHgTYjoEEJ1A=",
        "source_ip": "203.0.113.7",
        "user_agent": "Mozilla/5.0",
        "login_jti": "login-42",
    }
    for secret in (token, vendor_token, HF_KEY, LOGIN_TOKEN_KEY):
        assert all(secret not in value for value in plain.values())


def test_a_smoke_sign_in_is_marked_as_smoke_in_its_record(happyfox: ModuleType, jti_table: Any) -> None:
    # `make smoke` signs in as the reserved address (any capitalisation); a person's record has no mark
    for email in (SMOKE_EMAIL, SMOKE_EMAIL.upper(), "jane.doe+vip@example.com"):
        assert invoke(happyfox, f"login_token={login_token(email)}")["statusCode"] == 302
    marks = {item["email"]["S"]: item.get("smoke") for item in records(jti_table)}
    assert marks == {SMOKE_EMAIL: {"BOOL": True}, SMOKE_EMAIL.upper(): {"BOOL": True}, "jane.doe+vip@example.com": None}


def test_retention_is_configurable(load_function: Callable[..., ModuleType], jti_table: Any) -> None:
    module = load_function("happyfox", JTI_RETENTION_DAYS="30")
    iat = happyfox_claims(invoke(module, f"login_token={login_token()}")["headers"]["Location"])["iat"]
    [item] = records(jti_table)
    assert item["purge_at"] == {"N": str(iat + 30 * 86400)}


@pytest.mark.parametrize(
    ("email", "name_claim", "expected"),
    [
        ("jane.doe+vip@example.com", None, "jane.doe+vip"),
        ("x@example.com", "   ", "x"),
        ("jane@example.com", "Jane Doe", "Jane Doe"),
    ],
)
def test_name_falls_back_to_the_email_local_part(
    happyfox: ModuleType, jti_table: Any, email: str, name_claim: str | None, expected: str
) -> None:
    extra = {"name": name_claim} if name_claim is not None else {}
    claims = happyfox_claims(invoke(happyfox, f"login_token={login_token(email, **extra)}")["headers"]["Location"])
    assert claims["name"] == expected
    assert records(jti_table)[0]["name"] == {"S": expected}


def test_custom_domain_account(load_function: Callable[..., ModuleType], jti_table: Any) -> None:
    module = load_function("happyfox", HAPPYFOX_ACCOUNT_URL="https://Support.Example.com/")
    location = invoke(module, f"login_token={login_token()}")["headers"]["Location"]
    assert location.startswith("https://support.example.com/jwt/?token=")


@pytest.mark.parametrize(
    "value",
    [
        "acme.happyfox.com",
        "http://acme.happyfox.com",
        "https://acme.happyfox.com/jwt/",
        "https://acme.happyfox.com?next=x",
        "https://user@acme.happyfox.com",
        "https://acme.happyfox.com:8443",
        "https://acme.happyfox.com\\@evil.example.net",
        "javascript:alert(1)",
    ],
)
def test_account_url_must_be_a_plain_https_origin(load_function: Callable[..., ModuleType], value: str) -> None:
    with pytest.raises(ConfigurationError, match="HAPPYFOX_ACCOUNT_URL"):
        load_function("happyfox", HAPPYFOX_ACCOUNT_URL=value)


@pytest.mark.parametrize("variable", ["HAPPYFOX_ACCOUNT_URL", "HAPPYFOX_SECRET_ID", "JTI_TABLE_NAME"])
def test_required_configuration_stops_cold_start(
    load_function: Callable[..., ModuleType], monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.delenv(variable)
    with pytest.raises(ConfigurationError, match=f"{variable} is required"):
        load_function("happyfox")


@pytest.mark.parametrize(
    ("variable", "value"),
    [("JTI_RETENTION_DAYS", "0"), ("JTI_RETENTION_DAYS", "forever"), ("PLATFORM_LOGOUT_URL", "http://x.example.com")],
)
def test_bad_configuration_names_the_variable(
    load_function: Callable[..., ModuleType], variable: str, value: str
) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        load_function("happyfox", **{variable: value})


def test_referrer_policy_is_configurable_per_flow(load_function: Callable[..., ModuleType], jti_table: Any) -> None:
    # HappyFox's "whitelisted domains" may need to see where the user came from.
    module = load_function("happyfox", REFERRER_POLICY="origin")
    response = invoke(module, f"login_token={login_token()}")
    assert response["headers"]["Referrer-Policy"] == "origin"
    happyfox_claims(response["headers"]["Location"])


def test_unknown_referrer_policy_stops_cold_start(load_function: Callable[..., ModuleType]) -> None:
    with pytest.raises(ConfigurationError, match="REFERRER_POLICY"):
        load_function("happyfox", REFERRER_POLICY="unsafe-url")


def test_no_login_token_sends_the_user_to_sign_in_and_back(happyfox: ModuleType, jti_table: Any) -> None:
    response = invoke(happyfox)
    assert response["statusCode"] == 302
    location = urlsplit(response["headers"]["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == PLATFORM_LOGIN_URL
    assert parse_qs(location.query)["return_to"] == [
        "https://abc123.execute-api.eu-west-1.amazonaws.com/happyfox/login"
    ]
    assert records(jti_table) == []


def test_expired_login_token_goes_round_trip_and_issues_nothing(happyfox: ModuleType, jti_table: Any) -> None:
    stale = login_token(issued=int(time.time()) - 3600, lifetime=600)
    response = invoke(happyfox, f"login_token={stale}")
    assert response["statusCode"] == 302
    assert response["headers"]["Location"].startswith(PLATFORM_LOGIN_URL)
    assert records(jti_table) == []


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _tampered() -> str:
    header, payload, signature = login_token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["email"] = "ceo@example.com"
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


def _alg_none() -> str:
    now = int(time.time())
    return jwt.encode(
        {"email": "a@example.com", "aud": "happyfox", "iat": now, "exp": now + 60}, None, algorithm="none"
    )


HOSTILE: dict[str, Callable[[], str]] = {
    "forged with another key": lambda: login_token(key="attacker-key-0123456789abcdef0123"),
    "signed with the HappyFox key": lambda: login_token(key=HF_KEY),
    "tampered payload": _tampered,
    "signature stripped": lambda: login_token().rsplit(".", 1)[0] + ".",
    "alg none": _alg_none,
    "alg HS512": lambda: login_token(algorithm="HS512"),
    "made for ClickFunnels": lambda: make_login_token(aud="clickfunnels"),
    "no audience": lambda: login_token(drop=("aud",)),
    "no email": lambda: login_token(drop=("email",)),
    "issued in the future": lambda: login_token(issued=int(time.time()) + 3600),
    "lifetime over the cap": lambda: login_token(lifetime=400 * 86400),
    "email with header injection": lambda: login_token("a@example.com\r\nBcc: x@y.z"),
    "name with control characters": lambda: login_token(name="Jane\x00Doe"),
    "name too long": lambda: login_token(name="n" * 201),
    "garbage": lambda: "not.a.jwt",
    "oversized": lambda: login_token(padding="x" * 5000),
}


@pytest.mark.parametrize("make", [pytest.param(make, id=case) for case, make in HOSTILE.items()])
def test_hostile_login_tokens_are_refused_and_issue_nothing(
    happyfox: ModuleType, jti_table: Any, make: Callable[[], str]
) -> None:
    response = invoke(happyfox, f"login_token={make()}")
    assert 400 <= response["statusCode"] < 500
    assert "Location" not in response["headers"]
    assert "token=" not in response["body"]
    assert records(jti_table) == []


def _stubbed_store(module: ModuleType, code: str) -> Stubber:
    client = boto3.client("dynamodb", region_name="eu-west-1")
    stubber = Stubber(client)
    stubber.add_client_error("put_item", service_error_code=code, http_status_code=400)
    module.jti_store = JtiStore(JTI_TABLE_NAME, retention_days=90, client=client)
    return stubber


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException", "AccessDenied"])
def test_dynamodb_failure_is_a_503_and_no_token(happyfox: ModuleType, code: str) -> None:
    with _stubbed_store(happyfox, code) as stubber:
        response = invoke(happyfox, f"login_token={login_token()}")
    stubber.assert_no_pending_responses()
    assert response["statusCode"] == 503
    assert "Location" not in response["headers"]
    assert HAPPYFOX_ACCOUNT_URL not in response["body"]
    assert "Temporarily unavailable" in response["body"]


def test_missing_table_is_a_503_json_when_asked(happyfox: ModuleType, jti_table: Any) -> None:
    jti_table.delete_table(TableName=JTI_TABLE_NAME)
    response = invoke(happyfox, f"login_token={login_token()}", accept="application/json")
    assert response["statusCode"] == 503
    assert json.loads(response["body"])["reason"] == "jti_store_unavailable"
    assert "Location" not in response["headers"]


def test_happyfox_key_outage_is_a_503_and_writes_no_record(happyfox: ModuleType, jti_table: Any, aws: Any) -> None:
    aws.delete_secret(SecretId=SECRET_IDS["happyfox"], ForceDeleteWithoutRecovery=True)
    response = invoke(happyfox, f"login_token={login_token()}")
    assert response["statusCode"] == 503
    assert records(jti_table) == []


def test_placeholder_happyfox_key_is_never_used_to_sign(happyfox: ModuleType, jti_table: Any, aws: Any) -> None:
    aws.put_secret_value(SecretId=SECRET_IDS["happyfox"], SecretString="REPLACE_ME with the key")
    assert invoke(happyfox, f"login_token={login_token()}")["statusCode"] == 503
    assert records(jti_table) == []


@pytest.mark.parametrize("event", ["happyfox-logout-httpapi", "happyfox-login-function-url"])
def test_logout_goes_to_the_platform_logout_url(
    load_function: Callable[..., ModuleType], jti_table: Any, event: str
) -> None:
    module = load_function("happyfox", PLATFORM_LOGOUT_URL="https://platform.example.com/logout")
    request = load_event(event)
    request["rawPath"] = request["requestContext"]["http"]["path"] = "/happyfox/logout"
    response = module.lambda_handler(request, LambdaContext())
    assert response["statusCode"] == 302
    assert response["headers"]["Location"] == "https://platform.example.com/logout"
    assert response["headers"]["Cache-Control"] == "no-store"


def test_logout_without_a_logout_url_shows_a_signed_out_page(happyfox: ModuleType) -> None:
    response = invoke(happyfox, event="happyfox-logout-httpapi")
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"].startswith("text/html")
    assert "You are signed out" in response["body"]
    assert "Location" not in response["headers"]


def test_logs_name_the_jti_but_never_a_token_or_key(
    happyfox: ModuleType, log_stream: Callable[[ModuleType], io.StringIO]
) -> None:
    logs = log_stream(happyfox)
    token = login_token(jti="login-7")
    location = invoke(happyfox, f"login_token={token}")["headers"]["Location"]
    claims = happyfox_claims(location)
    vendor_token = parse_qs(urlsplit(location).query)["token"][0]
    [line] = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert (line["outcome"], line["jti"], line["login_jti"], line["vendor"]) == (
        "issued",
        claims["jti"],
        "login-7",
        "happyfox",
    )
    out = logs.getvalue()
    for secret in (token, vendor_token, HF_KEY):
        assert secret not in out


def test_a_dynamodb_refusal_is_logged_once_with_its_reason(
    happyfox: ModuleType, log_stream: Callable[[ModuleType], io.StringIO]
) -> None:
    logs = log_stream(happyfox)
    with _stubbed_store(happyfox, "ThrottlingException"):
        invoke(happyfox, f"login_token={login_token()}")
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert [(line["outcome"], line["reason"]) for line in lines] == [("refused", "jti_store_unavailable")]
