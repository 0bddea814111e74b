"""The routing every flow rests on: which function answers, what a malformed event becomes, whose request it is."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from sso_bridge.http import App, Event, NoRoute, Response


def event(method: str = "GET", path: str = "/kustomer/login", **extra: Any) -> dict[str, Any]:
    return {
        "rawPath": path,
        "rawQueryString": "a=1",
        "headers": {"accept": "text/html"},
        "requestContext": {"http": {"method": method, "path": path}, "requestId": "r-1", "stage": "$default"},
        **extra,
    }


@pytest.fixture
def app() -> App:
    app = App()

    @app.route("/kustomer/login", method=["GET", "HEAD", "POST"])
    def login() -> Response:
        return Response(302, headers={"Location": "https://portal.example/"})

    @app.route("/kustomer/brands/<brand>/login", method=["GET"])
    def brand(brand: str) -> Response:
        return Response(200, body=brand, content_type="text/plain")

    @app.get("/boom")
    def boom() -> Response:
        raise KeyError("x")

    app.not_found(lambda exc: Response(404, body="none"))
    app.exception_handler(LookupError)(lambda exc: Response(500, body=type(exc).__name__))
    return app


def test_a_route_answers_in_payload_v2(app: App) -> None:
    assert app.resolve(event()) == {
        "statusCode": 302,
        "isBase64Encoded": False,
        "headers": {"Location": "https://portal.example/"},
        "body": "",
    }


def test_a_path_parameter_is_one_segment(app: App) -> None:
    answer = app.resolve(event(path="/kustomer/brands/acme/login"))
    assert (answer["statusCode"], answer["body"], answer["headers"]["Content-Type"]) == (200, "acme", "text/plain")
    assert app.resolve(event(path="/kustomer/brands/a/b/login"))["statusCode"] == 404


@pytest.mark.parametrize(
    ("method", "path"), [("DELETE", "/kustomer/login"), ("POST", "/kustomer/brands/acme/login"), ("GET", "/x")]
)
def test_no_route_for_the_method_and_path_is_the_not_found_handler(app: App, method: str, path: str) -> None:
    assert app.resolve(event(method, path))["statusCode"] == 404


def test_a_named_stage_is_not_part_of_the_route(app: App) -> None:
    raw = event(path="/prod/kustomer/login")
    raw["requestContext"]["stage"] = "prod"
    assert app.resolve(raw)["statusCode"] == 302


def test_an_exception_goes_to_the_handler_of_its_nearest_type(app: App) -> None:
    assert app.resolve(event(path="/boom"))["body"] == "KeyError"


def test_an_exception_nobody_handles_is_raised() -> None:
    app = App()

    @app.get("/")
    def fail() -> Response:
        raise ValueError("x")

    with pytest.raises(ValueError, match="x"):
        app.resolve(event(path="/"))


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"requestContext": None, "headers": None, "rawPath": 5, "rawQueryString": ["a"]},
        {"requestContext": {"http": "GET", "requestId": 7}, "headers": {"Accept": 1, 2: "x", "X-Y": "z"}},
    ],
)
def test_a_malformed_event_reads_as_empty_fields(raw: dict[str, Any]) -> None:
    parsed = Event(raw)
    assert isinstance(parsed.raw_path, str)
    assert isinstance(parsed.raw_query_string, str)
    assert isinstance(parsed.request_context.http.method, str)
    assert isinstance(parsed.request_context.request_id, str)
    assert all(isinstance(k, str) and k == k.lower() and isinstance(v, str) for k, v in parsed.headers.items())


def test_a_malformed_event_is_answered_by_the_not_found_handler(app: App) -> None:
    assert app.resolve({})["statusCode"] == 404
    assert isinstance(NoRoute("x"), Exception)


def test_each_thread_sees_its_own_request() -> None:
    app = App()
    barrier = threading.Barrier(6)

    @app.get("/whoami")
    def whoami() -> Response:
        barrier.wait()  # every thread is inside its request before any reads the current one
        return Response(200, body=app.current_event.request_context.request_id)

    answers: dict[str, str] = {}

    def call(number: int) -> None:
        raw = event(path="/whoami")
        raw["requestContext"]["requestId"] = f"request-{number}"
        answers[f"request-{number}"] = app.resolve(raw)["body"]

    threads = [threading.Thread(target=call, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(key == value for key, value in answers.items())
    assert len(answers) == 6
