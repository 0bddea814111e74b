"""The first deploy, read as CloudFormation runs it: SAM's translation with a deployment's parameters, its Rules and
Conditions applied (``ops.sam_translation``). Linters read the template as written and see none of this: a
reservation a new account cannot grant, tables a failed create leaves behind, alarm queries outside Metrics Insights'
grammar, two stacks sharing metrics, a custom domain that URLs ignore.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import pytest

from ops.sam_translation import Deployment, dangling_references, sam_template, translate
from ops.vendor_template import VendorTemplate, vendor_templates

# Every vendor, from the template (its functions with a function URL), in the template's order.
VENDORS: tuple[VendorTemplate, ...] = tuple(vendor_templates().values())
# What a company must say for each portal it switches on (the template's rules refuse the portal without it;
# test_portals_gives_what_each_portals_rule_requires says which a new vendor needs here).
PORTALS = {
    "ClickFunnelsWorkspaceDomain": "acme.myclickfunnels.com",
    "KustomerRedirectHosts": "acme.kustomer.help",
    "HappyFoxAccountUrl": "https://acme.happyfox.com",
    "ZendeskAccountUrl": "https://acme.zendesk.com",
    "CannyCompanyId": "5f0c1a2b3c4d5e6f7a8b9c0d",
    "CannyRedirectHosts": "acme.canny.io",
    "DiscourseUrl": "https://community.acme.test",
    "FreshworksClientId": "100000000000000002",
    "FreshworksRedirectHosts": "acme.freshworks.com",
    "FreshworksPortalUrl": "https://acme.freshdesk.com/support/login",
}
PLATFORM = {"PlatformLoginUrl": "https://app.acme.test/sso/login", **PORTALS}
EVERY_VENDOR = {vendor.switch: "true" for vendor in VENDORS}
OIDC = {"OidcIssuer": "https://login.acme.test", "OidcClientId": "bridge"}
DOMAIN = {"DomainName": "sso.acme.test", "CertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b-2c3d"}
FUNCTIONS = tuple(vendor.logical_id for vendor in VENDORS)
# A default deployment: the portals switched on unless told otherwise (the first three; issue 18's are off).
DEFAULT_FUNCTIONS = ("ClickFunnelsFunction", "KustomerFunction", "HappyFoxFunction")


@cache
def _translated() -> dict[str, Any]:
    return translate(sam_template())


def deployed(**given: str) -> tuple[Deployment, dict[str, Any]]:
    """A deployment of the translated template with ``given`` over PLATFORM, as CloudFormation would create it."""
    deployment = Deployment(_translated(), {**PLATFORM, **given})
    assert deployment.refusals() == [], deployment.refusals()
    return deployment, deployment.resolve()


def _of_type(resolved: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: body for name, body in resolved["Resources"].items() if body["Type"] == kind}


def required_settings(template: dict[str, Any], vendor: VendorTemplate) -> set[str]:
    """The parameters the vendor's ``<Vendor>Settings`` rule requires (``!Not [!Equals [!Ref X, ""]]``) when its
    switch is on."""
    rule = template["Rules"][f"{vendor.stem}Settings"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": vendor.switch}, "true"]}, vendor.stem
    required = set()
    for assertion in rule["Assertions"]:
        [(function, [argument])] = assertion["Assert"].items()
        assert function == "Fn::Not", vendor.stem
        [parameter, empty] = argument["Fn::Equals"]
        assert empty == "", vendor.stem
        required.add(parameter["Ref"])
    return required


def test_portals_gives_what_each_portals_rule_requires() -> None:
    template = _translated()
    for vendor in VENDORS:
        given = {name for name in PORTALS if vendor.owns(name)}
        assert required_settings(template, vendor) == given, f"PORTALS: {vendor.stem}'s required settings"
        assert all(template["Parameters"][name]["Default"] == "" for name in given), vendor.stem
        assert all(vendor.owns(name) for name in required_settings(template, vendor)), vendor.stem
    # Each value is one CloudFormation takes.
    for name, value in PORTALS.items():
        spec = template["Parameters"][name]
        assert re.fullmatch(spec.get("AllowedPattern", ".*"), value), name


# 1. Reserved concurrency: none by default (a new account's low quota, and the 100 Lambda keeps unreserved).


def test_a_default_deployment_reserves_no_concurrency() -> None:
    _, resolved = deployed()
    functions = _of_type(resolved, "AWS::Lambda::Function")
    assert set(functions) == set(DEFAULT_FUNCTIONS)
    for name, function in functions.items():
        assert "ReservedConcurrentExecutions" not in function["Properties"], name


def test_a_reservation_applies_to_every_function_when_asked() -> None:
    _, resolved = deployed(FunctionReservedConcurrency="10", **EVERY_VENDOR)
    functions = _of_type(resolved, "AWS::Lambda::Function")
    assert set(functions) == set(FUNCTIONS)
    for name, function in functions.items():
        assert function["Properties"]["ReservedConcurrentExecutions"] == "10", name


def test_the_reservation_parameter_says_zero_is_none() -> None:
    spec = _translated()["Parameters"]["FunctionReservedConcurrency"]
    assert spec["Default"] == 0
    assert spec["MinValue"] == 0


# 2. A failed first create leaves nothing behind; later deletes keep the data.


def test_data_is_kept_on_delete_but_not_after_a_failed_first_create() -> None:
    _, resolved = deployed(CreateCognitoUserPool="true", **{"PlatformLoginUrl": ""})
    kept = {
        name: body for name, body in resolved["Resources"].items() if body.get("DeletionPolicy", "Delete") != "Delete"
    }
    assert set(kept) == {"SpentLinksTable", "LinkRevocationsTable", "JtiTable", "CognitoUserPool"}
    for name, body in kept.items():
        assert body["DeletionPolicy"] == "RetainExceptOnCreate", name
        assert body["UpdateReplacePolicy"] == "Retain", name
    assert "Retain" not in {body.get("DeletionPolicy") for body in _translated()["Resources"].values()}


@pytest.mark.parametrize(("protect", "tables", "pool"), [("false", False, "INACTIVE"), ("true", True, "ACTIVE")])
def test_deletion_protection_comes_with_the_update_after_the_first_create(
    protect: str, tables: bool, pool: str
) -> None:
    # A protected table cannot be deleted, so a rolled-back first create would fail to remove it.
    _, resolved = deployed(CreateCognitoUserPool="true", DataDeletionProtection=protect, PlatformLoginUrl="")
    for table in _of_type(resolved, "AWS::DynamoDB::Table").values():
        assert table["Properties"]["DeletionProtectionEnabled"] is tables
    assert resolved["Resources"]["CognitoUserPool"]["Properties"]["DeletionProtection"] == pool
    assert _translated()["Parameters"]["DataDeletionProtection"]["Default"] == "false"


# 3 and 4. Alarms and widgets in Metrics Insights' documented grammar, one query each, in the stack's namespace.

_QUERY = re.compile(
    r"SELECT (?:SUM|AVG|MIN|MAX|COUNT)\(\w+\) FROM SCHEMA\((?P<schema>[^)]*)\)"
    r"(?: WHERE (?P<where>\w+ (?:=|!=) '[^']*'(?: AND \w+ (?:=|!=) '[^']*')*))?"
    r"(?: GROUP BY \w+(?:, \w+)*)?"
)


def _queries(resolved: dict[str, Any], deployment: Deployment) -> dict[str, list[str]]:
    """Every Metrics Insights query, by alarm or dashboard widget, as CloudFormation will send it."""
    found: dict[str, list[str]] = {}
    for name, alarm in _of_type(resolved, "AWS::CloudWatch::Alarm").items():
        expressions = [metric["Expression"] for metric in alarm["Properties"].get("Metrics", [])]
        found[name] = [" ".join(str(deployment.render(expression)).split()) for expression in expressions]
    for index, widget in enumerate(_dashboard(resolved, deployment)["widgets"]):
        metrics = widget["properties"].get("metrics", [])
        found[f"widget {index}: {widget['properties']['title']}"] = [
            " ".join(line[0]["expression"].split()) for line in metrics if isinstance(line[0], dict)
        ]
    return {name: queries for name, queries in found.items() if any("SELECT" in query for query in queries)}


def _dashboard(resolved: dict[str, Any], deployment: Deployment) -> dict[str, Any]:
    body = deployment.render(resolved["Resources"]["Dashboard"]["Properties"]["DashboardBody"])
    document: dict[str, Any] = json.loads(body)
    return document


@pytest.mark.parametrize("stack", ["sso-bridge", "acme-staging"])
def test_every_query_is_one_documented_query_in_the_stacks_own_namespace(stack: str) -> None:
    deployment, resolved = deployed(CreateCognitoUserPool="true", PlatformLoginUrl="")
    deployment.stack_name = stack
    namespace = deployment.render(resolved["Resources"]["HappyFoxFunction"]["Properties"]["Environment"])
    namespace = namespace["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    assert namespace == f"SsoBridge/{stack}"
    queries = _queries(resolved, deployment)
    assert len(queries) >= 9
    for owner, expressions in queries.items():
        assert len(expressions) == 1, f"{owner}: one Metrics Insights query per alarm or widget"
        [query] = expressions
        assert _QUERY.fullmatch(query), f"{owner}: outside the documented grammar: {query}"
        assert not re.search(r"\bOR\b", query, re.IGNORECASE), owner
        schema = [part.strip() for part in _QUERY.fullmatch(query)["schema"].split(",")]  # type: ignore[index]
        if not schema[0].startswith('"AWS/'):
            assert schema[0] == f'"{namespace}"', f"{owner}: {schema[0]}"


def test_two_stacks_never_share_a_namespace() -> None:
    deployment, resolved = deployed()
    variables = resolved["Resources"]["ClickFunnelsFunction"]["Properties"]["Environment"]["Variables"]
    namespaces = set()
    for stack in ("sso-bridge", "sso-bridge-eu"):
        deployment.stack_name = stack
        namespaces.add(deployment.render(variables["POWERTOOLS_METRICS_NAMESPACE"]))
    assert len(namespaces) == 2


def test_the_503_alarm_and_widget_count_every_unavailable_reason() -> None:
    """Every 503 the bridge answers is counted as ``Unavailable`` with its reason (tests/unit/test_faults.py and
    tests/reasons.py); so the alarm and the widget must read that metric unfiltered, whatever reasons exist."""
    deployment, resolved = deployed()
    queries = _queries(resolved, deployment)
    [alarm] = queries["DependencyUnavailableAlarm"]
    assert alarm.startswith("SELECT SUM(Unavailable) FROM SCHEMA(")
    assert " WHERE " not in alarm
    [widget] = [query for owner, [query] in queries.items() if owner.endswith("503s by reason")]
    assert widget.startswith("SELECT SUM(Unavailable) FROM SCHEMA(")
    assert widget.endswith("GROUP BY reason")
    assert " WHERE " not in widget
    [secrets] = queries["SecretsManagerErrorsAlarm"]
    assert secrets.endswith("WHERE reason = 'secret_unavailable'")
    from tests.reasons import unavailable_reasons

    assert "secret_unavailable" in unavailable_reasons()


def test_the_dashboard_is_valid_json_in_every_deployment() -> None:
    for given in (
        {},
        {"EnableKustomer": "false"},
        {"EnableClickFunnels": "false", "EnableHappyFox": "false"},
        EVERY_VENDOR,
        {**EVERY_VENDOR, "EnableClickFunnels": "false", "EnableHappyFox": "false", "EnableZendesk": "false"},
    ):
        deployment, resolved = deployed(**given)
        widgets = _dashboard(resolved, deployment)["widgets"]
        assert all(widget["type"] in ("metric", "alarm") for widget in widgets)


# 6. A custom domain: the API on it, every URL the bridge builds on it, and DNS told where to point.


def test_without_a_domain_the_api_uses_its_own_host() -> None:
    deployment, resolved = deployed()
    assert not _of_type(resolved, "AWS::ApiGatewayV2::DomainName")
    assert deployment.render(resolved["Outputs"]["ApiUrl"]["Value"]) == (
        "https://<HttpApi>.execute-api.eu-west-1.amazonaws.com"
    )
    variables = resolved["Resources"]["KustomerFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["PUBLIC_HOST"] == ""
    assert "DnsTarget" not in resolved["Outputs"]


def test_a_custom_domain_serves_the_api_and_every_url_the_bridge_builds() -> None:
    deployment, resolved = deployed(**DOMAIN, **OIDC, **EVERY_VENDOR)
    [domain] = _of_type(resolved, "AWS::ApiGatewayV2::DomainName").values()
    assert domain["Properties"]["DomainName"] == "sso.acme.test"
    [configuration] = domain["Properties"]["DomainNameConfigurations"]
    assert configuration == {
        "CertificateArn": DOMAIN["CertificateArn"],
        "EndpointType": "REGIONAL",
        "SecurityPolicy": "TLS_1_2",
    }
    [mapping] = _of_type(resolved, "AWS::ApiGatewayV2::ApiMapping").values()
    assert mapping["Properties"]["ApiId"] == {"Ref": "HttpApi"}
    assert mapping["Properties"]["Stage"] == {"Ref": "HttpApiApiGatewayDefaultStage"}
    assert "HttpApiApiGatewayDefaultStage" in resolved["Resources"]
    for function in FUNCTIONS:
        assert (
            resolved["Resources"][function]["Properties"]["Environment"]["Variables"]["PUBLIC_HOST"] == "sso.acme.test"
        )
    outputs = {name: deployment.render(output["Value"]) for name, output in resolved["Outputs"].items()}
    assert outputs["ApiUrl"] == "https://sso.acme.test"
    # Every URL an admin pastes into a vendor (an output naming one of the vendor's routes) is on the domain.
    for vendor in VENDORS:
        pasted = [name for name, url in outputs.items() if f"/{vendor.vendor}/" in url and "Function" not in name]
        assert pasted, f"{vendor.stem}: no output with its route's URL"
        for name in pasted:
            assert outputs[name].startswith(f"https://sso.acme.test/{vendor.vendor}/"), name
    for name in ("ClickFunnelsSsoUrl", "KustomerRedirectUri", "HappyFoxRemoteLoginUrl", "HappyFoxRemoteLogoutUrl"):
        assert outputs[name].startswith("https://sso.acme.test/"), name
    assert outputs["OidcRedirectUris"].split()[0] == "https://sso.acme.test/oidc/callback"
    assert outputs["DnsTarget"] == "<ApiDomainName.RegionalDomainName>"
    assert outputs["DnsTargetHostedZoneId"] == "<ApiDomainName.RegionalHostedZoneId>"


def test_behind_edge_protection_the_domain_is_cloudfronts_and_oidc_works_with_it() -> None:
    deployment = Deployment(_translated(), {**PLATFORM, **OIDC, "EnableEdgeProtection": "true"}, region="us-east-1")
    assert deployment.refusals() == ["EdgeProtectionOnlyInUsEast1"]  # OpenID needs the public host to be known
    deployment = Deployment(
        _translated(), {**PLATFORM, **OIDC, **DOMAIN, "EnableEdgeProtection": "true"}, region="us-east-1"
    )
    assert deployment.refusals() == []
    resolved = deployment.resolve()
    assert not _of_type(resolved, "AWS::ApiGatewayV2::DomainName")
    config = resolved["Resources"]["EdgeDistribution"]["Properties"]["DistributionConfig"]
    assert config["Aliases"] == ["sso.acme.test"]
    assert config["ViewerCertificate"]["AcmCertificateArn"] == DOMAIN["CertificateArn"]
    assert config["ViewerCertificate"]["MinimumProtocolVersion"].startswith("TLSv1.2")
    assert deployment.render(resolved["Outputs"]["DnsTarget"]["Value"]) == "<EdgeDistribution.DomainName>"
    assert resolved["Resources"]["HappyFoxFunction"]["Properties"]["Environment"]["Variables"]["PUBLIC_HOST"] == (
        "sso.acme.test"
    )


@pytest.mark.parametrize(
    ("given", "refused"),
    [
        ({"DomainName": "sso.acme.test"}, ["DomainNeedsCertificate"]),
        ({"CertificateArn": DOMAIN["CertificateArn"]}, ["DomainNeedsCertificate"]),
        (DOMAIN, []),
    ],
)
def test_a_domain_and_its_certificate_go_together(given: dict[str, str], refused: list[str]) -> None:
    assert Deployment(_translated(), {**PLATFORM, **given}).refusals() == refused


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("sso.acme.test", True),
        ("sso.example.co.uk", True),
        ("SSO.acme.test", False),
        ("https://sso.acme.test", False),
        ("sso.acme.test/path", False),
        ("sso.acme.test:8443", False),
        ("localhost", False),
        ("sso..acme.test", False),
        ("-sso.acme.test", False),
    ],
)
def test_the_domain_parameter_takes_a_host_name_only(value: str, accepted: bool) -> None:
    pattern = _translated()["Parameters"]["DomainName"]["AllowedPattern"]
    assert (re.fullmatch(pattern, value) is not None) is accepted


# Whatever is switched on or off, CloudFormation can resolve every reference.


@pytest.mark.parametrize(
    "given",
    [
        {},
        {"CreateCognitoUserPool": "true", "PlatformLoginUrl": "", **DOMAIN},
        {**OIDC, "EnableClickFunnels": "false"},
        {"EnableClickFunnels": "false", "EnableKustomer": "false"},
        {"EnableKustomer": "false", "EnableHappyFox": "false", "AlarmEmail": "ops@acme.test"},
        {"EnableClickFunnels": "false", "EnableHappyFox": "false", "CreateCognitoUserPool": "true"},
        {**EVERY_VENDOR, "CreateCognitoUserPool": "true", "PlatformLoginUrl": "", **DOMAIN},
        {**{vendor.switch: "false" for vendor in VENDORS}, "EnableFreshworks": "true"},
        {**{vendor.switch: "false" for vendor in VENDORS}, "EnableZendesk": "true", **OIDC},
    ],
    ids=[
        "defaults",
        "cognito and domain",
        "oidc without clickfunnels",
        "happyfox only",
        "clickfunnels only",
        "kustomer",
        "every vendor, cognito and domain",
        "freshworks only, no oidc",
        "zendesk only, oidc",
    ],
)
def test_every_reference_resolves_in_every_deployment(given: dict[str, str]) -> None:
    _, resolved = deployed(**given)
    assert dangling_references(resolved) == []


def test_the_check_notices_a_reference_to_a_switched_off_resource() -> None:
    template = json.loads(json.dumps(_translated()))
    template["Outputs"]["Leak"] = {"Value": {"Fn::GetAtt": ["HappyFoxFunction", "Arn"]}}
    resolved = Deployment(template, {**PLATFORM, "EnableHappyFox": "false"}).resolve()
    assert dangling_references(resolved) == ["Outputs.Leak -> HappyFoxFunction"]


# The company's brand reaches every function as the variables the pages read (issue 17).


@pytest.mark.parametrize(
    ("parameter", "value", "accepted"),
    [
        ("BrandName", "Acme Widgets", True),
        ("BrandName", "Ächme · Widgets", True),
        ("BrandName", "Acme\nWidgets", False),
        ("BrandName", "A" * 81, False),
        ("BrandLogoUrl", "https://cdn.acme.test/logo.svg", True),
        ("BrandLogoUrl", "http://cdn.acme.test/logo.svg", False),
        ("BrandLogoUrl", 'https://cdn.acme.test/x" onerror="y', False),
        ("BrandLogoUrl", "javascript:alert(1)", False),
        ("BrandColor", "#0a7cff", True),
        ("BrandColor", "red", False),
        ("BrandColor", "#0a7cff;background:url(x)", False),
        ("SupportUrl", "https://help.acme.test/contact", True),
        ("SupportUrl", "https://user@help.acme.test", False),
        ("SupportUrl", "https://help.acme.test/a;b", False),
        ("PlatformHomeUrl", "https://app.acme.test/", True),
        ("PlatformHomeUrl", "https://app.acme.test\\evil", False),
    ],
)
def test_the_brand_parameters_take_only_safe_values(parameter: str, value: str, accepted: bool) -> None:
    pattern = _translated()["Parameters"][parameter]["AllowedPattern"]
    assert (re.fullmatch(pattern, value) is not None) is accepted


def test_the_brand_reaches_every_function() -> None:
    brand = {
        "BrandName": "Acme Widgets",
        "BrandLogoUrl": "https://cdn.acme.test/logo.svg",
        "BrandColor": "#0a7cff",
        "SupportUrl": "https://help.acme.test",
        "PlatformHomeUrl": "https://app.acme.test/",
    }
    _, resolved = deployed(**brand, **EVERY_VENDOR)
    for function in FUNCTIONS:
        variables = resolved["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert variables["BRAND_NAME"] == brand["BrandName"]
        assert variables["BRAND_LOGO_URL"] == brand["BrandLogoUrl"]
        assert variables["BRAND_COLOR"] == brand["BrandColor"]
        assert variables["SUPPORT_URL"] == brand["SupportUrl"]
        assert variables["PLATFORM_HOME_URL"] == brand["PlatformHomeUrl"]
