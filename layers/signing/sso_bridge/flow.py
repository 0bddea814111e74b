"""The part every vendor flow shares: who is the user, and what a refusal looks like.

Refusals are raised as ``BridgeError`` anywhere in a route and turned into a response here, once, so every
flow logs them the same way (one line, reason and outcome, never the token) and counts them per reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from .errors import BridgeError, LoginRequired
from .login_token import MAX_TOKEN_LENGTH, LoginIdentity, verify_login_token
from .request import Query, login_redirect_url, request_url
from .responses import error_response, page_response, redirect_response, wants_json
from .secrets import get_previous_signing_key, get_signing_key
from .settings import CommonSettings

__all__ = ["count", "identify", "install_error_handlers"]


def _login_token_keys(settings: CommonSettings) -> Iterator[str]:
    """The current key, then, only if a signature fails with it, the previous one (rotation overlap)."""
    yield get_signing_key(settings.login_token_secret_id, max_age=settings.secrets_max_age)
    previous = get_previous_signing_key(settings.login_token_secret_id, max_age=settings.secrets_max_age)
    if previous is not None:
        yield previous


def identify(query: Query, settings: CommonSettings, *, audience: str) -> LoginIdentity:
    """The user the login token vouches for; ``LoginRequired`` before any fetch when there is none."""
    token = query.get("login_token", max_length=MAX_TOKEN_LENGTH)
    if token is None:
        raise LoginRequired("login_token_missing")
    return verify_login_token(
        token,
        keys=_login_token_keys(settings),
        audience=audience,
        max_ttl=settings.login_token_max_ttl,
        leeway=settings.login_token_leeway,
    )


def count(metrics: Metrics, name: str, reason: str) -> None:
    """One metric with a ``reason`` dimension, flushed at once so reasons do not share a blob."""
    provider = metrics.provider
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=provider.namespace) as metric:
        if provider.service:
            metric.add_dimension(name="service", value=str(provider.service))
        metric.add_dimension(name="reason", value=reason)


def install_error_handlers(
    app: APIGatewayHttpResolver,
    *,
    settings: CommonSettings,
    logger: Logger,
    metrics: Metrics,
) -> None:
    """Map the domain errors to responses for ``app``; call once, next to the routes."""

    def request_id() -> str:
        return app.current_event.request_context.request_id

    def _login_required(exc: LoginRequired) -> Response[Any]:
        logger.info("login required", extra={"outcome": "login_redirect", "reason": exc.reason})
        count(metrics, "LoginRedirect", exc.reason)
        location = login_redirect_url(settings.platform_login_url, request_url(app.current_event))
        return redirect_response(location)

    def _refused(exc: BridgeError) -> Response[Any]:
        log = logger.error if exc.status >= 500 else logger.warning
        log("request refused", extra={"outcome": "refused", "reason": exc.reason, "detail": exc.detail})
        count(metrics, "Refused", exc.reason)
        as_json = wants_json(app.current_event.headers.get("accept"))
        return error_response(exc, request_id=request_id(), as_json=as_json)

    def _not_found(exc: NotFoundError) -> Response[Any]:
        logger.info("no such route", extra={"outcome": "not_found", "path": app.current_event.raw_path[:200]})
        return page_response(404, "Page not found", "There is nothing at this address.", request_id=request_id())

    def _unexpected(exc: Exception) -> Response[Any]:
        # A bug, not bad input: keep the trace in the logs and show the user a reference only.
        logger.exception("unexpected error", extra={"outcome": "error"})
        count(metrics, "Refused", "internal_error")
        return page_response(500, "Something went wrong", "Please try again in a minute.", request_id=request_id())

    # Registered by call, not decorator: Powertools' decorators are untyped.
    app.exception_handler(LoginRequired)(_login_required)
    app.exception_handler(BridgeError)(_refused)
    app.not_found(_not_found)
    app.exception_handler(Exception)(_unexpected)
