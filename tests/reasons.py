"""Every reason a 503 is answered with, read from the code: for the ``Unavailable`` metric's tests and the
template's alarm and dashboard tests.

A reason is a 503's when it is the ``reason`` of an error class whose status is 503 (``DependencyUnavailable``,
every class below it, and any other class declaring ``status = 503``, in the layer or a function), or the
literal reason (first argument or ``reason=``) a call to one of those classes is made with anywhere in the layer
or ``functions/``. Read from the syntax tree, so a reason added tomorrow is covered without a list to update.
A reason that is not a literal (the secrets cache raising again what it recorded) was a literal where it was
first raised.
"""

from __future__ import annotations

import ast
from pathlib import Path

__all__ = ["ROOT", "sources", "unavailable_reasons"]

ROOT = Path(__file__).resolve().parent.parent
_LAYER = ROOT / "layers" / "signing" / "sso_bridge"
_UNAVAILABLE = 503


def sources() -> list[Path]:
    """The files a 503 can be raised from: the layer and every function."""
    return sorted([*_LAYER.glob("*.py"), *(ROOT / "functions").rglob("*.py")])


def _name(node: ast.expr) -> str | None:
    """``DependencyUnavailable`` for ``DependencyUnavailable`` and ``errors.DependencyUnavailable``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _constants(cls: ast.ClassDef) -> dict[str, object]:
    """The class attributes set to literals in its body (``status = 503``, ``code = reason = "..."``)."""
    found: dict[str, object] = {}
    for statement in cls.body:
        if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant):
            for target in statement.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = statement.value.value
        elif (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(statement.value, ast.Constant)
        ):
            found[statement.target.id] = statement.value.value
    return found


def _inherited(name: str, attribute: str, classes: dict[str, ast.ClassDef]) -> object:
    """``attribute`` of class ``name`` as Python resolves it along the (first) bases; None when nowhere set."""
    seen: set[str] = set()
    while name in classes and name not in seen:
        seen.add(name)
        cls = classes[name]
        constants = _constants(cls)
        if attribute in constants:
            return constants[attribute]
        bases = [base for base in map(_name, cls.bases) if base is not None]
        name = next((base for base in bases if base in classes), "")
    return None


def unavailable_reasons(raised_in: Path | None = None) -> set[str]:
    """Every ``reason`` a response with status 503 can carry; with ``raised_in``, those that one file answers with
    itself (its own 503 classes and its calls), as a vendor's function adds to the layer's."""
    parsed = {path: ast.parse(path.read_text(), filename=str(path)) for path in sources()}
    classes = {node.name: node for tree in parsed.values() for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    unavailable = {name for name in classes if _inherited(name, "status", classes) == _UNAVAILABLE}
    trees = list(parsed.values()) if raised_in is None else [parsed[raised_in.resolve()]]
    own = {node.name for tree in trees for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    reasons = {str(_inherited(name, "reason", classes)) for name in unavailable & own}
    for tree in trees:
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or _name(node.func) not in unavailable:
                continue
            given = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "reason"), None)
            if isinstance(given, ast.Constant) and isinstance(given.value, str):
                reasons.add(given.value)
    return reasons
