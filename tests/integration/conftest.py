"""Integration tests: the local stack (`make run`) over real HTTP, redirects not followed.

Fixtures: ``local_stack`` (the running stack: ``url(path)``, ``function_url(name, path)``) and ``client``
(``get``, ``post_form`` and ``sign_in(link, email=...)``, the whole sign-in round trip); ``dynamodb_engine`` and
``engine_jti_table``, a test once on moto and once on Amazon's DynamoDB Local (tests/integration/dynamodb.py).
"""

from __future__ import annotations

import pytest

from tests.integration.client import Client
from tests.integration.dynamodb import dynamodb_engine, dynamodb_local, engine_jti_table
from tests.integration.stack import local_stack

__all__ = ["client", "dynamodb_engine", "dynamodb_local", "engine_jti_table", "local_stack"]


@pytest.fixture
def client() -> Client:
    return Client()
