"""`make run`'s console: one readable line per request, what a handler prints kept per thread, JSON on demand."""

from __future__ import annotations

import io
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any, TextIO, cast

import pytest
from aws_lambda_powertools import Logger

from local.console import Captured, CapturingStdout, Console, capturing, format_line, note, parse_log_format
from local.gateway import function_url_app
from local.lambdas import LocalFunction
from local.server import Reply, Request
from local.template import FunctionSpec
from tests.helpers import LambdaContext

WHEN = 1_700_000_000.0
CLOCK = re.escape(time.strftime("%H:%M:%S", time.localtime(WHEN)))
LOG = {
    "level": "WARNING",
    "message": "request refused",
    "service": "clickfunnels",
    "outcome": "refused",
    "reason": "login_token_signature",
    "detail": "",
}
METRICS = {"_aws": {"Timestamp": 1, "CloudWatchMetrics": []}, "service": "clickfunnels", "Refused": [1.0]}


def request(target: str = "/clickfunnels/sso?login_token=eyJ.secret.sig", method: str = "GET") -> Request:
    return Request(
        method=method,
        target=target,
        headers=[("Host", "localhost:3000")],
        body=b"",
        client_ip="127.0.0.1",
        protocol="HTTP/1.1",
        server_port=3000,
    )


