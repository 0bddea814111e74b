"""Browser tests run against the same local stack as the integration tests (one per session)."""

from __future__ import annotations

from tests.integration.stack import local_stack

__all__ = ["local_stack"]
