"""Read template.yaml, so the local stack and the tests derive routes and tables from the one definition.

CloudFormation's short tags (!Ref, !Sub, !GetAtt, ...) are kept as ``{"Ref": ...}``/``{"Fn::Sub": ...}``
mappings; resolving them is up to the reader (the local stack only needs literals and parameter defaults).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "TEMPLATE",
    "FunctionSpec",
    "Route",
    "functions",
    "has_default_route",
    "load_template",
    "resolve",
    "table_definition",
]

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    data: dict[str, Any] = yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return data


@dataclass(frozen=True)
class Route:
    method: str
    path: str


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: str
    handler: str
    routes: tuple[Route, ...]
    environment: dict[str, Any]
    function_url: bool
    condition: str | None = None  # the template condition that deploys it (EnableVendor), if any


def functions(template: dict[str, Any] | None = None) -> list[FunctionSpec]:
    """Every function with its HttpApi routes and environment (Globals merged under its own)."""
    template = template or load_template()
    global_function = template.get("Globals", {}).get("Function", {})
    global_env = global_function.get("Environment", {}).get("Variables", {})
    specs = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties", {})
        routes = tuple(
            Route(method=event["Properties"]["Method"].upper(), path=event["Properties"]["Path"])
            for event in props.get("Events", {}).values()
            if event.get("Type") == "HttpApi"
        )
        env = {**global_env, **props.get("Environment", {}).get("Variables", {})}
        handler = props.get("Handler") or global_function.get("Handler")
        specs.append(
            FunctionSpec(
                logical_id=logical_id,
                code_uri=props["CodeUri"],
                handler=handler,
                routes=routes,
                environment=env,
                function_url="FunctionUrlConfig" in props or "FunctionUrlConfig" in global_function,
                condition=resource.get("Condition"),
            )
        )
    return specs


def has_default_route(template: dict[str, Any] | None = None) -> bool:
    """Whether an HTTP API sends paths no route matches to a function (``$default``, ``isDefaultRoute``)."""
    template = template or load_template()
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != "AWS::Serverless::HttpApi":
            continue
        paths = resource.get("Properties", {}).get("DefinitionBody", {}).get("paths", {})
        if isinstance(paths, dict) and "$default" in paths:
            return True
    return False


def resolve(value: Any, template: dict[str, Any]) -> Any:
    """A literal as is, a ``!Ref`` to a parameter as its default; anything else as ``None``."""
    if isinstance(value, str | int | float):
        return value
    if isinstance(value, dict) and set(value) == {"Ref"}:
        parameter = template.get("Parameters", {}).get(value["Ref"])
        if parameter is not None:
            return parameter.get("Default")
    return None


def table_definition(logical_id: str, template: dict[str, Any] | None = None) -> dict[str, Any]:
    """``create_table`` arguments for an ``AWS::DynamoDB::Table`` resource (keys, indexes, billing)."""
    template = template or load_template()
    props = template["Resources"][logical_id]["Properties"]
    args: dict[str, Any] = {
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if "GlobalSecondaryIndexes" in props:
        args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    return args
