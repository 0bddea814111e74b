"""What the template lets each function do, and what it runs beside them (logs, alarms, edge protection).

The permissions are read from the template as CloudFormation will run it: SAM's own translator (the one
`sam validate` runs, offline) expands the policy templates into each function's IAM role, and the managed
policies every vendor function shares (``VendorFunctionPolicy``, ``OidcClientSecretPolicy``) are read into each
function that lists them. Each function may read its own secrets and make the DynamoDB calls the layer's code
makes, nothing more; the checker is shown to notice a widened policy, shared or not. `make validate` runs
checkov on the same translation, every vendor switched on (``python -m ops.sam_translation OUT``), each SAM
resource's Metadata (checkov's inline suppressions) copied onto what SAM makes of it.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from typing import Any

import botocore.session
import pytest
from botocore import xform_name

from local.template import TEMPLATE, functions, load_template
from ops.sam_translation import checkov_input, sam_template, translate
from ops.vendor_template import vendor_templates

ROOT = TEMPLATE.parent
LAYER = ROOT / "layers" / "signing" / "sso_bridge"

Grant = tuple[str, str]  # (IAM action, resource: a logical id or an ARN pattern)

# SAM attaches these to every function role it makes: logs (to the function's log group) and X-Ray traces.
# Neither service lets the policy name a resource more narrowly; nothing else may be managed.
BASELINE_MANAGED_POLICIES = {"service-role/AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"}
KUSTOMER_BRAND_SECRETS = (
    "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${AWS::StackName}/kustomer/*"
)
# The OpenID Connect client secret, granted by name (template.yaml says why: a reference would close a cycle);
# `??????` is the random suffix Secrets Manager adds to the name in the ARN, and matches nothing longer.
OIDC_CLIENT_SECRET_NAME = "${AWS::StackName}/oidc-client"
OIDC_CLIENT_SECRET = (
    "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"
    f"{OIDC_CLIENT_SECRET_NAME}-??????"
)

# Every AWS call the layer makes, and the grants it needs. A new call fails test_the_layer_makes_only_known_calls
# until it is listed here and granted in template.yaml, to exactly the tables it touches.
CALLS: dict[str, dict[str, set[Grant]]] = {
    "secrets.py": {"get_secret_value": set()},  # on the function's own secrets: see SECRETS
    "link_store.py": {
        # LinkStore.state: the spent record and the revocation, in one consistent read.
        "batch_get_item": {
            ("dynamodb:BatchGetItem", "SpentLinksTable"),
            ("dynamodb:BatchGetItem", "LinkRevocationsTable"),
        },
        # LinkStore.spend: one transaction, a condition check on the revocation and a conditional put.
        "transact_write_items": {
            ("dynamodb:ConditionCheckItem", "LinkRevocationsTable"),
            ("dynamodb:PutItem", "SpentLinksTable"),
        },
        # LinkStore.spend_sign_in_state: an OpenID sign-in state used once, a conditional put beside the links.
        "put_item": {("dynamodb:PutItem", "SpentLinksTable")},
        # LinkStore.revoke: `make revoke`, with the operator's credentials; never a function's.
        "update_item": set(),
    },
    "jti_store.py": {"put_item": {("dynamodb:PutItem", "JtiTable")}},
}
EMAIL_LINKS = {
    grant for call in ("batch_get_item", "transact_write_items", "put_item") for grant in CALLS["link_store.py"][call]
}
# Every vendor function (from the template) reads the login-token key, the OIDC client secret and its own key
# (<Vendor>Secret); beyond that, only what is listed here.
VENDOR_FUNCTIONS = {vendor.logical_id: vendor.stem for vendor in vendor_templates().values()}
OWN_SECRETS = {"KustomerFunction": {KUSTOMER_BRAND_SECRETS}}
SECRETS = {
    function: {"LoginTokenSecret", f"{stem}Secret", OIDC_CLIENT_SECRET} | OWN_SECRETS.get(function, set())
    for function, stem in VENDOR_FUNCTIONS.items()
}
# The vendors that record each token's jti in the audit table (they refuse a replay).
OWN_WRITES = {
    "HappyFoxFunction": CALLS["jti_store.py"]["put_item"],
    "ZendeskFunction": CALLS["jti_store.py"]["put_item"],
}
EXPECTED: dict[str, set[Grant]] = {
    function: {("secretsmanager:GetSecretValue", secret) for secret in secrets}
    | EMAIL_LINKS
    | OWN_WRITES.get(function, set())
    for function, secrets in SECRETS.items()
}


def _resource(value: Any) -> str:
    """A statement's resource as a logical id (``!Ref``, ``!GetAtt X.Arn``, SAM's ``${secretArn}``) or a pattern."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        [(function, argument)] = value.items()
        if function == "Ref" and isinstance(argument, str):
            return argument
        if function == "Fn::GetAtt" and isinstance(argument, list) and argument[1:] == ["Arn"]:
            return str(argument[0])
        if function == "Fn::Sub" and isinstance(argument, str):
            return argument
        if function == "Fn::Sub" and isinstance(argument, list) and len(argument) == 2:
            pattern, variables = argument
            if re.fullmatch(r"\$\{(\w+)\}", pattern) and len(variables) == 1:
                return _resource(next(iter(variables.values())))
    return json.dumps(value, sort_keys=True)  # anything else matches nothing expected


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _branches(value: Any) -> list[Any]:
    """A policy as it may apply: both branches of an ``Fn::If`` (a conditional grant is a grant), never NoValue."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        _, then, otherwise = value["Fn::If"]
        return [*_branches(then), *_branches(otherwise)]
    if value == {"Ref": "AWS::NoValue"}:
        return []
    return [value]


def _statements_of(document: Any) -> list[Any]:
    """A policy document's statements as they may apply (both branches of an ``Fn::If`` among them)."""
    return [branch for statement in _listed(document["Statement"]) for branch in _branches(statement)]


