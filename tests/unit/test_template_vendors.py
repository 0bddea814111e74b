"""Deploy only the portals you use: each vendor is one block of the template, switched by ``Enable<Vendor>``.

Every block has the same shape (its key, log group, function with HTTP API routes and a function URL, three
alarms, its outputs), so a new vendor is a copy that cannot drift; and a switched-off vendor leaves nothing behind
in what CloudFormation creates: no function, URL, secret, log group, alarm, widget, route or output.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest

from ops.sam_translation import Deployment, dangling_references, sam_template
from tests.unit.test_template_deploy import PLATFORM, _translated

TEMPLATE = sam_template()
# Vendor -> its own resources beyond the common shape (HappyFox audits its tokens in a table).
EXTRA = {"HappyFox": {"JtiTable", "JtiTableErrorsAlarm", "JtiTableThrottlesAlarm"}}
SHAPE = ("Secret", "LogGroup", "Function", "ErrorsAlarm", "ThrottlesAlarm", "DurationAlarm")
OUTPUTS = ("FunctionUrl", "SecretArn")


def _vendors() -> list[str]:
    """Vendors, from the template's ``<Vendor>Enabled`` conditions (each tied to an ``Enable<Vendor>`` switch)."""
    names = [name.removesuffix("Enabled") for name in TEMPLATE["Conditions"] if name.endswith("Enabled")]
    vendors = [name for name in names if f"Enable{name}" in TEMPLATE["Parameters"]]
    for vendor in vendors:
        assert TEMPLATE["Conditions"][f"{vendor}Enabled"] == {"Fn::Equals": [{"Ref": f"Enable{vendor}"}, "true"]}
    return vendors


VENDORS = _vendors()


def _generic(value: Any, vendor: str) -> Any:
    """``value`` with the vendor's names replaced by placeholders, to compare two vendors' blocks."""
    text = json.dumps(value, sort_keys=True)
    text = text.replace(vendor, "VENDOR").replace(vendor.upper(), "VENDOR_UPPER").replace(vendor.lower(), "vendor")
    return json.loads(text)


def test_the_vendors_are_the_three_portals() -> None:
    assert VENDORS == ["ClickFunnels", "Kustomer", "HappyFox"]
    for vendor in VENDORS:
        parameter = TEMPLATE["Parameters"][f"Enable{vendor}"]
        assert parameter["Default"] == "true"
        assert parameter["AllowedValues"] == ["true", "false"]


@pytest.mark.parametrize("vendor", VENDORS)
def test_each_vendor_block_has_the_same_resources(vendor: str) -> None:
    block = {name for name, body in TEMPLATE["Resources"].items() if body.get("Condition") == f"{vendor}Enabled"}
    assert block == {f"{vendor}{part}" for part in SHAPE} | EXTRA.get(vendor, set())
    outputs = {name for name, body in TEMPLATE["Outputs"].items() if body.get("Condition") == f"{vendor}Enabled"}
    assert {f"{vendor}{part}" for part in OUTPUTS} <= outputs
    assert all(name.startswith(vendor) or name.startswith("Jti") for name in outputs)


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
        # What every vendor shares: the login-token key, the OIDC secret when on, its own key, email links.
        shared = _generic(
            {"keys": props["Policies"][:4], "metadata": function["Metadata"], "props": sorted(props)}, vendor
        )
        common = common or shared
        assert shared == common, f"{vendor}Function drifted from {VENDORS[0]}Function"
        secret = TEMPLATE["Resources"][f"{vendor}Secret"]["Properties"]["SecretString"]
        assert secret.startswith("REPLACE_ME"), vendor  # make smoke names a vendor whose key is still this


def _subsets() -> list[tuple[str, ...]]:
    return [combo for size in range(1, len(VENDORS) + 1) for combo in itertools.combinations(VENDORS, size)]


def _deploy(enabled: tuple[str, ...], **given: str) -> tuple[Deployment, dict[str, Any]]:
    switches = {f"Enable{vendor}": str(vendor in enabled).lower() for vendor in VENDORS}
    deployment = Deployment(_translated(), {**PLATFORM, **switches, **given})
    assert deployment.refusals() == []
    return deployment, deployment.resolve()


