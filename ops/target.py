"""Where the bridge is: the one answer every operator command shares (``make link``, ``revoke``, ``audit``).

Two places only. The local stack (``--local``) is found through the state file ``make run`` writes, with
moto's endpoint and dummy credentials, so a local command can never reach AWS by accident. A deployed
stack is found by its CloudFormation outputs and parameters, with the usual boto3 chain: resource names
are never typed by hand, because a link minted with the wrong key or against the wrong function URL fails
only when the recipient clicks it, days later.

Nothing here calls AWS before ``resolve``; failures become ``TargetError``, one line without a traceback,
which commands turn into exit status 3 ("cannot reach the bridge's resources"). Bad arguments are the
commands' own usage errors (status 2).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from local.state import NoLocalStack, read_state
from local.template import functions, load_template
from sso_bridge.settings import LINK_TTL_DEFAULT, LINK_TTL_MAX

if TYPE_CHECKING:
    from mypy_boto3_cloudformation.client import CloudFormationClient
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_secretsmanager.client import SecretsManagerClient

__all__ = [
    "DEFAULT_STACK_NAME",
    "EXIT_TARGET",
    "EXIT_USAGE",
    "OUTPUTS",
    "Target",
    "TargetError",
    "add_target_arguments",
    "aws_errors",
    "resolve",
    "stack_name",
    "vendor_outputs",
    "vendor_secrets",
    "vendors",
]

EXIT_USAGE = 2  # argparse's status for bad arguments
EXIT_TARGET = 3  # the bridge's resources cannot be found or read
DEFAULT_STACK_NAME = "sso-bridge"
# Function variable (the key the local state file uses too) -> the stack output naming the same resource.
OUTPUTS = {
    "LOGIN_TOKEN_SECRET_ID": "LoginTokenSecretArn",
    "JTI_TABLE_NAME": "JtiTableName",
    "SPENT_LINKS_TABLE_NAME": "SpentLinksTableName",
    "LINK_REVOCATIONS_TABLE_NAME": "LinkRevocationsTableName",
}
LINK_TTL_SETTING = "LINK_TOKEN_MAX_TTL"
# CloudFormation's rule for stack names; anything else is a typo, refused before any call.
_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$", re.ASCII)
# moto answers at once or not at all; AWS gets the standard retries.
_LOCAL_CONFIG = Config(connect_timeout=2, read_timeout=30, retries={"mode": "standard", "max_attempts": 2})
_AWS_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 5})
# Stacks CloudFormation lists without outputs (never created, or going away): without this, every vendor would look
# switched off and every output missing.
_FAILED_CREATE = "its first create failed: read its events (describe-stack-events), delete it, deploy again"
_NOT_CREATED = {
    "REVIEW_IN_PROGRESS": "its change set was never executed: deploy again (`make deploy`) and confirm the change set",
    "CREATE_IN_PROGRESS": "it is still being created: wait for CREATE_COMPLETE",
    "CREATE_FAILED": _FAILED_CREATE,
    "ROLLBACK_IN_PROGRESS": _FAILED_CREATE,
    "ROLLBACK_FAILED": _FAILED_CREATE,
    "ROLLBACK_COMPLETE": _FAILED_CREATE,
    "DELETE_IN_PROGRESS": "it is being deleted",
    "DELETE_FAILED": "it was partly deleted: delete it again, then deploy",
}


class TargetError(Exception):
    """The bridge's resources cannot be found or read; the message is one line an operator can act on."""

    exit_status = EXIT_TARGET


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def vendors() -> list[str]:
    """Vendors with a function URL, in template order: the ones email links can point at."""
    return list(vendor_outputs())


def vendor_outputs(template: dict[str, object] | None = None) -> dict[str, str]:
    """Vendor (last part of ``CodeUri``) -> the stack output holding its function URL (logical id + ``Url``)."""
    return {Path(spec.code_uri).name: f"{spec.logical_id}Url" for spec in functions(template) if spec.function_url}


def vendor_secrets(template: dict[str, Any] | None = None) -> dict[str, tuple[str, str]]:
    """Vendor -> (the function variable naming its vendor key's secret, the stack output with its ARN).

    The variable is the vendor function's own ``*_SECRET_ID`` that ``!Ref``s a secret (``CLICKFUNNELS_SECRET_ID:
    !Ref ClickFunnelsSecret``); the output is that secret's logical id + ``Arn`` (``ClickFunnelsSecretArn``).
    """
    template = template or load_template()
    resources = template.get("Resources", {})
    shared = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    found: dict[str, tuple[str, str]] = {}
    for spec in functions(template):
        for variable, value in spec.environment.items():
            secret = value.get("Ref") if isinstance(value, dict) else None
            if variable in shared or not variable.endswith("_SECRET_ID") or not isinstance(secret, str):
                continue
            if resources.get(secret, {}).get("Type") == "AWS::SecretsManager::Secret":
                found.setdefault(Path(spec.code_uri).name, (variable, f"{secret}Arn"))
    return found


