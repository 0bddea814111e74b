"""OpenID Connect in the template: the settings a deployer gives, what a deployment refuses, the callback route,
the OIDC layer (attached only when OIDC is on, or to the one function that signs RS256), the optional Cognito user
pool, and no dependency cycle.

The parameter patterns and the template's Rules are evaluated here as CloudFormation would, on the values a
deployer could type; the cycle check runs on SAM's translation, since cfn-lint does not see this one (it misses
a reference that goes through the HTTP API's generated body).
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest
from packaging.requirements import Requirement

from local.template import TEMPLATE, functions, load_template
from ops.sam_translation import Deployment, sam_template, translate
from tests.unit.test_template_deploy import DOMAIN, EVERY_VENDOR, FUNCTIONS, OIDC, PORTALS, _translated, deployed
from tests.unit.test_template_policy import OIDC_CLIENT_SECRET, OIDC_CLIENT_SECRET_NAME

# Every vendor's function (from the template); the ones that attach the OIDC layer themselves, and why.
OWN_OIDC_LAYER = {"FreshworksFunction"}  # RS256 (cryptography), with OpenID Connect off too
API_CALLBACK_URL = "https://<HttpApi>.execute-api.eu-west-1.amazonaws.com/oidc/callback"
FUNCTION_CALLBACKS = [f"<{function}Url.FunctionUrl>oidc/callback" for function in FUNCTIONS]
DOMAIN_CALLBACK = f"https://{DOMAIN['DomainName']}/oidc/callback"
COGNITO = ("CognitoUserPool", "CognitoUserPoolDomain", "CognitoUserPoolClient")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


# Settings.


def _accepts(template: dict[str, Any], parameter: str, value: str) -> bool:
    """Whether CloudFormation takes ``value`` for ``parameter`` (AllowedPattern matches the whole value)."""
    spec = template["Parameters"][parameter]
    if "AllowedValues" in spec and value not in spec["AllowedValues"]:
        return False
    return "AllowedPattern" not in spec or re.fullmatch(spec["AllowedPattern"], value) is not None


@pytest.mark.parametrize(
    ("parameter", "value", "accepted"),
    [
        ("OidcIssuer", "", True),
        ("OidcIssuer", "https://login.example.com", True),
        ("OidcIssuer", "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC", True),
        ("OidcIssuer", "https://login.microsoftonline.com/0000-1111/v2.0", True),
        ("OidcIssuer", "http://login.example.com", False),
        ("OidcIssuer", "http://localhost:9000", False),  # the local stack's; never a deployment's
        ("OidcIssuer", "https://login.example.com/?tenant=a", False),
        ("OidcIssuer", "https://user@login.example.com", False),
        ("OidcIssuer", "https://login.example.com/ x", False),
        ("OidcClientId", "", True),
        ("OidcClientId", "0oa1b2c3d4.apps.googleusercontent.com", True),
        ("OidcClientId", "a b", False),
        ("OidcScopes", "openid email profile", True),
        ("OidcScopes", "openid", True),
        ("OidcScopes", "email openid", True),
        ("OidcScopes", "email profile", False),
        ("OidcScopes", "openidx email", False),
        ("OidcScopes", "openid  email", False),
        ("OidcAllowedEmailDomains", "", True),
        ("OidcAllowedEmailDomains", "example.com,Example.org", True),
        ("OidcAllowedEmailDomains", "example.com, example.org", False),
        ("OidcAllowedEmailDomains", "*.example.com", False),
        ("OidcClientAuthMethod", "client_secret_post", True),
        ("OidcClientAuthMethod", "private_key_jwt", False),
        ("OidcLogout", "true", True),
        ("OidcLogout", "yes", False),
        ("CreateCognitoUserPool", "true", True),
        ("PlatformLoginUrl", "", True),
        ("PlatformLoginUrl", "https://platform.example.com/login", True),
        ("PlatformLoginUrl", "http://platform.example.com/login", False),
    ],
)
def test_parameters_take_what_the_bridge_can_use(
    template: dict[str, Any], parameter: str, value: str, accepted: bool
) -> None:
    assert _accepts(template, parameter, value) is accepted


def test_oidc_is_off_by_default(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    defaults = {name: parameters[name].get("Default") for name in parameters}
    assert defaults["OidcIssuer"] == defaults["OidcClientId"] == defaults["OidcAllowedEmailDomains"] == ""
    assert defaults["OidcScopes"] == "openid email profile"
    assert defaults["OidcClientAuthMethod"] == "client_secret_basic"
    assert defaults["OidcLogout"] == defaults["CreateCognitoUserPool"] == "false"
    assert Deployment(template).condition("OidcEnabled") is False


ISSUER = "https://login.example.com"


@pytest.mark.parametrize(
    ("given", "refused"),
    [
        ({}, ["SignInSource"]),
        ({"PlatformLoginUrl": "https://platform.example.com/login"}, []),
        ({"OidcIssuer": ISSUER, "OidcClientId": "bridge"}, []),
        ({"PlatformLoginUrl": "https://platform.example.com/login", "OidcIssuer": ISSUER, "OidcClientId": "b"}, []),
        ({"OidcIssuer": ISSUER}, ["OidcIssuerNeedsClientId"]),
        ({"CreateCognitoUserPool": "true"}, []),
        ({"CreateCognitoUserPool": "true", "OidcIssuer": ISSUER, "OidcClientId": "b"}, ["CognitoIsTheIssuer"]),
        ({"CreateCognitoUserPool": "true", "OidcClientId": "b"}, ["CognitoIsTheIssuer"]),
    ],
    ids=["nothing", "platform", "oidc", "both", "issuer without client", "cognito", "cognito and issuer", "cognito id"],
)
def test_a_deployment_needs_a_sign_in_source_and_a_whole_oidc_setting(
    template: dict[str, Any], given: dict[str, str], refused: list[str]
) -> None:
    assert Deployment(template, {**PORTALS, **given}).refusals() == refused


@pytest.mark.parametrize(
    ("given", "enabled", "cognito"),
    [
        ({"PlatformLoginUrl": "https://platform.example.com/login"}, False, False),
        ({"OidcIssuer": ISSUER, "OidcClientId": "bridge"}, True, False),
        ({"CreateCognitoUserPool": "true"}, True, True),
    ],
)
def test_oidc_is_on_with_an_issuer_or_the_templates_pool(
    template: dict[str, Any], given: dict[str, str], enabled: bool, cognito: bool
) -> None:
    deployment = Deployment(template, given)
    assert deployment.condition("OidcEnabled") is enabled
    assert deployment.condition("CreateCognito") is cognito


def test_every_function_gets_the_oidc_settings(template: dict[str, Any]) -> None:
    for spec in functions(template):
        env = spec.environment
        assert env["OIDC_ISSUER"] == {
            "Fn::If": [
                "CreateCognito",
                {"Fn::Sub": "https://cognito-idp.${AWS::Region}.${AWS::URLSuffix}/${CognitoUserPool}"},
                {"Ref": "OidcIssuer"},
            ]
        }, spec.logical_id
        # The pool's client id is in the secret's JSON: a reference to the client would close a cycle.
        assert env["OIDC_CLIENT_ID"] == {"Fn::If": ["CreateCognito", "", {"Ref": "OidcClientId"}]}
        assert env["OIDC_CLIENT_SECRET_ID"] == {"Fn::If": ["OidcEnabled", {"Fn::Sub": OIDC_CLIENT_SECRET_NAME}, ""]}
        assert env["OIDC_SCOPES"] == {"Ref": "OidcScopes"}
        assert env["OIDC_ALLOWED_EMAIL_DOMAINS"] == {"Ref": "OidcAllowedEmailDomains"}
        assert env["OIDC_CLIENT_AUTH"] == {"Ref": "OidcClientAuthMethod"}
        assert env["OIDC_LOGOUT"] == {"Ref": "OidcLogout"}
        assert env["PLATFORM_LOGIN_URL"] == {"Ref": "PlatformLoginUrl"}
        assert "OIDC_PACKAGES_PATH" not in env  # the layer's default, /opt/oidc-packages (Freshworks' too)


def test_the_client_secret_is_a_placeholder_unless_the_templates_pool_fills_it(template: dict[str, Any]) -> None:
    secret = template["Resources"]["OidcClientSecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert secret["Condition"] == "OidcEnabled"
    assert secret["Properties"]["Name"] == {"Fn::Sub": OIDC_CLIENT_SECRET_NAME}
    condition, cognito, placeholder = secret["Properties"]["SecretString"]["Fn::If"]
    assert condition == "CreateCognito"
    assert placeholder.startswith("REPLACE_ME ")
    assert cognito == {
        "Fn::Sub": '{"client_id": "${CognitoUserPoolClient}", "client_secret": "${CognitoUserPoolClient.ClientSecret}"}'
    }


# The callback route and the OIDC layer.


def test_the_http_api_sends_the_callback_to_whichever_function_serves_its_default_route(
    template: dict[str, Any],
) -> None:
    # No vendor's events name it: a vendor may be switched off. $default reaches the first enabled vendor's
    # function (tests/unit/test_template_vendors.py), and each function URL answers /oidc/callback itself.
    for spec in functions(template):
        assert "/oidc/callback" not in {route.path for route in spec.routes}, spec.logical_id
        assert spec.function_url, spec.logical_id
    paths = template["Resources"]["HttpApi"]["Properties"]["DefinitionBody"]["paths"]
    assert set(paths) == {"$default"}
    assert paths["$default"]["x-amazon-apigateway-any-method"]["isDefaultRoute"] is True


def test_the_oidc_layer_is_built_like_the_signing_layer_for_arm64(template: dict[str, Any]) -> None:
    layer = template["Resources"]["OidcLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Condition"] == "HasOidcLayer"
    # Built with OpenID Connect, or for the function that signs RS256 with it.
    assert template["Conditions"]["HasOidcLayer"] == {
        "Fn::Or": [{"Fn::Condition": "OidcEnabled"}, {"Fn::Condition": "FreshworksEnabled"}]
    }
    assert layer["Properties"]["ContentUri"] == "layers/oidc"
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    assert template["Globals"]["Function"]["Architectures"] == ["arm64"]


def test_the_dev_venv_tests_the_versions_the_oidc_layer_ships() -> None:
    root = TEMPLATE.parent
    lines = (root / "layers" / "oidc" / "requirements.txt").read_text().splitlines()
    shipped = dict(line.split("==") for line in (line.split("#", 1)[0].strip() for line in lines) if line)
    assert set(shipped) == {"cryptography", "cffi", "pycparser", "joserfc"}
    dev = tomllib.loads((root / "pyproject.toml").read_text())["dependency-groups"]["dev"]
    pinned = {requirement.name: str(requirement.specifier) for requirement in map(Requirement, dev)}
    for name in ("cryptography", "joserfc"):
        assert pinned.get(name) == f"=={shipped[name]}", name


def test_the_oidc_layer_is_attached_only_when_oidc_is_on_or_a_function_needs_it(template: dict[str, Any]) -> None:
    conditional = {"Fn::If": ["OidcEnabled", {"Ref": "OidcLayer"}, {"Ref": "AWS::NoValue"}]}
    assert template["Globals"]["Function"]["Layers"] == [{"Ref": "SigningLayer"}, conditional]
    for function in FUNCTIONS:
        layers = template["Resources"][function]["Properties"].get("Layers")
        # Without OpenID Connect only: SAM appends it to Globals' layers, and a layer listed twice is refused.
        assert layers == (
            [{"Fn::If": ["OidcEnabled", {"Ref": "AWS::NoValue"}, {"Ref": "OidcLayer"}]}]
            if function in OWN_OIDC_LAYER
            else None
        ), function
    # As CloudFormation gets it: SAM renames the layer (a hash of its content), the conditions stay.
    translated = translate(sam_template())["Resources"]
    [signing] = [name for name in translated if name.startswith("SigningLayer")]
    [oidc] = [name for name in translated if name.startswith("OidcLayer")]
    assert translated[oidc]["Condition"] == "HasOidcLayer"
    for function in FUNCTIONS:
        own = (
            [{"Fn::If": ["OidcEnabled", {"Ref": "AWS::NoValue"}, {"Ref": oidc}]}] if function in OWN_OIDC_LAYER else []
        )
        assert translated[function]["Properties"]["Layers"] == [
            {"Ref": signing},
            {"Fn::If": ["OidcEnabled", {"Ref": oidc}, {"Ref": "AWS::NoValue"}]},
            *own,
        ], function


@pytest.mark.parametrize("oidc", [False, True], ids=["oidc off", "oidc on"])
@pytest.mark.parametrize("freshworks", [False, True], ids=["without freshworks", "with freshworks"])
def test_each_deployment_builds_the_oidc_layer_once_and_attaches_it_where_needed(oidc: bool, freshworks: bool) -> None:
    given = {**EVERY_VENDOR, "EnableFreshworks": str(freshworks).lower(), **(OIDC if oidc else {})}
    _, resolved = deployed(**given)
    [signing] = [name for name in resolved["Resources"] if name.startswith("SigningLayer")]
    oidc_layers = [name for name in resolved["Resources"] if name.startswith("OidcLayer")]
    assert len(oidc_layers) == (1 if oidc or freshworks else 0)
    functions = {name for name, body in resolved["Resources"].items() if body["Type"] == "AWS::Lambda::Function"}
    assert ("FreshworksFunction" in functions) is freshworks
    for function in functions:
        layers = resolved["Resources"][function]["Properties"]["Layers"]
        # No cold start pays for cryptography it does not use: the layer only with OIDC, or for RS256.
        wanted = oidc or function in OWN_OIDC_LAYER
        assert layers == [{"Ref": signing}, *({"Ref": name} for name in oidc_layers if wanted)], function


def test_each_functions_oidc_grant_holds_only_when_oidc_is_on(template: dict[str, Any]) -> None:
    # One policy holds it, created with OpenID Connect only; every function lists it under the same condition.
    policy = template["Resources"]["OidcClientSecretPolicy"]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    assert policy["Condition"] == "OidcEnabled"
    [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement == {
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": {"Fn::Sub": OIDC_CLIENT_SECRET},
    }
    for function in FUNCTIONS:
        conditional = [
            policy["Fn::If"]
            for policy in template["Resources"][function]["Properties"]["Policies"]
            if isinstance(policy, dict) and "Fn::If" in policy
        ]
        assert conditional == [["OidcEnabled", {"Ref": "OidcClientSecretPolicy"}, {"Ref": "AWS::NoValue"}]], function


# Outputs and the optional Cognito pool.


@pytest.mark.parametrize(
    ("given", "uris"),
    [
        (EVERY_VENDOR, [API_CALLBACK_URL, *FUNCTION_CALLBACKS]),
        (
            {**EVERY_VENDOR, "EnableHappyFox": "false"},
            [API_CALLBACK_URL, *(uri for uri in FUNCTION_CALLBACKS if "HappyFox" not in uri)],
        ),
        ({}, [API_CALLBACK_URL, *FUNCTION_CALLBACKS[:3]]),  # the first three, on by default
        (
            {**DOMAIN, **EVERY_VENDOR},
            [DOMAIN_CALLBACK, *FUNCTION_CALLBACKS],
        ),
    ],
    ids=["every vendor", "happyfox off", "defaults", "custom domain"],
)
def test_the_outputs_list_every_redirect_uri_to_register(given: dict[str, str], uris: list[str]) -> None:
    deployment, resolved = deployed(**given)
    # Known before OIDC is configured: register them, then set OidcIssuer.
    assert deployment.render(resolved["Outputs"]["OidcRedirectUris"]["Value"]).split(" ") == uris
    outputs = _translated()["Outputs"]
    assert "Condition" not in outputs["OidcRedirectUris"]
    assert outputs["OidcClientSecretArn"]["Condition"] == "OidcEnabled"
    assert outputs["OidcClientSecretArn"]["Value"] == {"Ref": "OidcClientSecret"}


def test_cognito_is_created_only_on_request(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    created = {name for name, resource in resources.items() if resource["Type"].startswith("AWS::Cognito::")}
    assert created == set(COGNITO)
    for name in COGNITO:
        assert resources[name]["Condition"] == "CreateCognito", name
    for name in ("CognitoIssuer", "CognitoUserPoolId", "CognitoSignInDomain"):
        assert template["Outputs"][name]["Condition"] == "CreateCognito", name


def test_the_cognito_pool_vouches_only_for_verified_emails_of_users_the_company_added(
    template: dict[str, Any],
) -> None:
    pool = template["Resources"]["CognitoUserPool"]
    properties = pool["Properties"]
    assert properties["UsernameAttributes"] == ["email"]
    assert properties["AutoVerifiedAttributes"] == ["email"]
    assert properties["UserAttributeUpdateSettings"] == {"AttributesRequireVerificationBeforeUpdate": ["email"]}
    assert properties["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    # It holds the users: kept when the stack goes, but not after a failed first create (nothing in it yet).
    assert pool["DeletionPolicy"] == "RetainExceptOnCreate"
    assert pool["UpdateReplacePolicy"] == "Retain"


def test_the_cognito_client_is_a_confidential_code_flow_client_for_the_bridges_callbacks(
    template: dict[str, Any],
) -> None:
    client = template["Resources"]["CognitoUserPoolClient"]["Properties"]
    assert client["GenerateSecret"] is True
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert client["AllowedOAuthFlows"] == ["code"]
    assert client["AllowedOAuthScopes"] == ["openid", "email", "profile"]
    assert client["SupportedIdentityProviders"] == ["COGNITO"]
    for given, uris in [
        (EVERY_VENDOR, [API_CALLBACK_URL, *FUNCTION_CALLBACKS]),
        ({}, [API_CALLBACK_URL, *FUNCTION_CALLBACKS[:3]]),
        ({"EnableKustomer": "false"}, [API_CALLBACK_URL, FUNCTION_CALLBACKS[0], FUNCTION_CALLBACKS[2]]),
        (
            {**DOMAIN, **EVERY_VENDOR},
            [API_CALLBACK_URL, DOMAIN_CALLBACK, *FUNCTION_CALLBACKS],
        ),
    ]:
        deployment, resolved = deployed(CreateCognitoUserPool="true", PlatformLoginUrl="", **given)
        callbacks = resolved["Resources"]["CognitoUserPoolClient"]["Properties"]["CallbackURLs"]
        assert deployment.render(callbacks) == uris, given
    assert {"email", "email_verified", "name"} <= set(client["ReadAttributes"])
    assert client["LogoutURLs"] == {
        "Fn::If": ["CognitoWithLogoutUrl", [{"Ref": "PlatformLogoutUrl"}], {"Ref": "AWS::NoValue"}]
    }


# No dependency cycle.


def _references(value: Any) -> set[str]:
    """Logical ids ``value`` refers to (Ref, GetAtt, Sub)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= _references(item)
    elif isinstance(value, dict):
        for function, argument in value.items():
            if function == "Ref" and isinstance(argument, str):
                found.add(argument)
            elif function == "Fn::GetAtt":
                found.add(argument[0] if isinstance(argument, list) else str(argument).split(".", 1)[0])
            elif function == "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else argument
                found |= {name.split(".", 1)[0] for name in re.findall(r"\$\{(?!!)([^}]+)\}", text)}
                found |= _references(variables)
            else:
                found |= _references(argument)
    return found