def console(log_format: str = "line") -> tuple[Console, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return Console(log_format=log_format, out=out, err=err), out, err


def printing(*lines: str, status: int = 401) -> Callable[[Request], Reply]:
    """An app that prints what a handler would and answers ``status``."""

    def app(_: Request) -> Reply:
        for line in lines:
            print(line, file=sys.stdout)
        return Reply(status)

    return app


@contextmanager
def stdout_proxy() -> Iterator[io.StringIO]:
    """``sys.stdout`` replaced by the stack's capturing stdout (in the test body: pytest resets it for the call);
    yields what reaches the terminal."""
    real, saved = io.StringIO(), sys.stdout
    sys.stdout = cast(TextIO, CapturingStdout(real, threading.Lock()))
    try:
        yield real
    finally:
        sys.stdout = saved


# The line.


def test_line_has_time_method_path_status_outcome_and_reason() -> None:
    line = format_line(WHEN, "GET", "/clickfunnels/sso", 401, "refused", "login_token_signature")
    assert re.fullmatch(rf"{CLOCK} GET /clickfunnels/sso 401 refused login_token_signature", line)


def test_line_names_the_server_when_it_is_not_the_http_api() -> None:
    line = format_line(WHEN, "GET", "/", 302, "issued", site="clickfunnels function URL")
    assert line.endswith(" GET / 302 issued  (clickfunnels function URL)")


def test_line_never_shows_a_query_even_if_handed_one() -> None:
    line = format_line(WHEN, "GET", "/clickfunnels/sso?login_token=eyJ.secret.sig", 302)
    assert "login_token" not in line
    assert line.endswith(" GET /clickfunnels/sso 302")


def test_line_stays_one_line_whatever_the_request_held() -> None:
    line = format_line(WHEN, "GET", "/a\r\nfake 200 issued\x1b[31m", 404, "x" * 500)
    assert "\n" not in line
    assert "\r" not in line
    assert "\x1b" not in line
    assert len(line) < 200


# What a handler prints.


def test_each_request_gets_one_line_from_its_json_log_and_the_metrics_blob_is_dropped() -> None:
    stack_console, out, err = console()
    app = stack_console.logged(printing(json.dumps(LOG), json.dumps(METRICS)), clock=lambda: WHEN)

    with stdout_proxy() as terminal:
        reply = app(request())

    assert reply.status == 401
    assert re.fullmatch(rf"{CLOCK} GET /clickfunnels/sso 401 refused login_token_signature\n", out.getvalue())
    assert err.getvalue() == ""
    assert terminal.getvalue() == ""  # nothing reached the terminal around the console


def test_the_last_outcome_wins_when_a_request_logs_several() -> None:
    stack_console, out, _ = console()
    spent = json.dumps({**LOG, "level": "INFO", "outcome": "link_spent", "reason": None})
    issued = json.dumps({**LOG, "level": "INFO", "outcome": "issued", "reason": None})
    with stdout_proxy(), capturing() as captured:
        print(spent)
        print(issued)
    stack_console.report(request(method="POST"), Reply(303), captured, site=None, when=WHEN)
    assert out.getvalue().endswith(" POST /clickfunnels/sso 303 issued\n")


def test_json_on_demand_follows_the_line_as_the_handler_printed_it() -> None:
    stack_console, out, _ = console("json")
    captured = Captured(chunks=[json.dumps(LOG), "\n", json.dumps(METRICS), "\n"])
    stack_console.report(request(), Reply(401), captured, site=None, when=WHEN)
    line, log, metrics = out.getvalue().splitlines()
    assert line.endswith(" 401 refused login_token_signature")
    assert json.loads(log) == LOG
    assert json.loads(metrics) == METRICS


def test_a_logged_exception_keeps_its_traceback() -> None:
    stack_console, out, err = console()
    crash = {**LOG, "level": "ERROR", "outcome": "error", "reason": None}
    crash["exception"] = 'Traceback (most recent call last):\n  File "app.py", line 1\nZeroDivisionError: boom'
    stack_console.report(request(), Reply(500), Captured(chunks=[json.dumps(crash)]), site=None, when=WHEN)
    assert out.getvalue().endswith(" GET /clickfunnels/sso 500 error\n")
    assert err.getvalue().startswith("Traceback (most recent call last):")
    assert "ZeroDivisionError: boom" in err.getvalue()


def test_what_is_not_json_is_printed_after_the_line() -> None:
    stack_console, out, _ = console()
    stack_console.report(request(), Reply(200), Captured(chunks=["debug: hello\n"]), site=None, when=WHEN)
    assert out.getvalue().splitlines()[1] == "debug: hello"


def test_local_pages_note_their_outcome() -> None:
    stack_console, out, _ = console()

    def page(_: Request) -> Reply:
        note("demo_platform", "form")
        return Reply(200)

    stack_console.logged(page, clock=lambda: WHEN)(request("/_platform/login?return_to=x"))
    assert out.getvalue().endswith(" GET /_platform/login 200 demo_platform form\n")


def test_note_outside_a_request_does_nothing() -> None:
    note("index")  # no request on this thread: nowhere to note it, and no error


# Threads.


def test_only_the_capturing_thread_is_kept() -> None:
    started, release = threading.Event(), threading.Event()
    kept: list[str] = []

    def handler() -> None:
        with capturing() as captured:
            print("from the request")
            started.set()
            release.wait(5)
        kept.append(captured.text())

    with stdout_proxy() as terminal:
        thread = threading.Thread(target=handler)
        thread.start()
        started.wait(5)
        print("from elsewhere")
        release.set()
        thread.join(5)

    assert kept == ["from the request\n"]
    assert terminal.getvalue() == "from elsewhere\n"


def test_powertools_logger_made_on_the_proxy_logs_into_the_request() -> None:
    with stdout_proxy() as terminal:
        # As at import time in the stack: a Logger keeps the sys.stdout it found, the proxy.
        logger = Logger(service="console-test")
        with capturing() as captured:
            logger.info("login required", extra={"outcome": "login_redirect", "reason": "login_token_missing"})
        logger.info("outside any request")

    [record] = [json.loads(line) for line in captured.text().splitlines()]
    assert record["outcome"] == "login_redirect"
    assert "outside any request" in terminal.getvalue()


def test_a_real_handler_behind_a_function_url_logs_one_line(load_function: Callable[..., ModuleType]) -> None:
    stack_console, out, _ = console()
    module = load_function("clickfunnels")
    handler = module.logger.registered_handler
    previous = handler.stream

    def invoke(event: dict[str, Any]) -> Any:
        return module.lambda_handler(event, LambdaContext())

    logged = stack_console.logged(
        function_url_app(invoke, function_id="clickfunnels"), site="clickfunnels function URL"
    )
    try:
        with stdout_proxy() as terminal:
            # Given the ClickFunnels handler, its logger writing to the stack's stdout (as after console.install())
            handler.setStream(sys.stdout)
            # When a signed-out user opens its function URL
            reply = logged(request("/?utm_source=mail"))
    finally:
        handler.setStream(previous)

    # Then one line, with the flow's outcome and reason, and nothing of the handler's JSON
    assert reply.status == 302
    [line] = out.getvalue().splitlines()
    assert line.endswith(" GET / 302 login_redirect login_token_missing  (clickfunnels function URL)")
    assert terminal.getvalue() == ""


# LOCAL_LOGS.


@pytest.mark.parametrize(("raw", "expected"), [(None, "line"), ("", "line"), ("json", "json"), (" JSON ", "json")])
def test_local_logs_values(raw: str | None, expected: str) -> None:
    assert parse_log_format(raw) == expected


def test_local_logs_refuses_anything_else_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="LOCAL_LOGS must be line or json"):
        parse_log_format("verbose")


def test_a_crashed_handler_prints_its_traceback_and_its_line(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a function whose handler raises (a bug outside Powertools' exception handlers)
    module = ModuleType("crashing")

    def lambda_handler(event: dict[str, Any], context: Any) -> Any:
        raise ZeroDivisionError("boom")

    module.lambda_handler = lambda_handler  # type: ignore[attr-defined]
    spec = FunctionSpec("CrashingFunction", "functions/crashing", "app.lambda_handler", (), {}, function_url=True)
    function = LocalFunction(spec, module, memory=256, timeout=3)
    stack_console, out, _ = console()
    app = stack_console.logged(function_url_app(function.invoke, function_id="crashing"), site="crashing function URL")

    # When it is invoked
    reply = app(request("/"))

    # Then the client gets the function URL's 502, the console a line, and stderr the traceback
    assert reply.status == 502
    assert out.getvalue().endswith(" GET / 502 crashed  (crashing function URL)\n")
    assert "ZeroDivisionError: boom" in capsys.readouterr().err
