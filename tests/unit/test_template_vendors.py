"""Deploy only the portals you use: each vendor is one block of the template, switched by ``Enable<Vendor>``.

Every block has the same shape (its key, log group, function with HTTP API routes and a function URL, three
alarms, its outputs), so a new vendor is a copy that cannot drift; and a switched-off vendor leaves nothing behind
in what CloudFormation creates: no function, URL, secret, log group, alarm, widget, route or output.

The vendors are read from the template (its ``<Vendor>Enabled`` conditions), so a new vendor's block is checked
here without an edit: what it forgot (a chain that names every vendor, a route output, its settings rule) fails
a test that says which.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest

from ops.sam_translation import Deployment, dangling_references, sam_template
from ops.vendor_template import vendor_templates
from tests.unit.test_template_deploy import PLATFORM, _translated, required_settings

TEMPLATE = sam_template()
SHAPE = ("Secret", "LogGroup", "Function", "ErrorsAlarm", "ThrottlesAlarm", "DurationAlarm")
OUTPUTS = ("FunctionUrl", "SecretArn")
# The audit table of issued tokens and its alarms, shared by the vendors that record each jti (HasJtiTable).
JTI = {"JtiTable", "JtiTableErrorsAlarm", "JtiTableThrottlesAlarm"}
# What a vendor has beyond the common shape, and why; everything else is asserted alike.
EXTRA = {
    "Freshworks": {"Layers"},  # RS256 needs the OIDC layer's cryptography, with OpenID Connect off too
}
# Issue 18's portals are off unless switched on; the first three stay on by default.
ON_BY_DEFAULT = ["ClickFunnels", "Kustomer", "HappyFox"]
API_BASE = TEMPLATE["Outputs"]["ApiUrl"]["Value"]  # the HTTP API's public URL (DomainName when set)


def _vendors() -> list[str]:
    """Vendors, from the template's ``<Vendor>Enabled`` conditions (each tied to an ``Enable<Vendor>`` switch)."""
    names = [name.removesuffix("Enabled") for name in TEMPLATE["Conditions"] if name.endswith("Enabled")]
    vendors = [name for name in names if f"Enable{name}" in TEMPLATE["Parameters"]]
    for vendor in vendors:
        assert TEMPLATE["Conditions"][f"{vendor}Enabled"] == {"Fn::Equals": [{"Ref": f"Enable{vendor}"}, "true"]}
    return vendors


VENDORS = _vendors()
VENDOR_TEMPLATES = vendor_templates()  # ops.vendor_template's view: folder -> switch, parameters, sign-in route
FOLDERS = {
    vendor: TEMPLATE["Resources"][f"{vendor}Function"]["Properties"]["CodeUri"].split("/")[-1] for vendor in VENDORS
}
# The vendors whose function records each token's jti in the audit table.
JTI_VENDORS = {
    vendor
    for vendor in VENDORS
    if TEMPLATE["Resources"][f"{vendor}Function"]["Properties"]["Environment"]["Variables"].get("JTI_TABLE_NAME")
    == {"Ref": "JtiTable"}
}


def _generic(value: Any, vendor: str) -> Any:
    """``value`` with the vendor's names replaced by placeholders, to compare two vendors' blocks."""
    text = json.dumps(value, sort_keys=True)
    text = text.replace(vendor, "VENDOR").replace(vendor.upper(), "VENDOR_UPPER").replace(vendor.lower(), "vendor")
    return json.loads(text)


def test_the_vendors_are_the_seven_portals_and_issue_18s_are_off_by_default() -> None:
    assert VENDORS == ["ClickFunnels", "Kustomer", "HappyFox", "Zendesk", "Canny", "Discourse", "Freshworks"]
    for vendor in VENDORS:
        parameter = TEMPLATE["Parameters"][f"Enable{vendor}"]
        assert parameter["Default"] == ("true" if vendor in ON_BY_DEFAULT else "false"), vendor
        assert parameter["AllowedValues"] == ["true", "false"]
    # The operator commands (ops.vendor_template) find the same vendors, in the same order (the $default chain's).
    assert [found.stem for found in VENDOR_TEMPLATES.values()] == VENDORS
    assert [found.vendor for found in VENDOR_TEMPLATES.values()] == [FOLDERS[vendor] for vendor in VENDORS]


