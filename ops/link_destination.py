"""Where a link may land (``REDIRECT_TO``): checked against the stack's own settings, as its function checks it.

A link with a destination the bridge refuses is worse than no link: it goes out in a mailing and every reader
meets an error page, a ClickFunnels reader only after pressing Continue (the ``redirect_to`` claim is checked
when the vendor token is made). So the destination is checked here with the layer's own readers and
``allowed_url``, fed the target's function variables (``Target.setting``) exactly as the vendor function
builds its allow-list at cold start. Which variables those are, how the destination travels and where a link
without one lands is each vendor's declaration (``LinkRules``, ``StandInSpec.links`` beside its stand-in in
``local/vendors/``), held against the vendor function by its tests: a new vendor needs no edit here. A setting
the target does not report is said, never guessed; a host the known settings already allow needs no more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import parse_qsl, urlsplit

from local.template import functions, load_template
from local.vendors.operations import LinkRules, link_rules
from ops.link_tokens import UsageError
from ops.target import Target, TargetError
from sso_bridge.errors import BridgeError, ConfigurationError
from sso_bridge.redirects import allowed_url

__all__ = ["allowed_hosts", "check_destination", "check_form"]


def check_form(vendor: str, raw: str | None, option: str) -> str | None:
    """Before the stack is looked up: a destination the vendor can take, as a plain https URL (host not judged)."""
    if not raw:
        return None
    if not link_rules(vendor).hosts:
        raise UsageError(f"{option}: {vendor} has no deep links (it takes no destination from a link)")
    try:
        return allowed_url(raw, {(urlsplit(raw).hostname or "").lower()})
    except (BridgeError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, BridgeError) else "url_unparsable"
        raise UsageError(f"{option}: not a plain https URL the bridge accepts ({reason})") from exc


def allowed_hosts(rules: LinkRules, settings: Mapping[str, str]) -> frozenset[str]:
    """The hosts a vendor's function allows with these variables, read as the function reads them; a variable
    missing from ``settings`` (the target does not report it) adds none. ``ConfigurationError`` for a value that
    stops the function's cold start."""
    hosts: frozenset[str] = frozenset()
    for setting in rules.hosts:
        if setting.variable in settings:
            hosts |= setting.hosts(settings)
    return hosts


def _fix(target: Target) -> str:
    return "restart it with `make run`" if target.local else "deploy the current template.yaml"


def check_destination(vendor: str, raw: str | None, target: Target, option: str) -> str | None:
    """``raw`` rebuilt as the bridge rebuilds it, when ``target``'s function for ``vendor`` accepts it; without
    ``raw``, whether the link has a page to land on.

    ``UsageError`` (exit 2) when it refuses it, naming the host and the settings; ``TargetError`` (exit 3) when
    the target does not report a setting the answer depends on, or holds one its function cannot start with.
    """
    rules = link_rules(vendor)
    url = check_form(vendor, raw, option)
    if url is None:
        _check_landing(vendor, rules, target, option)
        return None
    variables = rules.variables
    known = {name: value for name in variables if (value := target.setting(name)) is not None}
    unknown = [name for name in variables if name not in known]
    try:
        hosts = allowed_hosts(rules, known)
    except ConfigurationError as exc:
        raise TargetError(f"{target.where}: {exc}: its {vendor} function cannot start") from exc
    host = urlsplit(url).hostname or ""
    if host not in hosts:
        if unknown:
            raise TargetError(
                f"{target.where} does not report {', '.join(_setting_names(unknown, target))}: cannot tell whether "
                f"its {vendor} function allows {host} ({_fix(target)})"
            )
        named = ", ".join(_setting_names(variables, target))
        allowed = ", ".join(sorted(hosts)) or "none"
        raise UsageError(
            f"{option}: host {host} is not allowed by {target.where} ({named}: {allowed}): "
            "the bridge would refuse every link"
        )
    names = {name.lower() for name, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
    for parameter in rules.refused_parameters:
        if parameter.lower() in names:
            raise UsageError(
                f"{option} already has an {parameter} parameter: the bridge refuses such a destination, because it "
                "adds its own"
            )
    return url


def _check_landing(vendor: str, rules: LinkRules, target: Target, option: str) -> None:
    """Without a destination, the link lands on the vendor's ``landing`` URL setting; unset, every click is a 400."""
    if rules.landing is None:
        return
    [name] = _setting_names([rules.landing], target)
    portal = target.setting(rules.landing)
    if portal is None:
        without = f" without {option}" if rules.hosts else ""
        raise TargetError(
            f"{target.where} does not report {name}: cannot tell where {vendor} links{without} land ({_fix(target)})"
        )
    if portal.strip():
        return
    if rules.hosts:
        raise UsageError(f"{vendor} links need {option}: {target.where} has no {name}")
    again = "restart `make run`" if target.local else "deploy again"
    raise UsageError(
        f"{vendor} links land on {name}, and {target.where} has none: the bridge would refuse every link "
        f"({again} with {name} set)"
    )


def _setting_names(variables: Sequence[str], target: Target) -> list[str]:
    """How the operator sets each variable: the stack parameter behind it when deployed, the variable locally."""
    if target.local:
        return list(variables)
    parameters: dict[str, str] = {}
    for spec in functions(load_template()):
        for variable, value in spec.environment.items():
            if isinstance(value, dict) and isinstance(value.get("Ref"), str):
                parameters.setdefault(variable, value["Ref"])
    return [parameters.get(variable, variable) for variable in variables]