@pytest.mark.parametrize("enabled", _subsets(), ids=lambda combo: "+".join(combo))
def test_a_switched_off_vendor_leaves_nothing_behind(enabled: tuple[str, ...]) -> None:
    deployment, resolved = _deploy(
        enabled, AlarmEmail="ops@acme.test", OidcIssuer="https://id.acme.test", OidcClientId="b"
    )
    off = [vendor for vendor in VENDORS if vendor not in enabled]
    folders = {
        vendor: TEMPLATE["Resources"][f"{vendor}Function"]["Properties"]["CodeUri"].split("/")[-1] for vendor in VENDORS
    }
    text = json.dumps(resolved)
    for vendor in off:
        assert not [name for name in resolved["Resources"] if name.startswith(vendor)], vendor
        assert not [name for name in resolved["Outputs"] if name.startswith(vendor)], vendor
        assert f"{vendor}Function" not in text, f"something still refers to {vendor}Function"
        assert f"/{folders[vendor]}/" not in json.dumps(resolved["Outputs"]), vendor
    functions = {name for name, body in resolved["Resources"].items() if body["Type"] == "AWS::Lambda::Function"}
    assert functions == {f"{vendor}Function" for vendor in enabled}
    secrets = {name for name, body in resolved["Resources"].items() if body["Type"] == "AWS::SecretsManager::Secret"}
    assert secrets == {"LoginTokenSecret", "OidcClientSecret", *(f"{vendor}Secret" for vendor in enabled)}
    assert ("JtiTable" in resolved["Resources"]) is ("HappyFox" in enabled)
    # Routes: only the enabled vendors' paths have methods; everything else reaches the first enabled function.
    paths = resolved["Resources"]["HttpApi"]["Properties"]["Body"]["paths"]
    routed = {path for path, item in paths.items() if item and path != "$default"}
    assert {path.split("/")[1] for path in routed} <= {*(folders[vendor] for vendor in enabled), "oidc"}
    for vendor in enabled:
        assert any(path.startswith(f"/{folders[vendor]}/") for path in routed), vendor
    fallback = f"{enabled[0]}Function"
    integration = paths["$default"]["x-amazon-apigateway-any-method"]["x-amazon-apigateway-integration"]
    assert f"${{{fallback}.Arn}}" in integration["uri"]["Fn::Sub"]
    assert resolved["Resources"]["FallbackRoutePermission"]["Properties"]["FunctionName"] == {"Ref": fallback}
    dashboard = deployment.render(resolved["Resources"]["Dashboard"]["Properties"]["DashboardBody"])
    titles = [widget["properties"]["title"] for widget in json.loads(dashboard)["widgets"]]
    assert [title for title in titles if title.endswith(" function")] == [f"{vendor} function" for vendor in enabled]
    assert dangling_references(resolved) == []


def test_at_least_one_portal_and_each_enabled_portals_settings() -> None:
    off = {f"Enable{vendor}": "false" for vendor in VENDORS}
    assert Deployment(_translated(), {**PLATFORM, **off}).refusals() == ["AtLeastOnePortal"]
    bare = {"PlatformLoginUrl": PLATFORM["PlatformLoginUrl"]}
    assert Deployment(_translated(), bare).refusals() == [
        "ClickFunnelsSettings",
        "KustomerSettings",
        "HappyFoxSettings",
    ]
    # A portal switched off needs none of its settings.
    only = {
        **bare,
        "EnableClickFunnels": "false",
        "EnableKustomer": "false",
        "HappyFoxAccountUrl": "https://a.happyfox.com",
    }
    assert Deployment(_translated(), only).refusals() == []
    assert [name for name, spec in TEMPLATE["Parameters"].items() if "Default" not in spec] == []


def test_make_run_and_the_ops_commands_know_the_same_vendors() -> None:
    from local.template import functions

    specs = {spec.logical_id: spec for spec in functions()}
    for vendor in VENDORS:
        assert specs[f"{vendor}Function"].condition == f"{vendor}Enabled"
        assert re.fullmatch(r"functions/[a-z]+", specs[f"{vendor}Function"].code_uri)
