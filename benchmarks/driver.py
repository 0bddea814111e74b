"""The measuring end of `make bench`: runs inside the Lambda-shaped venv, one process per measurement.

    python -P benchmarks/driver.py PLAN.json RESULT.json      (cwd: the task root; environment: Lambda's)

Standard library only at import: ``jwt`` comes from the built layer and ``boto3`` from the runtime venv, as in
Lambda, and nothing of the project is imported but the handler, by the name in ``_HANDLER``. Modes:

- ``warm``: import the handler, warm it up, then ``rounds`` rounds of ``calls`` handler calls, each round
  followed by as many calls of the floor (PyJWT decode + encode like the flow's, plus the flow's DynamoDB write
  through boto3 to the same endpoint). Every call gets a fresh login token (a link needs a fresh jti: it can be
  spent once), a fresh request id and trace header, all made before its timer starts.
- ``cold-handler``: from a fresh interpreter, import the handler and serve one request (events made by the bench).
- ``cold-floor``: from a fresh interpreter, only the unavoidable: import jwt and boto3, make the clients, fetch
  the two secrets, decode, encode, and write where the flow writes.

Handler output (logs, metrics) goes to stdout and stderr as in Lambda; the result goes to RESULT.json.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from typing import Any

perf = time.perf_counter


class Context:
    """The attributes of Lambda's context object."""

    def __init__(self, function: dict[str, Any], request_id: str) -> None:
        self.function_name = function["name"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = function["arn"]
        self.memory_limit_in_mb = int(function["memory"])
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + int(function["timeout"])

    def get_remaining_time_in_millis(self) -> int:
        return int(max(self._deadline - time.monotonic(), 0) * 1000)


def request_id() -> str:
    raw = os.urandom(16).hex()
    return f"{raw[:8]}-{raw[8:12]}-4{raw[13:16]}-8{raw[17:20]}-{raw[20:]}"


def trace_header(sampled: bool) -> str:
    root = f"1-{int(time.time()):08x}-{os.urandom(12).hex()}"
    return f"Root={root};Parent={os.urandom(8).hex()};Sampled={int(sampled)};Lineage=1:{os.urandom(4).hex()}:0"


def load_handler(name: str) -> Any:
    module_name, _, function = name.replace("/", ".").rpartition(".")
    return getattr(importlib.import_module(module_name), function)


# --- tokens and events ----------------------------------------------------------------------------------------


def login_token(jwt: Any, login: dict[str, Any], jti: str | None = None) -> str:
    now = int(time.time())
    claims = {"email": login["email"], "name": login["name"], "aud": login["aud"], "iat": now}
    claims["exp"] = now + int(login["lifetime"])
    # A link's single-use id; platforms send one with interactive tokens too.
    claims["jti"] = jti or os.urandom(16).hex()
    if login.get("use"):
        claims["use"] = login["use"]
    if login.get("campaign"):
        claims["campaign"] = login["campaign"]
    return str(jwt.encode(claims, login["key"], algorithm="HS256"))


def event_with(plan: dict[str, Any], token: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(plan["event_json"])
    query = plan["query"]
    event["rawQueryString"] = f"{query}&login_token={token}" if query else f"login_token={token}"
    event.pop("queryStringParameters", None)
    event["requestContext"]["requestId"] = request_id()
    return event


# --- the floor: what any implementation of the flow must do ------------------------------------------------------


class Floor:
    def __init__(self, plan: dict[str, Any], jwt: Any, dynamodb: Any) -> None:
        self.jwt = jwt
        self.floor = plan["floor"]
        self.dynamodb = dynamodb
        self.write_times: list[float] = []  # the write alone, inside each floor call

    def vendor_token(self, claims: dict[str, Any], key: str) -> str:
        floor, now = self.floor, int(time.time())
        vendor, email = floor["vendor"], claims["email"]
        if vendor == "clickfunnels":
            minted = {"sub": f"{email}:{floor['workspace']}", "iat": now, "nbf": now - 30, "exp": now + 300}
            if floor.get("redirect_to"):
                minted["redirect_to"] = floor["redirect_to"]
            return str(self.jwt.encode(minted, key, algorithm="HS256"))
        if vendor == "kustomer":
            return str(self.jwt.encode({"email": email, "iat": now}, key, algorithm="HS256", headers={"typ": "JWT"}))
        if vendor == "happyfox":
            minted = {"iat": now, "jti": os.urandom(16).hex(), "name": claims.get("name") or email, "email": email}
            return str(self.jwt.encode(minted, key, algorithm="HS256"))
        raise ValueError(f"no floor for vendor {vendor!r}")

    def write(self, claims: dict[str, Any]) -> None:
        write = self.floor.get("write")
        if not write:
            return
        now, email = int(time.time()), claims["email"]
        who = {
            "email": {"S": email},
            "email_lower": {"S": email.lower()},
            "request_id": {"S": "5f0c3a8e-3c1b-4c5e-9a53-1b8f0e6d2a11"},
            "source_ip": {"S": "203.0.113.7"},
            "user_agent": {"S": "Mozilla/5.0"},
        }
        if write["op"] == "put":  # HappyFox: one conditional put of the issued jti
            item = {"jti": {"S": os.urandom(16).hex()}, "vendor": {"S": "happyfox"}, "name": {"S": claims["name"]}}
            item |= {"issued_at": {"N": str(now)}, "expires_at": {"N": str(now + 120)}, **who}
            item["purge_at"] = {"N": str(now + 90 * 86400)}
            self.dynamodb.put_item(TableName=write["table"], Item=item, ConditionExpression="attribute_not_exists(jti)")
        elif write["op"] == "transact":  # a link: its jti put once, in one transaction with the revocation check
            item = {"jti": {"S": claims["jti"]}, "vendor": {"S": claims["aud"]}, **who}
            item |= {"issued_at": {"N": str(claims["iat"])}, "spent_at": {"N": str(now)}}
            item["expires_at"] = {"N": str(claims["exp"])}
            self.dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "ConditionCheck": {
                            "TableName": write["revocations_table"],
                            "Key": {"email_lower": {"S": email.lower()}},
                            "ConditionExpression": "attribute_not_exists(email_lower) OR not_before < :iat",
                            "ExpressionAttributeValues": {":iat": {"N": str(claims["iat"])}},
                        }
                    },
                    {
                        "Put": {
                            "TableName": write["spent_table"],
                            "Item": item,
                            "ConditionExpression": "attribute_not_exists(jti)",
                        }
                    },
                ]
            )
        else:
            raise ValueError(f"unknown write {write['op']!r}")

    def __call__(self, token: str, login_key: str, vendor_key: str) -> str:
        floor = self.floor
        claims = self.jwt.decode(
            token,
            login_key,
            algorithms=["HS256"],
            audience=floor["audience"],
            leeway=floor["leeway"],
            options={"require": ["email", "aud", "iat", "exp"]},
        )
        if floor.get("write"):
            start = perf()
            self.write(claims)
            self.write_times.append(perf() - start)
        return self.vendor_token(claims, vendor_key)


