"""The shared Lambda entry point: what a cold start loads, and the tracing switch.

Lambda's Active tracing records invocations without an SDK, so by default a function never imports the X-Ray SDK
(about 125 ms of cold start and a quarter of a warm request); ``TRACE_SUBSEGMENTS=true`` brings it back.

``cryptography`` is not on Lambda's path: the OIDC layer keeps it in ``/opt/oidc-packages`` (``OIDC_PACKAGES_PATH``),
so that PyJWT does not import it at every cold start (about 60 ms). Only a function that attaches that layer itself
in template.yaml (Freshworks: RS256) loads it, on its first sign-in; the others never do. The cold starts run in a
fresh interpreter where, as in Lambda, ``cryptography`` and the OIDC layer's other packages can be imported only from
that folder once it is on ``sys.path``, and AWS is a stand-in handing out the tests' keys. Every vendor is
template.yaml's, signed in with its own request (tests/vendor_requests.py).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sso_bridge.errors import ConfigurationError
from sso_bridge.settings import env_bool
from tests.helpers import LOGIN_TOKEN_KEY, ROOT, SECRET_IDS, VENDOR_KEYS, LambdaContext, load_event, make_login_token
from tests.vendor_requests import VENDORS, deployed, portal

# What the OIDC layer ships in /opt/oidc-packages (layers/oidc): importable only from there, as in Lambda.
OIDC_LAYER_PACKAGES = ("cryptography", "cffi", "_cffi_backend", "pycparser", "joserfc")

# Run in a fresh interpreter: the gate, the import (the cold start), then, given an event, one sign-in.
_COLD_START = """
import datetime, importlib, importlib.abc, importlib.machinery, json, os, sys

spec = json.loads(sys.stdin.read())
oidc_packages, gated = spec["oidc_packages"], set(spec["gated"])


class LambdaPath(importlib.abc.MetaPathFinder):
    # Lambda's sys.path has none of the OIDC layer's packages: only its folder, once a function appends it.
    def find_spec(self, name, path=None, target=None):
        if "." in name or name not in gated:
            return None
        found = importlib.machinery.PathFinder.find_spec(name, [oidc_packages]) if oidc_packages in sys.path else None
        if found is None:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return found


sys.meta_path.insert(0, LambdaPath())
app = importlib.import_module(f"functions.{spec['function']}.app")
result = {"cold": sorted(sys.modules), "status": None}
if spec["event"] is not None:
    from botocore.exceptions import ClientError

    class SecretsManager:
        def get_secret_value(self, SecretId, VersionStage="AWSCURRENT"):
            if VersionStage != "AWSCURRENT" or SecretId not in spec["secrets"]:
                raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "-"}}, "GetSecretValue")
            return {"SecretString": spec["secrets"][SecretId], "CreatedDate": datetime.datetime.now(datetime.UTC)}

    class DynamoDB:
        def put_item(self, **_):
            return {}

    app.flow.keys._client = SecretsManager
    if hasattr(app, "jti_store"):
        app.jti_store._client = DynamoDB

    class Context:
        function_name, memory_limit_in_mb, aws_request_id = "cold-start", 256, "7f6c1f5e-0000-4000-8000-000000000000"
        invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:cold-start"

        def get_remaining_time_in_millis(self):
            return 10_000

    result["status"] = app.lambda_handler(spec["event"], Context())["statusCode"]
result["after"] = sorted(sys.modules)
result["cryptography_from"] = getattr(sys.modules.get("cryptography"), "__file__", None)
print(json.dumps(result))
"""


@dataclass(frozen=True)
class ColdStart:
    cold: frozenset[str]  # the modules after the import
    after: frozenset[str]  # after the sign-in too
    status: int | None
    cryptography_from: str | None


def cold_start(function: str, oidc_packages: Path, *, event: dict[str, Any] | None = None, **env: str) -> ColdStart:
    """Import ``function`` in a fresh interpreter as Lambda would at a cold start; then answer ``event``."""
    environment = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'layers' / 'signing'}", **env}
    environment.pop("POWERTOOLS_TRACE_DISABLED", None)  # as deployed: Powertools would trace
    environment |= {
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / function),
        "POWERTOOLS_SERVICE_NAME": function,
        "OIDC_PACKAGES_PATH": str(oidc_packages),
    }
    spec = {
        "function": function,
        "oidc_packages": str(oidc_packages),
        "gated": OIDC_LAYER_PACKAGES,
        "event": event,
        "secrets": {SECRET_IDS["login"]: LOGIN_TOKEN_KEY, **{SECRET_IDS[v]: k for v, k in VENDOR_KEYS.items()}},
    }
    result = subprocess.run(
        [sys.executable, "-c", _COLD_START],
        input=json.dumps(spec),
        env=environment,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.splitlines()[-1])
    return ColdStart(frozenset(found["cold"]), frozenset(found["after"]), found["status"], found["cryptography_from"])


def modules_after_import(function: str, **env: str) -> set[str]:
    """The modules a fresh interpreter holds after importing ``function`` (cryptography importable as in dev)."""
    script = f"import sys, json; import functions.{function}.app; print(json.dumps(sorted(sys.modules)))"
    environment = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'layers' / 'signing'}", **env}
    environment.pop("POWERTOOLS_TRACE_DISABLED", None)  # as deployed: Powertools would trace
    environment["LAMBDA_TASK_ROOT"] = str(ROOT / "functions" / function)
    result = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=True, cwd=ROOT
    )
    return set(json.loads(result.stdout))


@pytest.fixture(scope="module")
def oidc_packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The OIDC layer's folder: this interpreter's own copies of its packages, linked into a folder of their own."""
    folder = tmp_path_factory.mktemp("oidc-packages")
    for name in OIDC_LAYER_PACKAGES:
        found = importlib.util.find_spec(name)
        assert found is not None, f"{name} is not installed"
        assert found.origin is not None, name
        source = Path(found.origin)
        source = source.parent if found.submodule_search_locations else source
        (folder / source.name).symlink_to(source)
    return folder


