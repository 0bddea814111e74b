"""The shared Lambda entry point: what a cold start loads, and the tracing switch.

Lambda's Active tracing records invocations without an SDK, so by default a function never imports the X-Ray SDK
(about 125 ms of cold start and a quarter of a warm request); ``TRACE_SUBSEGMENTS=true`` brings it back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from sso_bridge.errors import ConfigurationError
from sso_bridge.settings import env_bool
from tests.helpers import ROOT, LambdaContext, load_event, make_login_token

FUNCTIONS = ["clickfunnels", "kustomer", "happyfox"]


def modules_after_import(function: str, **env: str) -> set[str]:
    """The modules a fresh interpreter holds after importing ``function`` as Lambda would at a cold start."""
    script = f"import sys, json; import functions.{function}.app; print(json.dumps(sorted(sys.modules)))"
    environment = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'layers' / 'signing'}", **env}
    environment.pop("POWERTOOLS_TRACE_DISABLED", None)  # as deployed: Powertools would trace
    environment["LAMBDA_TASK_ROOT"] = str(ROOT / "functions" / function)
    result = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=True, cwd=ROOT
    )
    return set(json.loads(result.stdout))


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_cold_start_does_not_load_the_xray_sdk(function: str) -> None:
    loaded = modules_after_import(function)
    assert not {name for name in loaded if name.startswith("aws_xray_sdk")}


def test_trace_subsegments_loads_the_tracer() -> None:
    loaded = modules_after_import("clickfunnels", TRACE_SUBSEGMENTS="true")
    assert "aws_xray_sdk.core" in loaded


@pytest.mark.parametrize("function", FUNCTIONS)
def test_with_subsegments_on_a_sign_in_still_works(
    jti_table: Any, load_function: Callable[..., ModuleType], function: str
) -> None:
    module = load_function(function, TRACE_SUBSEGMENTS="true")
    query = f"login_token={make_login_token(aud=function)}"
    if function == "kustomer":
        query += "&kustomerRedirectUri=https%3A%2F%2Fyourcompany.kustomer.help%2Flogin"
    event_name = {"clickfunnels": "clickfunnels-sso-httpapi"}.get(function, f"{function}-login-httpapi")
    response = module.lambda_handler(load_event(event_name, query=query), LambdaContext())
    assert response["statusCode"] == 302


@pytest.mark.parametrize(("raw", "expected"), [("", False), ("true", True), ("TRUE", True), ("false", False)])
def test_switches_read_true_or_false(raw: str, expected: bool) -> None:
    assert env_bool({"TRACE_SUBSEGMENTS": raw}, "TRACE_SUBSEGMENTS") is expected


@pytest.mark.parametrize("raw", ["yes", "1", "on", "tru"])
def test_a_switch_that_is_neither_true_nor_false_stops_the_cold_start(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="TRACE_SUBSEGMENTS"):
        env_bool({"TRACE_SUBSEGMENTS": raw}, "TRACE_SUBSEGMENTS")