def role_of(translated: dict[str, Any], function: str) -> str:
    role = translated["Resources"][function]["Properties"]["Role"]
    assert isinstance(role, dict), f"{function}: a role SAM makes, not {role!r}"
    assert "Fn::GetAtt" in role, f"{function}: a role SAM makes, not {role!r}"
    return str(role["Fn::GetAtt"][0])


def shared_policies(translated: dict[str, Any], function: str) -> list[str]:
    """The template's own managed policies the function's role lists (``!Ref`` to an ``AWS::IAM::ManagedPolicy``)."""
    role = translated["Resources"][role_of(translated, function)]["Properties"]
    listed = [branch for arn in role.get("ManagedPolicyArns", []) for branch in _branches(arn)]
    resources = translated["Resources"]
    return [
        arn["Ref"]
        for arn in listed
        if isinstance(arn, dict) and resources.get(arn.get("Ref"), {}).get("Type") == "AWS::IAM::ManagedPolicy"
    ]


def grants(translated: dict[str, Any], function: str) -> tuple[set[Grant], list[str]]:
    """Every (action, resource) the function's role allows, its shared managed policies' included, and what the
    checker cannot accept at all."""
    problems: list[str] = []
    resources = translated["Resources"]
    role = resources[role_of(translated, function)]["Properties"]
    shared = shared_policies(translated, function)
    listed = [branch for arn in role.get("ManagedPolicyArns", []) for branch in _branches(arn)]
    managed = {
        str(arn).split(":policy/", 1)[-1] for arn in listed if not (isinstance(arn, dict) and arn.get("Ref") in shared)
    }
    problems += [f"{function}: managed policy {name}" for name in sorted(managed - BASELINE_MANAGED_POLICIES)]
    documents = [branch["PolicyDocument"] for policy in role.get("Policies", []) for branch in _branches(policy)]
    documents += [resources[name]["Properties"]["PolicyDocument"] for name in shared]
    allowed: set[Grant] = set()
    for document in documents:
        for statement in _statements_of(document):
            if statement.get("Effect") != "Allow":
                continue
            for key in ("NotAction", "NotResource"):
                if key in statement:
                    problems.append(f"{function}: {key} allows everything but a list")
            for action in _listed(statement.get("Action", [])):
                for resource in _listed(statement.get("Resource", [])):
                    allowed.add((str(action), _resource(resource)))
    return allowed, problems


