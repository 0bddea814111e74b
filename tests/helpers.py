"""Test helpers: the keys and names the tests share, sample events, login tokens."""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"

LOGIN_TOKEN_KEY = "test-login-token-key-0123456789abcdef0123456789"
VENDOR_KEYS = {
    "clickfunnels": "test-clickfunnels-key-0123456789abcdef01234567",
    "kustomer": "test-kustomer-key-0123456789abcdef0123456789ab",
    "happyfox": "test-happyfox-key-0123456789abcdef0123456789ab",
}
SECRET_IDS = {
    "login": "sso-bridge/login-token",
    "clickfunnels": "sso-bridge/clickfunnels",
    "kustomer": "sso-bridge/kustomer",
    "happyfox": "sso-bridge/happyfox",
}
WORKSPACE = "yourworkspace.myclickfunnels.com"
PLATFORM_LOGIN_URL = "https://platform.example.com/login"
HAPPYFOX_ACCOUNT_URL = "https://acme.happyfox.com"
JTI_TABLE_NAME = "sso-bridge-jti-test"
SPENT_LINKS_TABLE_NAME = "sso-bridge-spent-links-test"
LINK_REVOCATIONS_TABLE_NAME = "sso-bridge-link-revocations-test"
KUSTOMER_PORTAL_HOST = "yourcompany.kustomer.help"
KUSTOMER_CUSTOM_DOMAIN = "help.example.com"


@dataclass
class LambdaContext:
    function_name: str = "sso-bridge-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:sso-bridge-test"
    aws_request_id: str = "7f6c1f5e-0000-4000-8000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def load_event(name: str, *, query: str | None = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A sample event from events/ (the files `sam local invoke -e` takes), optionally with another query."""
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    event = copy.deepcopy(event)
    if query is not None:
        event["rawQueryString"] = query
        event.pop("queryStringParameters", None)
    if headers:
        event["headers"] = {**event["headers"], **{k.lower(): v for k, v in headers.items()}}
    return event


def make_login_token(
    email: str = "jane.doe+vip@example.com",
    *,
    aud: str | list[str] = "clickfunnels",
    key: str = LOGIN_TOKEN_KEY,
    lifetime: int = 120,
    issued: int | None = None,
    algorithm: str = "HS256",
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    now = int(time.time()) if issued is None else issued
    payload: dict[str, Any] = {"email": email, "aud": aud, "iat": now, "exp": now + lifetime, **claims}
    for claim in drop:
        payload.pop(claim, None)
    return jwt.encode(payload, key, algorithm=algorithm)
