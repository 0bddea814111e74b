"""`make bench`'s pieces run, with tiny counts, and give well-formed results. No timing is asserted: read the bench.

The warm and cold pieces need `make build`'s output (they run the built functions); they use the Lambda-shaped
runtime venv that `make bench` makes when it exists, else this interpreter (then cryptography may be loaded, which
the bench proper refuses). They talk to localhost (moto's server, the driver processes, the local stack), so this
module lets sockets open.
"""

from __future__ import annotations

import json
import math
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks import __main__ as bench_main
from benchmarks.flows import CASES, FLOWS, Case
from benchmarks.lambda_env import BUILD, RUNTIME_PYTHON, Stack, lambda_functions, trace_id
from benchmarks.report import table
from benchmarks.runner import Bench, parse_importtime
from tests.helpers import ROOT

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture(autouse=True)
def _no_network() -> None:
    """Overrides the unit tests' socket ban: everything here talks to localhost only."""


def positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


# --- pure pieces ------------------------------------------------------------------------------------------------


def test_importtime_lines_after_the_marker_are_parsed_with_their_depth() -> None:
    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       100 |        100 | json",
            "bench: measuring",
            "import time:        50 |         50 |   jwt.utils",
            "import time:       200 |        250 | jwt",
            "some other line",
        ]
    )
    assert parse_importtime(stderr, "bench: measuring") == [
        {"module": "jwt.utils", "self_us": 50, "cumulative_us": 50, "depth": 1},
        {"module": "jwt", "self_us": 200, "cumulative_us": 250, "depth": 0},
    ]


def test_every_function_gets_lambdas_environment_and_the_templates_variables_resolved(tmp_path: Path) -> None:
    stack = Stack.load()
    functions = lambda_functions(stack, tmp_path)
    assert {flow.function for flow in FLOWS} <= set(functions)
    for fn in functions.values():
        env = fn.environment(
            layer=tmp_path / "Layer",
            overlay=[tmp_path / "native"],
            runtime_python=tmp_path / "venv" / "bin" / "python",
            endpoint="http://127.0.0.1:1",
            xray_daemon=("127.0.0.1", 2000),
            home=tmp_path,
            trace_id=trace_id(fn.tracing == "Active"),
        )
        assert env["LAMBDA_TASK_ROOT"] == str(tmp_path / fn.logical_id)
        assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.13"
        assert env["_HANDLER"] == fn.handler
        assert env["AWS_LAMBDA_FUNCTION_NAME"] == fn.name
        assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == str(fn.memory)
        assert env["AWS_XRAY_CONTEXT_MISSING"] == "LOG_ERROR"
        # Lambda's order: the task root, the native overlay, then /opt/python's two entries.
        assert env["PYTHONPATH"].split(":") == [
            str(tmp_path / fn.logical_id),
            str(tmp_path / "native"),
            str(tmp_path / "Layer" / "python" / "lib" / "python3.13" / "site-packages"),
            str(tmp_path / "Layer" / "python"),
        ]
        assert ("Sampled=1" in env["_X_AMZN_TRACE_ID"]) == (fn.tracing == "Active")
        for name, value in fn.template_env.items():
            assert env[name] == value
            assert "${" not in value, (name, value)
            assert "Ref" not in value, (name, value)
        # Tracing is as deployed: only the template may turn the Tracer off.
        assert ("POWERTOOLS_TRACE_DISABLED" in env) == ("POWERTOOLS_TRACE_DISABLED" in fn.template_env)
        assert env["LOGIN_TOKEN_SECRET_ID"].startswith("arn:aws:secretsmanager:")


def test_the_runtime_venv_pins_the_dev_groups_boto3() -> None:
    makefile = (ROOT / "Makefile").read_text()
    [pinned] = re.findall(r"^BENCH_BOTO3_VERSION := (\S+)$", makefile, re.MULTILINE)
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["dev"]
    assert f"boto3=={pinned}" in dev