@pytest.mark.parametrize("vendor", VENDORS)
def test_each_vendor_block_has_the_same_resources(vendor: str) -> None:
    block = {name for name, body in TEMPLATE["Resources"].items() if body.get("Condition") == f"{vendor}Enabled"}
    assert block == {f"{vendor}{part}" for part in SHAPE}
    outputs = {name for name, body in TEMPLATE["Outputs"].items() if body.get("Condition") == f"{vendor}Enabled"}
    assert {f"{vendor}{part}" for part in OUTPUTS} <= outputs
    assert all(name.startswith(vendor) for name in outputs)


def _route_outputs(vendor: str) -> dict[str, str]:
    """The vendor's outputs that are a route's public URL (the API's base URL, then the path): name -> path."""
    found = {}
    for name, output in TEMPLATE["Outputs"].items():
        value = output["Value"]
        if output.get("Condition") == f"{vendor}Enabled" and "Fn::Join" in value:
            separator, [base, path] = value["Fn::Join"]
            assert (separator, base) == ("", API_BASE), name
            found[name] = path
    return found


@pytest.mark.parametrize("vendor", VENDORS)
def test_each_route_an_admin_pastes_into_the_vendor_is_an_output(vendor: str) -> None:
    """The README tells admins which output to paste where: one per route path the vendor calls (its sign-in, and
    its remote logout when it has one); a brand's route with a path parameter is the operator's to build."""
    routes = TEMPLATE["Resources"][f"{vendor}Function"]["Properties"]["Events"].values()
    paths = {event["Properties"]["Path"] for event in routes if "{" not in event["Properties"]["Path"]}
    assert sorted(_route_outputs(vendor).values()) == sorted(paths), vendor
    sign_in = VENDOR_TEMPLATES[FOLDERS[vendor]].sign_in_path
    assert sign_in in paths, vendor  # the route an email link's button posts back to


@pytest.mark.parametrize("part", ["LogGroup", "ErrorsAlarm", "ThrottlesAlarm", "DurationAlarm"])
def test_each_vendors_logs_and_alarms_are_alike_but_for_its_name(part: str) -> None:
    shapes = {vendor: _generic(TEMPLATE["Resources"][f"{vendor}{part}"], vendor) for vendor in VENDORS}
    first = shapes[VENDORS[0]]
    for vendor, shape in shapes.items():
        assert shape == first, f"{vendor}{part} drifted from {VENDORS[0]}{part}"


def test_each_vendors_function_is_built_alike() -> None:
    common = None
    for vendor in VENDORS:
        function = TEMPLATE["Resources"][f"{vendor}Function"]
        props = function["Properties"]
        folder = props["CodeUri"].removeprefix("functions/")
        assert props["LoggingConfig"] == {"LogGroup": {"Ref": f"{vendor}LogGroup"}}
        assert props["FunctionUrlConfig"] == {"AuthType": "NONE"}
        variables = props["Environment"]["Variables"]
        assert variables["POWERTOOLS_SERVICE_NAME"] == folder
        assert variables[f"{folder.upper()}_SECRET_ID"] == {"Ref": f"{vendor}Secret"}
        assert "PORTAL_NAME" in variables
        assert all(event["Properties"]["ApiId"] == {"Ref": "HttpApi"} for event in props["Events"].values())
        assert all(event["Properties"]["Path"].startswith(f"/{folder}/") for event in props["Events"].values())
        # What every vendor shares: the two shared policies (login-token key and email links; the OIDC client
        # secret when on), then its own key.
        shared = _generic(
            {
                "policies": props["Policies"][:3],
                "metadata": function["Metadata"],
                "props": sorted(set(props) - EXTRA.get(vendor, set())),
            },
            vendor,
        )
        common = common or shared
        assert shared == common, f"{vendor}Function drifted from {VENDORS[0]}Function"
        assert EXTRA.get(vendor, set()) <= set(props), vendor
        secret = TEMPLATE["Resources"][f"{vendor}Secret"]["Properties"]["SecretString"]
        assert secret.startswith("REPLACE_ME"), vendor  # make smoke names a vendor whose key is still this
    assert common is not None
    assert common["policies"][:2] == [
        {"Ref": "VendorFunctionPolicy"},
        {"Fn::If": ["OidcEnabled", {"Ref": "OidcClientSecretPolicy"}, {"Ref": "AWS::NoValue"}]},
    ]