# --- modes ------------------------------------------------------------------------------------------------------


def cold_handler(plan: dict[str, Any]) -> dict[str, Any]:
    event = json.loads(plan["event_json"])
    context = Context(plan["function"], request_id())
    if os.environ.get("BENCH_MARKER"):  # -X importtime: what follows is the cold start
        print(os.environ["BENCH_MARKER"], file=sys.stderr, flush=True)
    start = perf()
    handler = load_handler(plan["handler"])
    imported = perf()
    response = handler(event, context)
    done = perf()
    return {
        "import_s": imported - start,
        "first_request_s": done - imported,
        "total_s": done - start,
        "status": response.get("statusCode"),
    }


def cold_floor(plan: dict[str, Any]) -> dict[str, Any]:
    cold, floor = plan["cold"], plan["floor"]
    start = perf()
    import boto3
    import jwt

    secretsmanager = boto3.client("secretsmanager")
    dynamodb = boto3.client("dynamodb") if floor.get("write") else None
    imported = perf()
    login_key = secretsmanager.get_secret_value(SecretId=cold["login_secret_id"])["SecretString"]
    vendor_key = secretsmanager.get_secret_value(SecretId=cold["vendor_secret_id"])["SecretString"]
    Floor(plan, jwt, dynamodb)(cold["token"], login_key, vendor_key)
    done = perf()
    return {"import_s": imported - start, "first_request_s": done - imported, "total_s": done - start, "status": 0}


