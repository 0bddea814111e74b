"""`make bench`: what a click costs, as ratios against floors measured in the same run, on the built code.

    python -m benchmarks [--runtime-python PATH] [--rounds 7] [--calls N] [--cold-runs 5] [--seconds 10]
        [--clients 20] [--link-rows 200000] [--only warm,cold,jose,links,load] [--dynamodb local|moto]
        [--out .bench/results.json]

- warm: each flow (every portal's sign-in; a ClickFunnels email link spent), through the HTTP API and the function
  URL event, one ``lambda_handler`` call against the floor (PyJWT decode, the vendor's token of the same claims,
  plus the flow's DynamoDB write through boto3), median of ``--rounds`` rounds of ``--calls`` calls (default: as
  many as fill 0.3 s) in the same process (benchmarks/flows.py says what each floor is);
- cold: a fresh interpreter importing the handler and serving its first request, against one doing only the
  unavoidable (import jwt and boto3, and cryptography for Freshworks' RS256, make the clients, fetch the two
  secrets, decode, sign, write where the flow writes), ``--cold-runs`` each, median; resident memory after the first
  request; the cold start's slowest imports (``-X importtime``); whether cryptography was loaded (only an OpenID
  callback and Freshworks may);
- OpenID Connect, in warm and cold (benchmarks/flows.py, OIDC_FLOWS): the functions as the template makes them
  with ``OidcIssuer`` set, against a stand-in provider on localhost (benchmarks/oidc_provider.py); the sign-in start
  (warm, against the ClickFunnels sign-in's floor), the callback (warm and cold, against what any callback must do:
  driver.CallbackFloor), and a login-token sign-in with OpenID Connect on (cold: it must not load cryptography);
- jose: the RS256 check of an ID token with PyJWT, joserfc and authlib.jose, cold and warm, and ``import jwt``
  with and without cryptography importable (benchmarks/jose.py);
- links: `make links` rows/s against reading and writing the CSV alone (in this process);
- load: the local stack (`make run`) under ``--clients`` concurrent clients for ``--seconds`` (or BENCH_SECONDS).

Warm and cold run the artifacts of `sam build` (.aws-sam/build) in a venv shaped like the Lambda runtime (Python
3.13 with boto3 alone, .venv/bench-runtime, made by `make bench`), with the environment Lambda sets and the
template's own variables (benchmarks/lambda_env.py), against moto's server, Amazon's DynamoDB Local for DynamoDB
(``--dynamodb moto``, or no Java: moto's) and a stand-in X-Ray daemon (benchmarks/emulator.py). Ratios, not
seconds, so runs on different machines compare. Tests never assert timings; read these.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# This checkout's code first (ops.link and the local stack import the layer's source), whatever the venv's .pth says.
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "signing")]

from benchmarks.flows import CASES, OIDC_COLD_CASES, OIDC_WARM_CASES  # noqa: E402
from benchmarks.lambda_env import BENCH_DIR, RUNTIME_PYTHON  # noqa: E402
from benchmarks.report import table  # noqa: E402

SECTIONS = ("warm", "cold", "jose", "links", "load")


def _git(*args: str) -> str:
    git = shutil.which("git")
    if git is None:
        return ""
    done = subprocess.run([git, *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.rstrip()


def code_version() -> dict[str, Any]:
    changed = _git("status", "--porcelain", "--", "functions", "layers", "template.yaml").splitlines()
    return {"commit": _git("rev-parse", "--short", "HEAD").strip(), "uncommitted_code_changes": changed}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runtime-python", type=Path, default=RUNTIME_PYTHON)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=0, help="calls per warm round (0: fill --round-seconds)")
    parser.add_argument("--round-seconds", type=float, default=0.3)
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS") or 10))
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--link-rows", type=int, default=200_000)
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {', '.join(SECTIONS)}")
    parser.add_argument(
        "--dynamodb",
        choices=("local", "moto"),
        default="local",
        help="DynamoDB for warm and cold: DynamoDB Local (moto when it cannot run here), or moto",
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results.json")
    args = parser.parse_args(argv)
    args.runtime_python = args.runtime_python.absolute()  # not resolve(): the venv is its symlink
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(args.only) - set(SECTIONS)
    if unknown:
        parser.error(f"--only: unknown section(s) {', '.join(sorted(unknown))}")
    return args


def run(args: argparse.Namespace, say: Any = print) -> dict[str, Any]:
    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "code": code_version(),
        "machine": {"cpus": os.cpu_count(), "machine": platform.machine(), "bench_python": sys.version.split()[0]},
        "settings": {
            key: getattr(args, key)
            for key in ("rounds", "calls", "round_seconds", "cold_runs", "seconds", "clients", "link_rows", "dynamodb")
        },
    }
    if "warm" in args.only or "cold" in args.only:
        from benchmarks.runner import Bench

        with Bench(args.runtime_python, dynamodb=args.dynamodb) as bench:
            results["runtime"] = bench.facts
            if "warm" in args.only:
                results["warm"] = []
                for case in (*CASES, *OIDC_WARM_CASES):
                    say(f"warm {case.name} ...", file=sys.stderr)
                    results["warm"].append(
                        bench.warm(case, rounds=args.rounds, calls=args.calls, round_seconds=args.round_seconds)
                    )
            if "cold" in args.only:
                results["cold"] = []
                for case in (*CASES, *OIDC_COLD_CASES):
                    say(f"cold {case.name} ...", file=sys.stderr)
                    results["cold"].append(bench.cold(case, runs=args.cold_runs))
    if "jose" in args.only:
        from benchmarks.jose import jose_comparison

        say("jose: RS256 verification, PyJWT / joserfc / authlib.jose ...", file=sys.stderr)
        # Processes of about 0.1 s each: more of them than a flow's cold runs, for a steadier median.
        results["jose"] = jose_comparison(args.runtime_python, runs=2 * args.cold_runs - 1, rounds=args.rounds)
    if "links" in args.only:
        from benchmarks.links import link_batch

        say("links ...", file=sys.stderr)
        results["links"] = link_batch(args.link_rows)
    if "load" in args.only:
        from benchmarks.load import load_test

        say(f"load: local stack, {args.clients} clients, {args.seconds:g} s ...", file=sys.stderr)
        results["load"] = load_test(args.seconds, args.clients)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    code = results["code"]
    changes = len(code["uncommitted_code_changes"])
    dirty = f", {changes} uncommitted changes in functions/, layers/, template.yaml" if changes else ""
    print(f"sso-bridge bench at {code['commit']}{dirty}; {results['machine']['cpus']} CPUs")
    print(table(results))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
