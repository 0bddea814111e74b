"""Item 13, load: 1,000 concurrent HappyFox sign-ins get 1,000 distinct ``jti`` values, every one audited.

One warm HappyFox function (its module: the shared boto3 clients, the ``KeyCache`` and its lock, the jti store)
answers 1,000 sign-ins, each with its own login token, from a pool of 64 threads, against moto in-process (the
``jti_table`` fixture; moto may serialize its own work, the bridge's objects are what is shared). Every user must
be sent to HappyFox with a token HappyFox accepts, for that user; the 1,000 ``jti`` values must be distinct, and
the jti table must hold exactly those, each with the right email, name, login jti and request id. It runs twice:
on moto, and on Amazon's DynamoDB Local (``engine_jti_table``, tests/integration/dynamodb.py), where the 1,000
conditional puts meet the engine AWS ships, over HTTP, from 64 threads sharing one client.

Lambda runs one request at a time per execution environment; here 64 threads share one module, so everything
of the bridge's is shared between them: its clients, key cache, jti store, logger and metrics, and the app,
which keeps the request being answered per thread (``sso_bridge.http``). Powertools' resolver kept it on a
class: run this way, it signed 8 to 80 of 1,000 users in as someone else.

The local stack (`make run`) runs every function in one process: requests to two functions at once would meet
the same process-wide state, so it answers one at a time.
``test_a_sign_in_keeps_its_user_while_another_function_runs`` shows it deterministically.
"""

from __future__ import annotations

import io
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest

from local.lambdas import LocalFunction
from local.template import functions
from sso_bridge import clients
from tests.helpers import HAPPYFOX_ACCOUNT_URL, JTI_TABLE_NAME, VENDOR_KEYS, LambdaContext, load_event, make_login_token

SIGN_INS = 1000
WORKERS = 64
HF_KEY = VENDOR_KEYS["happyfox"]


def email(i: int) -> str:
    return f"load.user{i:04d}+hf@example.com"


def happyfox_claims(response: dict[str, Any]) -> dict[str, Any]:
    """The redirect's token verified as HappyFox would: HS256 with its key, all four claims."""
    assert response["statusCode"] == 302, response.get("body", "")[:200]
    location = response["headers"]["Location"]
    assert location.startswith(f"{HAPPYFOX_ACCOUNT_URL}/jwt/?token="), location[:80]
    [token] = parse_qs(urlsplit(location).query)["token"]
    claims: dict[str, Any] = jwt.decode(
        token, HF_KEY, algorithms=["HS256"], options={"require": ["iat", "jti", "name", "email"]}
    )
    return claims


