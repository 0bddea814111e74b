"""Dependency faults, as a user and an operator see them: a 503 page that says when to retry, no token.

Each fault is raised where boto3 would raise it (the client the flow made), for every flow. The user gets a
503 with ``Retry-After`` and no ``Location``; the operator gets one log line naming the reason, one
``Refused`` metric and one ``Unavailable`` metric with that reason (the outage alarm sums ``Unavailable``; a 4xx
never counts in it). A DynamoDB that hangs instead of failing is in tests/integration/test_slow_dependencies.py
(it needs a real socket).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from sso_bridge.errors import DependencyUnavailable
from sso_bridge.login_token import LoginIdentity
from tests.helpers import SECRET_IDS, LambdaContext, LinkPage, load_event, make_login_token, pressed
from tests.reasons import unavailable_reasons

FLOWS = {
    "clickfunnels": ("clickfunnels-sso-httpapi", ""),
    "kustomer": ("kustomer-login-httpapi", "kustomerRedirectUri=https%3A%2F%2Fyourcompany.kustomer.help%2Flogin&"),
    "happyfox": ("happyfox-login-httpapi", ""),
}


def client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "..."}}, operation)


SECRETS_FAULTS = {
    "unreachable": EndpointConnectionError(endpoint_url="https://secretsmanager.eu-west-1.amazonaws.com"),
    "throttled": client_error("ThrottlingException", "GetSecretValue"),
    "secret missing": client_error("ResourceNotFoundException", "GetSecretValue"),
}
DYNAMODB_FAULTS = {
    "throttled": client_error("ThrottlingException", "PutItem"),
    "over capacity": client_error("ProvisionedThroughputExceededException", "PutItem"),
    "unreachable": EndpointConnectionError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com"),
    "read timeout": ReadTimeoutError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com"),
    "table missing": client_error("ResourceNotFoundException", "PutItem"),
}


@pytest.fixture(params=sorted(FLOWS))
def flow(
    request: pytest.FixtureRequest, jti_table: Any, link_tables: Any, load_function: Callable[..., ModuleType]
) -> Any:
    return request.param, load_function(request.param)


def sign_in(module: ModuleType, name: str, token: str, *, page: LinkPage | None = None) -> dict[str, Any]:
    """A GET with ``token``; with ``page``, the POST of that link's page's button."""
    event_name, query = FLOWS[name]
    event = load_event(event_name, query=f"{query}login_token={token}")
    if page is not None:
        event = pressed(event, page)
    return module.lambda_handler(event, LambdaContext())  # type: ignore[no-any-return]


def raise_from(module_client: Any, operation: str, fault: Exception, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(**_: Any) -> Any:
        raise fault

    monkeypatch.setattr(module_client, operation, failing)


def assert_outage(response: dict[str, Any], logs: str, stdout: str, reason: str) -> None:
    # The user: a page that says to come back, and nothing to sign in with.
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"].isdigit()
    assert "Location" not in response["headers"]
    assert "Temporarily unavailable" in response["body"]
    # The operator: one line, one metric, both with the reason.
    lines = [json.loads(line) for line in logs.splitlines() if line.strip()]
    refused = [line for line in lines if line.get("outcome") == "refused"]
    assert len(refused) == 1
    assert refused[0]["reason"] == reason
    assert refused[0]["level"] == "ERROR"
    metrics = emf_blobs(stdout)
    counted = [m for m in metrics if "Refused" in m and m.get("reason") == reason]
    assert len(counted) == 1
    assert [m["reason"] for m in metrics if "Unavailable" in m] == [reason]


def emf_blobs(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{") and '"_aws"' in line]


@pytest.mark.parametrize("fault", SECRETS_FAULTS.values(), ids=SECRETS_FAULTS.keys())
def test_secrets_manager_faults_are_a_503(
    flow: Any,
    fault: Exception,
    monkeypatch: pytest.MonkeyPatch,
    log_stream: Callable[[ModuleType], io.StringIO],
    capsys: pytest.CaptureFixture[str],
) -> None:
    name, module = flow
    raise_from(module.flow.keys._client(), "get_secret_value", fault, monkeypatch)
    logs = log_stream(module)
    response = sign_in(module, name, make_login_token(aud=name))
    assert_outage(response, logs.getvalue(), capsys.readouterr().out, "secret_unavailable")


@pytest.mark.parametrize("stored", ["", "REPLACE_ME with the key from the vendor"], ids=["empty", "placeholder"])
def test_a_vendor_secret_without_a_key_is_a_503(
    flow: Any,
    aws: Any,
    stored: str,
    log_stream: Callable[[ModuleType], io.StringIO],
    capsys: pytest.CaptureFixture[str],
) -> None:
    name, module = flow
    aws.put_secret_value(SecretId=SECRET_IDS[name], SecretString=stored or " ")
    if not stored:
        # Secrets Manager refuses an empty SecretString; a secret holding only binary reads as empty here.
        aws.put_secret_value(SecretId=SECRET_IDS[name], SecretBinary=b"\x00")
    logs = log_stream(module)
    response = sign_in(module, name, make_login_token(aud=name))
    assert_outage(response, logs.getvalue(), capsys.readouterr().out, "secret_not_set")


@pytest.mark.parametrize("fault", DYNAMODB_FAULTS.values(), ids=DYNAMODB_FAULTS.keys())
def test_dynamodb_faults_on_a_link_spend_are_a_503(
    flow: Any,
    fault: Exception,
    monkeypatch: pytest.MonkeyPatch,
    log_stream: Callable[[ModuleType], io.StringIO],
    capsys: pytest.CaptureFixture[str],
) -> None:
    name, module = flow
    raise_from(module.flow.links.client, "transact_write_items", fault, monkeypatch)
    link = make_login_token(aud=name, use="link", jti="a-link-jti-0123456789abcdef", lifetime=3600)
    page = LinkPage.from_response(sign_in(module, name, link))  # the page reads; only the spend writes
    capsys.readouterr()
    logs = log_stream(module)
    response = sign_in(module, name, link, page=page)
    assert_outage(response, logs.getvalue(), capsys.readouterr().out, "link_store_unavailable")


@pytest.mark.parametrize("fault", DYNAMODB_FAULTS.values(), ids=DYNAMODB_FAULTS.keys())
def test_dynamodb_faults_on_the_happyfox_audit_write_are_a_503(
    jti_table: Any,
    load_function: Callable[..., ModuleType],
    fault: Exception,
    monkeypatch: pytest.MonkeyPatch,
    log_stream: Callable[[ModuleType], io.StringIO],
    capsys: pytest.CaptureFixture[str],
) -> None:
    module = load_function("happyfox")
    raise_from(module.jti_store.client, "put_item", fault, monkeypatch)
    logs = log_stream(module)
    response = sign_in(module, "happyfox", make_login_token(aud="happyfox"))
    assert_outage(response, logs.getvalue(), capsys.readouterr().out, "jti_store_unavailable")


# --- the Unavailable metric: every 503 reason, and nothing else --------------------------------------------------


@pytest.mark.parametrize("reason", sorted(unavailable_reasons()))
def test_every_503_reason_is_counted_once_in_unavailable(
    flow: Any, reason: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each reason the code can answer a 503 with (read from its syntax tree, as the template's alarm tests do)
    emits exactly one ``Unavailable`` blob with that reason and the service, beside its ``Refused``."""
    name, module = flow

    def outage(query: Any) -> LoginIdentity:
        raise DependencyUnavailable(reason, detail="the test's outage")

    monkeypatch.setattr(module.flow, "identify", outage)
    capsys.readouterr()
    response = sign_in(module, name, make_login_token(aud=name))
    assert (response["statusCode"], response["headers"]["Retry-After"]) == (503, "60")
    metrics = emf_blobs(capsys.readouterr().out)
    [blob] = [m for m in metrics if "Unavailable" in m]
    assert (blob["service"], blob["reason"], blob["Unavailable"]) == (name, reason, [1.0])
    [directive] = blob["_aws"]["CloudWatchMetrics"]
    assert directive["Dimensions"] == [["service", "reason"]]
    assert directive["Metrics"] == [{"Name": "Unavailable", "Unit": "Count"}]
    assert [m["reason"] for m in metrics if "Refused" in m] == [reason]


