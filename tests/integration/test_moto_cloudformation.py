"""A deployed stack as the operator commands find it: SAM's translation of template.yaml created by moto's
CloudFormation, then ``ops.target``'s discovery (DescribeStacks outputs and parameters) run against it.

moto 5.2.5 cannot create the translation as it stands. Its CloudFormation has no model for
``AWS::Lambda::Url``, ``AWS::SecretsManager::Secret``, ``AWS::ApiGatewayV2::Api``/``Stage``/``DomainName``/
``ApiMapping``, ``AWS::CloudWatch::Alarm``, ``AWS::Cognito::*``, ``AWS::SNS::Subscription``, ``AWS::WAFv2::WebACL``
or ``AWS::CloudFront::Distribution``: it skips them with a warning, a ``Ref`` to one silently becomes nothing (a
function would lose ``LOGIN_TOKEN_SECRET_ID``) and an output's ``Fn::GetAtt`` on one crashes CreateStack
(``AttributeError: 'NoneType' object has no attribute 'has_cfn_attr'``). It leaves ``!Ref AWS::NoValue`` in a list as
``None`` (``Layers``, an ``Fn::If`` in a role's ``Policies``: ``TypeError: 'NoneType' object is not subscriptable``),
and it does not check the template's ``Rules``. So the stack made here is, and says which parts are which:

- the translation with the deployment's Rules checked and Conditions applied by ``ops.sam_translation.Deployment``;
- the three unmodelled types discovery reads (the login-token and vendor secrets, the function URLs, the HTTP API)
  made by small stand-ins through moto's own service APIs (CreateSecret with GetRandomPassword,
  CreateFunctionUrlConfig, CreateApi + ReimportApi), so every ``Ref``/``Fn::GetAtt`` on them is a real moto
  resource the functions and the commands then read;
- every other unmodelled resource removed, with whatever references it (``Deployed.removed``): the alarms, and the
  dashboard that shows them; the API's stage; with a custom domain its ``DomainName`` and ``ApiMapping`` (moto's
  API Gateway stores a domain but does not make the regional name AWS generates) and the DNS-target outputs.

Every other type (functions, layers, roles, permissions, tables, log groups) is moto's own model. Where moto's
answers differ from AWS's, the tests say so: its FunctionUrl lacks AWS's trailing "/" (the stand-in adds it) and
it imports the ``$default`` catch-all route as "X-AMAZON-APIGATEWAY-ANY-METHOD $default". Nothing here opens a
socket.
"""

from __future__ import annotations

import copy
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar, Final
from urllib.parse import parse_qs, urlsplit

import boto3
import jwt
import pytest
from moto import mock_aws
from moto.cloudformation import parsing
from moto.cloudformation.models import cloudformation_backends
from moto.core.models import DEFAULT_ACCOUNT_ID as ACCOUNT
from pytest_socket import disable_socket, enable_socket

from local import template as local_template
from local.template import functions, load_template
from ops import link, smoke, vendor_template
from ops import target as discovery
from ops.sam_translation import Deployment, dangling_references, references, sam_template, translate
from tests.unit.test_template_deploy import EVERY_VENDOR, PORTALS

REGION: Final = "eu-west-1"
CODE_BUCKET = "bucket"  # where ops.sam_translation.translate points CodeUri/ContentUri (s3://bucket/<folder>)
# What a company gives `sam deploy --guided` (not the template's placeholders): each portal's settings (used
# when it is switched on); only those template.yaml has.
GIVEN = {"PlatformLoginUrl": "https://app.acme.test/sso/login", **PORTALS}
DOMAIN = {"DomainName": "sso.acme.test", "CertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b-2c3d"}
MOTO_MODELS = dict(parsing.get_model_map())  # moto's own CloudFormation models, before the stand-ins


# --- stand-ins: the unmodelled types discovery reads, made through moto's service APIs ---------------------------