def violations(translated: dict[str, Any]) -> list[str]:
    """Why the translated template grants more (or other) than each function needs; empty when it does not."""
    problems: list[str] = []
    resources = translated["Resources"]
    function_roles = {role_of(translated, function) for function in EXPECTED}
    # A shared policy is read into each function that lists it; attached any other way, it is beside them.
    shared = {name for function in EXPECTED for name in shared_policies(translated, function)}
    for logical_id, resource in resources.items():
        kind = resource["Type"]
        if kind == "AWS::Lambda::Function" and logical_id not in EXPECTED:
            problems.append(f"{logical_id}: a function this check does not know")
        if kind.startswith("AWS::IAM::") and logical_id not in function_roles | shared:
            problems.append(f"{logical_id}: {kind} beside the functions' roles")
        if logical_id in shared and {"Roles", "Users", "Groups"} & set(resource["Properties"]):
            problems.append(f"{logical_id}: attached beside the functions' roles")
    for function, expected in EXPECTED.items():
        allowed, found = grants(translated, function)
        problems += found
        for action, resource in sorted(allowed):
            if "*" in action:
                problems.append(f"{function}: wildcard action {action} on {resource}")
            if resource == "*" or (resource.endswith("*") and resource != KUSTOMER_BRAND_SECRETS):
                problems.append(f"{function}: {action} on wildcard resource {resource}")
            if "?" in resource and resource != OIDC_CLIENT_SECRET:
                problems.append(f"{function}: {action} on wildcard resource {resource}")
        problems += [
            f"{function}: {action} on {resource} is more than it needs"
            for action, resource in sorted(allowed - expected)
        ]
        problems += [
            f"{function}: {action} on {resource} is missing" for action, resource in sorted(expected - allowed)
        ]
    return problems


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    return translate(sam_template())


# Permissions.


def test_each_function_may_do_what_its_code_needs_and_nothing_more(translated: dict[str, Any]) -> None:
    assert violations(translated) == []


def _statements(template: dict[str, Any], function: str) -> list[Any]:
    return template["Resources"][function]["Properties"]["Policies"]


def _add_action(function: str, table: str, action: str) -> Callable[[dict[str, Any]], None]:
    def mutate(template: dict[str, Any]) -> None:
        _statements(template, function).append(
            {"Statement": [{"Effect": "Allow", "Action": action, "Resource": {"Fn::GetAtt": [table, "Arn"]}}]}
        )

    return mutate


