"""`make bench`'s pieces run, with tiny counts, and give well-formed results. No timing is asserted: read the bench.

The warm and cold pieces need `make build`'s output (they run the built functions); they use the Lambda-shaped
runtime venv that `make bench` makes when it exists, else this interpreter (then cryptography may be loaded, which
the bench proper refuses). They talk to localhost (moto's server, the driver processes, the local stack), so this
module lets sockets open.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import pytest

from benchmarks import __main__ as bench_main
from benchmarks import driver
from benchmarks.flows import CASES, FLOWS, OIDC_COLD_CASES, OIDC_FLOWS, OIDC_WARM_CASES, Case, Flow
from benchmarks.lambda_env import (
    BUILD,
    OIDC_CLIENT_ID,
    OIDC_CLIENT_SECRET,
    RUNTIME_PYTHON,
    Stack,
    TemplateError,
    lambda_functions,
    oidc_layer_id,
    trace_id,
    vendor_settings,
)
from benchmarks.oidc_provider import StandInProvider
from benchmarks.report import table
from benchmarks.runner import Bench, expects_cryptography, parse_importtime
from local.template import functions as template_functions
from tests.helpers import (
    CANNY_COMPANY_ID,
    EVENTS,
    FRESHWORKS_CLIENT_ID,
    HAPPYFOX_ACCOUNT_URL,
    JTI_TABLE_NAME,
    LOGIN_TOKEN_KEY,
    ROOT,
    VENDOR_KEYS,
    ZENDESK_ACCOUNT_URL,
    LambdaContext,
    load_event,
)

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


def _conditional_template() -> dict[str, Any]:
    return {
        "Parameters": {"Issuer": {"Type": "String", "Default": ""}, "Pool": {"Type": "String", "Default": "false"}},
        "Conditions": {
            "HasIssuer": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Issuer"}, ""]}]},
            "Pool": {"Fn::Equals": [{"Ref": "Pool"}, "true"]},
            "On": {"Fn::Or": [{"Fn::Condition": "HasIssuer"}, {"Condition": "Pool"}]},
            "Both": {"Fn::And": [{"Condition": "HasIssuer"}, {"Condition": "Pool"}]},
        },
        "Resources": {
            "Extra": {"Type": "AWS::SecretsManager::Secret", "Condition": "On", "Properties": {"Name": "x"}},
            "Layer": {"Type": "AWS::Serverless::LayerVersion", "Properties": {}},
            "Fn": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Layers": [{"Ref": "Layer"}, {"Fn::If": ["On", {"Ref": "Extra"}, {"Ref": "AWS::NoValue"}]}],
                    "Environment": {
                        "Variables": {
                            "ISSUER": {
                                "Fn::If": ["Pool", {"Fn::Sub": "https://pool/${AWS::Region}"}, {"Ref": "Issuer"}]
                            },
                            "SECRET": {"Fn::If": ["On", {"Ref": "Extra"}, ""]},
                            "ONLY_BOTH": {"Fn::If": ["Both", "yes", {"Ref": "AWS::NoValue"}]},
                        }
                    },
                },
            },
        },
    }


def test_conditions_and_if_resolve_over_the_parameters_as_cloudformation_does(tmp_path: Path) -> None:
    off = Stack.load(_conditional_template())
    assert {name: off.condition(name) for name in ("HasIssuer", "Pool", "On", "Both")} == dict.fromkeys(
        ("HasIssuer", "Pool", "On", "Both"), False
    )
    assert "Extra" not in off.physical  # its condition is false: not created
    [fn] = lambda_functions(off, tmp_path).values()
    assert fn.template_env == {"ISSUER": "", "SECRET": ""}  # NoValue: the variable is left out
    assert fn.layers == ("Layer",)

    issuer = off.with_parameters(Issuer="https://idp.example.com")
    assert issuer.condition("On")
    assert not issuer.condition("Both")
    assert set(issuer.physical) == {*off.physical, "Extra"}
    assert all(issuer.physical[name] == value for name, value in off.physical.items())  # the same deployment
    [fn] = lambda_functions(issuer, tmp_path).values()
    assert fn.template_env["ISSUER"] == "https://idp.example.com"
    assert fn.template_env["SECRET"].startswith("arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-")
    assert fn.layers == ("Layer", "Extra")

    both = issuer.with_parameters(Pool="true")
    [fn] = lambda_functions(both, tmp_path).values()
    assert fn.template_env["ISSUER"] == "https://pool/eu-west-1"
    assert fn.template_env["ONLY_BOTH"] == "yes"
    with pytest.raises(TemplateError):
        off.with_parameters(Nope="1")


def test_the_templates_defaults_leave_openid_off_and_the_oidc_stack_turns_it_on(tmp_path: Path) -> None:
    stack = Stack.load()
    for name, fn in lambda_functions(stack, tmp_path).items():
        assert fn.template_env["OIDC_ISSUER"] == ""
        # Freshworks signs RS256: it alone attaches the OIDC layer (cryptography) without OpenID Connect.
        assert fn.layers == (("SigningLayer", "OidcLayer") if name == "FreshworksFunction" else ("SigningLayer",))
    oidc = stack.with_parameters(OidcIssuer="http://127.0.0.1:9", OidcClientId=OIDC_CLIENT_ID)
    for fn in lambda_functions(oidc, tmp_path).values():
        assert fn.template_env["OIDC_ISSUER"] == "http://127.0.0.1:9"
        assert fn.template_env["OIDC_CLIENT_ID"] == OIDC_CLIENT_ID
        assert fn.template_env["OIDC_CLIENT_SECRET_ID"] == "sso-bridge/oidc-client"
        assert fn.layers == ("SigningLayer", "OidcLayer")
        env = fn.environment(
            layer=tmp_path / "Layer",
            overlay=[],
            runtime_python=tmp_path / "python",
            endpoint="http://127.0.0.1:1",
            xray_daemon=("127.0.0.1", 2000),
            home=tmp_path,
            trace_id=trace_id(True),
            oidc_packages=tmp_path / "oidc-packages",
        )
        # The layer's /opt/oidc-packages is reached through OIDC_PACKAGES_PATH only, never PYTHONPATH.
        assert env["OIDC_PACKAGES_PATH"] == str(tmp_path / "oidc-packages")
        assert "oidc-packages" not in env["PYTHONPATH"]


def test_the_stand_in_provider_answers_the_code_flow_once_per_code() -> None:
    import base64
    import hashlib
    import json as json_
    import urllib.error
    import urllib.request
    from urllib.parse import parse_qs, urlencode, urlsplit

    import jwt

    verifier = "v" * 43
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    with StandInProvider(OIDC_CLIENT_ID, OIDC_CLIENT_SECRET) as provider:
        with urllib.request.urlopen(f"{provider.issuer}/.well-known/openid-configuration") as answer:
            assert json_.load(answer)["issuer"] == provider.issuer
        query = {"response_type": "code", "client_id": OIDC_CLIENT_ID, "redirect_uri": "https://h/oidc/callback"}
        query |= {"state": "s1", "nonce": "n1", "code_challenge": challenge, "code_challenge_method": "S256"}
        back = parse_qs(urlsplit(provider.authorize(urlencode(query)).location).query)
        assert back["state"] == ["s1"]
        assert back["iss"] == [provider.issuer]
        form = {"grant_type": "authorization_code", "code": back["code"][0], "redirect_uri": "https://h/oidc/callback"}
        form["code_verifier"] = verifier
        auth = base64.b64encode(f"{OIDC_CLIENT_ID}:{OIDC_CLIENT_SECRET}".encode()).decode()
        request = urllib.request.Request(
            f"{provider.issuer}/token", data=urlencode(form).encode(), headers={"Authorization": f"Basic {auth}"}
        )
        with urllib.request.urlopen(request) as answer:
            id_token = json_.load(answer)["id_token"]
        key = jwt.PyJWK(provider.jwk).key
        claims = jwt.decode(id_token, key, algorithms=["RS256"], audience=OIDC_CLIENT_ID, issuer=provider.issuer)
        assert claims["nonce"] == "n1"
        assert claims["email_verified"] is True
        with pytest.raises(urllib.error.HTTPError) as replay:  # a code works once
            urllib.request.urlopen(request)
        assert replay.value.code == 400
        replay.value.close()
        assert provider.refused == ["POST /token: invalid_grant"]


# --- the vendor rows and their floors ---------------------------------------------------------------------------

SIGN_INS = [flow for flow in FLOWS if not flow.link]


def test_every_vendor_in_the_template_has_a_sign_in_row_on_its_own_events() -> None:
    vendors = {spec.code_uri.rstrip("/").removeprefix("functions/"): spec for spec in template_functions()}
    assert {flow.vendor for flow in SIGN_INS} == set(vendors)
    stack = Stack.load()
    functions = lambda_functions(stack, Path("/nonexistent"))  # every portal on, as the bench deploys it
    for flow in SIGN_INS:
        spec = vendors[flow.vendor]
        assert flow.function == spec.logical_id
        assert flow.function in functions
        assert [label for label, _ in flow.events] == ["http api", "function url"]
        sign_in_paths = {route.path for route in spec.routes if route.method == "POST"}
        for label, name in flow.events:
            event = json.loads((EVENTS / f"{name}.json").read_text())
            assert event["rawPath"] == ("/" if label == "function url" else event["requestContext"]["http"]["path"])
            if label == "http api":
                assert event["rawPath"] in sign_in_paths  # never the logout route's event
        # Zendesk answers with a page whose form posts the token; every other vendor redirects.
        assert flow.expected_status == (200 if flow.vendor == "zendesk" else 302)
        assert flow.write == ("put" if flow.vendor in ("happyfox", "zendesk") else None)
        # The answer to expect is spelled with the function's settings and the event's parameters only.
        case = next(case for case in CASES if case.flow is flow)
        assert flow.answer is not None
        assert flow.answer.format_map({**functions[flow.function].template_env, **case.query()}).startswith(
            ("https://", 'action="https://')
        )
        claims = flow.signs.resolve(functions[flow.function].template_env, case.query())
        assert {name for name, _, _ in claims} >= {"email"} if flow.vendor != "clickfunnels" else {"sub"}
    assert {flow.signs.alg for flow in SIGN_INS} == {"HS256", "RS256", "discourse-connect"}
    assert [case.flow.key for case in CASES].count("freshworks") == 2


def test_the_bench_switches_every_portal_on_with_the_settings_its_sample_events_are_written_for() -> None:
    switch = {"AllowedValues": ["true", "false"], "Default": "false"}
    template: dict[str, Any] = {
        "Parameters": {"EnableA": switch, "AUrl": {"Default": ""}, "EnableB": switch, "BUrl": {"Default": ""}},
        "Conditions": {
            "AEnabled": {"Fn::Equals": [{"Ref": "EnableA"}, "true"]},
            "BEnabled": {"Fn::Equals": [{"Ref": "EnableB"}, "true"]},
        },
        "Resources": {
            f"{name}Function": {
                "Type": "AWS::Serverless::Function",
                "Condition": f"{name}Enabled",
                "Properties": {"Environment": {"Variables": {variable: {"Ref": f"{name}Url"}}}},
            }
            for name, variable in (("A", "ZENDESK_ACCOUNT_URL"), ("B", "HAPPYFOX_ACCOUNT_URL"))
        },
    }
    # A portal samconfig.toml leaves off gets the tests' settings over its placeholders; one it deploys keeps its own.
    deployed = {"EnableA": "false", "AUrl": "https://yourcompany.zendesk.com", "EnableB": "true", "BUrl": "https://b"}
    assert vendor_settings(template, deployed) == {"EnableA": "true", "AUrl": ZENDESK_ACCOUNT_URL, "EnableB": "true"}
    assert vendor_settings(template, deployed | {"BUrl": ""})["BUrl"] == HAPPYFOX_ACCOUNT_URL

    functions = lambda_functions(Stack.load(), Path("/nonexistent"))
    assert functions["ZendeskFunction"].template_env["ZENDESK_ACCOUNT_URL"] == ZENDESK_ACCOUNT_URL
    assert functions["CannyFunction"].template_env["CANNY_COMPANY_ID"] == CANNY_COMPANY_ID
    assert functions["FreshworksFunction"].template_env["FRESHWORKS_CLIENT_ID"] == FRESHWORKS_CLIENT_ID


def test_only_freshworks_and_the_openid_callback_are_expected_to_load_cryptography() -> None:
    stack = Stack.load()
    functions = lambda_functions(stack, Path("/nonexistent"))
    layer = oidc_layer_id(stack)
    assert layer == "OidcLayer"
    expected = {flow.key for flow in (*FLOWS, *OIDC_FLOWS) if expects_cryptography(flow, functions, layer)}
    assert expected == {"freshworks", "oidc-callback"}


def _vendor_answer(flow: Flow, response: dict[str, Any]) -> str:
    """What the handler's answer carries for the vendor: the token (Discourse: ``sso=...&sig=...``)."""
    param = flow.signs.param
    if response["statusCode"] == 200:  # Zendesk's page: the token in its form's hidden field
        from html import unescape

        found = re.search(rf'name="{param}" value="([^"]*)"', response["body"])
        assert found, response["body"][:500]
        return str(unescape(found.group(1)))
    values = parse_qs(urlsplit(str(response["headers"]["Location"])).query)
    if flow.signs.alg == "discourse-connect":
        return urlencode({"sso": values["sso"][0], "sig": values["sig"][0]})
    return values[param][0]


