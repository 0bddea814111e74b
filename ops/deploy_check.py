"""Refuse samconfig.toml's placeholder values before ``sam deploy`` (and ``sam build``) runs: ``make deploy``.

    python -m ops.deploy_check [--config samconfig.toml] [--config-env default]

The shipped samconfig.toml holds example values (``https://app.example.com/sso/login``,
``yourworkspace.myclickfunnels.com``, ...) so that ``sam deploy --guided`` offers them as defaults. Deployed as
they are, the stack comes up and fails only when a user is sent to a sign-in page or a portal nobody owns, so
they are refused here, each named with what to put instead (its Description in template.yaml), one line each.

The overrides are read as ``sam deploy`` reads them: the TOML with ``tomllib``, then ``parameter_overrides``
(a list of ``Key=Value`` strings, one string ``Key="Value" ...`` as ``sam deploy --guided`` saves it, or a
table) split by SAM's own rules (``samcli.cli.types.CfnParameterOverridesType``, same patterns; a test holds
the two to the same answers), so the values checked are the values deployed. Nothing is run, nothing reaches
a shell, and no value is echoed (it may hold anything): a line names the parameter and the placeholder in it.

Flagged: a host under example.com, example.org or example.net (RFC 2606), ``yourworkspace``, ``yourcompany``,
``REPLACE_ME``, in any of the template's parameters. A vendor switched off (``EnableHappyFox=false`` in the
same overrides) needs none of its parameters (``HappyFox...``) to be real.

Exit status: 0 nothing to fix, 2 something to fix (or no samconfig.toml, or none of its overrides).
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from local.template import load_template
from ops.vendor_template import vendor_templates

__all__ = ["CONFIG", "EXIT_FIX", "ConfigError", "Problem", "check", "main", "parameter_overrides", "placeholders"]

CONFIG = Path("samconfig.toml")
DEFAULT_ENV = "default"
EXIT_FIX = 2
# RFC 2606's example domains, as a host or a host's parent (app.example.com), never inside another name.
_EXAMPLE_HOST = re.compile(
    r"(?<![a-z0-9-])(?:[a-z0-9-]+\.)*example\.(?:com|org|net)(?!\.?[a-z0-9-])", re.ASCII | re.IGNORECASE
)
_MARKERS = ("yourworkspace", "yourcompany", "REPLACE_ME")
# SAM's patterns for "Key=Value" and "ParameterKey=K,ParameterValue=V" (samcli/cli/types.py): a value is a
# double- or single-quoted string with backslash escapes, or a run of characters other than space, " and \.
_KEY = r"""([A-Za-z0-9"']+)"""
_VALUE = r"""("(?:\\.|[^"\\]+)*"|'(?:\\.|[^'\\]+)*'|(?:\\.|[^ "\\]+)+)"""
_SAM_PATTERNS = (
    re.compile(rf"(?:ParameterKey={_KEY},ParameterValue={_VALUE})"),
    re.compile(rf"(?:(?: ){_KEY}={_VALUE})"),
)
_BY_HAND = (
    "this check reads samconfig.toml only: put the values there, or check them yourself and run .venv/bin/sam deploy"
)
_GUIDED = "run `make deploy GUIDED=1` (sam deploy --guided) first: it asks for each parameter and saves them there"


class ConfigError(Exception):
    """samconfig.toml cannot be read or holds no overrides to check; exit status 2."""


@dataclass(frozen=True)
class Problem:
    parameter: str
    found: str  # the placeholders found in its value (never the value)
    instead: str  # what to put there: the parameter's Description in template.yaml

    def line(self) -> str:
        return f"{self.parameter} is a placeholder ({self.found}); template.yaml says: {self.instead}"


def _printable(text: str, limit: int = 60) -> str:
    shown = "".join(char if char.isprintable() else f"\\x{ord(char):02x}" for char in text)
    return shown if len(shown) <= limit else shown[:limit] + "..."


def placeholders(value: str) -> list[str]:
    """The placeholders in ``value``: example hosts as written, markers as spelled above (never the value)."""
    found = [match.group(0).lower() for match in _EXAMPLE_HOST.finditer(value)]
    folded = value.casefold()
    found += [marker for marker in _MARKERS if marker.casefold() in folded]
    return list(dict.fromkeys(found))


def _section(data: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    for key in keys:
        value = data.get(key)
        if not isinstance(value, Mapping):
            return {}
        data = value
    return data


def parameter_overrides(config: Path, env: str = DEFAULT_ENV) -> dict[str, str]:
    """The ``parameter_overrides`` ``sam deploy --config-env ENV`` would pass, parsed as SAM parses them."""
    shown = _printable(str(config), 400)
    try:
        data = tomllib.loads(config.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"no {shown}: {_GUIDED}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {shown}: {getattr(exc, 'strerror', None) or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{shown} is not valid TOML: {exc}") from exc
    # sam deploy takes the command's own parameters first, then the environment's global ones.
    raw: object = None
    for command in ("deploy", "global"):
        section = _section(data, env, command, "parameters")
        if "parameter_overrides" in section:
            raw = section["parameter_overrides"]
            break
    if raw is None or raw in ("", []):
        raise ConfigError(f"{shown} has no parameter_overrides for [{_printable(env)}.deploy.parameters]: {_GUIDED}")
    return _overrides(raw, shown)


def _unquote(text: str) -> str:
    if text and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1]
    return text.replace("\\ ", " ").replace('\\"', '"').replace("\\'", "'")


def _flatten(value: object) -> list[object]:
    if isinstance(value, list | tuple):
        return [item for element in value for item in _flatten(element)]
    return [value]


def _overrides(raw: object, shown: str) -> dict[str, str]:
    """``parameter_overrides`` split as SAM splits them (strings, lists of them, tables)."""
    found: dict[str, str] = {}
    for number, value in enumerate(_flatten(raw), start=1):
        if value is None:
            continue
        if isinstance(value, Mapping):
            for key, item in value.items():
                if key == "$include":
                    raise ConfigError(f"{shown}: parameter_overrides includes other files: {_BY_HAND}")
                if isinstance(item, list):
                    item = ",".join(str(element).strip() for element in item if element not in (None, ""))
                found[str(key)] = "" if item is None else str(item)
            continue
        if not isinstance(value, str):
            raise ConfigError(f"{shown}: parameter_overrides holds a {type(value).__name__}, not Key=Value text")
        if value.startswith("file://"):
            raise ConfigError(f"{shown}: parameter_overrides reads another file (file://): {_BY_HAND}")
        text = " " + value.strip()
        for pattern in _SAM_PATTERNS:
            pairs = pattern.findall(text)
            if pairs:
                found.update(pairs)
                break
        else:
            raise ConfigError(
                f"{shown}: parameter_overrides entry {number} is not Key=Value text (sam deploy refuses it too)"
            )
    return {_unquote(key): _unquote(value) for key, value in found.items()}


def check(overrides: Mapping[str, str], template: dict[str, Any] | None = None) -> list[Problem]:
    """The placeholders ``overrides`` would deploy, one problem per parameter, in the template's order.

    Only the template's parameters count: ``sam deploy`` passes no other, and takes the previous value (or the
    default) for one it is not given, so an absent parameter is not refused here (CloudFormation's Rules say
    what a first deployment lacks, before it creates anything)."""
    template = template if template is not None else load_template()
    parameters: Mapping[str, Any] = template.get("Parameters", {})
    switched_off = [vendor for vendor in vendor_templates(template).values() if overrides.get(vendor.switch) == "false"]
    problems: list[Problem] = []
    for name, spec in parameters.items():
        if name not in overrides or any(vendor.owns(name) for vendor in switched_off):
            continue
        found = placeholders(overrides[name])
        if found:
            description = " ".join(str(spec.get("Description") or "your own value").split())
            problems.append(Problem(name, ", ".join(found), description))
    return problems


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ops.deploy_check",
        description="Refuse samconfig.toml's placeholder values before sam deploy.",
        epilog="Exit status: 0 nothing to fix, 2 something to fix (each named on stderr).",
    )
    parser.add_argument("--config", type=Path, default=CONFIG, help="SAM's config file (default: %(default)s)")
    parser.add_argument("--config-env", default=DEFAULT_ENV, help="its environment (default: %(default)s)")
    return parser


def main(argv: Sequence[str] | None = None, *, err: TextIO | None = None) -> int:
    err = err or sys.stderr
    parser = _parser()
    args = parser.parse_args(argv)
    where = _printable(str(args.config), 400)
    try:
        overrides = parameter_overrides(args.config, args.config_env)
    except ConfigError as exc:
        print(f"{parser.prog}: error: {exc}", file=err)
        return EXIT_FIX
    problems = check(overrides)
    for problem in problems:
        print(f"{where}: {problem.line()}", file=err)
    if problems:
        print(
            f"{where}: set them in parameter_overrides (or `make deploy GUIDED=1`, which asks), then `make deploy`",
            file=err,
        )
        return EXIT_FIX
    return 0


if __name__ == "__main__":
    sys.exit(main())
