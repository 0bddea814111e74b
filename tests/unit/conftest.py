"""Unit tests run offline: any socket they open is an error (moto intercepts AWS calls in-process)."""

from collections.abc import Iterator

import aws_xray_sdk.core  # noqa: F401 - its recorder makes a UDP socket at import; made before the ban
import pytest
from pytest_socket import disable_socket, enable_socket


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()