def _unexpected(query: Any) -> LoginIdentity:
    raise RuntimeError("a bug")


# name -> (the query to send instead of a good login token, made when the test runs so its tokens are fresh, or
# None for a good one; status; what identify does)
REFUSALS: dict[str, tuple[Callable[[], str] | None, int, Any]] = {
    "forged token": (
        lambda: "login_token=" + make_login_token(key="not-the-login-token-key-0123456789abcdef"),
        401,
        None,
    ),
    "token for another vendor": (lambda: "login_token=" + make_login_token(aud="someone-else"), 403, None),
    "repeated parameter": (lambda: "login_token=a&login_token=b", 400, None),
    "query too long": (lambda: "x=" + "a" * 9000, 414, None),
    "a bug": (None, 500, _unexpected),
}


@pytest.mark.parametrize("case", REFUSALS.values(), ids=REFUSALS.keys())
def test_refusals_that_are_not_503s_never_count_in_unavailable(
    flow: Any,
    case: tuple[Callable[[], str] | None, int, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name, module = flow
    make_query, status, identify = case
    query = None if make_query is None else make_query()
    if identify is not None:
        monkeypatch.setattr(module.flow, "identify", identify)
    capsys.readouterr()
    if query is None:
        response = sign_in(module, name, make_login_token(aud=name))
    else:
        prefix = FLOWS[name][1]
        event = load_event(FLOWS[name][0], query=f"{prefix}{query}")
        response = module.lambda_handler(event, LambdaContext())
    assert response["statusCode"] == status
    metrics = emf_blobs(capsys.readouterr().out)
    assert len([m for m in metrics if "Refused" in m]) == 1  # the refusal was counted, where the test can see it
    assert [m for m in metrics if "Unavailable" in m] == []
