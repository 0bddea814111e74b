"""The Lambda entry point every flow shares: logs carry the request's correlation id, metrics are flushed once,
and X-Ray subsegments are recorded only when asked for.

Lambda's Active tracing (the template's ``Tracing: Active``) records every invocation without any SDK in the
function. The X-Ray SDK that Powertools' Tracer drives costs about a quarter of a warm request (a subsegment
per call, streamed as it closes) and, with ``LAMBDA_TASK_ROOT`` set, about 125 ms of cold start (its sampler
makes a client at import). So it is imported only when ``TRACE_SUBSEGMENTS`` is true, for an operator who wants
the handler's own subsegment in the trace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths

__all__ = ["LambdaHandler", "lambda_entry"]

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def lambda_entry(
    app: APIGatewayHttpResolver, *, logger: Logger, metrics: Metrics, trace_subsegments: bool = False
) -> LambdaHandler:
    """``lambda_handler`` for a function whose routes are on ``app``."""

    def resolve(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return app.resolve(event, context)

    handler: LambdaHandler = resolve
    if trace_subsegments:
        from aws_lambda_powertools import Tracer  # the X-Ray SDK: only when asked for

        # capture_response=False: the response carries a live token, which must not end up in traces.
        handler = Tracer().capture_lambda_handler(capture_response=False)(handler)
    handler = metrics.log_metrics(capture_cold_start_metric=True)(handler)
    # log_event=False whatever POWERTOOLS_LOGGER_LOG_EVENT says: events carry login tokens.
    wrapped: LambdaHandler = logger.inject_lambda_context(
        correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False
    )(handler)
    return wrapped