def test_the_audit_table_exists_with_the_vendors_that_record_their_tokens() -> None:
    assert {"HappyFox", "Zendesk"} == JTI_VENDORS
    condition = TEMPLATE["Conditions"]["HasJtiTable"]
    assert condition == {"Fn::Or": [{"Condition": f"{vendor}Enabled"} for vendor in VENDORS if vendor in JTI_VENDORS]}
    for name in JTI:
        assert TEMPLATE["Resources"][name]["Condition"] == "HasJtiTable", name
    assert TEMPLATE["Outputs"]["JtiTableName"]["Condition"] == "HasJtiTable"
    for vendor in JTI_VENDORS:
        props = TEMPLATE["Resources"][f"{vendor}Function"]["Properties"]
        assert props["Environment"]["Variables"]["JTI_RETENTION_DAYS"] == {"Ref": "JtiRetentionDays"}


def test_each_vendor_has_a_parameter_group_holding_its_settings() -> None:
    groups = TEMPLATE["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    for found in VENDOR_TEMPLATES.values():
        [group] = [group["Parameters"] for group in groups if found.switch in group["Parameters"]]
        assert group[0] == found.switch, found.stem
        owned = [name for name in TEMPLATE["Parameters"] if found.owns(name)]
        assert owned, found.stem
        assert set(owned) <= set(group), f"{found.stem}: settings outside its parameter group"
        for name in owned:
            assert TEMPLATE["Parameters"][name].get("Description"), name


# Every subset of the vendors: 2^7 - 1 = 127 deployments, each resolved and checked (a few seconds).


def _subsets() -> list[tuple[str, ...]]:
    return [combo for size in range(1, len(VENDORS) + 1) for combo in itertools.combinations(VENDORS, size)]


def _deploy(enabled: tuple[str, ...], **given: str) -> tuple[Deployment, dict[str, Any]]:
    switches = {f"Enable{vendor}": str(vendor in enabled).lower() for vendor in VENDORS}
    deployment = Deployment(_translated(), {**PLATFORM, **switches, **given})
    assert deployment.refusals() == []
    return deployment, deployment.resolve()


@pytest.mark.parametrize("enabled", _subsets(), ids=lambda combo: "+".join(combo))
def test_a_switched_off_vendor_leaves_nothing_behind(enabled: tuple[str, ...]) -> None:
    deployment, resolved = _deploy(enabled, AlarmEmail="ops@acme.test", CreateCognitoUserPool="true")
    resources = resolved["Resources"]
    off = [vendor for vendor in VENDORS if vendor not in enabled]
    text = json.dumps(resolved)
    for vendor in off:
        assert not [name for name in resources if name.startswith(vendor)], vendor
        assert not [name for name in resolved["Outputs"] if name.startswith(vendor)], vendor
        assert f"{vendor}Function" not in text, f"something still refers to {vendor}Function"
        assert f"/{FOLDERS[vendor]}/" not in json.dumps(resolved["Outputs"]), vendor
    functions = {name for name, body in resources.items() if body["Type"] == "AWS::Lambda::Function"}
    assert functions == {f"{vendor}Function" for vendor in enabled}
    secrets = {name for name, body in resources.items() if body["Type"] == "AWS::SecretsManager::Secret"}
    assert secrets == {"LoginTokenSecret", "OidcClientSecret", *(f"{vendor}Secret" for vendor in enabled)}
    assert JTI & set(resources) == (JTI if JTI_VENDORS & set(enabled) else set())
    # Routes: only the enabled vendors' paths have methods; everything else reaches the first enabled function.
    paths = resources["HttpApi"]["Properties"]["Body"]["paths"]
    routed = {path for path, item in paths.items() if item and path != "$default"}
    assert {path.split("/")[1] for path in routed} <= {*(FOLDERS[vendor] for vendor in enabled), "oidc"}
    for vendor in enabled:
        assert any(path.startswith(f"/{FOLDERS[vendor]}/") for path in routed), vendor
    fallback = f"{enabled[0]}Function"
    integration = paths["$default"]["x-amazon-apigateway-any-method"]["x-amazon-apigateway-integration"]
    assert f"${{{fallback}.Arn}}" in integration["uri"]["Fn::Sub"]
    assert resources["FallbackRoutePermission"]["Properties"]["FunctionName"] == {"Ref": fallback}
    # The dashboard: a widget per enabled vendor, and every alarm the deployment has (none it has not).
    dashboard = json.loads(deployment.render(resources["Dashboard"]["Properties"]["DashboardBody"]))
    titles = [widget["properties"]["title"] for widget in dashboard["widgets"]]
    assert [title for title in titles if title.endswith(" function")] == [f"{vendor} function" for vendor in enabled]
    [alarms] = [widget["properties"]["alarms"] for widget in dashboard["widgets"] if widget["type"] == "alarm"]
    created = {name for name, body in resources.items() if body["Type"] == "AWS::CloudWatch::Alarm"}
    assert sorted(alarms) == sorted(f"<{name}.Arn>" for name in created)
    # OpenID Connect: each enabled function URL's callback, registered at Cognito and listed for other providers.
    callbacks = [f"<{vendor}FunctionUrl.FunctionUrl>oidc/callback" for vendor in enabled]
    registered = deployment.render(resources["CognitoUserPoolClient"]["Properties"]["CallbackURLs"])
    assert registered[1:] == callbacks  # after the HTTP API's own
    assert deployment.render(resolved["Outputs"]["OidcRedirectUris"]["Value"]).split(" ")[1:] == callbacks
    assert dangling_references(resolved) == []


def test_at_least_one_portal_and_each_enabled_portals_settings() -> None:
    rule = TEMPLATE["Rules"]["AtLeastOnePortal"]
    [assertion] = rule["Assertions"]
    assert assertion["Assert"] == {
        "Fn::Or": [{"Fn::Equals": [{"Ref": f"Enable{vendor}"}, "true"]} for vendor in VENDORS]
    }
    assert all(f"Enable{vendor}" in assertion["AssertDescription"] for vendor in VENDORS)
    off = {f"Enable{vendor}": "false" for vendor in VENDORS}
    assert Deployment(_translated(), {**PLATFORM, **off}).refusals() == ["AtLeastOnePortal"]
    bare = {"PlatformLoginUrl": PLATFORM["PlatformLoginUrl"]}
    assert Deployment(_translated(), bare).refusals() == [f"{vendor}Settings" for vendor in ON_BY_DEFAULT]
    # Each portal alone: refused without its settings, each of them; accepted with them. One switched off needs none.
    for found in VENDOR_TEMPLATES.values():
        required = required_settings(_translated(), found)
        alone = {**bare, **off, found.switch: "true"}
        assert Deployment(_translated(), alone).refusals() == [f"{found.stem}Settings"]
        for missing in required:
            given = {name: PLATFORM[name] for name in required if name != missing}
            assert Deployment(_translated(), {**alone, **given}).refusals() == [f"{found.stem}Settings"], missing
        assert Deployment(_translated(), {**alone, **{name: PLATFORM[name] for name in required}}).refusals() == []
    assert [name for name, spec in TEMPLATE["Parameters"].items() if "Default" not in spec] == []


def test_make_run_and_the_ops_commands_know_the_same_vendors() -> None:
    from local.template import functions

    specs = {spec.logical_id: spec for spec in functions()}
    for vendor in VENDORS:
        assert specs[f"{vendor}Function"].condition == f"{vendor}Enabled"
        assert re.fullmatch(r"functions/[a-z]+", specs[f"{vendor}Function"].code_uri)
