"""The ClickFunnels flow as a user meets it: link in, customer center out, or a clear refusal."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import jwt
import pytest

from tests.helpers import (
    PLATFORM_LOGIN_URL,
    SECRET_IDS,
    VENDOR_KEYS,
    WORKSPACE,
    LambdaContext,
    load_event,
    make_login_token,
)

CF_KEY = VENDOR_KEYS["clickfunnels"]


@pytest.fixture
def clickfunnels(aws: Any, load_function: Callable[..., ModuleType]) -> ModuleType:
    return load_function("clickfunnels")


def invoke(module: ModuleType, query: str = "", event: str = "clickfunnels-sso-httpapi", **headers: str) -> Any:
    return module.lambda_handler(load_event(event, query=query, headers=headers), LambdaContext())


def vendor_claims(location: str, *, key: str = CF_KEY) -> dict[str, Any]:
    token = parse_qs(urlsplit(location).query)["token"][0]
    claims: dict[str, Any] = jwt.decode(
        token, key, algorithms=["HS256"], options={"require": ["sub", "nbf", "exp", "iat"]}
    )
    return claims


def test_signed_in_user_lands_in_customer_center(clickfunnels: ModuleType) -> None:
    # Given a login token for an email with + in it
    token = make_login_token("jane.doe+vip@example.com")

    # When the user follows the link
    response = invoke(clickfunnels, f"login_token={token}")

    # Then they are redirected to the workspace's SSO endpoint with a token ClickFunnels accepts
    assert response["statusCode"] == 302
    location = response["headers"]["Location"]
    assert location.startswith(f"https://{WORKSPACE}/sso?identifier=jane.doe%2Bvip%40example.com&strategy=email&token=")
    claims = vendor_claims(location)
    now = int(time.time())
    assert claims["sub"] == f"jane.doe+vip@example.com:{WORKSPACE}"
    assert abs(claims["iat"] - now) <= 2
    assert claims["nbf"] == claims["iat"] - 30
    assert claims["exp"] == claims["iat"] + 300
    assert "redirect_to" not in claims
    assert response["headers"]["Cache-Control"] == "no-store"
    assert response["headers"]["Referrer-Policy"] == "no-referrer"


def test_token_header_is_hs256_jwt(clickfunnels: ModuleType) -> None:
    location = invoke(clickfunnels, f"login_token={make_login_token()}")["headers"]["Location"]
    token = parse_qs(urlsplit(location).query)["token"][0]
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}


def test_function_url_root_path_serves_the_same_flow(clickfunnels: ModuleType) -> None:
    response = invoke(clickfunnels, f"login_token={make_login_token()}", event="clickfunnels-sso-function-url")
    assert response["statusCode"] == 302
    assert vendor_claims(response["headers"]["Location"])["sub"].endswith(f":{WORKSPACE}")


def test_custom_domain_is_used_in_sub_and_url(load_function: Callable[..., ModuleType], aws: Any) -> None:
    module = load_function("clickfunnels", CLICKFUNNELS_WORKSPACE_DOMAIN="www.shop.example.com")
    location = invoke(module, f"login_token={make_login_token('a@example.com')}")["headers"]["Location"]
    assert urlsplit(location).hostname == "www.shop.example.com"
    assert vendor_claims(location)["sub"] == "a@example.com:www.shop.example.com"


def test_token_lifetime_is_configurable(load_function: Callable[..., ModuleType], aws: Any) -> None:
    module = load_function("clickfunnels", CLICKFUNNELS_TOKEN_TTL="60", NBF_BACKDATE_SECONDS="0")
    claims = vendor_claims(invoke(module, f"login_token={make_login_token()}")["headers"]["Location"])
    assert claims["exp"] - claims["iat"] == 60
    assert claims["nbf"] == claims["iat"]


@pytest.mark.parametrize(
    ("variable", "value"), [("CLICKFUNNELS_TOKEN_TTL", "7200"), ("CLICKFUNNELS_TOKEN_TTL", "soon")]
)
def test_bad_configuration_names_the_variable(
    load_function: Callable[..., ModuleType], variable: str, value: str
) -> None:
    from sso_bridge.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=variable):
        load_function("clickfunnels", **{variable: value})


def test_missing_workspace_domain_stops_cold_start(
    load_function: Callable[..., ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sso_bridge.errors import ConfigurationError

    monkeypatch.delenv("CLICKFUNNELS_WORKSPACE_DOMAIN")
    with pytest.raises(ConfigurationError, match="CLICKFUNNELS_WORKSPACE_DOMAIN is required"):
        load_function("clickfunnels")


def test_redirect_to_on_the_workspace_is_signed(clickfunnels: ModuleType) -> None:
    target = f"https://{WORKSPACE}/customers/profiles/qKOLEpy/orders"
    response = invoke(clickfunnels, f"redirect_to={quote(target, safe='')}&login_token={make_login_token()}")
    assert vendor_claims(response["headers"]["Location"])["redirect_to"] == target


def test_redirect_to_claim_outranks_the_query(clickfunnels: ModuleType) -> None:
    claim_target = f"https://{WORKSPACE}/from-claim"
    token = make_login_token(redirect_to=claim_target)
    query = f"redirect_to={quote(f'https://{WORKSPACE}/from-query', safe='')}&login_token={token}"
    assert vendor_claims(invoke(clickfunnels, query)["headers"]["Location"])["redirect_to"] == claim_target


def test_extra_redirect_hosts_are_allowed(load_function: Callable[..., ModuleType], aws: Any) -> None:
    module = load_function("clickfunnels", CLICKFUNNELS_REDIRECT_HOSTS="courses.example.com, learn.example.com")
    target = "https://learn.example.com/course/1"
    response = invoke(module, f"redirect_to={quote(target, safe='')}&login_token={make_login_token()}")
    assert vendor_claims(response["headers"]["Location"])["redirect_to"] == target


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example.net/",
        f"https://{WORKSPACE}.evil.example.net/",
        f"https://{WORKSPACE}@evil.example.net/",
        "//evil.example.net/",
        f"http://{WORKSPACE}/",
        "javascript:alert(1)",
    ],
)
def test_hostile_redirect_to_never_reaches_clickfunnels(clickfunnels: ModuleType, target: str) -> None:
    for token in (make_login_token(redirect_to=target), None):
        query = f"login_token={token}" if token else f"redirect_to={quote(target, safe='')}"
        response = invoke(clickfunnels, query)
        assert response["statusCode"] == 400
        assert WORKSPACE not in response["headers"].get("Location", "")


def test_hostile_query_redirect_fails_before_the_sign_in_round_trip(clickfunnels: ModuleType) -> None:
    response = invoke(clickfunnels, f"redirect_to={quote('https://evil.example.net/', safe='')}")
    assert response["statusCode"] == 400
    assert "Location" not in response["headers"]


def test_no_login_token_sends_the_user_to_sign_in_and_back(clickfunnels: ModuleType) -> None:
    target = quote(f"https://{WORKSPACE}/orders", safe="")
    response = invoke(clickfunnels, f"redirect_to={target}")
    assert response["statusCode"] == 302
    location = urlsplit(response["headers"]["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == PLATFORM_LOGIN_URL
    return_to = parse_qs(location.query)["return_to"][0]
    assert return_to == f"https://abc123.execute-api.eu-west-1.amazonaws.com/clickfunnels/sso?redirect_to={target}"


def test_expired_login_token_goes_round_trip_without_the_stale_token(clickfunnels: ModuleType) -> None:
    stale = make_login_token(issued=int(time.time()) - 3600, lifetime=600)
    response = invoke(clickfunnels, f"login_token={stale}")
    assert response["statusCode"] == 302
    return_to = parse_qs(urlsplit(response["headers"]["Location"]).query)["return_to"][0]
    assert return_to == "https://abc123.execute-api.eu-west-1.amazonaws.com/clickfunnels/sso"


def test_function_url_round_trip_comes_back_to_the_function_url(clickfunnels: ModuleType) -> None:
    response = invoke(clickfunnels, "", event="clickfunnels-sso-function-url")
    return_to = parse_qs(urlsplit(response["headers"]["Location"]).query)["return_to"][0]
    assert return_to == "https://abcdefghijklmnopqrstuvwxyz123456.lambda-url.eu-west-1.on.aws/"


def test_errors_are_json_when_asked(clickfunnels: ModuleType) -> None:
    token = make_login_token(aud="kustomer")
    response = invoke(clickfunnels, f"login_token={token}", accept="application/json")
    assert response["statusCode"] == 403
    body = json.loads(response["body"])
    assert body["error"] == "wrong_audience"
    assert body["request_id"] == "Jz3sJgQYjoEEJ0w="


def test_a_damaged_login_token_is_a_400_that_says_so(clickfunnels: ModuleType) -> None:
    response = invoke(clickfunnels, "login_token=abc.def.ghi", accept="application/json")
    assert response["statusCode"] == 400
    body = json.loads(response["body"])
    assert (body["error"], body["reason"]) == ("invalid_login_token", "login_token_malformed")
    assert "damaged" in body["message"]


def test_error_page_is_html_with_a_reference_and_no_echo(clickfunnels: ModuleType) -> None:
    response = invoke(clickfunnels, "login_token=<script>alert(1)</script>")
    assert response["statusCode"] == 400
    assert response["headers"]["Content-Type"].startswith("text/html")
    assert "<script>" not in response["body"]
    assert "Jz3sJgQYjoEEJ0w=" in response["body"]
    assert response["headers"]["Cache-Control"] == "no-store"


def test_unknown_path_on_function_url_is_a_404_page(clickfunnels: ModuleType) -> None:
    event = load_event("clickfunnels-sso-function-url")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/wp-admin"
    response = clickfunnels.lambda_handler(event, LambdaContext())
    assert response["statusCode"] == 404
    assert "Page not found" in response["body"]


def test_secrets_manager_outage_is_a_503_and_no_token(clickfunnels: ModuleType, aws: Any) -> None:
    aws.delete_secret(SecretId=SECRET_IDS["clickfunnels"], ForceDeleteWithoutRecovery=True)
    response = invoke(clickfunnels, f"login_token={make_login_token()}")
    assert response["statusCode"] == 503
    assert "Location" not in response["headers"]


def test_placeholder_vendor_key_is_never_used_to_sign(clickfunnels: ModuleType, aws: Any) -> None:
    aws.put_secret_value(SecretId=SECRET_IDS["clickfunnels"], SecretString="REPLACE_ME with the key")
    response = invoke(clickfunnels, f"login_token={make_login_token()}")
    assert response["statusCode"] == 503


def test_vendor_key_is_fetched_once_per_container(clickfunnels: ModuleType, aws: Any) -> None:
    first = invoke(clickfunnels, f"login_token={make_login_token()}")
    aws.put_secret_value(SecretId=SECRET_IDS["clickfunnels"], SecretString="rotated-key-" + "x" * 40)
    second = invoke(clickfunnels, f"login_token={make_login_token()}")
    # Still the cached key: one fetch per max-age, not one per click.
    vendor_claims(first["headers"]["Location"])
    vendor_claims(second["headers"]["Location"])


def test_logs_name_the_outcome_but_never_the_token(
    clickfunnels: ModuleType, log_stream: Callable[[ModuleType], io.StringIO]
) -> None:
    logs = log_stream(clickfunnels)
    token = make_login_token(jti="login-123")
    response = invoke(clickfunnels, f"login_token={token}")
    vendor_token = parse_qs(urlsplit(response["headers"]["Location"]).query)["token"][0]
    out = logs.getvalue()
    assert '"outcome":"issued"' in out
    assert '"login_jti":"login-123"' in out
    assert token not in out
    assert vendor_token not in out
    assert CF_KEY not in out
    assert '"service":"clickfunnels"' in out


def test_a_refusal_is_logged_once_with_its_reason(
    clickfunnels: ModuleType, log_stream: Callable[[ModuleType], io.StringIO]
) -> None:
    logs = log_stream(clickfunnels)
    invoke(clickfunnels, f"login_token={make_login_token(key='forged-key-0123456789abcdef0123456789')}")
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert [(line["outcome"], line["reason"]) for line in lines] == [("refused", "login_token_signature")]
