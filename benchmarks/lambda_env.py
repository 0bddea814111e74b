"""What a function sees in Lambda, rebuilt on this machine from template.yaml and `sam build`'s output.

- Paths: the function's built folder is the task root (``/var/task``), the built layer is ``/opt``; ``PYTHONPATH``
  puts them ahead of the runtime's own packages in the order Lambda's Python runtime does (``/var/task``,
  ``/opt/python/lib/python3.13/site-packages``, ``/opt/python``, then the runtime's site-packages, which here
  is the bench venv's: boto3 alone).
- The variables Lambda sets (``LAMBDA_TASK_ROOT``, ``AWS_EXECUTION_ENV``, ``_HANDLER``, X-Ray's, ...), and the
  template's own for the function (Globals merged under the function's), with ``!Ref``/``!Sub``/``!If`` resolved:
  a parameter to the value ``sam deploy`` would get (samconfig.toml's overrides, else its default), a secret to
  its ARN in the emulator, a table to a CloudFormation-style generated name, a condition (``!Equals``, ``!Not``,
  ``!And``, ``!Or``, ``!Condition``) evaluated over those parameters; a resource whose condition is false does
  not exist, and a variable or layer that resolves to ``AWS::NoValue`` is left out, as CloudFormation does.
  The OpenID Connect flows use the same template with ``OidcIssuer`` (and ``OidcClientId``) given
  (``Stack.with_parameters``).
- A layer built for another architecture (arm64 here, on an x86_64 machine) has extension modules this
  interpreter cannot load, and the package would silently fall back to pure Python (wrapt does), which Lambda
  never does. Those distributions, same name and version, are installed for this machine into an overlay that
  sits just ahead of the layer (``native_overlay``); everything else runs as built. The OIDC layer is all
  compiled packages (cryptography, cffi) in ``/opt/oidc-packages``: its recipe (layers/oidc/Makefile) is run again
  for this machine's wheels into ``.venv/bench-oidc-packages`` (``oidc_packages``), which the functions get as
  ``OIDC_PACKAGES_PATH`` (the folder that stands for ``/opt/oidc-packages``; never on ``sys.path`` otherwise).
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import secrets
import shutil
import subprocess
import sysconfig
import tempfile
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.template import load_template
from tests.helpers import (
    HAPPYFOX_ACCOUNT_URL,
    KUSTOMER_CUSTOM_DOMAIN,
    KUSTOMER_PORTAL_HOST,
    LOGIN_TOKEN_KEY,
    PLATFORM_LOGIN_URL,
    VENDOR_KEYS,
    WORKSPACE,
)

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / ".aws-sam" / "build"
BENCH_DIR = ROOT / ".bench"
RUNTIME_PYTHON = ROOT / ".venv" / "bench-runtime" / "bin" / "python"
OIDC_PACKAGES = ROOT / ".venv" / "bench-oidc-packages"
OIDC_LAYER_SOURCE = ROOT / "layers" / "oidc"
# The bridge's client at the stand-in OpenID provider (benchmarks/oidc_provider.py): the OIDC stack's
# OidcClientId, and what its client secret (OidcClientSecret) holds once seeded.
OIDC_CLIENT_ID = "sso-bridge-bench"
OIDC_CLIENT_SECRET = "bench-oidc-client-secret-0123456789abcdef"

STACK_NAME = "sso-bridge"
REGION = "eu-west-1"
ACCOUNT_ID = "123456789012"
PSEUDO = {
    "AWS::StackName": STACK_NAME,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}
NO_VALUE = {"Ref": "AWS::NoValue"}
# Parameters without a default, when samconfig.toml has no override for them: the tests' values.
REQUIRED_PARAMETERS = {
    "PlatformLoginUrl": PLATFORM_LOGIN_URL,
    "ClickFunnelsWorkspaceDomain": WORKSPACE,
    "KustomerRedirectHosts": f"{KUSTOMER_PORTAL_HOST},{KUSTOMER_CUSTOM_DOMAIN}",
    "HappyFoxAccountUrl": HAPPYFOX_ACCOUNT_URL,
}


def vendor_settings(template: Mapping[str, Any], deployed: Mapping[str, str]) -> dict[str, str]:
    """Every portal switched on, and the settings it then needs: the bench measures every vendor.

    A portal's switch is the parameter its function's condition tests (``<Vendor>Enabled: !Equals [!Ref
    Enable<Vendor>, "true"]``), set to "true". Its settings are the parameters its function takes in its own
    environment (``VARIABLE: !Ref Parameter``); each gets the tests' value of that variable (``tests.helpers.VARIABLE``,
    the value the sample events are written for) when ``deployed`` leaves it empty, or leaves the portal off (its
    values are then samconfig.toml's placeholders, not a deployment's). A new vendor needs nothing here."""
    import tests.helpers

    parameters = template.get("Parameters", {})
    conditions = template.get("Conditions", {})
    values: dict[str, str] = {}
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        switched_off = False
        switch = conditions.get(str(resource.get("Condition")), {}).get("Fn::Equals")
        if isinstance(switch, list) and len(switch) == 2 and switch[1] == "true" and isinstance(switch[0], dict):
            name = str(switch[0].get("Ref"))
            if name in parameters:
                switched_off = deployed.get(name) != "true"
                values[name] = "true"
        variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        for variable, value in variables.items():
            name = str(value.get("Ref")) if isinstance(value, dict) and len(value) == 1 else ""
            tests_value = getattr(tests.helpers, variable, None)
            if name in parameters and isinstance(tests_value, str) and (switched_off or not deployed.get(name)):
                values[name] = tests_value
    return values


class TemplateError(Exception):
    """Something in template.yaml the bench cannot turn into a Lambda environment."""


def _suffix(size: int = 12) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(size))


def deployed_parameters(template: Mapping[str, Any], samconfig: Path = ROOT / "samconfig.toml") -> dict[str, str]:
    """Every template parameter's value: samconfig.toml's deploy overrides, the default, or the tests' value."""
    overrides: dict[str, str] = {}
    if samconfig.exists():
        config = tomllib.loads(samconfig.read_text())
        raw = config.get("default", {}).get("deploy", {}).get("parameters", {}).get("parameter_overrides", [])
        for item in [raw] if isinstance(raw, str) else raw:
            for pair in re.findall(r"(\w+)=(\"[^\"]*\"|\S+)", item):
                overrides[pair[0]] = pair[1].strip('"')
    values = {}
    for name, spec in template.get("Parameters", {}).items():
        if name in overrides:
            values[name] = overrides[name]
        elif "Default" in spec:
            values[name] = str(spec["Default"])
        elif name in REQUIRED_PARAMETERS:
            values[name] = REQUIRED_PARAMETERS[name]
        else:
            raise TemplateError(f"parameter {name} has no default: give it a value in REQUIRED_PARAMETERS")
    return values


