"""Where the bridge is: the local stack's state file, or a deployed stack's outputs and parameters.

Deployed stacks are moto CloudFormation stacks made from a tiny template whose Outputs and Parameters are
the ones the real template.yaml has (literal values: what matters is what describe_stacks returns).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.state import LocalStackState, write_state
from ops import target
from ops.target import OUTPUTS, TargetError, resolve, vendor_outputs
from tests.helpers import (
    JTI_TABLE_NAME,
    LINK_REVOCATIONS_TABLE_NAME,
    LOGIN_TOKEN_KEY,
    SECRET_IDS,
    SPENT_LINKS_TABLE_NAME,
    WORKSPACE,
)

STACK = "bridge-under-test"
FUNCTION_URLS = {
    "clickfunnels": "https://cf0123456789abcdef.lambda-url.eu-west-1.on.aws/",
    "kustomer": "https://ku0123456789abcdef.lambda-url.eu-west-1.on.aws/",
    "happyfox": "https://hf0123456789abcdef.lambda-url.eu-west-1.on.aws/",
}
KUSTOMER_HOST = "yourcompany.kustomer.help"
# The deployed stack's parameters, as `sam deploy` would have set them.
PARAMETERS = {
    "ClickFunnelsWorkspaceDomain": WORKSPACE,
    "ClickFunnelsRedirectHosts": "",
    "KustomerRedirectHosts": KUSTOMER_HOST,
    "KustomerPortalUrl": f"https://{KUSTOMER_HOST}/login",
}


def create_bridge_stack(
    *,
    name: str = STACK,
    link_max_ttl: int | None = None,
    drop_outputs: tuple[str, ...] = (),
    parameters: dict[str, str] | None = None,
) -> None:
    """A moto stack with the bridge's outputs (the moto secret and table names) and parameters."""
    secret_arn = boto3.client("secretsmanager").describe_secret(SecretId=SECRET_IDS["login"])["ARN"]
    outputs = {
        "LoginTokenSecretArn": secret_arn,
        "JtiTableName": JTI_TABLE_NAME,
        "SpentLinksTableName": SPENT_LINKS_TABLE_NAME,
        "LinkRevocationsTableName": LINK_REVOCATIONS_TABLE_NAME,
        **{vendor_outputs()[vendor]: url for vendor, url in FUNCTION_URLS.items()},
        "ApiUrl": "https://abc123.execute-api.eu-west-1.amazonaws.com",
    }
    values = {**PARAMETERS, **(parameters or {})}
    if link_max_ttl is not None:
        values["LinkTokenMaxTtl"] = str(link_max_ttl)
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {key: {"Type": "String"} for key in values},
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items() if key not in drop_outputs},
    }
    boto3.client("cloudformation").create_stack(
        StackName=name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in values.items()],
    )


def local_state(**overrides: Any) -> LocalStackState:
    fields: dict[str, Any] = {
        "pid": os.getpid(),
        "api_url": "http://localhost:3000",
        "aws_endpoint": "http://127.0.0.1:4566",
        "region": "eu-west-1",
        "function_urls": {"clickfunnels": "http://localhost:3001/", "kustomer": "http://localhost:3002/"},
        "secret_ids": {"LOGIN_TOKEN_SECRET_ID": "sso-bridge/login-token"},
        "tables": {
            "JTI_TABLE_NAME": "sso-bridge-JtiTable",
            "SPENT_LINKS_TABLE_NAME": "sso-bridge-SpentLinksTable",
            "LINK_REVOCATIONS_TABLE_NAME": "sso-bridge-LinkRevocationsTable",
        },
        "settings": {"LINK_TOKEN_MAX_TTL": "86400"},
    }
    return LocalStackState(**{**fields, **overrides})


def environ_for(path: Path) -> dict[str, str]:
    return {"LOCAL_STACK_FILE": str(path)}


# --- the template's names ---------------------------------------------------------------------------------