def test_the_report_has_a_row_per_case_and_the_extra_lines() -> None:
    warm = {"flow": "F", "event": "http api", "handler_us": 500.0, "floor_us": 60.0, "extra_us": 440.0}
    warm |= {"ratio": 8.3, "ratio_without_write": None, "case": "f/http-api"}
    cold = {"flow": "F", "event": "http api", "case": "f/http-api", "function": "Fn", "handler_ms": 300.0}
    cold |= {"floor_ms": 150.0, "ratio": 2.0, "handler_rss_mb": 50.0, "floor_rss_mb": 40.0}
    cold |= {"handler_import_ms": 250.0, "handler_first_request_ms": 50.0, "handler_process_ms": 330.0}
    cold |= {"handler_modules": 500, "floor_modules": 300, "floor_import_ms": 120.0}
    cold |= {"imported_during_cold_start": 480, "importtime_top": [{"module": "boto3", "cumulative_us": 9}]}
    links = {"rows_per_s": 80000.0, "floor_rows_per_s": 400000.0, "ratio": 5.0, "rows": 10}
    load = {"requests_per_s": 900.0, "clients": 20, "seconds": 10.0, "p50_ms": 20.0, "p99_ms": 40.0}
    load |= {"errors": 0, "requests": 9000}
    text = table({"warm": [warm], "cold": [cold], "links": links, "load": load})
    assert re.search(r"F\s+http api\s+\|\s+500\s+60\s+440\s+8\.3x\s+-\s+\|\s+300\s+150\s+2\.0x", text)
    for part in ("boto3", "rows/s", "requests/s"):
        assert part in text


# --- the pieces that run things -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bench() -> Iterator[Bench]:
    if not (BUILD / "template.yaml").exists():
        pytest.skip("run `make build` first")
    lambda_shaped = RUNTIME_PYTHON.exists()
    with Bench(RUNTIME_PYTHON if lambda_shaped else Path(sys.executable), strict=lambda_shaped) as running:
        yield running


def one_event_per_flow() -> list[Case]:
    """Each flow once, the HTTP API and function URL events in turn: every event kind and every floor write run."""
    picked = []
    for i, flow in enumerate(FLOWS):
        cases = [case for case in CASES if case.flow is flow]
        picked.append(cases[i % len(cases)])
    return picked


SMOKE_CASES = one_event_per_flow()


@pytest.mark.build
@pytest.mark.parametrize("case", SMOKE_CASES, ids=lambda case: case.name)
def test_warm_and_cold_run_the_built_function_against_its_floor(bench: Bench, case: Case) -> None:
    warm = bench.warm(case, rounds=1, calls=3, warmup=1)
    assert warm["case"] == case.name
    assert warm["calls_per_round"] == 3
    for key in ("handler_us", "floor_us", "ratio", "handler_call_p50_us", "max_rss_mb", "log_bytes_per_call"):
        assert positive(warm[key]), (key, warm[key])
    assert len(warm["handler_rounds_us"]) == len(warm["floor_rounds_us"]) == 1
    assert warm["error_log_lines"] == 0
    if case.flow.write:
        assert positive(warm["floor_write_us"])
    else:
        assert warm["floor_write_us"] == 0
        assert warm["ratio_without_write"] is None

    cold = bench.cold(case, runs=1, top=5)
    for key in ("handler_ms", "handler_import_ms", "handler_first_request_ms", "floor_ms", "ratio"):
        assert positive(cold[key]), (key, cold[key])
    assert positive(cold["handler_rss_mb"])
    assert positive(cold["floor_rss_mb"])
    assert cold["handler_modules"] > cold["floor_modules"] > 0
    assert 0 < len(cold["importtime_top"]) <= 5
    tops = [entry["cumulative_us"] for entry in cold["importtime_top"]]
    assert tops == sorted(tops, reverse=True)
    # The built artifacts ran: the layer's PyJWT, the runtime venv's (or this venv's) boto3.
    assert cold["jwt_from"].startswith(str(bench.layer))
    assert cold["boto3_from"].startswith(str(Path(bench.runtime_python).parent.parent))


def test_link_minting_mints_a_link_per_row() -> None:
    from benchmarks.links import link_batch

    result = link_batch(rows=300, repeat=1)
    assert result["rows_with_link"] == 300
    assert result["rows_refused"] == 0
    for key in ("rows_per_s", "floor_rows_per_s", "ratio"):
        assert positive(result[key])


def test_the_local_stack_load_test_runs_for_a_second_without_errors() -> None:
    from benchmarks.load import load_test

    result = load_test(seconds=1, clients=2)
    assert result["requests"] > 0
    assert result["errors"] == 0, result["statuses"]
    assert set(result["statuses"]) == {"302"}
    assert positive(result["requests_per_s"])
    assert result["p99_ms"] >= result["p50_ms"] > 0


def test_main_writes_the_json_and_prints_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.json"
    assert bench_main.main(["--only", "links", "--link-rows", "200", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["links"]["rows"] == 200
    assert results["code"]["commit"]
    assert results["settings"]["link_rows"] == 200
    assert "batch links" in capsys.readouterr().out
