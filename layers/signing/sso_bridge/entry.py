"""The Lambda entry point every flow shares: logs carry the invocation's ids (the request id as
``correlation_id``), a cold start is counted, and X-Ray subsegments are recorded only when asked for.

It does what Powertools' ``inject_lambda_context`` and ``log_metrics`` decorators did, for a fraction of their
cost (see ``sso_bridge.observability``); the event is never logged.

Lambda's Active tracing (the template's ``Tracing: Active``) records every invocation without any SDK in the
function. The X-Ray SDK that Powertools' Tracer drives costs about a quarter of a warm request (a subsegment
per call, streamed as it closes) and, with ``LAMBDA_TASK_ROOT`` set, about 125 ms of cold start (its sampler
makes a client at import). So it is imported only when ``TRACE_SUBSEGMENTS`` is true, for an operator who wants
the handler's own subsegment in the trace.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .http import App
from .observability import Logger, Metrics

__all__ = ["LambdaHandler", "lambda_entry"]

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def lambda_entry(app: App, *, logger: Logger, metrics: Metrics, trace_subsegments: bool = False) -> LambdaHandler:
    """``lambda_handler`` for a function whose routes are on ``app``."""

    cold = threading.Event()  # set once the first invocation has started

    def resolve(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return app.resolve(event, context)

    handler: LambdaHandler = resolve
    if trace_subsegments:
        from aws_lambda_powertools import Tracer  # the X-Ray SDK: only when asked for

        # capture_response=False: the response carries a live token, which must not end up in traces.
        handler = Tracer().capture_lambda_handler(capture_response=False)(handler)

    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        cold_start = not cold.is_set()
        cold.set()
        request = event.get("requestContext") if isinstance(event, dict) else None
        function_name = getattr(context, "function_name", None)
        token = logger.bind(
            {
                "cold_start": cold_start,
                "function_name": function_name,
                "function_memory_size": getattr(context, "memory_limit_in_mb", None),
                "function_arn": getattr(context, "invoked_function_arn", None),
                "function_request_id": getattr(context, "aws_request_id", None),
                "correlation_id": request.get("requestId") if isinstance(request, dict) else None,
            }
        )
        try:
            if cold_start:
                metrics.count("ColdStart", function_name=str(function_name))
            return handler(event, context)
        finally:
            logger.unbind(token)

    return lambda_handler
