"""HappyFox through the local stack: Remote Login in, /jwt/ out, every token on record and findable by audit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import boto3
import jwt
import pytest

from local.aws import plan_tables
from local.lambdas import LOCAL_DEFAULTS
from local.template import load_template
from tests.helpers import ROOT, VENDOR_KEYS, make_login_token
from tests.integration.client import Client, Response, query_param
from tests.integration.stack import RunningStack

HF_KEY = VENDOR_KEYS["happyfox"]
ACCOUNT_URL = LOCAL_DEFAULTS["HAPPYFOX_ACCOUNT_URL"]
HAPPYFOX_WINDOW = 120
CONCURRENT_LOGINS = 40


def happyfox_claims(response: Response) -> dict[str, Any]:
    """The HappyFox token in a redirect, verified as HappyFox would (HS256, its key, 120-second window)."""
    assert response.status == 302, response.text
    location = urlsplit(response.location)
    assert (f"{location.scheme}://{location.netloc}", location.path) == (ACCOUNT_URL, "/jwt/")
    token = query_param(response.location, "token")
    claims: dict[str, Any] = jwt.decode(
        token, HF_KEY, algorithms=["HS256"], options={"require": ["iat", "jti", "name", "email"]}
    )
    assert 0 <= time.time() - claims["iat"] <= HAPPYFOX_WINDOW
    return claims


@pytest.fixture(scope="module")
def table_name() -> str:
    [table] = [table for table in plan_tables(load_template(), {}) if table.logical_id == "JtiTable"]
    return table.name


@pytest.fixture
def dynamodb(local_stack: RunningStack) -> Any:
    """The stack's emulated DynamoDB, read as an operator would."""
    return boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{local_stack.aws_port}",
        region_name="eu-west-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def audit(local_stack: RunningStack, table: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    env |= {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{local_stack.aws_port}",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "JTI_TABLE_NAME": table,
    }
    return subprocess.run(
        [sys.executable, "-m", "ops.audit", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def unique_email() -> str:
    # The stack is shared by the session: an email of our own keeps other tests' tokens out of our counts.
    return f"hf-{uuid.uuid4().hex[:12]}@example.com"


@pytest.mark.parametrize("path", ["/happyfox/login", "function-url"])
def test_signed_out_user_signs_in_and_lands_in_the_support_centre(
    client: Client, local_stack: RunningStack, dynamodb: Any, table_name: str, path: str
) -> None:
    link = local_stack.function_url("happyfox", "/") if path == "function-url" else local_stack.url(path)
    email = unique_email()

    trip = client.sign_in(link, email=email, name="Jane Doe")

    assert query_param(trip.login_redirect.location, "return_to") == link
    claims = happyfox_claims(trip.final)
    assert (claims["email"], claims["name"]) == (email, "Jane Doe")
    assert trip.final.headers["Cache-Control"] == "no-store"
    assert trip.final.headers["Referrer-Policy"] == "no-referrer"
    item = dynamodb.get_item(TableName=table_name, Key={"jti": {"S": claims["jti"]}})["Item"]
    assert item["email"] == {"S": email}
    assert item["issued_at"] == {"N": str(claims["iat"])}


def test_concurrent_logins_get_distinct_jtis_all_on_record_and_auditable(
    client: Client, local_stack: RunningStack, dynamodb: Any, table_name: str
) -> None:
    # Given one user clicking login 40 times at once
    email = unique_email()
    link = local_stack.url(f"/happyfox/login?login_token={make_login_token(email, aud='happyfox')}")

    with ThreadPoolExecutor(max_workers=CONCURRENT_LOGINS) as pool:
        responses = list(pool.map(lambda _: client.get(link), range(CONCURRENT_LOGINS)))

    # Then each got its own jti, and every one of them is in the table
    jtis = [happyfox_claims(response)["jti"] for response in responses]
    assert len(set(jtis)) == CONCURRENT_LOGINS
    for jti in jtis:
        assert dynamodb.get_item(TableName=table_name, Key={"jti": {"S": jti}})["Item"]["email"] == {"S": email}

    # And the audit command finds all of them by email, newest first
    by_email = audit(local_stack, table_name, "--email", email, "--json")
    assert by_email.returncode == 0, by_email.stderr
    found = json.loads(by_email.stdout)
    assert sorted(record["jti"] for record in found) == sorted(jtis)
    issued = [record["issued_at"] for record in found]
    assert issued == sorted(issued, reverse=True)

    # And each one by its jti
    for jti in jtis[:3]:
        by_jti = audit(local_stack, table_name, f"--jti={jti}")
        assert by_jti.returncode == 0, by_jti.stderr
        assert jti in by_jti.stdout
        assert email in by_jti.stdout


def test_audit_says_when_a_token_was_not_ours(local_stack: RunningStack, table_name: str) -> None:
    result = audit(local_stack, table_name, "--jti", "never-issued-by-us")
    assert result.returncode == 1
    assert "no token issued" in result.stderr


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "happyfox", "key": "forged-key-0123456789abcdef0123456789abcdef"},
        {"aud": "clickfunnels"},
        {"aud": "happyfox", "key": HF_KEY},
    ],
    ids=["forged-key", "wrong-audience", "signed-with-happyfox-key"],
)
def test_hostile_login_token_gets_an_error_page_never_happyfox(
    client: Client, local_stack: RunningStack, claims: dict[str, str]
) -> None:
    # Minted here, not at collection: a login token lives minutes, a whole test run longer.
    token = make_login_token("a@example.com", **claims)
    response = client.get(local_stack.url(f"/happyfox/login?login_token={token}"))
    assert response.status in (401, 403)
    assert "Location" not in response.headers
    assert ACCOUNT_URL not in response.text


def test_logout_shows_the_signed_out_page(client: Client, local_stack: RunningStack) -> None:
    response = client.get(local_stack.url("/happyfox/logout"))
    assert response.status == 200
    assert "You are signed out" in response.text
