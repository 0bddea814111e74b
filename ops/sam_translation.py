"""template.yaml as CloudFormation will run it: SAM's translation, offline, then a deployment's parameters applied.

Linters read the template as written; a deployment runs what SAM makes of it, with the deployer's parameters,
the Rules checked and the Conditions deciding which resources exist. This module gives tests and
`make validate` that view without AWS:

- ``translate`` runs SAM's own translator (the one ``sam validate`` runs) and keeps each resource's Metadata on
  what SAM makes of it (checkov's inline suppressions);
- ``Deployment`` evaluates parameters (defaults, then the given values), Rules and Conditions, and ``resolve``
  drops what a false condition removes (resources, outputs, ``Fn::If`` branches, ``AWS::NoValue``);
- ``dangling_references`` lists what CloudFormation would refuse as "Unresolved resource dependencies": a
  ``Ref``, ``Fn::GetAtt``, ``Fn::Sub`` or ``DependsOn`` naming a resource the conditions left out.

    python -m ops.sam_translation OUT.json    # the translation, every vendor on, for checkov (`make validate`)
"""

from __future__ import annotations

import copy
import json
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boto3.session import Session
from samcli.yamlhelper import yaml_parse
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from local.template import TEMPLATE
from ops.vendor_template import vendor_templates

__all__ = [
    "NO_VALUE",
    "Deployment",
    "checkov_input",
    "dangling_references",
    "main",
    "references",
    "sam_template",
    "translate",
]

REGION = "eu-west-1"
STACK_NAME = "sso-bridge"
NO_VALUE = {"Ref": "AWS::NoValue"}
_SUB_NAME = re.compile(r"\$\{([A-Za-z0-9:]+)(?:\.[A-Za-z0-9.]+)?\}")
_DROPPED = object()


def sam_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """template.yaml as SAM reads it (intrinsics as ``{"Ref": ...}`` mappings)."""
    template: dict[str, Any] = yaml_parse(path.read_text())
    return template


def translate(template: dict[str, Any], parameters: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The CloudFormation SAM makes of ``template``, offline; each resource's Metadata kept on what it makes."""
    template = copy.deepcopy(template)
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):  # local folders, uploaded by `sam deploy`
            if isinstance(props.get(key), str):
                props[key] = f"s3://bucket/{props[key]}"
    translator = Translator(None, Parser(), plugins=[], boto_session=Session(region_name=REGION))
    translated: dict[str, Any] = translator.translate(
        sam_template=template,
        parameter_values=dict(parameters or {}),
        passthrough_metadata=True,
        get_managed_policy_map=dict,
    )
    return translated


