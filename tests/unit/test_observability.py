"""The bridge's log lines and metrics: what an operator's queries, alarms and dashboard rely on.

The same field names and EMF shape as Powertools wrote before (``level``, ``message``, ``service``,
``cold_start``, ``function_request_id``, ``correlation_id``; one blob per metric with the ``service``
dimension), one JSON object per line whatever ``POWERTOOLS_DEV`` says, and each invocation's ids on its own
lines even when threads answer at once. Every vendor in template.yaml counts its tokens and refusals under its own
``service``, the one the dashboard's widgets group by (its 503s: tests/unit/test_faults.py).
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from sso_bridge.observability import Logger, Metrics
from tests.helpers import LambdaContext, load_event, make_login_token
from tests.vendor_requests import VENDORS, deployed, portal


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_sign_in_logs_one_line_with_the_invocations_ids(
    aws: Any, load_function: Callable[..., ModuleType], log_stream: Callable[[ModuleType], io.StringIO]
) -> None:
    module = load_function("clickfunnels", POWERTOOLS_DEV="true")
    logs = log_stream(module)
    event = load_event("clickfunnels-sso-httpapi", query=f"login_token={make_login_token()}")
    context = LambdaContext()
    module.lambda_handler(event, context)
    module.lambda_handler(event, context)

    first, second = lines(logs)  # one line each, POWERTOOLS_DEV or not
    assert first["outcome"] == "issued"
    assert first["level"] == "INFO"
    assert first["service"] == "clickfunnels"
    assert first["correlation_id"] == event["requestContext"]["requestId"]
    assert first["function_request_id"] == context.aws_request_id
    assert first["function_name"] == context.function_name
    assert (first["cold_start"], second["cold_start"]) == (True, False)


def test_the_cold_start_is_counted_once(
    aws: Any, load_function: Callable[..., ModuleType], capsys: pytest.CaptureFixture[str]
) -> None:
    module = load_function("clickfunnels")
    event = load_event("clickfunnels-sso-httpapi", query=f"login_token={make_login_token()}")
    for _ in range(3):
        module.lambda_handler(event, LambdaContext())
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [b for b in blobs if "ColdStart" in b] == [
        {
            "_aws": blobs[0]["_aws"],
            "service": "clickfunnels",
            "function_name": LambdaContext().function_name,
            "ColdStart": [1.0],
        }
    ]
    assert sum("TokenIssued" in b for b in blobs) == 3


def emf(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if '"_aws"' in line]


@pytest.mark.parametrize("vendor", VENDORS)
def test_every_vendor_counts_its_tokens_and_refusals_under_its_own_service(
    jti_table: Any,
    link_tables: Any,
    load_function: Callable[..., ModuleType],
    log_stream: Callable[[ModuleType], io.StringIO],
    capsys: pytest.CaptureFixture[str],
    vendor: str,
) -> None:
    # Given the vendor's function with the service name template.yaml gives it (operators type the vendor's name)
    service = deployed(vendor).service
    assert service == vendor
    module = load_function(vendor, POWERTOOLS_SERVICE_NAME=service)
    logs = log_stream(module)
    signs_in = portal(vendor)
    capsys.readouterr()

    # When one user signs in, one brings a forged login token, and one asks to be sent to another host
    def answer(query: str) -> int:
        response = module.lambda_handler(load_event(deployed(vendor).event, query=query), LambdaContext())
        return int(response["statusCode"])

    assert answer(signs_in.sign_in(make_login_token(aud=vendor))) == signs_in.signed_in_status()
    forged = make_login_token(aud=vendor, key="attacker-key-0123456789abcdef0123456789")
    assert answer(signs_in.sign_in(forged)) == 401
    refusals = ["login_token_signature"]
    if signs_in.destination is not None:
        evil = {signs_in.destination: "https://evil.example.net/"}
        assert answer(signs_in.sign_in(make_login_token(aud=vendor), **evil)) == 400
        refusals.append("url_host")

    # Then the token is counted once and each refusal once with its reason, all under the vendor's service
    blobs = emf(capsys.readouterr().out)
    issued = [blob for blob in blobs if "TokenIssued" in blob]
    assert [(b["service"], b["TokenIssued"]) for b in issued] == [(vendor, [1.0])]
    assert issued[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    refused = [blob for blob in blobs if "Refused" in blob]
    assert [(b["service"], b["reason"]) for b in refused] == [(vendor, reason) for reason in refusals]
    assert all(b["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "reason"]] for b in refused)
    assert not [blob for blob in blobs if "Unavailable" in blob]  # a 4xx is never an outage
    # And its log lines say which vendor answered: one per request
    logged = lines(logs)
    assert {line["service"] for line in logged} == {vendor}
    assert [line["outcome"] for line in logged if "outcome" in line] == ["issued", *(["refused"] * len(refusals))]


def test_a_metric_is_an_emf_blob_with_its_dimensions(capsys: pytest.CaptureFixture[str]) -> None:
    Metrics(namespace="SsoBridge", service="kustomer").count("Refused", reason="url_host")
    (blob,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (directive,) = blob["_aws"]["CloudWatchMetrics"]
    assert directive == {
        "Namespace": "SsoBridge",
        "Dimensions": [["service", "reason"]],
        "Metrics": [{"Name": "Refused", "Unit": "Count"}],
    }
    assert (blob["service"], blob["reason"], blob["Refused"]) == ("kustomer", "url_host", [1.0])


def test_metrics_can_be_switched_off(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    Metrics().count("Refused", reason="x")
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(("level", "written"), [("DEBUG", 4), ("INFO", 3), ("WARNING", 2), ("ERROR", 1)])
def test_records_below_the_level_are_dropped(monkeypatch: pytest.MonkeyPatch, level: str, written: int) -> None:
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", level)
    stream = io.StringIO()
    logger = Logger("svc", stream=stream)
    logger.debug("d")
    logger.info("i")
    logger.warning("w %s", "arg")
    logger.error("e")
    assert [line["message"] for line in lines(stream)] == ["d", "i", "w arg", "e"][-written:]


def test_an_exception_is_logged_with_its_traceback() -> None:
    stream = io.StringIO()
    logger = Logger("svc", stream=stream)
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("unexpected error", extra={"outcome": "error"})
    (line,) = lines(stream)
    assert line["level"] == "ERROR"
    assert line["exception_name"] == "ValueError"
    assert "raise ValueError" in line["exception"]
    assert line["outcome"] == "error"


def test_threads_keep_their_own_invocation_ids() -> None:
    stream = io.StringIO()
    logger = Logger("svc", stream=stream)
    barrier = threading.Barrier(8)

    def invocation(number: int) -> None:
        token = logger.bind({"correlation_id": f"request-{number}"})
        barrier.wait()  # every thread has bound its ids before any logs
        logger.info("answered", extra={"number": number})
        logger.unbind(token)

    threads = [threading.Thread(target=invocation, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted((line["number"], line["correlation_id"]) for line in lines(stream)) == [
        (n, f"request-{n}") for n in range(8)
    ]