def _add_policy(function: str, policy: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(template: dict[str, Any]) -> None:
        _statements(template, function).append(policy)

    return mutate


def _widen_brand_secrets(template: dict[str, Any]) -> None:
    for policy in _statements(template, "KustomerFunction"):
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            if statement.get("Action") == "secretsmanager:GetSecretValue":
                statement["Resource"] = {"Fn::Sub": "arn:${AWS::Partition}:secretsmanager:*:*:secret:*"}


_GET_ANY_SECRET = {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}


def _shared_statements(template: dict[str, Any], name: str) -> list[Any]:
    statements: list[Any] = template["Resources"][name]["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _widen_oidc_secret(template: dict[str, Any]) -> None:
    for statement in _shared_statements(template, "OidcClientSecretPolicy"):
        resource = statement["Resource"]["Fn::Sub"]
        statement["Resource"]["Fn::Sub"] = resource.replace("oidc-client-??????", "oidc-*")


def _widen_shared_policy(template: dict[str, Any]) -> None:
    _shared_statements(template, "VendorFunctionPolicy").append(
        {"Effect": "Allow", "Action": "dynamodb:DeleteItem", "Resource": {"Fn::GetAtt": ["SpentLinksTable", "Arn"]}}
    )


def _attach_shared_policy_elsewhere(template: dict[str, Any]) -> None:
    template["Resources"]["VendorFunctionPolicy"]["Properties"]["Roles"] = [{"Ref": "HappyFoxFunctionRole"}]


def _another_shared_policy(template: dict[str, Any]) -> None:
    template["Resources"]["ScanPolicy"] = {
        "Type": "AWS::IAM::ManagedPolicy",
        "Properties": {
            "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "dynamodb:Scan", "Resource": "*"}]},
        },
    }
    _statements(template, "CannyFunction").append({"Ref": "ScanPolicy"})


def _drop_shared_policy(template: dict[str, Any]) -> None:
    policies = _statements(template, "DiscourseFunction")
    policies.remove({"Ref": "VendorFunctionPolicy"})


def _separate_policy(template: dict[str, Any]) -> None:
    template["Resources"]["ExtraPolicy"] = {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyName": "extra",
            "Roles": [{"Ref": "HappyFoxFunctionRole"}],
            "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "dynamodb:Scan", "Resource": "*"}]},
        },
    }


MUTATIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "delete spent links": _add_action("ClickFunnelsFunction", "SpentLinksTable", "dynamodb:DeleteItem"),
    "write revocations": _add_action("KustomerFunction", "LinkRevocationsTable", "dynamodb:PutItem"),
    "read the audit table": _add_action("HappyFoxFunction", "JtiTable", "dynamodb:Query"),
    "any dynamodb action": _add_action("HappyFoxFunction", "JtiTable", "dynamodb:*"),
    "every secret": _add_policy("ClickFunnelsFunction", {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": "*"}}),
    "another vendor's secret": _add_policy(
        "HappyFoxFunction", {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "KustomerSecret"}}}
    ),
    "a CRUD policy template": _add_policy(
        "KustomerFunction", {"DynamoDBCrudPolicy": {"TableName": {"Ref": "JtiTable"}}}
    ),
    "a managed policy": _add_policy("ClickFunnelsFunction", "arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess"),
    "brand secrets beyond the prefix": _widen_brand_secrets,
    "OIDC secrets beyond the name": _widen_oidc_secret,
    "any secret, under the OIDC condition": _add_policy(
        "HappyFoxFunction",
        {"Fn::If": ["OidcEnabled", {"Statement": [_GET_ANY_SECRET]}, {"Ref": "AWS::NoValue"}]},
    ),
    "a policy beside the role": _separate_policy,
    "the shared policy widened": _widen_shared_policy,
    "the shared policy attached to a role by itself": _attach_shared_policy_elsewhere,
    "another shared policy, listed by one function": _another_shared_policy,
    "a function without the shared policy": _drop_shared_policy,
    "the audit table written by a vendor that records no jti": _add_action(
        "CannyFunction", "JtiTable", "dynamodb:PutItem"
    ),
}


@pytest.mark.parametrize("mutation", MUTATIONS.values(), ids=MUTATIONS.keys())
def test_the_check_notices_a_widened_policy(mutation: Callable[[dict[str, Any]], None]) -> None:
    template = sam_template()
    mutation(template)
    assert violations(translate(template))


def test_the_layer_makes_only_known_calls() -> None:
    botocore_session = botocore.session.get_session()
    operations = {
        xform_name(name)
        for service in ("dynamodb", "secretsmanager")
        for name in botocore_session.get_service_model(service).operation_names
    }
    found: dict[str, set[str]] = {}
    for path in [*LAYER.glob("*.py"), *(ROOT / "functions").rglob("*.py")]:
        tree = ast.parse(path.read_text())
        called = {
            node.func.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in operations
        }
        if called:
            found[path.name] = called
    expected = {module: set(calls) for module, calls in CALLS.items()}
    assert found == expected, "grant a new call in template.yaml (only on what it touches), then list it in CALLS"


