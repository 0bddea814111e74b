"""`make bench`: what a click costs, as ratios against baselines measured in the same run.

- warm request: a whole ClickFunnels request through the handler (secrets cached, moto in-process) against
  the irreducible work, verifying one HS256 token and signing another with PyJWT;
- cold start: importing the handler in a fresh interpreter against importing boto3 alone (which Powertools
  Parameters needs anyway).

Ratios, not seconds, so runs on different machines compare. Tests never assert timings; read these.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "signing")]

from tests.helpers import LOGIN_TOKEN_KEY, SECRET_IDS, VENDOR_KEYS, LambdaContext, load_event, make_login_token  # noqa: E402

ENV = {
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "SsoBridgeBench",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "LOGIN_TOKEN_SECRET_ID": SECRET_IDS["login"],
    "PLATFORM_LOGIN_URL": "https://platform.example.com/login",
    "CLICKFUNNELS_SECRET_ID": SECRET_IDS["clickfunnels"],
    "CLICKFUNNELS_WORKSPACE_DOMAIN": "yourworkspace.myclickfunnels.com",
}


def best_of(fn: object, number: int, repeat: int = 5) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number  # type: ignore[arg-type]


def warm_request() -> tuple[float, float]:
    import boto3
    import jwt
    from moto import mock_aws

    os.environ.update(ENV)
    with mock_aws():
        client = boto3.client("secretsmanager")
        client.create_secret(Name=SECRET_IDS["login"], SecretString=LOGIN_TOKEN_KEY)
        client.create_secret(Name=SECRET_IDS["clickfunnels"], SecretString=VENDOR_KEYS["clickfunnels"])
        from functions.clickfunnels import app

        token = make_login_token(lifetime=3600)
        event = load_event("clickfunnels-sso-httpapi", query=f"login_token={token}")
        context = LambdaContext()
        devnull = open(os.devnull, "w")  # noqa: SIM115 - metrics print EMF to stdout
        stdout, sys.stdout = sys.stdout, devnull
        try:
            assert app.lambda_handler(event, context)["statusCode"] == 302

            def baseline() -> None:
                jwt.decode(token, LOGIN_TOKEN_KEY, algorithms=["HS256"], audience="clickfunnels")
                now = int(time.time())
                jwt.encode({"sub": "a", "iat": now, "exp": now + 300}, VENDOR_KEYS["clickfunnels"], algorithm="HS256")

            base = best_of(baseline, 2000)
            full = best_of(lambda: app.lambda_handler(event, context), 500)
        finally:
            sys.stdout = stdout
            devnull.close()
    return base, full


def import_time(statement: str, runs: int = 7) -> float:
    env = {**os.environ, **ENV, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "layers" / "signing")])}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], env=env, check=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    base, full = warm_request()
    print(f"warm request: {full * 1e6:8.0f} us  vs PyJWT verify+sign {base * 1e6:6.0f} us  ratio {full / base:5.1f}x")
    interpreter = import_time("pass")
    boto3_only = import_time("import boto3") - interpreter
    handler = import_time("import functions.clickfunnels.app") - interpreter
    print(
        f"cold import : {handler * 1e3:8.0f} ms  vs import boto3 {boto3_only * 1e3:11.0f} ms  "
        f"ratio {handler / boto3_only:5.1f}x"
    )


if __name__ == "__main__":
    main()