def warm(plan: dict[str, Any]) -> dict[str, Any]:
    handler = load_handler(plan["handler"])
    import boto3
    import jwt

    floor_plan, login = plan["floor"], plan["login"]
    floor = Floor(plan, jwt, boto3.client("dynamodb") if floor_plan.get("write") else None)
    keys = (login["key"], floor_plan["vendor_key"])
    expected, sampled = plan["expected_status"], plan["sampled"]
    unexpected: list[str] = []

    # A link's spend is one record in the spent-links table. Moto copies a table for every transaction on it (its
    # rollback), so a growing table would make each spend slower than the one before: each record is deleted again
    # after its call, outside the timing, for handler and floor alike (DynamoDB's cost does not grow with a table).
    cleanup: dict[str, str] | None = plan.get("cleanup")
    dynamodb = floor.dynamodb

    def forget(jti: str) -> None:
        if cleanup is not None:
            dynamodb.delete_item(TableName=cleanup["table"], Key={cleanup["key"]: {"S": jti}})

    def handler_calls(count: int) -> list[float]:
        batch = []
        for _ in range(count):
            jti = os.urandom(16).hex()
            event = event_with(plan, login_token(jwt, login, jti))
            batch.append((jti, event, Context(plan["function"], request_id()), trace_header(sampled)))
        times = []
        for jti, event, context, trace in batch:
            os.environ["_X_AMZN_TRACE_ID"] = trace  # as the runtime does before each invocation
            start = perf()
            response = handler(event, context)
            times.append(perf() - start)
            if response.get("statusCode") != expected and len(unexpected) < 5:
                unexpected.append(f"{response.get('statusCode')}: {str(response.get('body'))[:200]}")
            forget(jti)
        return times

    def floor_calls(count: int) -> list[float]:
        jtis = [os.urandom(16).hex() for _ in range(count)]
        tokens = [login_token(jwt, login, jti) for jti in jtis]
        times = []
        for jti, token in zip(jtis, tokens, strict=True):
            start = perf()
            floor(token, *keys)
            times.append(perf() - start)
            forget(jti)
        return times

    # Warm-up, then calls per round so that a round of the handler lasts about round_seconds.
    warmup = handler_calls(plan["warmup"])
    floor_calls(plan["warmup"])
    if unexpected:
        return {"unexpected": unexpected}
    per_call = sorted(warmup)[len(warmup) // 2]
    calls = plan["calls"] or max(50, min(2000, int(plan["round_seconds"] / max(per_call, 1e-6))))
    floor.write_times.clear()
    rounds: list[float] = []
    floor_rounds: list[float] = []
    every: list[float] = []
    for _ in range(plan["rounds"]):
        times = handler_calls(calls)
        every += times
        rounds.append(sum(times) / len(times))
        times = floor_calls(calls)
        floor_rounds.append(sum(times) / len(times))
    every.sort()
    return {
        "calls": calls,
        "rounds_s": rounds,
        "floor_rounds_s": floor_rounds,
        "call_p50_s": every[len(every) // 2],
        "call_p99_s": every[min(len(every) - 1, int(len(every) * 0.99))],
        "floor_write_p50_s": sorted(floor.write_times)[len(floor.write_times) // 2] if floor.write_times else 0.0,
        "unexpected": unexpected,
    }


def peak_rss_mb() -> float:
    """This process image's peak resident memory. Not ``getrusage().ru_maxrss``: Linux carries the parent's peak
    across fork and exec into it, so every child of the bench would report the bench's own size."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


MODES = {"warm": warm, "cold-handler": cold_handler, "cold-floor": cold_floor}


def main() -> None:
    plan_path, result_path = sys.argv[1:3]
    with open(plan_path) as text:
        plan = json.load(text)
    result = MODES[plan["mode"]](plan)
    result["max_rss_mb"] = peak_rss_mb()
    result["modules"] = len(sys.modules)
    result["cryptography_loaded"] = "cryptography" in sys.modules
    result["python"] = sys.version.split()[0]
    result["jwt_from"] = getattr(sys.modules.get("jwt"), "__file__", None)
    result["boto3_from"] = getattr(sys.modules.get("boto3"), "__file__", None)
    with open(result_path, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