@dataclass(frozen=True)
class Target:
    """A bridge's resources and a boto3 session aimed at them; ``where`` names it in messages."""

    where: str
    local: bool
    session: boto3.session.Session
    endpoint_url: str | None
    function_urls: Mapping[str, str]  # vendor -> function URL (ends with /); only the vendors this bridge has
    resources: Mapping[str, str]  # function variable (JTI_TABLE_NAME, ...) -> name or ARN
    settings: Mapping[str, str] = field(default_factory=dict)  # function variable -> value, where known
    api_url: str = ""  # the HTTP API's public base URL (the custom domain when set), no trailing /
    vendor_origins: Mapping[str, str] = field(default_factory=dict)  # local stand-ins: vendor host -> origin

    @property
    def vendors(self) -> frozenset[str]:
        """The vendors this bridge serves (a deployment may switch some off)."""
        return frozenset(vendor for vendor, url in self.function_urls.items() if url.strip())

    @property
    def _config(self) -> Config:
        return _LOCAL_CONFIG if self.local else _AWS_CONFIG

    def dynamodb(self) -> DynamoDBClient:
        return self.session.client("dynamodb", endpoint_url=self.endpoint_url, config=self._config)

    def secretsmanager(self) -> SecretsManagerClient:
        return self.session.client("secretsmanager", endpoint_url=self.endpoint_url, config=self._config)

    def resource(self, variable: str) -> str:
        """The resource the functions know as ``variable``; ``TargetError`` saying what to redeploy if none."""
        value = self.resources.get(variable, "").strip()
        if value:
            return value
        if self.local:
            raise TargetError(f"{self.where} names no {variable}: restart it with `make run`")
        raise TargetError(f"{self.where} has no output {OUTPUTS[variable]}: deploy the current template.yaml")

    def function_url(self, vendor: str) -> str:
        url = self.function_urls.get(vendor, "").strip()
        if not url and self.local:
            raise TargetError(f"{self.where} has no function URL for {vendor}: restart it with `make run`")
        if not url:
            output = vendor_outputs().get(vendor, f"{vendor} function URL")
            raise TargetError(f"{self.where} has no output {output}: deploy the current template.yaml")
        return url if url.endswith("/") else url + "/"

    def vendor_secret_id(self, vendor: str) -> str:
        """The secret holding ``vendor``'s key (what the vendor verifies its tokens with)."""
        variable, output = vendor_secrets().get(vendor, (f"{vendor.upper()}_SECRET_ID", f"{vendor} secret"))
        value = self.resources.get(variable, "").strip()
        if value:
            return value
        if self.local:
            raise TargetError(f"{self.where} names no {variable}: restart it with `make run`")
        raise TargetError(f"{self.where} has no output {output}: deploy the current template.yaml")

    def setting(self, variable: str) -> str | None:
        """A function variable's value in this deployment, ``None`` when the target does not say."""
        return self.settings.get(variable)

    def seconds(self, variable: str, fallback: str | None = None) -> int | None:
        """A setting in seconds (``fallback`` when the target does not say), never negative; ``None`` when unset."""
        raw = (self.setting(variable) or fallback or "").strip()
        if not raw:
            return None
        try:
            return max(0, int(raw))
        except ValueError as exc:
            raise TargetError(f"{self.where}: {variable} is not a number of seconds") from exc

    @property
    def link_max_ttl(self) -> int:
        """The longest link lifetime this bridge accepts (its ``LINK_TOKEN_MAX_TTL``), never over 30 days."""
        value = self.seconds(LINK_TTL_SETTING)
        return LINK_TTL_DEFAULT if value is None else min(value, LINK_TTL_MAX)

    def login_token_key(self) -> str:
        """The current login-token key (``AWSCURRENT``): what the bridge verifies links with first."""
        secret_id = self.resource("LOGIN_TOKEN_SECRET_ID")
        with aws_errors(f"cannot read the login-token key from {self.where}"):
            value = self.secretsmanager().get_secret_value(SecretId=secret_id).get("SecretString")
        if not value:
            raise TargetError(f"the login-token secret of {self.where} holds no text key")
        return value


@contextlib.contextmanager
def aws_errors(what: str) -> Iterator[None]:
    """Turn an SDK failure into one ``TargetError`` line: what failed and the service's own short reason."""
    try:
        yield
    except NoCredentialsError as exc:
        raise TargetError(
            f"{what}: no AWS credentials (set AWS_PROFILE or run `aws configure`; --local for make run)"
        ) from exc
    except NoRegionError as exc:
        raise TargetError(f"{what}: no AWS region (set AWS_REGION)") from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "error"), error.get("Message", "")
        raise TargetError(_one_line(f"{what}: {code}: {message}" if message else f"{what}: {code}")) from exc
    except BotoCoreError as exc:
        raise TargetError(_one_line(f"{what}: {exc}")) from exc