def _read_answer(flow: Flow, answer: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The answer's header and claims, its signature checked with the vendor's key."""
    import base64
    import hashlib
    import hmac

    import jwt

    key = VENDOR_KEYS[flow.vendor]
    if flow.signs.alg == "discourse-connect":
        fields = dict(parse_qsl(answer))
        assert hmac.compare_digest(
            hmac.new(key.encode(), fields["sso"].encode(), hashlib.sha256).hexdigest(), fields["sig"]
        )
        return {}, dict(parse_qsl(base64.b64decode(fields["sso"]).decode()))
    if flow.signs.alg == "RS256":
        from cryptography.hazmat.primitives import serialization

        public = serialization.load_pem_private_key(key.encode(), password=None).public_key()
        claims = jwt.decode(answer, public, algorithms=["RS256"], options={"verify_aud": False})  # type: ignore[arg-type]
    else:
        claims = jwt.decode(answer, key, algorithms=["HS256"], options={"verify_aud": False})
    return jwt.get_unverified_header(answer), claims


def _comparable(claims: dict[str, Any]) -> dict[str, Any]:
    """Claims with their times relative to ``iat`` and a fresh jti's shape instead of its value."""
    iat = claims.get("iat")
    out = dict(claims)
    for name in ("exp", "nbf"):
        if name in out and iat is not None:
            out[name] -= iat
    if "iat" in out:
        out["iat"] = "now"
    if "jti" in out:
        assert re.fullmatch(r"[0-9a-f]{32}", out["jti"]), out["jti"]
        out["jti"] = "fresh"
    return out


@pytest.mark.parametrize("flow", SIGN_INS, ids=lambda flow: flow.key)
def test_the_floor_signs_what_the_flow_signs(
    flow: Flow,
    jti_table: Any,
    load_function: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the vendor's sample request and one login token, as the bench makes them
    monkeypatch.setattr(sys, "path", list(sys.path))  # the RS256 floor appends the OIDC layer's folder
    import jwt

    module = load_function(flow.vendor)
    case = next(case for case in CASES if case.flow is flow)
    query = case.query()
    floor: dict[str, Any] = {
        "vendor": flow.vendor,
        "audience": flow.vendor,
        "leeway": 30,
        "vendor_key": VENDOR_KEYS[flow.vendor],
        "write": {"op": "put", "table": JTI_TABLE_NAME} if flow.write == "put" else None,
        "alg": flow.signs.alg,
        "claims": flow.signs.resolve(dict(os.environ), query),
        "headers": dict(flow.signs.headers),
        "request": query,
        "packages_path": str(ROOT / "no-such-folder"),
    }
    if flow.signs.alg == "discourse-connect":
        floor["connect"] = {"return_sso_url": "https://community.example.com/session/sso_login"}
    plan = {"query": load_event(case.event_name)["rawQueryString"], "floor": floor}
    login = {"key": LOGIN_TOKEN_KEY, "email": "jane.doe+vip@example.com", "name": "Jane Doe", "aud": flow.vendor}
    token = driver.login_token(jwt, login | {"lifetime": 120})
    vendor_query, request = driver.vendor_request(plan)

    # When the function answers it, and the floor does the least any implementation must
    event = load_event(case.event_name, query=f"{vendor_query}&login_token={token}")
    response = module.lambda_handler(event, LambdaContext())
    assert response["statusCode"] == flow.expected_status, response.get("body", "")[:300]
    floor_answer = driver.Floor({"floor": floor}, jwt, jti_table)(
        token, LOGIN_TOKEN_KEY, VENDOR_KEYS[flow.vendor], request
    )

    # Then both sign the same claims (times relative to iat; a fresh jti each) under the same header
    handler_header, handler_claims = _read_answer(flow, _vendor_answer(flow, response))
    floor_header, floor_claims = _read_answer(flow, floor_answer)
    assert _comparable(floor_claims) == _comparable(handler_claims)
    assert abs(floor_claims.get("iat", 0) - handler_claims.get("iat", 0)) <= 2
    assert floor_header == handler_header
    if flow.write == "put":  # the floor's write is the record of the jti its token carries
        item = jti_table.get_item(TableName=JTI_TABLE_NAME, Key={"jti": {"S": floor_claims["jti"]}})
        assert item["Item"]["vendor"] == {"S": flow.vendor}


def test_the_discourse_floor_checks_the_request_signature_and_each_call_gets_its_own_nonce() -> None:
    import jwt

    flow = next(flow for flow in FLOWS if flow.vendor == "discourse")
    key = VENDOR_KEYS["discourse"]
    floor = {"vendor": "discourse", "audience": "discourse", "leeway": 30, "vendor_key": key, "write": None}
    floor |= {"alg": flow.signs.alg, "claims": flow.signs.resolve({}, {}), "headers": {}}
    floor["connect"] = {"return_sso_url": "https://community.example.com/session/sso_login"}
    plan = {"query": "", "floor": floor}
    (_, first), (_, second) = driver.vendor_request(plan), driver.vendor_request(plan)
    assert first["sso"] != second["sso"]  # a fresh nonce per call, as Discourse makes them
    login = {"key": LOGIN_TOKEN_KEY, "email": "jane@example.com", "name": "Jane", "aud": "discourse", "lifetime": 60}
    token = driver.login_token(jwt, login)
    assert "sso=" in driver.Floor(plan, jwt, None)(token, LOGIN_TOKEN_KEY, key, first)
    forged = {"sso": first["sso"], "sig": second["sig"]}
    with pytest.raises(ValueError, match="signature"):
        driver.Floor(plan, jwt, None)(token, LOGIN_TOKEN_KEY, key, forged)


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
    cold |= {"cryptography_loaded": True, "floor_cryptography_loaded": True}
    warm |= {"floor": "decode + RS256 sign (cryptography)"}
    callback = warm | {"case": "oidc-callback/http-api", "flow": "OIDC callback", "ratio_without_io": 3.0}
    callback |= {"floor": "what a callback must do", "floor_io_us": 40.0, "floor_write_us": 30.0}
    callback |= {"floor_token_us": 10.0}
    jose_row = {"label": "joserfc (x)", "cold_ms": 130.0, "cold_setup_ms": 128.0, "warm_us": 90.0, "modules": 200}
    jose_row |= {"rss_mb": 30.0}
    jose = {"versions": {"joserfc": "1.8.0"}, "libraries": [jose_row], "joserfc_import_key_each_call_us": 200.0}
    jose["import_jwt"] = {
        "without": {"ms": 20.0, "modules": 130, "cryptography_loaded": False},
        "with": {"ms": 90.0, "modules": 200, "cryptography_loaded": True},
    }
    text = table({"warm": [warm, callback], "cold": [cold], "jose": jose, "links": links, "load": load})
    assert re.search(r"F\s+http api\s+\|\s+500\s+60\s+440\s+8\.3x\s+-\s+\|\s+300\s+150\s+2\.0x", text)
    assert re.search(r"OIDC callback\s+http api\s+\|\s+500\s+60\s+440\s+8\.3x\s+3\.0x", text)
    assert re.search(r"joserfc \(x\)\s+\|\s+130\.0\s+128\.0\s+\|\s+90\s+\|\s+200", text)
    assert re.search(r"import jwt: 20\.0 ms .* 90\.0 ms .*imports cryptography", text)
    for part in ("boto3", "rows/s", "requests/s", "write 30 µs, token request 10 µs"):
        assert part in text
    # Each flow's floor in words, once; the cold start's cryptography, handler and floor.
    assert text.count("F floor: decode + RS256 sign (cryptography)") == 1
    assert re.search(r"F\s+http api\s+\|\s+250\s+50\s+330\s+\|\s+500\s+300\s+\|\s+120\s+\|\s+yes\s+yes", text)


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
    # Only Freshworks (RS256 on every sign-in) loads cryptography, handler and floor alike; in the Lambda-shaped
    # venv nothing else can (the dev venv's PyJWT loads it for everyone).
    assert cold["expects_cryptography"] is (case.flow.vendor == "freshworks" and not case.flow.link)
    if Path(bench.runtime_python) == RUNTIME_PYTHON:
        assert cold["cryptography_loaded"] is cold["floor_cryptography_loaded"] is cold["expects_cryptography"]
        assert warm["cryptography_loaded"] is cold["expects_cryptography"]


@pytest.mark.build
def test_dynamodb_is_amazons_dynamodb_local_where_it_can_run(bench: Bench) -> None:
    from local.dynamodb import unavailable

    missing = unavailable()
    assert not (missing and os.environ.get("CI")), f"no DynamoDB Local in CI: {missing}"
    assert bench.emulator is not None
    env = bench.environment(SMOKE_CASES[0])
    if missing is None:
        # The functions and the floors write to DynamoDB Local; everything else stays on moto
        assert bench.facts["dynamodb"].startswith("DynamoDB Local 3.")
        assert env["AWS_ENDPOINT_URL_DYNAMODB"] == bench.emulator.dynamodb_endpoint != bench.emulator.endpoint
    else:
        assert bench.facts["dynamodb"] == f"moto ({missing})"
        assert "AWS_ENDPOINT_URL_DYNAMODB" not in env
    assert env["AWS_ENDPOINT_URL"] == bench.emulator.endpoint


@pytest.mark.build
def test_the_openid_steps_run_the_built_function_against_the_stand_in_provider(bench: Bench) -> None:
    start, callback = OIDC_WARM_CASES
    warm = bench.warm(start, rounds=1, calls=2, warmup=1)
    assert positive(warm["handler_us"])
    # The sign-in start needs no signature check (only the Lambda-shaped venv lacks cryptography, as Lambda does:
    # `make bench` makes it; `make test` may run before it exists, with the dev venv, where PyJWT loads it)
    lambda_shaped = Path(bench.runtime_python) == RUNTIME_PYTHON
    assert warm["cryptography_loaded"] is (not lambda_shaped)
    warm = bench.warm(callback, rounds=1, calls=2, warmup=1)
    for key in ("handler_us", "floor_us", "floor_write_us", "floor_token_us", "floor_io_us"):
        assert positive(warm[key]), (key, warm[key])
    # A ratio of differences: one round on a busy machine can put the I/O above the floor, so only its presence is
    # this test's business (make bench reads it over many rounds; tests do not assert timings).
    assert isinstance(warm["ratio_without_io"], float), warm["ratio_without_io"]
    assert math.isfinite(warm["ratio_without_io"])
    assert warm["error_log_lines"] == 0
    # Discovery and the key set once per container (handler and floor each), a code per callback.
    calls = warm["provider_calls"]
    assert calls["GET /.well-known/openid-configuration"] == calls["GET /jwks"] == 2
    assert calls["POST /token"] == calls["GET /authorize"] == 2 * (1 + 2)

    cold_callback, cold_login = OIDC_COLD_CASES
    cold = bench.cold(cold_callback, runs=1, top=3)
    assert positive(cold["handler_ms"])
    assert positive(cold["floor_ms"])
    assert cold["cryptography_loaded"] is True
    assert cold["floor_cryptography_loaded"] is True
    assert any(entry["module"].startswith("joserfc") for entry in cold["first_request_imports"])
    assert positive(cold["first_request_import_us"])
    assert cold["provider_calls_first_request"] == {
        "GET /.well-known/openid-configuration": 1,
        "GET /jwks": 1,
        "POST /token": 1,
    }
    # With OpenID Connect on, a login-token sign-in still never loads cryptography.
    cold = bench.cold(cold_login, runs=1, top=3)
    assert cold["cryptography_loaded"] is (not lambda_shaped)
    assert (cold["cryptography_modules"] == 0) is lambda_shaped
    assert not any(entry["module"].startswith("joserfc") for entry in cold["first_request_imports"])
    assert bench.facts["oidc"]["versions"]["joserfc"]


@pytest.mark.build
def test_the_jose_comparison_verifies_with_each_library(bench: Bench) -> None:
    from benchmarks.jose import LIBRARIES, jose_comparison

    result = jose_comparison(bench.runtime_python, runs=1, rounds=1, calls=3)
    assert [row["library"] for row in result["libraries"]] == list(LIBRARIES)
    for row in result["libraries"]:
        for key in ("cold_ms", "cold_setup_ms", "warm_us", "rss_mb"):
            assert positive(row[key]), (row["library"], key)
        assert str(row["from"]["cryptography"]).startswith(str(ROOT / ".venv" / "bench-oidc-packages"))
    # Without cryptography importable only in the Lambda-shaped venv (`make bench` makes it; the dev venv has it)
    lambda_shaped = Path(bench.runtime_python) == RUNTIME_PYTHON
    assert result["import_jwt"]["without"]["cryptography_loaded"] is (not lambda_shaped)
    assert result["import_jwt"]["with"]["cryptography_loaded"] is True
    assert positive(result["joserfc_import_key_each_call_us"])


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