def secret_value(logical_id: str) -> str:
    """The key an ``AWS::SecretsManager::Secret`` holds: the login-token key, a vendor's, the OpenID client
    secret, or a random one."""
    if logical_id == "LoginTokenSecret":
        return LOGIN_TOKEN_KEY
    if logical_id == "OidcClientSecret":
        return OIDC_CLIENT_SECRET
    for vendor, key in VENDOR_KEYS.items():
        if logical_id.lower() == f"{vendor}secret":
            return key
    return secrets.token_urlsafe(36)


@dataclass
class Stack:
    """The template with every resource given a physical id, as after a deployment."""

    template: dict[str, Any]
    parameters: dict[str, str]
    physical: dict[str, str] = field(default_factory=dict)  # logical id -> what !Ref returns
    _conditions: dict[str, bool] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, template: dict[str, Any] | None = None, overrides: Mapping[str, str] | None = None) -> Stack:
        """The template deployed with samconfig.toml's values and every portal on (``vendor_settings``)."""
        template = template or load_template()
        deployed = deployed_parameters(template)
        parameters = {**deployed, **vendor_settings(template, deployed), **(overrides or {})}
        stack = cls(template, parameters)
        stack._name_resources()
        return stack

    def with_parameters(self, **overrides: str) -> Stack:
        """The same deployment updated with other parameter values: resources that exist in both keep their
        physical ids (and so the emulator's secrets and tables); those only the new values create get new ones."""
        unknown = set(overrides) - set(self.template.get("Parameters", {}))
        if unknown:
            raise TemplateError(f"no such parameter(s): {', '.join(sorted(unknown))}")
        stack = Stack(self.template, {**self.parameters, **overrides}, dict(self.physical))
        stack._name_resources()
        for logical_id in set(stack.physical) - set(stack.all_resources()):
            del stack.physical[logical_id]
        return stack

    def _name_resources(self) -> None:
        for logical_id, resource in self.all_resources().items():
            if logical_id not in self.physical:
                self.physical[logical_id] = self._physical_id(logical_id, resource)

    def _physical_id(self, logical_id: str, resource: Mapping[str, Any]) -> str:
        kind, props = resource.get("Type", ""), resource.get("Properties", {})
        generated = f"{STACK_NAME}-{logical_id}-{_suffix()}"
        if kind == "AWS::SecretsManager::Secret":  # !Ref is the ARN; the name gets a random tail
            name = self.resolve(props["Name"]) if "Name" in props else f"{logical_id}-{_suffix()}"
            return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:{name}-{_suffix(6)}"
        if kind == "AWS::DynamoDB::Table":
            return self.resolve(props["TableName"]) if "TableName" in props else generated
        if kind == "AWS::Logs::LogGroup" and "LogGroupName" in props:
            return self.resolve(props["LogGroupName"])
        if kind == "AWS::Serverless::Function":
            return self.resolve(props["FunctionName"]) if "FunctionName" in props else generated
        return generated

    # --- conditions ---------------------------------------------------------------------------------------

    def condition(self, name: str) -> bool:
        """A named condition of the template's ``Conditions``, evaluated over the parameters."""
        if name not in self._conditions:
            definitions = self.template.get("Conditions", {})
            if name not in definitions:
                raise TemplateError(f"no condition {name!r} in the template")
            self._conditions[name] = False  # a condition that refers to itself is false, not a recursion
            self._conditions[name] = self._evaluate(definitions[name])
        return self._conditions[name]

    def _evaluate(self, expression: Any) -> bool:
        if isinstance(expression, dict) and len(expression) == 1:
            ((function, argument),) = expression.items()
            if function in ("Condition", "Fn::Condition"):  # JSON, and the YAML tag as local.template reads it
                return self.condition(str(argument))
            if function == "Fn::Equals" and isinstance(argument, list) and len(argument) == 2:
                return self.resolve(argument[0]) == self.resolve(argument[1])
            if function == "Fn::Not" and isinstance(argument, list) and len(argument) == 1:
                return not self._evaluate(argument[0])
            if function == "Fn::And" and isinstance(argument, list):
                return all(self._evaluate(item) for item in argument)
            if function == "Fn::Or" and isinstance(argument, list):
                return any(self._evaluate(item) for item in argument)
        raise TemplateError(f"cannot evaluate condition {expression!r}")

    def exists(self, resource: Mapping[str, Any]) -> bool:
        """False for a resource whose ``Condition`` is false: CloudFormation does not create it."""
        name = resource.get("Condition")
        return name is None or self.condition(str(name))

    def all_resources(self) -> dict[str, Any]:
        return {name: res for name, res in self.template.get("Resources", {}).items() if self.exists(res)}

    def resources(self, kind: str) -> dict[str, Any]:
        return {name: res for name, res in self.all_resources().items() if res.get("Type") == kind}

    # --- values -------------------------------------------------------------------------------------------

    def choose(self, value: Any) -> Any:
        """``value`` with any ``!If`` at its top replaced by the branch its condition picks."""
        while isinstance(value, dict) and list(value) == ["Fn::If"]:
            argument = value["Fn::If"]
            if not isinstance(argument, list) or len(argument) != 3:
                raise TemplateError(f"malformed Fn::If {value!r}")
            name, when_true, when_false = argument
            value = when_true if self.condition(str(name)) else when_false
        return value

    def is_no_value(self, value: Any) -> bool:
        """True when ``value`` resolves to ``AWS::NoValue``: the property (or list item) is left out."""
        return bool(self.choose(value) == NO_VALUE)

    def resolve(self, value: Any) -> str:
        """A literal, ``!Ref``, ``!Sub``, ``!GetAtt`` or ``!If`` as the string CloudFormation puts in an
        environment variable."""
        value = self.choose(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float):
            return str(value)
        if isinstance(value, dict) and len(value) == 1 and value != NO_VALUE:
            ((function, argument),) = value.items()
            if function == "Ref":
                return self._ref(str(argument))
            if function == "Fn::Sub":
                text, extra = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
                return re.sub(r"\$\{([^}!]+)\}", lambda m: self._sub(m.group(1), extra), text)
            if function == "Fn::GetAtt":
                name, attribute = argument if isinstance(argument, list) else str(argument).split(".", 1)
                return self._get_att(name, attribute)
        raise TemplateError(f"cannot resolve {value!r} for an environment variable")

    def _ref(self, name: str) -> str:
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name]
        raise TemplateError(f"!Ref {name}: no such parameter or resource")

    def _sub(self, name: str, extra: Mapping[str, Any]) -> str:
        if name in extra:
            return self.resolve(extra[name])
        if "." in name:
            return self._get_att(*name.split(".", 1))
        return self._ref(name)

    def _get_att(self, name: str, attribute: str) -> str:
        if name not in self.physical:
            raise TemplateError(f"!GetAtt {name}.{attribute}: no such resource (or its condition is false)")
        kind = self.template["Resources"][name]["Type"]
        if kind == "AWS::DynamoDB::Table" and attribute == "Arn":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{self.physical[name]}"
        return f"{self.physical[name]}.{attribute}"


