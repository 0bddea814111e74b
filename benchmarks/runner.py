"""Warm and cold measurements of the built functions, each in a process of the Lambda-shaped runtime venv.

``Bench`` holds what every measurement shares: the stack (template.yaml, resolved), the emulator, the built
layer (with its native overlay, if any) and the runtime's Python. ``warm(case)`` and ``cold(case)`` start
``driver.py`` under the function's Lambda environment and return well-formed result dicts.

The OpenID Connect cases (``case.flow.oidc``) need more, made on first use: the stand-in provider (in this process),
the stack again with ``OidcIssuer`` pointing at it (its extra resources, the client secret, seeded into the
emulator), and the OIDC layer's packages built for this machine (``lambda_env.oidc_packages``), which must be the
versions `sam build` put in the arm64 layer. Only the callback may load cryptography, and only from there; and,
without OpenID Connect, a function the template gives that layer itself (Freshworks: RS256 on every sign-in), whose
packages are made the same way on entering (``expects_cryptography``).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import statistics
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt

from benchmarks import driver
from benchmarks.emulator import Emulator
from benchmarks.flows import Case, Flow
from benchmarks.lambda_env import (
    BENCH_DIR,
    BUILD,
    OIDC_CLIENT_ID,
    OIDC_CLIENT_SECRET,
    LambdaFunction,
    Stack,
    dist_versions,
    foreign_extensions,
    lambda_functions,
    layer_dir,
    native_overlay,
    oidc_layer_dir,
    oidc_layer_id,
    oidc_packages,
    trace_id,
)
from benchmarks.oidc_provider import StandInProvider
from tests.helpers import LOGIN_TOKEN_KEY, VENDOR_KEYS

__all__ = ["Bench", "BenchError", "expects_cryptography", "parse_importtime"]

DRIVER = Path(driver.__file__).resolve()
EMAIL, NAME = "jane.doe+vip@example.com", "Jane Doe"
INTERACTIVE_LIFETIME = 120  # seconds: what a platform hands to the browser (LOGIN_TOKEN_MAX_TTL caps it)
LINK_LIFETIME = 7 * 86400
_MARKER = "bench: measuring"
STATE_AUDIENCE = "sso-bridge/oidc-state"  # sso_bridge.oidc_state's, for the floor's own state cookie


class BenchError(Exception):
    pass


def parse_importtime(stderr: str, after: str | None = None) -> list[dict[str, Any]]:
    """``-X importtime`` lines (after the line ``after``, when given) as {module, self_us, cumulative_us, depth}."""
    lines = stderr.splitlines()
    if after is not None and after in lines:
        lines = lines[lines.index(after) + 1 :]
    found = []
    for line in lines:
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$", line)
        if match:
            found.append(
                {
                    "module": match.group(4),
                    "self_us": int(match.group(1)),
                    "cumulative_us": int(match.group(2)),
                    "depth": len(match.group(3)) // 2,
                }
            )
    return found


# What each OpenID step's floor is (benchmarks/driver.py); the other flows' say so themselves (flows.Signs).
_FLOORS = {
    "start": "the ClickFunnels sign-in's: decode + encode",
    "callback": "state decode + put + token request + RS256 verify + encode",
}


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def expects_cryptography(flow: Flow, functions: Mapping[str, LambdaFunction], oidc_layer: str | None) -> bool:
    """Whether the flow loads ``cryptography``: an OpenID callback (its RS256 check), and a sign-in whose function
    the template gives the OIDC layer without OpenID Connect (``functions``: the stack without it), because it signs
    RS256 on every sign-in (Freshworks). Every other sign-in must not, OpenID Connect on or off."""
    if flow.oidc:
        return flow.oidc == "callback"
    return oidc_layer is not None and oidc_layer in functions[flow.function].layers


@dataclass
class Bench:
    """What every measurement shares. Use as a context manager: it runs the emulator."""

    runtime_python: Path
    strict: bool = True  # the runtime venv must be Lambda-shaped (no cryptography); the smoke test may relax it
    dynamodb: str = "local"  # DynamoDB Local when it can run, else moto; "moto": moto (benchmarks/emulator.py)
    build: Path = BUILD
    stack: Stack = field(default_factory=Stack.load)
    emulator: Emulator | None = None
    functions: dict[str, LambdaFunction] = field(default_factory=dict)
    layer: Path = Path()
    overlay: list[Path] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    # OpenID Connect, made by _oidc() on first use
    provider: StandInProvider | None = None
    oidc_functions: dict[str, LambdaFunction] = field(default_factory=dict)
    oidc_layer: str = ""  # the built OIDC layer's folder name (its logical id), once _oidc_layer() found it
    oidc_packages: Path | None = None
    oidc_layer_id: str | None = None  # the template's OIDC layer (ContentUri layers/oidc)

    def __enter__(self) -> Bench:
        if not (self.build / "template.yaml").exists():
            raise BenchError(f"no {self.build}: run `make build` (make bench does)")
        if not self.runtime_python.exists():
            raise BenchError(f"no {self.runtime_python}: `make bench` makes the runtime venv")
        self.emulator = Emulator(self.stack, dynamodb=self.dynamodb).__enter__()
        self.functions = lambda_functions(self.stack, self.build)  # after seeding: secrets' ARNs are moto's
        self.layer = layer_dir(self.stack, self.build)
        foreign = foreign_extensions(self.layer / "python")
        self.overlay = native_overlay(self.runtime_python, foreign) if foreign.distributions else []
        self.home = Path(tempfile.mkdtemp(prefix="bench-home-", dir=self._tmp()))
        self.facts = self._facts(foreign)
        self.oidc_layer_id = oidc_layer_id(self.stack)
        if any(self.oidc_layer_id in fn.layers for fn in self.functions.values()):
            self._oidc_layer(self.stack)  # a function signs with it without OpenID Connect (Freshworks)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.provider is not None:
            self.provider.__exit__(None, None, None)
        if self.emulator is not None:
            self.emulator.__exit__(None, None, None)

    def _oidc_layer(self, stack: Stack) -> tuple[str, Path]:
        """The built OIDC layer's logical id, and its packages built for this machine (the folder that stands for
        ``/opt/oidc-packages``), which must be the versions `sam build` put in the arm64 layer. Made once."""
        if self.oidc_packages is None:
            built = oidc_layer_dir(stack, self.build)
            if built is None:
                raise BenchError(f"no built OIDC layer (oidc-packages/) in {self.build}: run `make build`")
            packages, versions = oidc_packages(self.runtime_python)
            built_versions = dist_versions(built / "oidc-packages")
            if versions != built_versions:
                raise BenchError(
                    f"OIDC packages for this machine {versions} differ from the built layer's {built_versions}"
                )
            self.oidc_layer, self.oidc_packages = built.name, packages
            self.facts["oidc_layer"] = {
                "layer": str(built / "oidc-packages"),
                "packages_for_this_machine": str(packages),
                "versions": versions,
                # Without OpenID Connect: the functions that sign with it (Freshworks' RS256)
                "functions_with_oidc_layer": sorted(
                    name for name, fn in self.functions.items() if built.name in fn.layers
                ),
            }
        assert self.oidc_packages is not None
        return self.oidc_layer, self.oidc_packages

    def _oidc(self) -> StandInProvider:
        """The stand-in provider, and the functions as the template makes them with OpenID Connect on."""
        if self.provider is not None:
            return self.provider
        assert self.emulator is not None
        provider = StandInProvider(OIDC_CLIENT_ID, OIDC_CLIENT_SECRET).__enter__()
        self.provider = provider
        stack = self.stack.with_parameters(OidcIssuer=provider.issuer, OidcClientId=OIDC_CLIENT_ID)
        self.emulator.seed(stack, set(stack.physical) - set(self.stack.physical))
        self.oidc_functions = lambda_functions(stack, self.build)  # after seeding: the client secret's ARN
        layer, packages = self._oidc_layer(stack)
        self.facts["oidc"] = {
            "issuer": provider.issuer,
            "layer": self.facts["oidc_layer"]["layer"],
            "packages_for_this_machine": str(packages),
            "versions": self.facts["oidc_layer"]["versions"],
            "functions_with_oidc_layer": sorted(name for name, fn in self.oidc_functions.items() if layer in fn.layers),
        }
        return provider

    def _tmp(self) -> Path:
        path = BENCH_DIR / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _facts(self, foreign: Any) -> dict[str, Any]:
        probe = subprocess.run(
            [
                str(self.runtime_python), "-c",
                "import importlib.metadata as m, json, platform, sys; print(json.dumps({"
                "'python': sys.version.split()[0], 'machine': platform.machine(),"
                " 'packages': sorted(f\"{d.name}=={d.version}\" for d in m.distributions())}))",
            ],
            capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        runtime = json.loads(probe.stdout)
        pycs = {
            name: sum(1 for _ in path.rglob("*.pyc"))
            for name, path in {"layer": self.layer, **{f: fn.task_root for f, fn in self.functions.items()}}.items()
        }
        return {
            "runtime_python": str(self.runtime_python),
            "runtime": runtime,
            "layer": str(self.layer / "python"),
            "layer_extensions_for": foreign.layer_suffix or None,
            "native_overlay": dict(foreign.distributions),
            "overlay_paths": [str(path) for path in self.overlay],
            "pyc_files_shipped": pycs,
            "tracing": {name: fn.tracing for name, fn in self.functions.items()},
            "memory_mb": {name: fn.memory for name, fn in self.functions.items()},
            "dynamodb": self.emulator.dynamodb_engine if self.emulator is not None else "",
        }

    # --- plans ----------------------------------------------------------------------------------------------

    def function(self, case: Case) -> LambdaFunction:
        if case.flow.oidc:
            self._oidc()
            return self.oidc_functions[case.flow.function]
        return self.functions[case.flow.function]

    def environment(self, case: Case) -> dict[str, str]:
        assert self.emulator is not None
        assert self.emulator.xray is not None
        fn = self.function(case)
        return fn.environment(
            layer=self.layer,
            overlay=self.overlay,
            runtime_python=self.runtime_python,
            endpoint=self.emulator.endpoint,
            dynamodb_endpoint=self.emulator.dynamodb_endpoint,
            xray_daemon=self.emulator.xray.address,
            home=self.home,
            trace_id=trace_id(fn.tracing == "Active"),
            oidc_packages=self.oidc_packages if self.oidc_layer and self.oidc_layer in fn.layers else None,
        )

    def _oidc_plan(self, case: Case, fn: LambdaFunction, event: dict[str, Any]) -> dict[str, Any]:
        """What the driver needs for an OpenID step: the provider, the client, the state's shape."""
        from sso_bridge.http import Event
        from sso_bridge.oidc import callback_url
        from sso_bridge.request import request_url

        provider = self._oidc()
        env = fn.template_env
        return {
            "step": case.flow.oidc,
            "issuer": provider.issuer,
            "client_id": env["OIDC_CLIENT_ID"],
            "client_secret": OIDC_CLIENT_SECRET,
            "client_secret_id": env["OIDC_CLIENT_SECRET_ID"],
            "packages_path": str(self.oidc_packages),
            "spent_table": env["SPENT_LINKS_TABLE_NAME"],
            "vendor": case.flow.vendor,
            "state_audience": STATE_AUDIENCE,
            "state_key": secrets.token_hex(32),
            "return_to": request_url(Event(event)),
            "redirect_uri": callback_url(Event(event)),
            "callback_event_json": json.dumps(case.callback_event()),
        }

    def _cold_callback(self, case: Case, plan: dict[str, Any]) -> None:
        """A callback for a fresh interpreter, made here: the state as the function's sign-in route would make it
        (sso_bridge.oidc_state, with the stack's login-token key), a code from the stand-in for its nonce; and the
        same for the floor."""
        from sso_bridge.oidc_state import StateSigner

        provider, oidc = self._oidc(), plan["oidc"]
        signer, now = StateSigner(LOGIN_TOKEN_KEY), int(time.time())
        state = signer.new(
            audience=case.flow.vendor,
            return_to=oidc["return_to"],
            redirect_uri=oidc["redirect_uri"],
            issuer=provider.issuer,
            now=now,
        )

        def authorize(sid: str, nonce: str, verifier: str) -> str:
            query = {"response_type": "code", "client_id": oidc["client_id"], "redirect_uri": oidc["redirect_uri"]}
            query |= {"scope": "openid email profile", "state": sid, "nonce": nonce, "code_challenge_method": "S256"}
            query["code_challenge"] = StateSigner.code_challenge(verifier)
            return provider.authorize(urlencode(query)).location

        location = authorize(state.sid, signer.nonce(state.sid), signer.code_verifier(state.sid))
        event = case.callback_event()
        event["rawQueryString"] = urlsplit(location).query
        event["cookies"] = [signer.cookie(state, now=now).split(";", 1)[0]]
        event["requestContext"]["requestId"] = driver.request_id()
        plan["event_json"] = json.dumps(event)

        sid, nonce, verifier = (driver.b64url(secrets.token_bytes(n)) for n in (24, 32, 32))
        code = driver.query_value(authorize(sid, nonce, verifier), "code")
        cookie = jwt.encode(driver.state_claims(oidc, sid), oidc["state_key"], algorithm="HS256")
        plan["cold"]["prepared"] = [cookie, code, sid, nonce, verifier]

    def plan(self, case: Case, mode: str, **extra: Any) -> dict[str, Any]:
        fn, flow = self.function(case), case.flow
        env = fn.template_env
        event = case.base_event()
        login = {
            "key": LOGIN_TOKEN_KEY,
            "email": EMAIL,
            "name": NAME,
            "aud": flow.vendor,
            "lifetime": LINK_LIFETIME if flow.link else INTERACTIVE_LIFETIME,
            "use": "link" if flow.link else None,
            "campaign": "spring-sale" if flow.link else None,
        }
        query = case.query()
        write: dict[str, str] | None = None
        if flow.write == "put":
            write = {"op": "put", "table": env["JTI_TABLE_NAME"]}
        elif flow.write == "transact":
            write = {
                "op": "transact",
                "spent_table": env["SPENT_LINKS_TABLE_NAME"],
                "revocations_table": env["LINK_REVOCATIONS_TABLE_NAME"],
            }
        step = flow.oidc
        cleanup = {"table": env["SPENT_LINKS_TABLE_NAME"], "key": "jti"} if flow.link or step == "callback" else None
        plan: dict[str, Any] = {
            "mode": mode,
            "cleanup": cleanup,
            "handler": fn.handler,
            "function": {"name": fn.name, "arn": fn.arn, "memory": fn.memory, "timeout": fn.timeout},
            "event_json": json.dumps(event),
            "query": event["rawQueryString"],
            "expected_status": flow.expected_status,
            "sampled": fn.tracing == "Active",
            "login": login,
            "floor": {
                "vendor": flow.vendor,
                "audience": flow.vendor,
                "leeway": int(env.get("LOGIN_TOKEN_LEEWAY") or 30),
                "vendor_key": VENDOR_KEYS[flow.vendor],
                "write": write,
                "alg": flow.signs.alg,
                "claims": flow.signs.resolve(env, query),
                "headers": dict(flow.signs.headers),
                "request": query,  # the vendor's parameters, as the floor is given them
            },
            **extra,
        }
        if flow.answer is not None:
            plan["answer"] = {"text": flow.answer.format_map({**env, **query}), "param": flow.signs.param}
        if flow.signs.alg == "RS256":
            plan["floor"]["packages_path"] = str(self._oidc_layer(self.stack)[1])
        if flow.signs.alg == "discourse-connect":
            # Signed afresh for every call (driver.vendor_request), to where the sample event's Discourse waits.
            payload = base64.b64decode(query["sso"]).decode()
            plan["floor"]["connect"] = {"return_sso_url": dict(parse_qsl(payload))["return_sso_url"]}
        if flow.link:
            # The page's cookie (one browser's) and the form's field name; the driver makes each link's field.
            from sso_bridge.link_form import COOKIE_NAME, FIELD_NAME

            nonce = driver.b64url(secrets.token_bytes(16))
            plan["form"] = {"cookie": COOKIE_NAME, "field": FIELD_NAME, "nonce": nonce}
            plan["floor"]["form"] = nonce
        if step:
            plan["oidc"] = self._oidc_plan(case, fn, event)
            # Where the step's redirect must lead: the provider's sign-in page, or back with a login token.
            expected = {"start": f"{plan['oidc']['issuer']}/authorize?", "callback": "login_token="}
            plan["expect_location"] = expected.get(step)
        if mode.startswith("cold"):
            # Minted here, so that the fresh interpreter imports nothing before its clock starts.
            jti = secrets.token_hex(16)
            token = driver.login_token(jwt, login, jti)
            vendor_query, _ = driver.vendor_request(plan)
            if step != "start":
                event_json = driver.event_with(plan, token, driver.form_field(plan, jti), vendor_query)
                plan["event_json"] = json.dumps(event_json)
            plan["cold"] = {
                "token": token,
                "request": driver.vendor_request(plan)[1],  # the floor's own (Discourse: another nonce)
                "login_secret_id": env["LOGIN_TOKEN_SECRET_ID"],
                "vendor_secret_id": env[f"{flow.vendor.upper()}_SECRET_ID"],
            }
            if step == "callback":
                self._cold_callback(case, plan)
        return plan

    def run(self, case: Case, plan: dict[str, Any], *, importtime: bool = False) -> dict[str, Any]:
        """One driver process; its result, plus what the bench saw from outside (wall time, output, X-Ray)."""
        assert self.emulator is not None
        assert self.emulator.xray is not None
        with tempfile.TemporaryDirectory(prefix="run-", dir=self._tmp()) as tmp:
            plan_path, result_path = Path(tmp, "plan.json"), Path(tmp, "result.json")
            plan_path.write_text(json.dumps(plan))
            flags = ["-X", "importtime"] if importtime else []
            command = [str(self.runtime_python), "-P", *flags, str(DRIVER), str(plan_path), str(result_path)]
            env = self.environment(case)
            if importtime:
                env["BENCH_MARKER"] = _MARKER
            datagrams = self.emulator.xray.datagrams
            provider_calls = dict(self.provider.calls) if self.provider is not None else {}
            start = time.perf_counter()
            done = subprocess.run(
                command, cwd=self.function(case).task_root, env=env, capture_output=True, text=True, timeout=600
            )
            wall = time.perf_counter() - start
            time.sleep(0.05)  # the last UDP datagrams
            if done.returncode != 0 or not result_path.exists():
                raise BenchError(
                    f"{case.name} {plan['mode']}: driver exited {done.returncode}\n{done.stderr[-3000:]}"
                    f"\n{done.stdout[-2000:]}"
                )
            result: dict[str, Any] = json.loads(result_path.read_text())
        if result.get("unexpected"):
            raise BenchError(f"{case.name} {plan['mode']}: unexpected responses {result['unexpected']}")
        if plan["mode"] == "cold-handler" and result["status"] != plan["expected_status"]:
            raise BenchError(f"{case.name}: first request answered {result['status']}\n{done.stdout[-2000:]}")
        if self.strict:
            self._check_cryptography(case, result)
        if self.provider is not None:
            now = self.provider.calls
            result["provider_calls"] = {
                k: now[k] - provider_calls.get(k, 0) for k in now if now[k] != provider_calls.get(k)
            }
            if self.provider.refused:
                raise BenchError(
                    f"{case.name} {plan['mode']}: the stand-in provider refused {self.provider.refused[:3]}"
                )
        result["wall_s"] = wall
        result["xray_datagrams"] = self.emulator.xray.datagrams - datagrams
        result["stdout_lines"] = done.stdout.count("\n")
        result["stdout_bytes"] = len(done.stdout)
        result["error_lines"] = sum(1 for line in done.stdout.splitlines() if '"level":"ERROR"' in line)
        if importtime:
            result["importtime"] = parse_importtime(done.stderr, _MARKER)
            result["importtime_first_request"] = parse_importtime(done.stderr, f"{_MARKER}: first request")
        return result

    def _check_cryptography(self, case: Case, result: dict[str, Any]) -> None:
        """Lambda's runtime has no cryptography: only an OpenID callback and a function that signs RS256 load it,
        from the OIDC layer's folder; every other cold start and warm process must not."""
        where = result.get("cryptography_from") or ""
        if expects_cryptography(case.flow, self.functions, self.oidc_layer_id):
            if not where.startswith(f"{self.oidc_packages}/"):
                raise BenchError(f"{case.name}: cryptography not loaded from the OIDC layer's folder ({where!r})")
        elif result.get("cryptography_loaded"):
            raise BenchError(f"{case.name}: cryptography was imported ({where}): the runtime venv is not Lambda-shaped")

    # --- measurements ---------------------------------------------------------------------------------------

    def warm(
        self, case: Case, *, rounds: int = 7, calls: int = 0, warmup: int = 30, round_seconds: float = 0.3
    ) -> dict[str, Any]:
        plan = self.plan(case, "warm", rounds=rounds, calls=calls, warmup=warmup, round_seconds=round_seconds)
        result = self.run(case, plan)
        handler_us = median(result["rounds_s"]) * 1e6
        floor_us = median(result["floor_rounds_s"]) * 1e6
        handler_calls = (warmup + rounds * result["calls"]) or 1
        write_us = result["floor_write_p50_s"] * 1e6
        io_us = result["floor_io_p50_s"] * 1e6
        return {
            "case": case.name,
            "flow": case.flow.label,
            "event": case.event_label,
            "function": case.flow.function,
            "floor_write": case.flow.write,
            "rounds": rounds,
            "calls_per_round": result["calls"],
            "handler_us": handler_us,
            "floor_us": floor_us,
            "extra_us": handler_us - floor_us,
            "ratio": handler_us / floor_us,
            # The emulator's round trip for the write, in both: the ratio of everything else.
            "floor_write_us": write_us,
            "ratio_without_write": (handler_us - write_us) / (floor_us - write_us) if write_us else None,
            # Every round trip to an emulator in the floor (the write; a callback's token request too), in both.
            "floor_token_us": result["floor_token_p50_s"] * 1e6,
            "floor_io_us": io_us,
            "ratio_without_io": (handler_us - io_us) / (floor_us - io_us) if io_us else None,
            "floor": _FLOORS.get(case.flow.oidc or "", case.flow.signs.describe(case.flow.write)),
            "provider_calls": result.get("provider_calls", {}),
            "handler_rounds_us": [t * 1e6 for t in result["rounds_s"]],
            "floor_rounds_us": [t * 1e6 for t in result["floor_rounds_s"]],
            "handler_call_p50_us": result["call_p50_s"] * 1e6,
            "handler_call_p99_us": result["call_p99_s"] * 1e6,
            "log_bytes_per_call": result["stdout_bytes"] / handler_calls,
            "xray_datagrams_per_call": result["xray_datagrams"] / handler_calls,
            "error_log_lines": result["error_lines"],
            "max_rss_mb": result["max_rss_mb"],
            "cryptography_loaded": result["cryptography_loaded"],
        }

    def cold(self, case: Case, *, runs: int = 5, top: int = 10) -> dict[str, Any]:
        handler, floor = [], []
        for _ in range(runs):  # alternated, so drift on the machine touches both alike
            handler.append(self.run(case, self.plan(case, "cold-handler")))
            floor.append(self.run(case, self.plan(case, "cold-floor")))
        profiled = self.run(case, self.plan(case, "cold-handler"), importtime=True)
        profile, on_request = profiled["importtime"], profiled["importtime_first_request"]
        handler_ms = median([r["total_s"] for r in handler]) * 1e3
        floor_ms = median([r["total_s"] for r in floor]) * 1e3
        ranked = sorted(profile, key=lambda entry: entry["cumulative_us"], reverse=True)
        return {
            "case": case.name,
            "flow": case.flow.label,
            "event": case.event_label,
            "function": case.flow.function,
            "runs": runs,
            "handler_ms": handler_ms,
            "handler_import_ms": median([r["import_s"] for r in handler]) * 1e3,
            "handler_first_request_ms": median([r["first_request_s"] for r in handler]) * 1e3,
            "floor_ms": floor_ms,
            "floor_import_ms": median([r["import_s"] for r in floor]) * 1e3,
            "ratio": handler_ms / floor_ms,
            "handler_runs_ms": [r["total_s"] * 1e3 for r in handler],
            "floor_runs_ms": [r["total_s"] * 1e3 for r in floor],
            "handler_process_ms": median([r["wall_s"] for r in handler]) * 1e3,
            "floor_process_ms": median([r["wall_s"] for r in floor]) * 1e3,
            "handler_rss_mb": median([r["max_rss_mb"] for r in handler]),
            "floor_rss_mb": median([r["max_rss_mb"] for r in floor]),
            "handler_modules": int(median([r["modules"] for r in handler])),
            "floor_modules": int(median([r["modules"] for r in floor])),
            "handler_xray_datagrams": median([r["xray_datagrams"] for r in handler]),
            "imported_during_cold_start": len(profile),
            # Lambda's runtime has none: only an OpenID callback and an RS256 signer (Freshworks) load it, from the
            # OIDC layer's folder (_check_cryptography refused anything else).
            "expects_cryptography": expects_cryptography(case.flow, self.functions, self.oidc_layer_id),
            "cryptography_loaded": any(r["cryptography_loaded"] for r in handler),
            # What sys.modules holds after the first request (-X importtime also lists PyJWT's failed attempts).
            "cryptography_modules": max(r["cryptography_modules"] for r in handler),
            "floor_cryptography_loaded": any(r["cryptography_loaded"] for r in floor),
            "provider_calls_first_request": handler[0].get("provider_calls", {}),
            "importtime_top": [{k: entry[k] for k in ("module", "cumulative_us", "self_us")} for entry in ranked[:top]],
            # What the first request imported (an OIDC callback: joserfc and cryptography). importlib.import_module
            # is not timed by -X importtime, only the imports inside it: their top level adds up to the whole.
            "first_request_import_us": sum(entry["cumulative_us"] for entry in on_request if entry["depth"] == 0),
            "first_request_modules": len(on_request),
            "first_request_imports": [
                {k: entry[k] for k in ("module", "cumulative_us")}
                for entry in sorted(on_request, key=lambda entry: entry["cumulative_us"], reverse=True)
                if entry["depth"] == 0
            ][:top],
            "python": handler[0]["python"],
            "jwt_from": handler[0]["jwt_from"],
            "boto3_from": floor[0]["boto3_from"],
        }