def test_each_function_reads_the_secrets_its_environment_names() -> None:
    template = load_template()
    kinds = {logical_id: resource["Type"] for logical_id, resource in template["Resources"].items()}
    for spec in functions(template):
        named = {
            value["Ref"]
            for value in spec.environment.values()
            if isinstance(value, dict) and kinds.get(value.get("Ref")) == "AWS::SecretsManager::Secret"
        }
        if "KUSTOMER_BRAND_SECRET_PREFIX" in spec.environment:
            prefix = spec.environment["KUSTOMER_BRAND_SECRET_PREFIX"]["Fn::Sub"]
            assert KUSTOMER_BRAND_SECRETS.endswith(f":secret:{prefix}*")
            named.add(KUSTOMER_BRAND_SECRETS)
        # Named, not referenced (a reference would close a cycle through Cognito's client and the HTTP API).
        condition, name, off = spec.environment["OIDC_CLIENT_SECRET_ID"]["Fn::If"]
        assert (condition, name, off) == ("OidcEnabled", {"Fn::Sub": OIDC_CLIENT_SECRET_NAME}, "")
        assert template["Resources"]["OidcClientSecret"]["Properties"]["Name"] == name
        named.add(OIDC_CLIENT_SECRET)
        assert named == SECRETS[spec.logical_id]


def test_every_vendor_function_lists_the_shared_policies(translated: dict[str, Any]) -> None:
    assert set(EXPECTED) == set(VENDOR_FUNCTIONS) == {spec.logical_id for spec in functions() if spec.function_url}
    for function in EXPECTED:
        assert shared_policies(translated, function) == ["VendorFunctionPolicy", "OidcClientSecretPolicy"], function


def test_make_validate_has_checkov_scan_every_vendor_and_the_shared_policies() -> None:
    """checkov drops a resource whose condition is false under the parameters' defaults (issue 18's vendors are
    off by default), and skips a policy with an ``Fn::If`` among its statements: `make validate` hands it every
    vendor switched on, and the shared policies' statements are plain."""
    scanned = checkov_input()
    for vendor in vendor_templates().values():
        assert scanned["Parameters"][vendor.switch]["Default"] == "true", vendor.switch
        assert vendor.logical_id in scanned["Resources"]
    shared = {name for name, body in scanned["Resources"].items() if body["Type"] == "AWS::IAM::ManagedPolicy"}
    assert shared == {"VendorFunctionPolicy", "OidcClientSecretPolicy"}
    for name in shared:
        for statement in scanned["Resources"][name]["Properties"]["PolicyDocument"]["Statement"]:
            assert set(statement) == {"Effect", "Action", "Resource"}, name
    # Everything else is the translation as `sam validate` makes it.
    translated = translate(sam_template())
    assert {name: body for name, body in scanned.items() if name != "Parameters"} == {
        name: body for name, body in translated.items() if name != "Parameters"
    }


def test_the_revocation_command_is_never_a_functions_right(translated: dict[str, Any]) -> None:
    for function in EXPECTED:
        allowed, _ = grants(translated, function)
        assert not {action for action, _ in allowed} & {"dynamodb:UpdateItem", "dynamodb:DeleteItem"}


