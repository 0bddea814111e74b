"""What the targets share: the libFuzzer entry point, coverage for stdlib modules, and invariant checks."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable

import atheris

__all__ = ["Broken", "check", "fuzz", "instrument_module"]


class Broken(AssertionError):
    """An invariant the code under test promised and did not keep: a finding, like an escaped exception."""


def check(condition: object, message: str) -> None:
    """``assert``, kept under ``python -O``."""
    if not condition:
        raise Broken(message)


def instrument_module(module: types.ModuleType) -> None:
    """Coverage for a module imported before the target could wrap its import (``urllib.parse``: every Python
    process has it), so the fuzzer also steers through the parser the checks rely on."""

    def visit(obj: object) -> None:
        obj = getattr(obj, "__wrapped__", obj)  # under functools.lru_cache
        if isinstance(obj, types.FunctionType) and obj.__module__ == module.__name__:
            atheris.instrument_func(obj)

    for value in list(vars(module).values()):
        if isinstance(value, type) and value.__module__ == module.__name__:
            for attribute in vars(value).values():
                visit(attribute.fget if isinstance(attribute, property) else attribute)
        else:
            visit(value)


def fuzz(test_one_input: Callable[[bytes], None]) -> None:
    """Hand ``test_one_input`` to libFuzzer with this process's argv (its options, corpus dirs or crash files)."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