class _StandIn:
    """A resource moto's CloudFormation has no model for, made through the service's API in moto.

    moto calls ``create_from_cloudformation_json`` with Ref, GetAtt and Sub already resolved, answers ``Ref`` with
    ``physical_resource_id`` and ``Fn::GetAtt`` with ``get_cfn_attribute``. A property a stand-in does not model
    fails the create by name, so a template change is never silently dropped here.
    """

    type_name: ClassVar[str]
    modelled: ClassVar[frozenset[str]]
    attributes: ClassVar[frozenset[str]]

    def __init__(self, physical_resource_id: str, attributes: dict[str, str]) -> None:
        self.physical_resource_id = physical_resource_id
        self._attributes = attributes

    @classmethod
    def has_cfn_attr(cls, attribute: str) -> bool:
        return attribute in cls.attributes

    def get_cfn_attribute(self, attribute: str) -> str:
        return self._attributes[attribute]

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **_: Any
    ) -> _StandIn:
        properties = cloudformation_json.get("Properties", {})
        unknown = sorted(set(properties) - cls.modelled)
        if unknown:
            raise NotImplementedError(f"the {cls.type_name} stand-in does not model {', '.join(unknown)}")
        return cls.create(resource_name, properties, region_name)

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], region: str) -> _StandIn:
        raise NotImplementedError


class _Secret(_StandIn):
    type_name = "AWS::SecretsManager::Secret"
    modelled = frozenset({"Name", "Description", "SecretString", "GenerateSecretString", "KmsKeyId", "Tags"})
    attributes = frozenset({"Id"})
    # GenerateSecretString's fields that are GetRandomPassword's parameters, as CloudFormation passes them on.
    _PASSWORD = frozenset(
        {
            "PasswordLength",
            "ExcludeCharacters",
            "ExcludeNumbers",
            "ExcludePunctuation",
            "ExcludeUppercase",
            "ExcludeLowercase",
            "IncludeSpace",
            "RequireEachIncludedType",
        }
    )

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], region: str) -> _StandIn:
        client = boto3.client("secretsmanager", region_name=region)
        text: str = properties.get("SecretString", "")
        generate = properties.get("GenerateSecretString")
        if generate is not None:
            options = {key: value for key, value in generate.items() if key in cls._PASSWORD}
            if "PasswordLength" in options:
                options["PasswordLength"] = int(options["PasswordLength"])
            password = client.get_random_password(**options)["RandomPassword"]
            if "SecretStringTemplate" in generate:
                text = json.dumps(
                    {**json.loads(generate["SecretStringTemplate"]), generate["GenerateStringKey"]: password}
                )
            else:
                text = password
        extra = {key: properties[key] for key in ("Description", "KmsKeyId", "Tags") if key in properties}
        arn = client.create_secret(Name=properties.get("Name", name), SecretString=text, **extra)["ARN"]
        return cls(arn, {"Id": arn})


class _FunctionUrl(_StandIn):
    type_name = "AWS::Lambda::Url"
    modelled = frozenset({"TargetFunctionArn", "AuthType", "Cors", "InvokeMode"})
    attributes = frozenset({"FunctionArn", "FunctionUrl"})

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], region: str) -> _StandIn:
        client = boto3.client("lambda", region_name=region)
        config = client.create_function_url_config(
            FunctionName=properties["TargetFunctionArn"],
            **{key: properties[key] for key in ("AuthType", "Cors", "InvokeMode") if key in properties},
        )
        # AWS's FunctionUrl ends with "/" (https://<id>.lambda-url.<region>.on.aws/); moto's does not.
        url = config["FunctionUrl"] if config["FunctionUrl"].endswith("/") else config["FunctionUrl"] + "/"
        return cls(config["FunctionArn"], {"FunctionArn": config["FunctionArn"], "FunctionUrl": url})