def scan(table: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = table.scan(TableName=JTI_TABLE_NAME, ConsistentRead=True, **kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


@pytest.fixture
def client_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """A cold container: no boto3 session yet; counts the clients the bridge makes, by service."""
    made: Counter[str] = Counter()
    real = clients._client

    def counting(service: str) -> Any:
        made[service] += 1
        return real(service)

    monkeypatch.setattr(clients, "_session", None)
    monkeypatch.setattr(clients, "_client", counting)
    return made


def test_a_thousand_concurrent_sign_ins_get_a_thousand_distinct_audited_jti(
    engine_jti_table: Any,
    load_function: Callable[..., ModuleType],
    log_stream: Callable[[ModuleType], io.StringIO],
    client_calls: Counter[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a HappyFox function just started (no client, no key fetched yet) and 1,000 users, each with a login token
    happyfox = load_function("happyfox")
    logs = log_stream(happyfox)
    events = []
    for i in range(SIGN_INS):
        token = make_login_token(email(i), aud="happyfox", name=f"Load User {i}", jti=f"login-{i:04d}")
        event = load_event("happyfox-login-httpapi", query=f"login_token={token}")
        event["requestContext"]["requestId"] = f"load-{i:04d}"
        events.append(event)

    # When they all sign in at once
    def sign_in(i: int) -> dict[str, Any]:
        response: dict[str, Any] = happyfox.lambda_handler(events[i], LambdaContext())
        return response

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        responses = list(pool.map(sign_in, range(SIGN_INS)))
    elapsed = time.perf_counter() - started

    # Then each was sent to HappyFox with a token HappyFox accepts, for that user
    claims = [happyfox_claims(response) for response in responses]
    assert [c["email"] for c in claims] == [email(i) for i in range(SIGN_INS)]
    assert [c["name"] for c in claims] == [f"Load User {i}" for i in range(SIGN_INS)]
    # with 1,000 distinct jti
    jti = [c["jti"] for c in claims]
    assert len(set(jti)) == SIGN_INS
    # all audited: the table holds exactly those, each with its user, login jti and request
    items = scan(engine_jti_table)
    assert len(items) == SIGN_INS
    by_jti = {item["jti"]["S"]: item for item in items}
    assert set(by_jti) == set(jti)
    for i, token_jti in enumerate(jti):
        item = by_jti[token_jti]
        assert item["email"] == {"S": email(i)}, (i, item["email"])
        assert item["name"] == {"S": f"Load User {i}"}
        assert item["login_jti"] == {"S": f"login-{i:04d}"}
        assert item["request_id"] == {"S": f"load-{i:04d}"}
        assert int(item["issued_at"]["N"]) == claims[i]["iat"]
    # and the threads shared one client per service, made once
    assert client_calls == {"secretsmanager": 1, "dynamodb": 1}
    assert logs.getvalue().count('"outcome":"issued"') == SIGN_INS
    print(f"{SIGN_INS} sign-ins on {WORKERS} threads: {elapsed:.1f} s ({SIGN_INS / elapsed:.0f}/s)")


def test_a_sign_in_keeps_its_user_while_another_function_runs(
    jti_table: Any, load_function: Callable[..., ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the local stack's HappyFox and ClickFunnels functions, in one process as `make run` runs them
    specs = {Path(spec.code_uri).name: spec for spec in functions()}
    happyfox = load_function("happyfox")
    clickfunnels = load_function("clickfunnels")
    local_happyfox = LocalFunction(specs["happyfox"], happyfox, memory=128, timeout=10)
    local_clickfunnels = LocalFunction(specs["clickfunnels"], clickfunnels, memory=128, timeout=10)
    # and the thread switch the GIL makes now and then, made at one moment: Alice's HappyFox request pauses
    # where the handler first reads its event, until Bob's ClickFunnels request is answered (3 s at most, so a
    # stack that answers one request at a time goes on without it)
    alice_waits, bob_answered = threading.Event(), threading.Event()

    class PausingApp:
        def __init__(self, app: Any) -> None:
            self._app = app

        def __getattr__(self, name: str) -> Any:
            return getattr(self._app, name)

        @property
        def current_event(self) -> Any:
            if not alice_waits.is_set():
                alice_waits.set()
                bob_answered.wait(timeout=3)
            return self._app.current_event

    monkeypatch.setattr(happyfox, "app", PausingApp(happyfox.app))
    vendors = ["clickfunnels", "happyfox"]  # the demo platform's tokens name every vendor
    alice = make_login_token("alice@example.com", aud=vendors)
    bob = make_login_token("bob@example.com", aud=vendors)

    # When Alice signs in to HappyFox while Bob signs in to ClickFunnels
    with ThreadPoolExecutor(max_workers=2) as pool:
        alice_answer = pool.submit(
            local_happyfox.invoke, load_event("happyfox-login-httpapi", query=f"login_token={alice}")
        )
        assert alice_waits.wait(timeout=5)
        bob_answer = pool.submit(
            local_clickfunnels.invoke, load_event("clickfunnels-sso-httpapi", query=f"login_token={bob}")
        )
        bob_answer.result(timeout=15)
        bob_answered.set()
        alice_response = alice_answer.result(timeout=15)

    # Then Alice is signed in to HappyFox as Alice
    assert happyfox_claims(alice_response)["email"] == "alice@example.com"