def dependency_cycle(translated: dict[str, Any]) -> list[str]:
    """A cycle among the resources CloudFormation would create (every condition true), or ``[]``."""
    resources = translated["Resources"]
    graph: dict[str, set[str]] = {}
    for name, resource in resources.items():
        depends = resource.get("DependsOn", [])
        named = _references({key: value for key, value in resource.items() if key != "Metadata"})
        graph[name] = (named | set(depends if isinstance(depends, list) else [depends])) & set(resources)
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> list[str]:
        state[name] = "open"
        for dependency in sorted(graph[name]):
            if state.get(dependency) == "open":  # on the path being walked
                return [*path[path.index(dependency) :], dependency]
            if dependency not in state and (cycle := visit(dependency, [*path, dependency])):
                return cycle
        state[name] = "done"
        return []

    for name in sorted(graph):
        if name not in state and (cycle := visit(name, [name])):
            return cycle
    return []


def test_the_template_has_no_dependency_cycle_with_every_option_on() -> None:
    translated = translate(sam_template())
    assert {"CognitoUserPoolClient", "OidcClientSecret", "HttpApi"} <= set(translated["Resources"])
    assert dependency_cycle(translated) == []


def test_the_cycle_check_notices_functions_referencing_the_cognito_filled_secret() -> None:
    template = sam_template()
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    variables["OIDC_CLIENT_SECRET_ID"] = {"Ref": "OidcClientSecret"}
    cycle = dependency_cycle(translate(template))
    assert {"OidcClientSecret", "CognitoUserPoolClient"} <= set(cycle)
    assert cycle[0] == cycle[-1]
