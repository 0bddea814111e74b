"""Unit tests run offline: any socket they open is an error (moto intercepts AWS calls in-process).

``flow`` and ``url_flow``: each vendor in template.yaml with an email link, through its HTTP API route and through
its function URL (``tests.link_flows``), for every test module that checks links on every flow.
"""

from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import aws_xray_sdk.core  # noqa: F401 - its recorder makes a UDP socket at import; made before the ban
import pytest
from pytest_socket import disable_socket, enable_socket

from tests.link_flows import Flow
from tests.vendor_requests import VENDORS, deployed


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()


@pytest.fixture(params=VENDORS)
def flow(
    request: pytest.FixtureRequest, jti_table: Any, link_tables: Any, load_function: Callable[..., ModuleType]
) -> Flow:
    """Each vendor through its HTTP API route."""
    return Flow(request.param, load_function(request.param), deployed(request.param).event)


@pytest.fixture(params=VENDORS)
def url_flow(
    request: pytest.FixtureRequest, jti_table: Any, link_tables: Any, load_function: Callable[..., ModuleType]
) -> Flow:
    """Each vendor through its function URL, where email links point."""
    return Flow(request.param, load_function(request.param), deployed(request.param).url_event)