class _HttpApi(_StandIn):
    type_name = "AWS::ApiGatewayV2::Api"
    modelled = frozenset({"Body", "DisableExecuteApiEndpoint"})
    attributes = frozenset({"ApiId", "ApiEndpoint"})

    @classmethod
    def create(cls, name: str, properties: dict[str, Any], region: str) -> _StandIn:
        client = boto3.client("apigatewayv2", region_name=region)
        body = properties["Body"]
        extra = {}
        if "DisableExecuteApiEndpoint" in properties:
            extra["DisableExecuteApiEndpoint"] = str(properties["DisableExecuteApiEndpoint"]).lower() == "true"
        api = client.create_api(Name=body["info"]["title"], ProtocolType="HTTP", **extra)
        client.reimport_api(ApiId=api["ApiId"], Body=json.dumps(body))  # ImportApi itself is not in moto
        return cls(api["ApiId"], {"ApiId": api["ApiId"], "ApiEndpoint": api["ApiEndpoint"]})


STAND_INS: dict[str, type[_StandIn]] = {model.type_name: model for model in (_Secret, _FunctionUrl, _HttpApi)}


# --- one moto account for the module, one stack per deployment -----------------------------------------------------


@cache
def _template_yaml() -> dict[str, Any]:
    return load_template()


def _cached_template(path: Any = None) -> dict[str, Any]:
    """template.yaml parsed once: ops.target parses it on each lookup (~0.25 s here), the file does not change."""
    return copy.deepcopy(_template_yaml()) if path is None else load_template(path)


@cache
def _sam_template() -> dict[str, Any]:
    return sam_template()


@pytest.fixture(scope="module", autouse=True)
def moto_account() -> Iterator[None]:
    """In-process moto with the stand-ins registered, no socket, no profile, the test region; shared by the module's
    stacks (each has its own name, as two stacks in one account do)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION", "STACK_NAME"):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        models = {**MOTO_MODELS, **STAND_INS}
        patch.setattr(parsing, "get_model_map", lambda: models)
        for module in (local_template, discovery, vendor_template):
            patch.setattr(module, "load_template", _cached_template)
        disable_socket(allow_unix_socket=True)
        try:
            with mock_aws():
                boto3.client("s3", region_name=REGION).create_bucket(
                    Bucket=CODE_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
                )
                yield
        finally:
            enable_socket()


@dataclass(frozen=True)
class Deployed:
    """One stack in moto: what was given, what CloudFormation would create, and what moto was given instead."""

    stack_name: str
    given: dict[str, str]
    resolved: dict[str, Any]  # the translation as this deployment creates it (Rules passed, Conditions applied)
    created: dict[str, Any]  # what moto was given: ``resolved`` minus ``removed``
    removed: dict[str, str]  # logical id -> type: unmodelled, or referencing something unmodelled
    removed_outputs: frozenset[str]

    def vendors(self) -> set[str]:
        """The vendors whose function this deployment creates."""
        kept = self.resolved["Resources"]
        return {vendor for vendor, output in discovery.vendor_outputs().items() if output.removesuffix("Url") in kept}

    def outputs_read_by_discovery(self) -> set[str]:
        """The outputs ``ops.target`` reads that this deployment has."""
        read = {*discovery.OUTPUTS.values(), *discovery.vendor_outputs().values(), "ApiUrl"}
        return read & set(self.resolved["Outputs"])

    def find(self) -> discovery.Target:
        """What every operator command does first (``--stack-name``)."""
        return discovery.resolve(local=False, stack_name=self.stack_name)

    def stack(self) -> dict[str, Any]:
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        return dict(cloudformation.describe_stacks(StackName=self.stack_name)["Stacks"][0])

    def physical_ids(self, kind: str | None = None) -> dict[str, str]:
        """Logical id -> physical id of the stack's resources (of type ``kind``), as CloudFormation lists them."""
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        summaries = cloudformation.list_stack_resources(StackName=self.stack_name)["StackResourceSummaries"]
        return {
            summary["LogicalResourceId"]: summary.get("PhysicalResourceId", "")
            for summary in summaries
            if kind is None or summary["ResourceType"] == kind
        }

    def route_keys(self) -> set[str]:
        """The HTTP API's routes as moto's API Gateway holds them; the catch-all is "$default" in AWS and
        "X-AMAZON-APIGATEWAY-ANY-METHOD $default" as moto imports it, both left out."""
        client = boto3.client("apigatewayv2", region_name=REGION)
        routes = client.get_routes(ApiId=self.physical_ids()["HttpApi"])["Items"]
        return {route["RouteKey"] for route in routes if not route["RouteKey"].endswith("$default")}

    def template_route_keys(self) -> set[str]:
        """The HTTP API routes of the functions this deployment creates (``GET /happyfox/login``)."""
        kept = self.resolved["Resources"]
        return {f"{r.method} {r.path}" for spec in functions() if spec.logical_id in kept for r in spec.routes}


