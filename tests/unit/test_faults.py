"""Dependency faults, as a user and an operator see them: a 503 page that says when to retry, no token.

Each fault is raised where boto3 would raise it (the client the flow made), for every vendor in template.yaml,
each sent its own well-formed request (tests/vendor_requests.py). The user gets a 503 with ``Retry-After`` and
nothing to sign in with: no ``Location``, no token in the page or a cookie; the operator gets one log line naming
the reason, one ``Refused`` metric and one ``Unavailable`` metric with that reason (the outage alarm sums
``Unavailable``; a 4xx never counts in it). A vendor's own outages (Freshworks' signing key and library) are here
too, and every 503 reason a vendor's function raises itself must have one. A DynamoDB that hangs instead of failing
is in tests/integration/test_slow_dependencies.py (it needs a real socket).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from sso_bridge.errors import DependencyUnavailable
from sso_bridge.login_token import LoginIdentity
from tests.helpers import ROOT, SECRET_IDS, LambdaContext, LinkPage, load_event, make_login_token, pressed
from tests.reasons import unavailable_reasons
from tests.vendor_requests import VENDORS, deployed, portal, tokens_in

JTI_VENDORS = [vendor for vendor in VENDORS if deployed(vendor).records_jti]


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


@pytest.fixture(autouse=True)
def _no_fault_keeps_its_case() -> Iterator[None]:
    """Every case raises the same fault instances, and a raised one keeps its traceback: through its frames, that
    case's function module and boto3 clients stayed alive for the rest of the run (2.6 million objects after this
    module, measured, and a third of the unit tests' time then went to the garbage collector)."""
    yield
    for fault in (*SECRETS_FAULTS.values(), *DYNAMODB_FAULTS.values()):
        fault.__traceback__ = fault.__context__ = fault.__cause__ = None


@pytest.fixture(params=VENDORS)
def flow(
    request: pytest.FixtureRequest, jti_table: Any, link_tables: Any, load_function: Callable[..., ModuleType]
) -> Any:
    return request.param, load_function(request.param)


def sign_in(module: ModuleType, name: str, token: str, *, page: LinkPage | None = None) -> dict[str, Any]:
    """The vendor's request with ``token``; with ``page``, the POST of that link's page's button."""
    event = load_event(deployed(name).event, query=portal(name).sign_in(token))
    if page is not None:
        event = pressed(event, page)
    return module.lambda_handler(event, LambdaContext())  # type: ignore[no-any-return]


def raise_from(module_client: Any, operation: str, fault: Exception, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(**_: Any) -> Any:
        raise fault

    monkeypatch.setattr(module_client, operation, failing)


def assert_outage(response: dict[str, Any], logs: str, stdout: str, reason: str) -> None:
    # The user: a page that says to come back, and nothing to sign in with (no redirect, no token in the page
    # or in a cookie: not the vendor's, not a hand-off's login token).
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"].isdigit()
    assert "Location" not in response["headers"]
    assert "Temporarily unavailable" in response["body"]
    assert not tokens_in([response["body"], *response.get("cookies", [])])
    assert "<form" not in response["body"]
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
@pytest.mark.parametrize("vendor", JTI_VENDORS)
def test_dynamodb_faults_on_the_audit_write_are_a_503(
    jti_table: Any,
    link_tables: Any,
    load_function: Callable[..., ModuleType],
    vendor: str,
    fault: Exception,
    monkeypatch: pytest.MonkeyPatch,
    log_stream: Callable[[ModuleType], io.StringIO],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The vendors whose function writes the jti table (template.yaml gives them JTI_TABLE_NAME) record each token
    before signing it: no record, no token."""
    module = load_function(vendor)
    raise_from(module.jti_store.client, "put_item", fault, monkeypatch)
    logs = log_stream(module)
    response = sign_in(module, vendor, make_login_token(aud=vendor))
    assert_outage(response, logs.getvalue(), capsys.readouterr().out, "jti_store_unavailable")


def test_the_audit_write_is_tested_for_the_vendors_that_have_it() -> None:
    # HappyFox and Zendesk refuse a replayed jti: their functions are given the table (not a list kept here).
    assert {"happyfox", "zendesk"} <= set(JTI_VENDORS)


# --- a vendor's own outages ----------------------------------------------------------------------------------------


def _freshworks_key(pem: str) -> Callable[[ModuleType, Any, pytest.MonkeyPatch], None]:
    def put(module: ModuleType, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        aws.put_secret_value(SecretId=SECRET_IDS["freshworks"], SecretString=pem)

    return put


def _freshworks_without_the_oidc_layer(module: ModuleType, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(path: str) -> Any:
        raise ModuleNotFoundError("No module named 'joserfc'", name="joserfc")

    monkeypatch.setattr(module, "load_jose", missing)


# (vendor, reason) -> what makes that vendor's function answer 503 with it: every 503 reason a function raises
# itself (not the layer's, tested above for every vendor) needs one (test_every_503_a_vendor_raises_itself_is_here).
VENDOR_OUTAGES: dict[tuple[str, str], Callable[[ModuleType, Any, pytest.MonkeyPatch], None]] = {
    ("freshworks", "freshworks_key_invalid"): _freshworks_key("an HS256-style secret, not an RSA private key 0123"),
    ("freshworks", "signing_library_missing"): _freshworks_without_the_oidc_layer,
}


@pytest.mark.parametrize(("vendor", "reason"), VENDOR_OUTAGES, ids=[f"{v}-{r}" for v, r in VENDOR_OUTAGES])
def test_a_vendors_own_outage_is_a_503_counted_in_unavailable(
    aws: Any,
    link_tables: Any,
    load_function: Callable[..., ModuleType],
    vendor: str,
    reason: str,
    monkeypatch: pytest.MonkeyPatch,
    log_stream: Callable[[ModuleType], io.StringIO],
    capsys: pytest.CaptureFixture[str],
) -> None:
    module = load_function(vendor)
    VENDOR_OUTAGES[vendor, reason](module, aws, monkeypatch)
    logs = log_stream(module)
    response = sign_in(module, vendor, make_login_token(aud=vendor))
    assert_outage(response, logs.getvalue(), capsys.readouterr().out, reason)
    assert reason in unavailable_reasons()  # so the alarm's and the dashboard's tests know it


def _own_source(vendor: str) -> Path:
    return ROOT / "functions" / vendor / "app.py"


@pytest.mark.parametrize("vendor", VENDORS)
def test_every_503_a_vendor_raises_itself_is_here(vendor: str) -> None:
    raised = unavailable_reasons(raised_in=_own_source(vendor))
    tested = {reason for name, reason in VENDOR_OUTAGES if name == vendor}
    assert raised <= tested, (
        f"functions/{vendor}/app.py answers 503 with {sorted(raised - tested)}: add to VENDOR_OUTAGES what causes it"
    )


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
        prefix = portal(name).query()
        event = load_event(deployed(name).event, query=f"{prefix}&{query}" if prefix else query)
        response = module.lambda_handler(event, LambdaContext())
    assert response["statusCode"] == status
    metrics = emf_blobs(capsys.readouterr().out)
    assert len([m for m in metrics if "Refused" in m]) == 1  # the refusal was counted, where the test can see it
    assert [m for m in metrics if "Unavailable" in m] == []
