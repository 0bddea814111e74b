"""Fixtures shared by every test: configuration, Lambda context, sample events, login tokens.

Configuration is set here, before any function module is imported, because functions read their
settings once at import (as at a Lambda cold start). Tests that need other settings use
``load_function(name, **env)``, which re-imports the module under those variables.
"""

from __future__ import annotations

import copy
import functools
import gc
import importlib
import io
import os
import sys
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from local.vendors import SPECS
from tests.helpers import (
    CANNY_COMPANY_ID,
    CANNY_REDIRECT_HOSTS,
    DISCOURSE_URL,
    FRESHWORKS_CLIENT_ID,
    FRESHWORKS_PORTAL_URL,
    FRESHWORKS_REDIRECT_HOSTS,
    HAPPYFOX_ACCOUNT_URL,
    JTI_TABLE_NAME,
    KUSTOMER_CUSTOM_DOMAIN,
    KUSTOMER_PORTAL_HOST,
    LINK_REVOCATIONS_TABLE_NAME,
    LOGIN_TOKEN_KEY,
    PLATFORM_LOGIN_URL,
    SECRET_IDS,
    SPENT_LINKS_TABLE_NAME,
    VENDOR_KEYS,
    WORKSPACE,
    ZENDESK_ACCOUNT_URL,
    ZENDESK_HOSTS,
    LambdaContext,
)

# The tests' own values for the vendors' settings (constants in tests/helpers.py, which tests assert on).
_VENDOR_SETTINGS = {
    "CLICKFUNNELS_WORKSPACE_DOMAIN": WORKSPACE,
    "HAPPYFOX_ACCOUNT_URL": HAPPYFOX_ACCOUNT_URL,
    "KUSTOMER_REDIRECT_HOSTS": f"{KUSTOMER_PORTAL_HOST},{KUSTOMER_CUSTOM_DOMAIN}",
    "ZENDESK_ACCOUNT_URL": ZENDESK_ACCOUNT_URL,
    "ZENDESK_HOSTS": ZENDESK_HOSTS,
    "CANNY_COMPANY_ID": CANNY_COMPANY_ID,
    "CANNY_REDIRECT_HOSTS": CANNY_REDIRECT_HOSTS,
    "DISCOURSE_URL": DISCOURSE_URL,
    "FRESHWORKS_CLIENT_ID": FRESHWORKS_CLIENT_ID,
    "FRESHWORKS_REDIRECT_HOSTS": FRESHWORKS_REDIRECT_HOSTS,
    "FRESHWORKS_PORTAL_URL": FRESHWORKS_PORTAL_URL,
}
BASE_ENV = {
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "SsoBridgeTest",
    "LOGIN_TOKEN_SECRET_ID": SECRET_IDS["login"],
    "PLATFORM_LOGIN_URL": PLATFORM_LOGIN_URL,
    "JTI_TABLE_NAME": JTI_TABLE_NAME,
    "SPENT_LINKS_TABLE_NAME": SPENT_LINKS_TABLE_NAME,
    "LINK_REVOCATIONS_TABLE_NAME": LINK_REVOCATIONS_TABLE_NAME,
    # Each vendor's key, by its stand-in's SPEC; a vendor the tests give no value of its own starts with its
    # stand-in's placeholders, as under `make run`.
    **{spec.secret_setting: SECRET_IDS[spec.vendor] for spec in SPECS},
    **{
        name: value
        for spec in SPECS
        if not _VENDOR_SETTINGS.keys() & spec.defaults.keys()
        for name, value in spec.defaults.items()
    },
    **_VENDOR_SETTINGS,
}
# Unit tests must never reach a real AWS endpoint, whatever the developer's shell holds.
# (AWS_ENDPOINT_URL_DYNAMODB and the like too: boto3 prefers a service's own endpoint variable.)
for _name in ["AWS_PROFILE", *(name for name in os.environ if name.startswith("AWS_ENDPOINT_URL"))]:
    os.environ.pop(_name, None)
os.environ.update(BASE_ENV)


# The garbage collector's pace for a test session, not a Lambda's: hundreds of cold starts (each a function module,
# its boto3 clients and their service models) make a large heap that the default thresholds scan over and over.
# Measured on `make test`'s unit tests (2 cores): 465 s, 136 s of them collecting; with these, 396 s and 66 s.
gc.set_threshold(100_000, 50, 100)


def pytest_collection_finish(session: pytest.Session) -> None:
    """What collection imported (botocore, moto, every test module) lives to the end: never scan it again."""
    gc.collect()
    gc.freeze()


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


@pytest.fixture
def aws() -> Iterator[Any]:
    """Moto's Secrets Manager with every key seeded; yields the boto3 Secrets Manager client."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("secretsmanager", region_name="eu-west-1")
        client.create_secret(Name=SECRET_IDS["login"], SecretString=LOGIN_TOKEN_KEY)
        for vendor, key in VENDOR_KEYS.items():
            client.create_secret(Name=SECRET_IDS[vendor], SecretString=key)
        yield client


@functools.cache
def _table_definition(logical_id: str) -> dict[str, Any]:
    """The template's table, read once per session: parsing template.yaml takes about 0.2 s, and hundreds of
    tests make tables."""
    from local.template import table_definition

    return table_definition(logical_id)


@pytest.fixture
def jti_table(aws: Any) -> Any:
    """Moto's DynamoDB with the jti table as template.yaml defines it; yields the boto3 DynamoDB client."""
    import boto3

    client = boto3.client("dynamodb", region_name="eu-west-1")
    client.create_table(TableName=JTI_TABLE_NAME, **copy.deepcopy(_table_definition("JtiTable")))
    return client


@pytest.fixture
def link_tables(aws: Any) -> Any:
    """Moto's DynamoDB with the email-link tables as template.yaml defines them; yields the DynamoDB client."""
    import boto3

    client = boto3.client("dynamodb", region_name="eu-west-1")
    client.create_table(TableName=SPENT_LINKS_TABLE_NAME, **copy.deepcopy(_table_definition("SpentLinksTable")))
    revocations = copy.deepcopy(_table_definition("LinkRevocationsTable"))
    client.create_table(TableName=LINK_REVOCATIONS_TABLE_NAME, **revocations)
    return client


@pytest.fixture
def log_stream() -> Callable[[ModuleType], io.StringIO]:
    """Point a function module's Powertools Logger at a buffer (it keeps the stdout it found at import)."""

    def attach(module: ModuleType) -> io.StringIO:
        stream = io.StringIO()
        module.logger.registered_handler.setStream(stream)
        return stream

    return attach


@pytest.fixture
def load_function(monkeypatch: pytest.MonkeyPatch) -> Callable[..., ModuleType]:
    """Import ``functions/<name>/app.py`` afresh under extra environment variables (a new cold start)."""

    def load(name: str, **env: str) -> ModuleType:
        for key, value in {"POWERTOOLS_SERVICE_NAME": name, **env}.items():
            monkeypatch.setenv(key, value)
        module_name = f"functions.{name}.app"
        sys.modules.pop(module_name, None)
        return importlib.import_module(module_name)

    return load