def stack_name(value: str) -> str:
    """argparse type: a CloudFormation stack name, refused as a usage error before any AWS call."""
    if not _STACK_NAME.fullmatch(value):
        raise argparse.ArgumentTypeError("a stack name is letters, digits and -, starting with a letter")
    return value


def add_target_arguments(parser: argparse.ArgumentParser, *, default_stack: str | None = None) -> None:
    """``--local`` and ``--stack-name`` (default ``STACK_NAME``, else ``default_stack``)."""
    default = os.environ.get("STACK_NAME", "").strip() or default_stack
    parser.add_argument(
        "--local", action="store_true", help="the running local stack (make run) instead of a deployed one"
    )
    parser.add_argument(
        "--stack-name",
        type=stack_name,
        default=default,
        metavar="NAME",
        help="the deployed CloudFormation stack (default: $STACK_NAME, else %(default)s)",
    )


def resolve(local: bool, stack_name: str, *, environ: Mapping[str, str] | None = None) -> Target:
    """The local stack from its state file, else the CloudFormation stack ``stack_name``."""
    return _resolve_local(environ) if local else _resolve_stack(stack_name)


def _resolve_local(environ: Mapping[str, str] | None) -> Target:
    try:
        state = read_state(environ)
    except NoLocalStack as exc:
        raise TargetError(_one_line(exc)) from exc
    environment = state.aws_environment()
    session = boto3.session.Session(
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=environment["AWS_SESSION_TOKEN"],
        region_name=state.region,
    )
    return Target(
        where=f"the local stack at {state.api_url}",
        local=True,
        session=session,
        endpoint_url=environment["AWS_ENDPOINT_URL"],
        function_urls=dict(state.function_urls),
        resources={**state.secret_ids, **state.tables},
        settings=dict(state.settings),
        api_url=state.api_url.rstrip("/"),
        vendor_origins=dict(state.vendor_origins),
    )


def _resolve_stack(name: str) -> Target:
    session = boto3.session.Session()
    region = session.region_name
    if not region:
        raise TargetError("no AWS region: set AWS_REGION (or a profile with a region), or pass --local")
    if session.get_credentials() is None:
        raise TargetError("no AWS credentials: set AWS_PROFILE or run `aws configure` (or pass --local for make run)")
    cloudformation: CloudFormationClient = session.client("cloudformation", config=_AWS_CONFIG)
    where = f"stack {name} in {region}"
    try:
        with aws_errors(f"cannot read {where}"):
            stacks = cloudformation.describe_stacks(StackName=name).get("Stacks", [])
    except TargetError as exc:
        cause = exc.__cause__
        if isinstance(cause, ClientError) and "does not exist" in str(cause):
            raise TargetError(f"stack {name} not found in {region}: pass --stack-name (or set STACK_NAME)") from cause
        raise
    if not stacks:
        raise TargetError(f"stack {name} not found in {region}: pass --stack-name (or set STACK_NAME)")
    stack = stacks[0]
    status = stack.get("StackStatus", "")
    if status in _NOT_CREATED:
        raise TargetError(f"{where} is {status}: {_NOT_CREATED[status]}")
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", []) if "OutputKey" in o}
    parameters = {
        p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", []) if "ParameterKey" in p
    }
    template = load_template()
    return Target(
        where=where,
        local=False,
        session=session,
        endpoint_url=None,
        function_urls={
            vendor: outputs[output] for vendor, output in vendor_outputs(template).items() if output in outputs
        },
        resources={
            variable: outputs[output]
            for variable, output in [*OUTPUTS.items(), *vendor_secrets(template).values()]
            if output in outputs
        },
        settings=_settings(template, parameters, outputs),
        api_url=outputs.get("ApiUrl", "").strip().rstrip("/"),
    )


def _settings(
    template: dict[str, object], parameters: Mapping[str, str], outputs: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Function variables set from the stack's parameters (``VAR: !Ref Param``), as the functions see them, and
    ``OIDC_ISSUER`` when OpenID Connect is on: the ``OidcIssuerUrl`` output, else the parameter, else Cognito's."""
    settings: dict[str, str] = {}
    outputs = outputs or {}
    issuer = next(
        (
            value.strip()
            for value in (outputs.get("OidcIssuerUrl"), parameters.get("OidcIssuer"), outputs.get("CognitoIssuer"))
            if value and value.strip()
        ),
        "",
    )
    if issuer:
        settings["OIDC_ISSUER"] = issuer
    for spec in functions(template):
        for variable, value in spec.environment.items():
            if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in parameters:
                settings.setdefault(variable, parameters[value["Ref"]])
    return settings