@dataclass
class Deployment:
    """One deployment of a template: its parameter values (defaults under the given ones) and what follows."""

    template: dict[str, Any]
    given: Mapping[str, str] = field(default_factory=dict)
    region: str = REGION
    stack_name: str = STACK_NAME

    def __post_init__(self) -> None:
        unknown = set(self.given) - set(self.template.get("Parameters", {}))
        if unknown:
            raise KeyError(f"not parameters of the template: {', '.join(sorted(unknown))}")

    @property
    def values(self) -> dict[str, str]:
        defaults = {name: str(spec.get("Default", "")) for name, spec in self.template["Parameters"].items()}
        pseudo = {
            "AWS::Region": self.region,
            "AWS::StackName": self.stack_name,
            "AWS::AccountId": "123456789012",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        return {**defaults, **self.given, **pseudo}

    def missing(self) -> list[str]:
        """Parameters without a default that were not given: CloudFormation refuses the deployment."""
        return [
            name
            for name, spec in self.template["Parameters"].items()
            if "Default" not in spec and name not in self.given
        ]

    def evaluate(self, expression: Any) -> Any:
        """The condition and rule functions (Ref, Condition, Equals, Not, And, Or, Contains) on the values."""
        if not isinstance(expression, dict):
            return expression
        [(function, argument)] = expression.items()
        if function == "Ref":
            return self.values[argument]
        if function in ("Condition", "Fn::Condition"):  # local.template's reader spells !Condition Fn::Condition
            return self.condition(argument)
        arguments = [self.evaluate(item) for item in argument]
        if function == "Fn::Equals":
            return str(arguments[0]) == str(arguments[1])
        if function == "Fn::Not":
            return not arguments[0]
        if function == "Fn::Or":
            return any(arguments)
        if function == "Fn::And":
            return all(arguments)
        if function == "Fn::Contains":
            return str(arguments[1]) in [str(item) for item in arguments[0]]
        raise ValueError(f"{function}: not a condition function this evaluator knows")

    def condition(self, name: str) -> bool:
        return bool(self.evaluate(self.template["Conditions"][name]))

    def refusals(self) -> list[str]:
        """The template's Rules this deployment fails, by name."""
        failed = []
        for name, rule in self.template.get("Rules", {}).items():
            if "RuleCondition" in rule and not self.evaluate(rule["RuleCondition"]):
                continue
            if not all(self.evaluate(assertion["Assert"]) for assertion in rule["Assertions"]):
                failed.append(name)
        return failed

    def resolve(self, template: dict[str, Any] | None = None) -> dict[str, Any]:
        """``template`` (default: this one) as this deployment creates it: resources and outputs whose condition
        is false removed, ``Fn::If`` decided, ``AWS::NoValue`` dropped, parameter ``Ref``s replaced by values."""
        source = self.template if template is None else template
        resolved: dict[str, Any] = {key: value for key, value in source.items() if key not in ("Resources", "Outputs")}
        for section in ("Resources", "Outputs"):
            kept = {
                name: self._resolve(body)
                for name, body in source.get(section, {}).items()
                if "Condition" not in body or self.condition(body["Condition"])
            }
            resolved[section] = {name: body for name, body in kept.items() if body is not _DROPPED}
        return resolved

    def render(self, value: Any) -> Any:
        """A resolved value as text, where CloudFormation would make it text (``Fn::Sub``, ``Fn::Join``, ``Ref``):
        parameters and pseudo parameters by their values, a resource as ``<LogicalId>``, an attribute as
        ``<LogicalId.Attribute>``; lists and mappings rendered item by item."""
        values = self.values
        if isinstance(value, list):
            return [self.render(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            [(function, argument)] = value.items()
            if function == "Ref":
                return values.get(argument, f"<{argument}>")
            if function == "Fn::GetAtt":
                return "<" + (argument if isinstance(argument, str) else ".".join(argument)) + ">"
            if function == "Fn::Join":
                separator, items = argument
                return str(separator).join(str(self.render(item)) for item in items)
            if function == "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
                rendered = {name: str(self.render(item)) for name, item in variables.items()}

                def substitute(match: re.Match[str]) -> str:
                    name = match.group(1)
                    if name in rendered:
                        return rendered[name]
                    return values[name] if name in values else f"<{match.group(0)[2:-1]}>"

                return _SUB_NAME.sub(substitute, str(text))
        return {key: self.render(item) for key, item in value.items()}

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            if len(value) == 1:
                [(function, argument)] = value.items()
                if function == "Fn::If":
                    name, yes, no = argument
                    return self._resolve(yes if self.condition(name) else no)
                if function == "Ref" and argument == "AWS::NoValue":
                    return _DROPPED
                if function == "Ref" and argument in self.template.get("Parameters", {}):
                    return self.values[argument]
            items = ((key, self._resolve(item)) for key, item in value.items())
            return {key: item for key, item in items if item is not _DROPPED}
        if isinstance(value, list):
            return [item for item in (self._resolve(element) for element in value) if item is not _DROPPED]
        return value


def references(value: Any) -> Iterator[str]:
    """Every logical id or parameter ``value`` names through Ref, Fn::GetAtt or Fn::Sub (``${X}``, ``${X.Attr}``)."""
    if isinstance(value, dict):
        for function, argument in value.items():
            if function == "Ref" and isinstance(argument, str):
                yield argument
            elif function == "Fn::GetAtt":
                yield (argument.split(".", 1)[0] if isinstance(argument, str) else str(argument[0]))
            elif function == "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
                yield from (name for name in _SUB_NAME.findall(text) if name not in variables)
                yield from references(variables)
            else:
                yield from references(argument)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def dangling_references(resolved: dict[str, Any]) -> list[str]:
    """``where -> name`` for each reference to a resource a resolved template does not have (nor a parameter)."""
    known = set(resolved.get("Resources", {})) | set(resolved.get("Parameters", {}))
    dangling = []
    for section in ("Resources", "Outputs"):
        for name, body in resolved.get(section, {}).items():
            depends = body.get("DependsOn", []) if isinstance(body, dict) else []
            named = [*references(body), *([depends] if isinstance(depends, str) else depends)]
            dangling += [
                f"{section}.{name} -> {target}"
                for target in sorted(set(named))
                if target not in known and not target.startswith("AWS::")
            ]
    return dangling


def checkov_input(template: dict[str, Any] | None = None) -> dict[str, Any]:
    """The translation checkov scans: every option as its default, but every vendor switched on.

    checkov decides a resource's ``Condition`` from the parameters' defaults where it can (``ZendeskEnabled``:
    ``EnableZendesk`` defaults to "false") and then scans nothing of that resource, so a vendor off by default
    would never be checked."""
    template = template if template is not None else sam_template()
    translated = translate(template)
    for vendor in vendor_templates(template).values():
        translated["Parameters"][vendor.switch]["Default"] = "true"
    return translated


def main(argv: Sequence[str] | None = None) -> int:
    """`make validate`: write the translation (every option as its default, every vendor on) for checkov."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m ops.sam_translation OUT.json", file=sys.stderr)
        return 2
    Path(args[0]).write_text(json.dumps(checkov_input(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