def test_vendors_and_their_function_url_outputs_come_from_the_template() -> None:
    assert vendor_outputs() == {
        "clickfunnels": "ClickFunnelsFunctionUrl",
        "kustomer": "KustomerFunctionUrl",
        "happyfox": "HappyFoxFunctionUrl",
        "zendesk": "ZendeskFunctionUrl",
        "canny": "CannyFunctionUrl",
        "discourse": "DiscourseFunctionUrl",
        "freshworks": "FreshworksFunctionUrl",
    }


def test_importing_the_module_touches_nothing() -> None:
    # A fresh interpreter with no credentials, no network: importing must not even need them.
    env = {"PATH": os.environ.get("PATH", ""), "AWS_EC2_METADATA_DISABLED": "true"}
    result = subprocess.run(
        [sys.executable, "-c", "import ops.target, ops.link, ops.revoke, ops.audit"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# --- the local stack --------------------------------------------------------------------------------------


def test_local_stack_is_found_through_its_state_file(tmp_path: Path) -> None:
    # Given a running stack's state file
    path = tmp_path / "stack.json"
    write_state(local_state(), path)

    # When a command resolves the local target
    found = resolve(True, "ignored", environ=environ_for(path))

    # Then it has the stack's URLs, names and cap, and a session that can only reach moto
    assert found.local
    assert found.function_url("clickfunnels") == "http://localhost:3001/"
    assert found.resource("LOGIN_TOKEN_SECRET_ID") == "sso-bridge/login-token"
    assert found.resource("JTI_TABLE_NAME") == "sso-bridge-JtiTable"
    assert found.resource("LINK_REVOCATIONS_TABLE_NAME") == "sso-bridge-LinkRevocationsTable"
    assert found.link_max_ttl == 86400
    assert found.endpoint_url == "http://127.0.0.1:4566"
    credentials = found.session.get_credentials()
    assert credentials is not None
    assert (credentials.access_key, credentials.secret_key) == ("local", "local")
    assert found.session.region_name == "eu-west-1"
    assert found.dynamodb().meta.endpoint_url == "http://127.0.0.1:4566"
    assert found.secretsmanager().meta.endpoint_url == "http://127.0.0.1:4566"


def test_local_link_cap_defaults_to_seven_days_and_never_exceeds_thirty(tmp_path: Path) -> None:
    path = tmp_path / "stack.json"
    write_state(local_state(settings={}), path)
    assert resolve(True, "", environ=environ_for(path)).link_max_ttl == 7 * 86400
    write_state(local_state(settings={"LINK_TOKEN_MAX_TTL": str(90 * 86400)}), path)
    assert resolve(True, "", environ=environ_for(path)).link_max_ttl == 30 * 86400


def test_no_local_stack_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match=r"make run") as caught:
        resolve(True, "", environ=environ_for(tmp_path / "absent.json"))
    assert caught.value.exit_status == 3
    assert "\n" not in str(caught.value)


def test_a_stale_state_file_from_a_killed_stack_is_no_stack(tmp_path: Path) -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path = tmp_path / "stack.json"
    write_state(local_state(pid=int(finished.stdout)), path)
    with pytest.raises(TargetError, match=r"is gone"):
        resolve(True, "", environ=environ_for(path))


def test_a_resource_the_local_stack_does_not_name_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "stack.json"
    write_state(local_state(tables={}, function_urls={}), path)
    found = resolve(True, "", environ=environ_for(path))
    with pytest.raises(TargetError, match=r"names no SPENT_LINKS_TABLE_NAME: restart it with `make run`"):
        found.resource("SPENT_LINKS_TABLE_NAME")
    with pytest.raises(TargetError, match=r"no function URL for happyfox"):
        found.function_url("happyfox")


# --- a deployed stack -------------------------------------------------------------------------------------


def test_deployed_stack_is_read_from_its_outputs_and_parameters(aws: Any) -> None:
    # Given a deployed stack with a 3-day link cap
    create_bridge_stack(link_max_ttl=3 * 86400)

    # When a command resolves it
    found = resolve(False, STACK)

    # Then every vendor's function URL, every resource and the cap come from the stack itself
    assert not found.local
    assert found.where == f"stack {STACK} in eu-west-1"
    assert {vendor: found.function_url(vendor) for vendor in FUNCTION_URLS} == FUNCTION_URLS
    assert found.resource("JTI_TABLE_NAME") == JTI_TABLE_NAME
    assert found.resource("SPENT_LINKS_TABLE_NAME") == SPENT_LINKS_TABLE_NAME
    assert found.resource("LINK_REVOCATIONS_TABLE_NAME") == LINK_REVOCATIONS_TABLE_NAME
    assert found.link_max_ttl == 3 * 86400
    # And parameters read as the functions' variables (template.yaml's !Ref), so commands check like them
    assert found.setting("CLICKFUNNELS_WORKSPACE_DOMAIN") == WORKSPACE
    assert found.setting("KUSTOMER_PORTAL_URL") == f"https://{KUSTOMER_HOST}/login"
    assert found.setting("HAPPYFOX_ACCOUNT_URL") is None  # not a parameter of this stack: unknown
    # And the login-token key is the secret the output names
    assert found.login_token_key() == LOGIN_TOKEN_KEY
    assert found.endpoint_url is None


def test_a_stack_without_the_link_cap_parameter_has_the_default(aws: Any) -> None:
    create_bridge_stack()
    assert resolve(False, STACK).link_max_ttl == 604800


def test_unknown_stack_is_one_line_naming_it_and_the_region(aws: Any) -> None:
    with pytest.raises(TargetError) as caught:
        resolve(False, "no-such-stack")
    assert str(caught.value) == "stack no-such-stack not found in eu-west-1: pass --stack-name (or set STACK_NAME)"


@pytest.mark.parametrize("output", sorted(OUTPUTS.values()))
def test_a_missing_output_says_which_and_what_to_do(aws: Any, output: str) -> None:
    # Given a stack deployed from an older template, without one of the outputs
    create_bridge_stack(drop_outputs=(output,))
    found = resolve(False, STACK)
    variable = next(variable for variable, name in OUTPUTS.items() if name == output)

    with pytest.raises(TargetError) as caught:
        found.resource(variable)
    assert str(caught.value) == f"stack {STACK} in eu-west-1 has no output {output}: deploy the current template.yaml"


def test_a_missing_function_url_output_names_it(aws: Any) -> None:
    create_bridge_stack(drop_outputs=("KustomerFunctionUrl",))
    with pytest.raises(TargetError, match=r"has no output KustomerFunctionUrl"):
        resolve(False, STACK).function_url("kustomer")


def test_an_unreadable_key_is_a_target_error(aws: Any) -> None:
    create_bridge_stack()
    aws.delete_secret(SecretId=SECRET_IDS["login"], ForceDeleteWithoutRecovery=True)
    with pytest.raises(TargetError, match=r"^cannot read the login-token key from stack .*ResourceNotFoundException"):
        resolve(False, STACK).login_token_key()


def test_no_credentials_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(TargetError, match=r"^no AWS credentials: "):
        resolve(False, STACK)


def test_no_region_is_one_clear_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(TargetError, match=r"^no AWS region"):
        resolve(False, STACK)


@pytest.mark.parametrize("name", ["sso-bridge", "S1", "a" * 128])
def test_stack_names_cloudformation_accepts(name: str) -> None:
    assert target.stack_name(name) == name


@pytest.mark.parametrize("name", ["", "1stack", "my_stack", "a b", "$(touch x)", "a" * 129, "stack\n"])
def test_stack_names_cloudformation_refuses_are_usage_errors(name: str) -> None:
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        target.stack_name(name)