@cache
def _translation(given: frozenset[tuple[str, str]]) -> dict[str, Any]:
    return translate(_sam_template(), dict(given))


def _named(body: dict[str, Any]) -> set[str]:
    depends = body.get("DependsOn", [])
    return {*references(body), *([depends] if isinstance(depends, str) else depends)}


def _without_unmodelled(resolved: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str], frozenset[str]]:
    """``resolved`` minus what moto cannot make (no model, no stand-in) and, transitively, whatever references it."""
    resources = resolved["Resources"]
    modelled = {**MOTO_MODELS, **STAND_INS}
    removed = {name for name, body in resources.items() if body["Type"] not in modelled}
    while more := {name for name, body in resources.items() if name not in removed and _named(body) & removed}:
        removed |= more
    removed_outputs = frozenset(name for name, body in resolved["Outputs"].items() if _named(body) & removed)
    created = copy.deepcopy(resolved)
    created["Resources"] = {name: body for name, body in resources.items() if name not in removed}
    created["Outputs"] = {name: body for name, body in resolved["Outputs"].items() if name not in removed_outputs}
    return created, {name: resources[name]["Type"] for name in sorted(removed)}, removed_outputs


def _code_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def lambda_handler(event, context):\n    return None\n")
    return buffer.getvalue()


def _upload_code(template: dict[str, Any]) -> None:
    """What `sam deploy` uploads: a small zip under each function's and layer's S3 key."""
    s3 = boto3.client("s3", region_name=REGION)
    for body in template["Resources"].values():
        properties = body.get("Properties", {})
        code = properties.get("Code") or properties.get("Content") or {}
        if code.get("S3Bucket") == CODE_BUCKET:
            s3.put_object(Bucket=CODE_BUCKET, Key=code["S3Key"], Body=_code_zip())