@dataclass(frozen=True)
class LambdaFunction:
    """One function as Lambda would run it: its code, handler, memory and the environment it gets."""

    logical_id: str
    name: str
    handler: str
    memory: int
    timeout: int
    tracing: str
    task_root: Path
    template_env: dict[str, str]
    log_group: str
    layers: tuple[str, ...] = ()  # the layers attached, in order: logical ids (or ARNs)

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.name}"

    def environment(
        self,
        *,
        layer: Path,
        overlay: list[Path],
        runtime_python: Path,
        endpoint: str,
        xray_daemon: tuple[str, int],
        home: Path,
        trace_id: str,
        oidc_packages: Path | None = None,
        dynamodb_endpoint: str | None = None,
    ) -> dict[str, str]:
        """What Lambda's Python 3.13 runtime puts in the function's environment, then the template's variables.
        ``oidc_packages``: the folder standing for the OIDC layer's ``/opt/oidc-packages`` (``OIDC_PACKAGES_PATH``),
        for a function the OIDC layer is attached to. ``dynamodb_endpoint``: DynamoDB's, when it is not ``endpoint``
        (``AWS_ENDPOINT_URL_DYNAMODB``, which boto3 prefers for that service)."""
        python = layer / "python"
        path = [self.task_root, *overlay, python / "lib" / "python3.13" / "site-packages", python]
        host, port = xray_daemon
        env = {
            "PATH": f"{runtime_python.parent}:/usr/local/bin:/usr/bin/:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "HOME": str(home),  # no ~/.aws: Lambda has no shared config or credentials files
            "PYTHONPATH": os.pathsep.join(str(p) for p in path),
            "PYTHONDONTWRITEBYTECODE": "1",  # /var/task and /opt are read-only: nothing compiled is kept
            "LAMBDA_TASK_ROOT": str(self.task_root),
            "LAMBDA_RUNTIME_DIR": str(runtime_python.parent.parent),  # the runtime's own folder: the bench venv
            "_HANDLER": self.handler,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": self.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": f"2026/11/23/[$LATEST]{secrets.token_hex(16)}",
            "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "ASIABENCHBENCHBENCH0",
            "AWS_SECRET_ACCESS_KEY": "bench-secret-access-key",
            "AWS_SESSION_TOKEN": "bench-session-token",
            "AWS_ENDPOINT_URL": endpoint,  # the emulator: the only variable Lambda would not set
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
            "AWS_XRAY_DAEMON_ADDRESS": f"{host}:{port}",
            "_AWS_XRAY_DAEMON_ADDRESS": host,
            "_AWS_XRAY_DAEMON_PORT": str(port),
            "_X_AMZN_TRACE_ID": trace_id,
        }
        if dynamodb_endpoint and dynamodb_endpoint != endpoint:
            env["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb_endpoint  # DynamoDB Local (benchmarks/emulator.py)
        if oidc_packages is not None:
            env["OIDC_PACKAGES_PATH"] = str(oidc_packages)
        return {**env, **self.template_env}


def trace_id(sampled: bool) -> str:
    """An ``_X_AMZN_TRACE_ID`` as Lambda sets it for an invocation."""
    root = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    return f"Root={root};Parent={secrets.token_hex(8)};Sampled={1 if sampled else 0};Lineage=1:{secrets.token_hex(4)}:0"


def lambda_functions(stack: Stack, build: Path = BUILD) -> dict[str, LambdaFunction]:
    """Every ``AWS::Serverless::Function``, its code where `sam build` put it."""
    globals_ = stack.template.get("Globals", {}).get("Function", {})
    found = {}
    for logical_id, resource in stack.resources("AWS::Serverless::Function").items():
        props = resource.get("Properties", {})

        def setting(name: str, default: Any, props: Mapping[str, Any] = props) -> Any:
            return props.get(name, globals_.get(name, default))

        variables = {
            **globals_.get("Environment", {}).get("Variables", {}),
            **props.get("Environment", {}).get("Variables", {}),
        }
        log_group = setting("LoggingConfig", {}).get("LogGroup")
        layers = [*globals_.get("Layers", []), *props.get("Layers", [])]  # SAM appends the function's to Globals'
        attached = tuple(
            str(stack.choose(layer).get("Ref")) if isinstance(stack.choose(layer), dict) else stack.resolve(layer)
            for layer in layers
            if not stack.is_no_value(layer)
        )
        found[logical_id] = LambdaFunction(
            logical_id=logical_id,
            name=stack.physical[logical_id],
            handler=str(setting("Handler", "app.lambda_handler")),
            memory=int(stack.resolve(setting("MemorySize", 128))),
            timeout=int(stack.resolve(setting("Timeout", 3))),
            tracing=str(stack.resolve(setting("Tracing", "PassThrough"))),
            task_root=build / logical_id,
            template_env={
                name: stack.resolve(value) for name, value in variables.items() if not stack.is_no_value(value)
            },
            log_group=stack.resolve(log_group) if log_group else f"/aws/lambda/{stack.physical[logical_id]}",
            layers=attached,
        )
    return found


def _attached_layers(stack: Stack, build: Path, holds: str) -> list[Path]:
    """The built folders of the template's layers attached to some function that hold ``holds``."""
    functions = lambda_functions(stack, build).values()
    names = dict.fromkeys(name for fn in functions for name in fn.layers)
    layers = stack.resources("AWS::Serverless::LayerVersion")
    return [build / name for name in names if name in layers and (build / name / holds).is_dir()]


def layer_dir(stack: Stack, build: Path = BUILD) -> Path:
    """The built signing layer's folder (its ``python/`` is Lambda's ``/opt/python``)."""
    found = _attached_layers(stack, build, "python")
    if len(found) != 1:
        raise TemplateError(f"expected one attached layer with python/ in {build}, found {found}")
    return found[0]


def oidc_layer_id(stack: Stack) -> str | None:
    """The template's OIDC layer (the LayerVersion built from layers/oidc), whether or not it is deployed."""
    for name, resource in stack.template.get("Resources", {}).items():
        uri = resource.get("Properties", {}).get("ContentUri")
        is_layer = resource.get("Type") == "AWS::Serverless::LayerVersion" and isinstance(uri, str)
        if is_layer and (ROOT / uri).resolve() == OIDC_LAYER_SOURCE.resolve():
            return str(name)
    return None


def oidc_layer_dir(stack: Stack, build: Path = BUILD) -> Path | None:
    """The built OIDC layer's folder (its ``oidc-packages/`` is Lambda's ``/opt/oidc-packages``), when a function
    has it attached (the template attaches it only with OpenID Connect on)."""
    found = _attached_layers(stack, build, "oidc-packages")
    return found[0] if found else None


def oidc_packages(
    runtime_python: Path, source: Path = OIDC_LAYER_SOURCE, target: Path = OIDC_PACKAGES
) -> tuple[Path, dict[str, str]]:
    """The OIDC layer's packages, same pinned versions, for this machine, in ``target`` (default
    .venv/bench-oidc-packages); and their versions. Built by the layer's own recipe (layers/oidc/Makefile, with
    ``OIDC_PLATFORM`` naming this machine's wheels and the runtime's Python as ``python3.13``), once per recipe;
    then cached. The folder is on nobody's ``sys.path``: a function gets it as ``OIDC_PACKAGES_PATH``."""
    recipe = [source / "Makefile", source / "requirements.txt"]
    missing = [str(path) for path in recipe if not path.exists()]
    if missing:
        raise TemplateError(f"the OIDC layer's recipe is missing: {', '.join(missing)}")
    wheel_platform = f"manylinux2014_{platform.machine()}"
    digest = hashlib.sha256(wheel_platform.encode())
    for path in recipe:
        digest.update(path.read_bytes())
    stamp = target / ".bench-recipe"
    if not (stamp.exists() and stamp.read_text() == digest.hexdigest()):
        make = shutil.which("make")
        if make is None:
            raise TemplateError("make is needed to build the OIDC layer's packages for this machine")
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="bench-oidc-", dir=target.parent) as staging:
            env = {
                **os.environ,
                "PATH": f"{runtime_python.parent}{os.pathsep}{os.environ.get('PATH', '')}",
                "ARTIFACTS_DIR": staging,
                "OIDC_PLATFORM": wheel_platform,
            }
            subprocess.run([make, "-s", "-C", str(source), "build-OidcLayer"], env=env, check=True)
            shutil.rmtree(target, ignore_errors=True)
            Path(staging, "oidc-packages").rename(target)
        stamp.write_text(digest.hexdigest())
    return target, dist_versions(target)