def test_every_checkov_suppression_says_why() -> None:
    skips = [
        (logical_id, skip)
        for logical_id, resource in load_template()["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for logical_id, skip in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip.get("id", "")), logical_id
        assert len(skip.get("comment", "").split()) >= 5, f"{logical_id} {skip['id']}: say why"


# Settings every function gets.


def test_key_settings_reach_every_function() -> None:
    template = load_template()
    for spec in functions(template):
        assert spec.environment["LOGIN_TOKEN_PREVIOUS_KEY_GRACE"] == {"Ref": "LoginTokenPreviousKeyGrace"}
        assert spec.environment["SECRETS_MAX_STALE"] == {"Ref": "SecretsMaxStale"}
    parameters = template["Parameters"]
    assert parameters["LoginTokenPreviousKeyGrace"]["Default"] == ""  # the layer then uses LINK_TOKEN_MAX_TTL
    assert parameters["SecretsMaxStale"]["Default"] == 900
    generated = template["Resources"]["LoginTokenSecret"]["Properties"]["GenerateSecretString"]
    assert generated["PasswordLength"] >= 64
    assert generated["ExcludePunctuation"] is True


# Operations.


def _of_type(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {logical_id: r for logical_id, r in template["Resources"].items() if r["Type"] == kind}


def test_every_function_logs_to_its_own_group_with_the_retention_parameter() -> None:
    template = load_template()
    groups = _of_type(template, "AWS::Logs::LogGroup")
    used = []
    for spec in functions(template):
        group = template["Resources"][spec.logical_id]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        used.append(group)
        assert group in groups
    assert len(set(used)) == len(used)
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert template["Parameters"]["LogRetentionDays"]["Default"] == 30


def test_the_api_access_log_is_json_without_query_strings() -> None:
    settings = load_template()["Resources"]["HttpApi"]["Properties"]["AccessLogSettings"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["HttpApiAccessLogGroup", "Arn"]}
    fields = json.loads(settings["Format"])
    for name in ("requestId", "ip", "status", "latency", "userAgent", "routeKey", "integrationError"):
        assert name in fields
    variables = set(re.findall(r"\$context\.[\w.]+", settings["Format"]))
    assert not {v for v in variables if re.search(r"query|requestOverride|rawPath|uri", v, re.IGNORECASE)}
    assert fields["path"] == "$context.path"  # in HTTP APIs the path alone


def _metric_queries(template: dict[str, Any]) -> dict[str, str]:
    queries = {}
    for logical_id, alarm in _of_type(template, "AWS::CloudWatch::Alarm").items():
        for metric in alarm["Properties"].get("Metrics", []):
            expression = metric["Expression"]
            queries[logical_id] = expression["Fn::Sub"] if isinstance(expression, dict) else expression
    return queries


def test_function_alarms_cover_errors_throttles_and_duration_near_the_timeout() -> None:
    template = load_template()
    timeout_ms = template["Globals"]["Function"]["Timeout"] * 1000
    alarms = _of_type(template, "AWS::CloudWatch::Alarm").values()
    for spec in functions(template):
        watched = {
            alarm["Properties"]["MetricName"]: alarm["Properties"]
            for alarm in alarms
            if alarm["Properties"].get("Dimensions") == [{"Name": "FunctionName", "Value": {"Ref": spec.logical_id}}]
        }
        assert {"Errors", "Throttles", "Duration"} <= set(watched), spec.logical_id
        assert watched["Duration"]["Threshold"] == 0.8 * timeout_ms
        assert watched["Duration"]["ExtendedStatistic"] == "p99"


def test_alarms_notify_the_topic_only_when_an_address_is_set() -> None:
    template = load_template()
    assert template["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    assert template["Resources"]["AlarmTopic"]["Condition"] == "HasAlarmEmail"
    notify = {"Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]}
    alarms = _of_type(template, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 12
    for logical_id, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == notify, logical_id
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching", logical_id


def test_edge_protection_is_optional_us_east_1_only_and_caches_nothing() -> None:
    template = load_template()
    assert template["Parameters"]["EnableEdgeProtection"]["Default"] == "false"
    condition = template["Conditions"]["EdgeProtection"]["Fn::And"]
    assert {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]} in condition
    edge = {logical_id: r for logical_id, r in template["Resources"].items() if r.get("Condition") == "EdgeProtection"}
    [acl] = [r["Properties"] for r in edge.values() if r["Type"] == "AWS::WAFv2::WebACL"]
    [distribution] = [r["Properties"] for r in edge.values() if r["Type"] == "AWS::CloudFront::Distribution"]
    assert acl["Scope"] == "CLOUDFRONT"
    rate = [rule for rule in acl["Rules"] if "RateBasedStatement" in rule["Statement"]]
    assert rate[0]["Statement"]["RateBasedStatement"]["Limit"] == {"Ref": "RateLimitPer5Min"}
    # Sampled requests would show whole URLs, login tokens included, in the WAF console.
    assert all(not rule["VisibilityConfig"]["SampledRequestsEnabled"] for rule in acl["Rules"])
    assert not acl["VisibilityConfig"]["SampledRequestsEnabled"]
    config = distribution["DistributionConfig"]
    assert "Logging" not in config  # it would record query strings
    behavior = config["DefaultCacheBehavior"]
    assert behavior["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # Managed-CachingDisabled
    assert behavior["OriginRequestPolicyId"] == "b689b0a8-53d0-40ab-baf2-68738e2966ac"  # AllViewerExceptHostHeader
    assert "POST" in behavior["AllowedMethods"]
    assert config["WebACLId"] == {"Fn::GetAtt": ["EdgeWebAcl", "Arn"]}
