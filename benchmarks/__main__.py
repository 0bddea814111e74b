"""`make bench`: what a click costs, as ratios against baselines measured in the same run.

- warm request: a whole ClickFunnels request through the handler (secrets cached, moto in-process) against
  the irreducible work, verifying one HS256 token and signing another with PyJWT;
- cold start: importing the handler in a fresh interpreter against importing boto3 alone (which Powertools
  Parameters needs anyway);
- email links: `make links` minting a CSV of generated contacts through the real CSV path (temporary files)
  against reading and writing the same rows with the csv module alone. A mailing must not wait on us:
  the budget is 50,000 rows/s on the project's 2-core machines.

Ratios, not seconds, so runs on different machines compare. Tests never assert timings; read these.
"""

from __future__ import annotations

import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "signing")]

from tests.helpers import (  # noqa: E402
    LINK_REVOCATIONS_TABLE_NAME,
    LOGIN_TOKEN_KEY,
    SECRET_IDS,
    SPENT_LINKS_TABLE_NAME,
    VENDOR_KEYS,
    LambdaContext,
    load_event,
    make_login_token,
)

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
    # Required since email links; an interactive request never reads them.
    "SPENT_LINKS_TABLE_NAME": SPENT_LINKS_TABLE_NAME,
    "LINK_REVOCATIONS_TABLE_NAME": LINK_REVOCATIONS_TABLE_NAME,
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

        token = make_login_token(lifetime=300)  # LOGIN_TOKEN_MAX_TTL: interactive tokens live minutes
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


def link_batch(rows: int = 200_000) -> tuple[float, float]:
    """Seconds per row: minting links for a contacts CSV, and copying that CSV with two columns more."""
    from ops.link import LinkMinter, mint_csv

    with tempfile.TemporaryDirectory(prefix="sso-bridge-bench-") as tmp:
        contacts, links, copy = Path(tmp, "contacts.csv"), Path(tmp, "links.csv"), Path(tmp, "copy.csv")
        with contacts.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["Email", "First Name", "Last Name", "Company"])
            for i in range(rows):
                writer.writerow([f"user{i}@example.com", "Jane", f"Doe {i}", "Acme, Inc."])

        def floor() -> None:
            with contacts.open(newline="", encoding="utf-8-sig") as text, copy.open("w", newline="") as out:
                writer = csv.writer(out)
                for row in csv.reader(text):
                    writer.writerow([*row, "", ""])

        minter = LinkMinter(
            LOGIN_TOKEN_KEY,
            vendor="clickfunnels",
            function_url="https://abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-1.on.aws/",
            issued_at=int(time.time()),
            ttl=7 * 86400,
            campaign="spring-sale",
        )
        base = best_of(floor, 1, repeat=3) / rows
        full = best_of(lambda: mint_csv(contacts, links, minter, report=print), 1, repeat=3) / rows
    return base, full


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
    base, full = link_batch()
    print(f"batch links : {1 / full:8.0f} rows/s vs csv read+write {1 / base:7.0f} rows/s  ratio {full / base:5.1f}x")


if __name__ == "__main__":
    main()