def dist_versions(folder: Path) -> dict[str, str]:
    """Name -> version of the distributions installed in ``folder`` (pip's ``--target`` layout)."""
    found = {}
    for info in folder.glob("*.dist-info"):
        name, _, version = info.name.removesuffix(".dist-info").rpartition("-")
        found[name] = version
    return found


# --- a layer built for another architecture ----------------------------------------------------------------


@dataclass(frozen=True)
class ForeignExtensions:
    """Distributions in the layer whose compiled modules this interpreter cannot load."""

    layer_suffix: str  # e.g. .cpython-313-aarch64-linux-gnu.so
    host_suffix: str
    distributions: dict[str, str]  # name -> version


def foreign_extensions(layer_python: Path) -> ForeignExtensions:
    host = str(sysconfig.get_config_var("EXT_SUFFIX") or ".so")
    suffixes: set[str] = set()
    owners: dict[str, str] = {}
    records = {
        record: record.parent.name.removesuffix(".dist-info") for record in layer_python.glob("*.dist-info/RECORD")
    }
    for record, dist in records.items():
        for line in record.read_text().splitlines():
            path = line.split(",", 1)[0]
            match = re.search(r"(\.cpython-[^/]*\.so)$", path)
            if match and match.group(1) != host:
                suffixes.add(match.group(1))
                name, _, version = dist.rpartition("-")
                owners[name] = version
    return ForeignExtensions(", ".join(sorted(suffixes)), host, owners)


def native_overlay(
    runtime_python: Path, foreign: ForeignExtensions, cache: Path = BENCH_DIR / "native-layer"
) -> list[Path]:
    """The foreign distributions, same versions, built for this machine (pip, once; then cached)."""
    overlay = []
    for name, version in sorted(foreign.distributions.items()):
        target = cache / f"{name}-{version}{foreign.host_suffix.removesuffix('.so')}"
        if not list(target.glob("*.dist-info")):
            subprocess.run(
                [
                    str(runtime_python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                    "--only-binary=:all:", "--target", str(target), f"{name}=={version}",
                ],
                check=True,
            )  # fmt: skip
        overlay.append(target)
    return overlay
