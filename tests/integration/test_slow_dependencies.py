"""A dependency that hangs: the user still gets our 503 page, well before Lambda would cut the function off.

A loopback server accepts connections and never answers (a hung DynamoDB or Secrets Manager); a closed port
refuses them (unreachable). The handler runs in-process against them, the other service in moto. Before the
client timeouts were set deliberately, a hung DynamoDB answered after about 14 s, past the 10 s function
timeout, so the user saw API Gateway's bare error instead of a page.

Every vendor in template.yaml, each sent its own request (tests/vendor_requests.py): Secrets Manager hanging on a
sign-in, DynamoDB on an email link's spend, and on the audit write of the vendors that record each token's jti.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
import yaml

from sso_bridge.link_form import field_value
from tests.helpers import LOGIN_TOKEN_KEY, ROOT, LambdaContext, LinkPage, load_event, make_login_token, pressed
from tests.vendor_requests import VENDORS, deployed, portal


def function_timeout() -> float:
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=yaml.BaseLoader)  # noqa: S506 - tags as text
    return float(template["Globals"]["Function"]["Timeout"])


@pytest.fixture
def hanging_endpoint() -> Iterator[str]:
    """An endpoint that accepts every connection and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


@pytest.fixture
def closed_endpoint() -> str:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def timed_sign_in(module: ModuleType, event: dict[str, Any]) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    response = module.lambda_handler(event, LambdaContext())
    return response, time.monotonic() - started


def sign_in(vendor: str) -> dict[str, Any]:
    """The vendor's own request with an interactive login token."""
    return load_event(deployed(vendor).event, query=portal(vendor).sign_in(make_login_token(aud=vendor)))


def link_spend(vendor: str) -> dict[str, Any]:
    """The button of a link's page shown before the outage (its cookie and field as the page made them)."""
    jti, nonce = "a-link-jti-0123456789abcdef", "AAAAAAAAAAAAAAAAAAAAAA"
    link = make_login_token(aud=vendor, use="link", jti=jti, lifetime=3600)
    page = LinkPage(f"sso_bridge_link={nonce}", field_value(LOGIN_TOKEN_KEY, jti=jti, nonce=nonce))
    return pressed(load_event(deployed(vendor).event, query=portal(vendor).sign_in(link)), page)


# The variable that points one service's client elsewhere: botocore's AWS_ENDPOINT_URL_<service id>, its spaces as
# underscores ("Secrets Manager": AWS_ENDPOINT_URL_SECRETS_MANAGER; "secretsmanager" would be ignored).
SECRETS_MANAGER = "AWS_ENDPOINT_URL_SECRETS_MANAGER"
DYNAMODB = "AWS_ENDPOINT_URL_DYNAMODB"
# (the service's variable, vendor, the request, the 503's reason) per case.
CASES: dict[str, tuple[str, str, Callable[[str], dict[str, Any]], str]] = {
    **{
        f"secrets manager hangs on a {vendor} sign-in": (SECRETS_MANAGER, vendor, sign_in, "secret_unavailable")
        for vendor in VENDORS
    },
    # A link spend is the layer's alone (flow.identify, before any vendor code runs): one vendor stands for all.
    **{
        f"dynamodb hangs on a {vendor} link spend": (DYNAMODB, vendor, link_spend, "link_store_unavailable")
        for vendor in VENDORS[:1]
    },
    **{
        f"dynamodb hangs on the {vendor} audit write": (DYNAMODB, vendor, sign_in, "jti_store_unavailable")
        for vendor in VENDORS
        if deployed(vendor).records_jti
    },
}


# A hanging service for every case; a closed port (refused at once, so the same code path, only faster to fail) for
# the first vendor of each: the clients and the 503 are the layer's, the vendors' own parts are in the hanging half.
ENDPOINT_CASES = [
    pytest.param(endpoint, *case, id=f"{endpoint.removesuffix('_endpoint')}: {name}")
    for name, case in CASES.items()
    for endpoint in ("hanging_endpoint", "closed_endpoint")
    if endpoint == "hanging_endpoint" or case[1] == next(c[1] for c in CASES.values() if c[3] == case[3])
]


@pytest.mark.parametrize(("endpoint", "variable", "function", "event", "reason"), ENDPOINT_CASES)
def test_a_hung_or_unreachable_dependency_is_a_503_inside_the_function_timeout(
    jti_table: Any,
    link_tables: Any,
    load_function: Callable[..., ModuleType],
    log_stream: Callable[[ModuleType], io.StringIO],
    request: pytest.FixtureRequest,
    variable: str,
    function: str,
    event: Callable[[str], dict[str, Any]],
    reason: str,
    endpoint: str,
) -> None:
    # Given one service that does not answer (the other in moto, with its secrets and tables)
    url = request.getfixturevalue(endpoint)
    module = load_function(function, **{variable: url})
    logs = log_stream(module)

    # When a user signs in
    response, elapsed = timed_sign_in(module, event(function))

    # Then they get our 503 page, with time to spare before Lambda would stop the function
    assert response["statusCode"] == 503, (response["headers"].get("Location"), response["body"][:300])
    assert "Location" not in response["headers"]
    assert response["headers"]["Retry-After"]
    assert "<form" not in response["body"]  # nor a page posting a token (Zendesk's)
    assert elapsed < function_timeout() * 0.8  # the duration alarm fires above this
    # And it was that service: the refusal's reason names it
    refused = [json.loads(line) for line in logs.getvalue().splitlines() if '"outcome":"refused"' in line]
    assert [line["reason"] for line in refused] == [reason]