@pytest.fixture(scope="module")
def cold_starts(oidc_packages: Path) -> Callable[[str], ColdStart]:
    """Each function's cold start and first sign-in, run once for the tests below."""

    @functools.cache
    def run(function: str) -> ColdStart:
        signs_in = portal(function)
        query = signs_in.sign_in(make_login_token(aud=function))
        started = cold_start(function, oidc_packages, event=load_event(deployed(function).event, query=query))
        assert started.status == signs_in.signed_in_status(), (function, started.status)
        return started

    return run


def _loaded(modules: frozenset[str], package: str) -> set[str]:
    return {name for name in modules if name.split(".")[0] == package}


@pytest.mark.parametrize("function", VENDORS)
def test_a_cold_start_does_not_load_the_xray_sdk(function: str, cold_starts: Callable[[str], ColdStart]) -> None:
    started = cold_starts(function)
    assert not _loaded(started.cold, "aws_xray_sdk")
    assert not _loaded(started.after, "aws_xray_sdk")  # nor does a sign-in


@pytest.mark.parametrize("function", VENDORS)
def test_no_cold_start_loads_cryptography(function: str, cold_starts: Callable[[str], ColdStart]) -> None:
    # Not even Freshworks': a cold start that refuses or redirects never pays for it.
    started = cold_starts(function)
    assert not _loaded(started.cold, "cryptography")
    assert not _loaded(started.cold, "joserfc")


@pytest.mark.parametrize("function", VENDORS)
def test_only_a_function_that_attaches_the_oidc_layer_loads_cryptography_from_it_at_its_first_sign_in(
    function: str, cold_starts: Callable[[str], ColdStart], oidc_packages: Path
) -> None:
    started = cold_starts(function)
    if deployed(function).attaches_oidc_layer:  # Freshworks: its RS256 id_token
        assert _loaded(started.after, "cryptography")
        assert started.cryptography_from == str(oidc_packages / "cryptography" / "__init__.py")
    else:
        assert not _loaded(started.after, "cryptography"), f"{function} signed in with cryptography loaded"
        assert started.cryptography_from is None


def test_one_function_signs_with_cryptography() -> None:
    # The template gives the OIDC layer to Freshworks alone (with OpenID Connect off): the test above tells both ways.
    assert [vendor for vendor in VENDORS if deployed(vendor).attaches_oidc_layer] == ["freshworks"]


def test_trace_subsegments_loads_the_tracer() -> None:
    loaded = modules_after_import("clickfunnels", TRACE_SUBSEGMENTS="true")
    assert "aws_xray_sdk.core" in loaded


@pytest.mark.parametrize("function", VENDORS)
def test_with_subsegments_on_a_sign_in_still_works(
    jti_table: Any, link_tables: Any, load_function: Callable[..., ModuleType], function: str
) -> None:
    module = load_function(function, TRACE_SUBSEGMENTS="true")
    signs_in = portal(function)
    query = signs_in.sign_in(make_login_token(aud=function))
    response = module.lambda_handler(load_event(deployed(function).event, query=query), LambdaContext())
    assert response["statusCode"] == signs_in.signed_in_status()


@pytest.mark.parametrize(("raw", "expected"), [("", False), ("true", True), ("TRUE", True), ("false", False)])
def test_switches_read_true_or_false(raw: str, expected: bool) -> None:
    assert env_bool({"TRACE_SUBSEGMENTS": raw}, "TRACE_SUBSEGMENTS") is expected


@pytest.mark.parametrize("raw", ["yes", "1", "on", "tru"])
def test_a_switch_that_is_neither_true_nor_false_stops_the_cold_start(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="TRACE_SUBSEGMENTS"):
        env_bool({"TRACE_SUBSEGMENTS": raw}, "TRACE_SUBSEGMENTS")
