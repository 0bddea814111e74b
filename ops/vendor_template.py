"""Each vendor's parts in template.yaml, named once: its function, its switch, its parameters, its sign-in route.

A deployment may switch vendors off (``EnableHappyFox=false``), and the operator commands must then say which
switch did it, and which parameters no longer need real values; email links may point at the HTTP API's sign-in
route instead of the function URL. All of it is read from template.yaml (``local.template.functions``), so a
vendor added to the template is known here without an edit:

- the vendor is the function's ``CodeUri`` folder (``functions/happyfox``), as ``ops.target`` names it;
- its stem is the function's logical id without ``Function`` (``HappyFox``): the switch is ``Enable`` + stem,
  and the parameters whose names start with the stem (``HappyFoxAccountUrl``) are the vendor's own;
- its sign-in route is the function's HttpApi route that accepts POST (the email link's button posts back to
  the URL the link opened), without a path parameter (``/kustomer/brands/{brand}/login`` is a brand's).

Nothing here reads AWS or the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.template import Route, functions, load_template

__all__ = ["SWITCH_PREFIX", "VendorTemplate", "vendor_templates"]

SWITCH_PREFIX = "Enable"
_FUNCTION_SUFFIX = "Function"


@dataclass(frozen=True)
class VendorTemplate:
    vendor: str  # functions/<vendor>: the name operators type (PROVIDER=happyfox)
    logical_id: str  # HappyFoxFunction
    stem: str  # HappyFox: parameters named HappyFox... belong to this vendor
    switch: str  # EnableHappyFox: "false" deploys none of the vendor's resources
    sign_in_path: str | None  # /happyfox/login: the HTTP API route an email link can open, if any

    def owns(self, parameter: str) -> bool:
        """Whether ``parameter`` is one of this vendor's settings (needed only when the vendor is deployed)."""
        return parameter.startswith(self.stem) and parameter != self.switch


def _sign_in_path(routes: tuple[Route, ...]) -> str | None:
    posts = [route.path for route in routes if route.method == "POST" and "{" not in route.path]
    return posts[0] if posts else None


def vendor_templates(template: dict[str, Any] | None = None) -> dict[str, VendorTemplate]:
    """Vendor -> its parts, in template order; the vendors are the functions with a function URL."""
    template = template if template is not None else load_template()
    found: dict[str, VendorTemplate] = {}
    for spec in functions(template):
        if not spec.function_url:
            continue
        stem = spec.logical_id.removesuffix(_FUNCTION_SUFFIX)
        vendor = Path(spec.code_uri).name
        found[vendor] = VendorTemplate(
            vendor=vendor,
            logical_id=spec.logical_id,
            stem=stem,
            switch=f"{SWITCH_PREFIX}{stem}",
            sign_in_path=_sign_in_path(spec.routes),
        )
    return found
