"""The template's functions, imported in-process and invoked one request at a time, as Lambda runs them.

Each function gets its template environment: literals as written, parameters at their local defaults
(``LOCAL_DEFAULTS``) or else the template's, the emulated secrets and tables by name, and anything the shell
already sets wins (same variable names as in Lambda).
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from local.template import TEMPLATE, FunctionSpec, resolve
from local.vendors import SPECS

__all__ = [
    "LOCAL_DEFAULTS",
    "LocalFunction",
    "add_layers_to_path",
    "function_environment",
    "load_functions",
    "shell_wins",
]

ROOT = TEMPLATE.parent
# Placeholders that let the stack start and every link on its index work, one vendor's from its stand-in module
# (``SPEC.defaults``); they win over the template's parameter defaults (not over its literals), and the shell
# overrides them (an empty value included).
LOCAL_DEFAULTS: dict[str, str] = {name: value for spec in SPECS for name, value in spec.defaults.items()}


@dataclass
class LocalContext:
    """The part of Lambda's context object that Powertools and the handlers read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    deadline: float

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


# One lock for every function in the process: Lambda runs one request per execution environment, and module
# state (a function's caches, a vendor's settings) is written with that in mind. Powertools' resolver, used
# before, even kept the current event on a class shared by every function: two at once swapped users.
_INVOKE_LOCK = threading.Lock()


class LocalFunction:
    """One function's handler, called one request at a time across all functions, as in Lambda."""

    def __init__(self, spec: FunctionSpec, module: ModuleType, *, memory: int, timeout: int) -> None:
        self.spec = spec
        self.module = module
        self._handler: Callable[[dict[str, Any], Any], Any] = getattr(module, spec.handler.rsplit(".", 1)[-1])
        self._memory = memory
        self._timeout = timeout
        self._lock = _INVOKE_LOCK

    @property
    def name(self) -> str:
        return Path(self.spec.code_uri).name

    @property
    def audience(self) -> str:
        return str(getattr(self.module, "AUDIENCE", self.name))

    def invoke(self, event: dict[str, Any]) -> Any:
        context = LocalContext(
            function_name=f"sso-bridge-{self.spec.logical_id}",
            memory_limit_in_mb=self._memory,
            invoked_function_arn=f"arn:aws:lambda:local:123456789012:function:sso-bridge-{self.spec.logical_id}",
            aws_request_id=str(uuid.uuid4()),
            deadline=time.monotonic() + self._timeout,
        )
        with self._lock:
            try:
                return self._handler(event, context)
            except Exception:
                # What CloudWatch would hold for an unhandled error; the client gets API Gateway's 5xx.
                traceback.print_exc()
                raise


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def function_environment(
    spec: FunctionSpec,
    template: dict[str, Any],
    *,
    resources: Mapping[str, str],
    defaults: Mapping[str, str],
) -> dict[str, str]:
    """``spec``'s variables as Lambda would see them; ``resources`` maps logical ids to local names.

    ``defaults`` stand in for parameters and values only a deployment knows (``!Sub``, ``!GetAtt``); the
    template's literals are kept as written.
    """
    env: dict[str, str] = {}
    for name, value in spec.environment.items():
        ref = value.get("Ref") if isinstance(value, dict) else None
        literal = isinstance(value, str | int | float)
        if isinstance(ref, str) and ref in resources:
            resolved: Any = resources[ref]
        elif name in defaults and not literal:
            resolved = defaults[name]
        else:
            resolved = resolve(value, template)
        if resolved is not None:
            env[name] = _text(resolved)
    return env


def shell_wins(env: Mapping[str, str], shell: Mapping[str, str]) -> dict[str, str]:
    """``env`` as the handler sees it once ``load_functions`` applied it: what the shell sets is kept."""
    return {name: shell.get(name, value) for name, value in env.items()}


def add_layers_to_path(template: dict[str, Any]) -> None:
    """What Lambda does with /opt/python: the template's layers and the repository root become importable."""
    paths = [str(ROOT)] + [
        str(ROOT / resource["Properties"]["ContentUri"])
        for resource in template.get("Resources", {}).values()
        if resource.get("Type") == "AWS::Serverless::LayerVersion"
    ]
    for path in reversed(paths):
        if path not in sys.path:
            sys.path.insert(0, path)


def load_functions(
    specs: list[FunctionSpec],
    environments: list[dict[str, str]],
    template: dict[str, Any],
    *,
    shell: Mapping[str, str],
) -> list[LocalFunction]:
    """Import every handler (a cold start each); variables set in ``shell`` are never overwritten."""

    def apply(env: Mapping[str, str]) -> None:
        os.environ.update({name: value for name, value in env.items() if name not in shell})

    # Handlers share os.environ: everyone's variables first, then each function's own just before its import.
    for env in environments:
        apply(env)
    globals_ = template.get("Globals", {}).get("Function", {})
    loaded = []
    for spec, env in zip(specs, environments, strict=True):
        apply(env)
        module = importlib.import_module(f"functions.{Path(spec.code_uri).name}.app")
        memory = int(resolve(spec_property(template, spec, "MemorySize", globals_), template) or 128)
        timeout = int(resolve(spec_property(template, spec, "Timeout", globals_), template) or 3)
        loaded.append(LocalFunction(spec, module, memory=memory, timeout=timeout))
    return loaded


def spec_property(template: dict[str, Any], spec: FunctionSpec, name: str, globals_: Mapping[str, Any]) -> Any:
    props = template["Resources"][spec.logical_id].get("Properties", {})
    return props.get(name, globals_.get(name))
