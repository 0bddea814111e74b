"""A dependency that hangs: the user still gets our 503 page, well before Lambda would cut the function off.

A loopback server accepts connections and never answers (a hung DynamoDB or Secrets Manager); a closed port
refuses them (unreachable). The handler runs in-process against them, the other service in moto. Before the
client timeouts were set deliberately, a hung DynamoDB answered after about 14 s, past the 10 s function
timeout, so the user saw API Gateway's bare error instead of a page.
"""

from __future__ import annotations

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


def happyfox_sign_in() -> dict[str, Any]:
    return load_event("happyfox-login-httpapi", query=f"login_token={make_login_token(aud='happyfox')}")


def link_spend() -> dict[str, Any]:
    """The button of a link's page shown before the outage (its cookie and field as the page made them)."""
    jti, nonce = "a-link-jti-0123456789abcdef", "AAAAAAAAAAAAAAAAAAAAAA"
    link = make_login_token(aud="clickfunnels", use="link", jti=jti, lifetime=3600)
    page = LinkPage(f"sso_bridge_link={nonce}", field_value(LOGIN_TOKEN_KEY, jti=jti, nonce=nonce))
    return pressed(load_event("clickfunnels-sso-httpapi", query=f"login_token={link}"), page)


CASES = {
    "dynamodb hangs on the HappyFox audit write": ("dynamodb", "happyfox", happyfox_sign_in),
    "dynamodb hangs on a link spend": ("dynamodb", "clickfunnels", link_spend),
    "secrets manager hangs": ("secretsmanager", "clickfunnels", link_spend),
}


@pytest.mark.parametrize(("service", "function", "event"), CASES.values(), ids=CASES.keys())
@pytest.mark.parametrize("endpoint", ["hanging_endpoint", "closed_endpoint"])
def test_a_hung_or_unreachable_dependency_is_a_503_inside_the_function_timeout(
    aws: Any,
    load_function: Callable[..., ModuleType],
    request: pytest.FixtureRequest,
    service: str,
    function: str,
    event: Callable[[], dict[str, Any]],
    endpoint: str,
) -> None:
    # Given one service that does not answer (the other in moto)
    url = request.getfixturevalue(endpoint)
    module = load_function(function, **{f"AWS_ENDPOINT_URL_{service.upper()}": url})

    # When a user signs in
    response, elapsed = timed_sign_in(module, event())

    # Then they get our 503 page, with time to spare before Lambda would stop the function
    assert response["statusCode"] == 503
    assert "Location" not in response["headers"]
    assert response["headers"]["Retry-After"]
    assert elapsed < function_timeout() * 0.8  # the duration alarm fires above this