def deploy(stack_name: str, **parameters: str) -> Deployed:
    """Create ``stack_name`` in moto with GIVEN and ``parameters``, as `sam deploy` would (see the module's note)."""
    template = _sam_template()
    given = {name: value for name, value in {**GIVEN, **parameters}.items() if name in template["Parameters"]}
    deployment = Deployment(_translation(frozenset(given.items())), given, region=REGION, stack_name=stack_name)
    assert deployment.missing() == [], f"parameters without a default: {deployment.missing()}"
    assert deployment.refusals() == [], f"the template's Rules refuse {given}: {deployment.refusals()}"
    resolved = deployment.resolve()
    created, removed, removed_outputs = _without_unmodelled(resolved)
    assert dangling_references(created) == []
    _upload_code(created)
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(created),
        Parameters=[{"ParameterKey": name, "ParameterValue": value} for name, value in given.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    return Deployed(stack_name, given, resolved, created, removed, removed_outputs)


def _needs_parameter(name: str, item: str) -> None:
    if name not in _sam_template()["Parameters"]:
        pytest.skip(f"template.yaml has no {name} parameter yet (issue 16, {item})")


@pytest.fixture(scope="module")
def every_vendor() -> Deployed:
    return deploy("sso-bridge", **EVERY_VENDOR)


@pytest.fixture(scope="module")
def without_happyfox() -> Deployed:
    """The default portals (issue 18's are off by default) but HappyFox."""
    _needs_parameter("EnableHappyFox", "item 5")
    return deploy("sso-bridge-no-happyfox", EnableHappyFox="false")


@pytest.fixture(scope="module")
def on_a_domain() -> Deployed:
    _needs_parameter("DomainName", "item 6")
    return deploy("sso-bridge-domain", **DOMAIN)


# --- the tests -----------------------------------------------------------------------------------------------------


def test_the_stack_creates_with_every_output_discovery_reads(every_vendor: Deployed) -> None:
    stack = every_vendor.stack()

    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert set(every_vendor.physical_ids()) == set(every_vendor.created["Resources"])
    # The template has every output discovery reads, and none of them hangs on what moto could not make.
    assert {*discovery.OUTPUTS.values(), "ApiUrl"} <= set(every_vendor.resolved["Outputs"])
    assert every_vendor.outputs_read_by_discovery().isdisjoint(every_vendor.removed_outputs)
    outputs = {output["OutputKey"]: output.get("OutputValue", "") for output in stack["Outputs"]}
    assert set(outputs) == set(every_vendor.created["Outputs"])
    assert all(outputs[name] for name in every_vendor.outputs_read_by_discovery())
    assert set(every_vendor.removed.values()).isdisjoint(STAND_INS)
    print("left out:", every_vendor.removed, "outputs:", sorted(every_vendor.removed_outputs))  # pytest -rA


def test_discovery_finds_the_function_urls_and_what_each_function_reads(every_vendor: Deployed) -> None:
    found = every_vendor.find()
    physical = every_vendor.physical_ids()
    lambda_ = boto3.client("lambda", region_name=REGION)

    assert found.where == f"stack sso-bridge in {REGION}"
    assert found.vendors == every_vendor.vendors() == set(discovery.vendor_outputs())
    for vendor, output in discovery.vendor_outputs().items():
        function = physical[output.removesuffix("Url")]
        url = lambda_.get_function_url_config(FunctionName=function)["FunctionUrl"]
        assert found.function_url(vendor) == url.rstrip("/") + "/"
        assert (urlsplit(found.function_url(vendor)).hostname or "").endswith(f".lambda-url.{REGION}.on.aws")
        # The function behind the URL reads the same key, tables, vendor secret and settings discovery found.
        environment = lambda_.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
        for variable, resource in found.resources.items():
            assert environment.get(variable, resource) == resource, (vendor, variable)
        for variable, value in found.settings.items():
            assert environment.get(variable, value) == value, (vendor, variable)
        assert environment["LOGIN_TOKEN_SECRET_ID"] == found.resource("LOGIN_TOKEN_SECRET_ID")
    assert found.settings["PLATFORM_LOGIN_URL"] == GIVEN["PlatformLoginUrl"]
    assert found.link_max_ttl == int(every_vendor.resolved["Parameters"]["LinkTokenMaxTtl"]["Default"])


def test_discovery_finds_the_tables_and_the_login_token_key(every_vendor: Deployed) -> None:
    found = every_vendor.find()

    assert set(discovery.OUTPUTS) <= set(found.resources)
    tables = set(every_vendor.physical_ids("AWS::DynamoDB::Table").values())
    dynamodb = found.dynamodb()
    for variable in ("JTI_TABLE_NAME", "SPENT_LINKS_TABLE_NAME", "LINK_REVOCATIONS_TABLE_NAME"):
        assert found.resource(variable) in tables
        assert dynamodb.describe_table(TableName=found.resource(variable))["Table"]["TableStatus"] == "ACTIVE"
    # The key Secrets Manager generated at create, as long as the template asks.
    secret = every_vendor.resolved["Outputs"][discovery.OUTPUTS["LOGIN_TOKEN_SECRET_ID"]]["Value"]["Ref"]
    generate = every_vendor.resolved["Resources"][secret]["Properties"]["GenerateSecretString"]
    assert found.resource("LOGIN_TOKEN_SECRET_ID") == every_vendor.physical_ids()[secret]
    assert len(found.login_token_key()) == int(generate["PasswordLength"]) >= 32


def test_discovery_finds_the_http_api_and_its_routes(every_vendor: Deployed) -> None:
    found = every_vendor.find()
    api = boto3.client("apigatewayv2", region_name=REGION).get_api(ApiId=every_vendor.physical_ids()["HttpApi"])

    assert found.api_url == api["ApiEndpoint"] == f"https://{api['ApiId']}.execute-api.{REGION}.amazonaws.com"
    assert every_vendor.route_keys() == every_vendor.template_route_keys()


def test_make_link_mints_with_the_stacks_key_on_its_function_url(
    every_vendor: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    found = every_vendor.find()
    status = link.main(["--provider", "clickfunnels", "--email", "jane@acme.test", "--stack-name", "sso-bridge"])
    out, err = capsys.readouterr()

    assert status == 0, err
    url = out.strip()
    assert url.startswith(found.function_url("clickfunnels") + "?")
    [token] = parse_qs(urlsplit(url).query)["login_token"]
    claims = jwt.decode(token, found.login_token_key(), algorithms=["HS256"], audience="clickfunnels")
    assert claims["email"] == "jane@acme.test"


def test_a_switched_off_vendor_is_not_found(without_happyfox: Deployed) -> None:
    found = without_happyfox.find()

    assert without_happyfox.vendors() == {"clickfunnels", "kustomer"}
    assert found.vendors == without_happyfox.vendors()
    with pytest.raises(discovery.TargetError, match="HappyFoxFunctionUrl"):
        found.function_url("happyfox")
    assert len(without_happyfox.physical_ids("AWS::Lambda::Function")) == len(without_happyfox.vendors())
    assert "JTI_TABLE_NAME" not in found.resources  # the audit table goes with HappyFox when Zendesk is off too
    assert without_happyfox.route_keys() == without_happyfox.template_route_keys()
    assert not [key for key in without_happyfox.route_keys() if "/happyfox/" in key]


def test_the_audit_table_stays_for_zendesk_without_happyfox() -> None:
    zendesk = deploy("sso-bridge-zendesk", EnableHappyFox="false", EnableZendesk="true")
    found = zendesk.find()

    assert found.vendors == zendesk.vendors() == {"clickfunnels", "kustomer", "zendesk"}
    tables = zendesk.physical_ids("AWS::DynamoDB::Table")
    assert found.resource("JTI_TABLE_NAME") == tables["JtiTable"]  # what `make audit` reads
    function = zendesk.physical_ids()["ZendeskFunction"]
    environment = boto3.client("lambda", region_name=REGION).get_function_configuration(FunctionName=function)
    assert environment["Environment"]["Variables"]["JTI_TABLE_NAME"] == tables["JtiTable"]


def test_make_link_refuses_a_switched_off_vendor(
    without_happyfox: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--provider", "happyfox", "--email", "jane@acme.test", "--stack-name", without_happyfox.stack_name]
    status = link.main(argv)
    out, err = capsys.readouterr()

    assert status == discovery.EXIT_USAGE
    assert out == ""
    assert "EnableHappyFox=false" in err
    assert err.count("\n") == 1


def test_with_a_custom_domain_the_api_url_is_the_domain(on_a_domain: Deployed) -> None:
    found = on_a_domain.find()

    assert found.api_url == f"https://{DOMAIN['DomainName']}"
    assert found.vendors == on_a_domain.vendors()
    # moto stores a custom domain but does not make the regional name AWS generates: left out, with its outputs.
    assert "AWS::ApiGatewayV2::DomainName" in on_a_domain.removed.values()


def test_smoke_finds_each_vendors_route_host_and_key_on_the_stack(every_vendor: Deployed) -> None:
    """`make smoke`'s lookups, no request made: the route it calls, the host it expects, the key it checks."""
    found = every_vendor.find()
    physical = every_vendor.physical_ids()
    lambda_ = boto3.client("lambda", region_name=REGION)
    secretsmanager = boto3.client("secretsmanager", region_name=REGION)
    # The host each probe expects the redirect to go to (issue 18's vendors' probes are their stand-ins' own,
    # StandInSpec.probe in local/vendors/, tested with them).
    hosts = {
        "clickfunnels": GIVEN["ClickFunnelsWorkspaceDomain"],
        "kustomer": GIVEN["KustomerRedirectHosts"],
        "happyfox": urlsplit(GIVEN["HappyFoxAccountUrl"]).hostname,
    }

    assert found.api_url
    assert found.vendors == set(discovery.vendor_outputs())
    for vendor in sorted(found.vendors):
        probe = smoke.probe_for(vendor, found.setting)
        assert f"GET {probe.route}" in every_vendor.route_keys(), vendor
        if vendor in hosts:
            assert probe.host == hosts[vendor], vendor
        function = physical[discovery.vendor_outputs()[vendor].removesuffix("Url")]
        environment = lambda_.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
        variable, _ = discovery.vendor_secrets()[vendor]
        secret_id = found.vendor_secret_id(vendor)
        assert secret_id == environment[variable]
        # Deployed, the vendor key is the template's placeholder: smoke names it and the command that sets it.
        problem = smoke.key_problem(found, vendor) or ""
        assert "placeholder" in problem
        assert f"put-secret-value --region {REGION} --secret-id {secret_id} " in problem
        secretsmanager.put_secret_value(SecretId=secret_id, SecretString=f"{vendor}-key-0123456789abcdef0123456789")
        assert smoke.key_problem(found, vendor) is None


def test_smoke_finds_no_key_for_a_switched_off_vendor(without_happyfox: Deployed) -> None:
    found = without_happyfox.find()

    with pytest.raises(discovery.TargetError, match="HappyFoxSecretArn"):
        found.vendor_secret_id("happyfox")
    for vendor in found.vendors:
        assert smoke.key_problem(found, vendor) is not None  # placeholders, read from the stack's own secrets


def test_discovery_names_a_stack_that_is_not_there() -> None:
    with pytest.raises(discovery.TargetError) as caught:
        discovery.resolve(local=False, stack_name="sso-bridge-elsewhere")
    assert (
        str(caught.value) == f"stack sso-bridge-elsewhere not found in {REGION}: pass --stack-name (or set STACK_NAME)"
    )


def _stack_without_outputs(name: str, status: str) -> None:
    """A stack CloudFormation lists but never finished creating: `sam deploy`'s change set not executed
    (REVIEW_IN_PROGRESS, as moto makes it), or a first create that failed and rolled back (moto never fails a create,
    so its status is set as AWS would leave it)."""
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}, "Outputs": {"ApiUrl": {"Value": {"Ref": "Topic"}}}}
    stack_id = cloudformation.create_change_set(
        StackName=name, ChangeSetName="samcli-deploy1", ChangeSetType="CREATE", TemplateBody=json.dumps(template)
    )["StackId"]
    if status != "REVIEW_IN_PROGRESS":
        cloudformation_backends[ACCOUNT][REGION].stacks[stack_id].status = status


@pytest.mark.parametrize(
    ("status", "advice"),
    [
        ("REVIEW_IN_PROGRESS", "its change set was never executed"),
        ("ROLLBACK_COMPLETE", "its first create failed"),
    ],
)
def test_a_stack_that_was_never_created_is_named_as_such(
    status: str, advice: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"sso-bridge-{status.lower().replace('_', '-')}"
    _stack_without_outputs(name, status)

    with pytest.raises(discovery.TargetError) as caught:
        discovery.resolve(local=False, stack_name=name)
    assert status in str(caught.value)
    assert advice in str(caught.value)
    # Not "deployed with EnableClickFunnels=false": a stack without outputs has no vendor switched off.
    assert link.main(["--provider", "clickfunnels", "--email", "jane@acme.test", "--stack-name", name]) == 3
    out, err = capsys.readouterr()
    assert out == ""
    assert status in err
    assert "Enable" not in err
