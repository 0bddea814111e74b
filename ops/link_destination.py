"""Where a link may land (``REDIRECT_TO``): checked against the stack's own settings, as its function checks it.

A link with a destination the bridge refuses is worse than no link: it goes out in a mailing and every reader
meets an error page, a ClickFunnels reader only after pressing Continue (the ``redirect_to`` claim is checked
when the vendor token is made). So the destination is checked here with the layer's own readers and
``allowed_url``, fed the target's function variables (``Target.setting``) exactly as the vendor function
builds its allow-list at cold start (functions/clickfunnels/app.py ``Settings``, functions/kustomer/app.py
``_default_brand``). A setting the target does not report is said, never guessed; a host the known settings
already allow needs no more.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit

from local.template import functions, load_template
from ops.link_tokens import UsageError
from ops.target import Target, TargetError
from sso_bridge.errors import BridgeError, ConfigurationError
from sso_bridge.redirects import allowed_url
from sso_bridge.settings import env_hostname, env_hostnames, env_url

__all__ = ["KUSTOMER_TOKEN_PARAMETER", "allowed_hosts", "check_destination", "check_form"]

# What the Kustomer function appends to kustomerRedirectUri (functions/kustomer/app.py TOKEN_PARAMETER); it
# refuses a destination that already carries one, compared case-insensitively.
KUSTOMER_TOKEN_PARAMETER = "externalToken"  # noqa: S105 - a parameter name, not a secret
# The function variables each vendor's allow-list is built from, in the function's order.
_VARIABLES = {
    "clickfunnels": ("CLICKFUNNELS_WORKSPACE_DOMAIN", "CLICKFUNNELS_REDIRECT_HOSTS"),
    "kustomer": ("KUSTOMER_REDIRECT_HOSTS", "KUSTOMER_PORTAL_URL"),
}


def check_form(vendor: str, raw: str | None, option: str) -> str | None:
    """Before the stack is looked up: a destination the vendor can take, as a plain https URL (host not judged)."""
    if not raw:
        return None
    if vendor not in _VARIABLES:
        raise UsageError(f"{option}: {vendor} has no deep links (its token has no destination claim)")
    try:
        return allowed_url(raw, {(urlsplit(raw).hostname or "").lower()})
    except (BridgeError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, BridgeError) else "url_unparsable"
        raise UsageError(f"{option}: not a plain https URL the bridge accepts ({reason})") from exc


def allowed_hosts(vendor: str, settings: Mapping[str, str]) -> frozenset[str]:
    """The hosts ``vendor``'s function allows with these variables, read as the function reads them (an
    unset variable is unset there too); ``ConfigurationError`` for a value that stops its cold start."""
    if vendor == "clickfunnels":
        domain = env_hostname(settings, "CLICKFUNNELS_WORKSPACE_DOMAIN")
        return env_hostnames(settings, "CLICKFUNNELS_REDIRECT_HOSTS") | {domain}
    hosts = env_hostnames(settings, "KUSTOMER_REDIRECT_HOSTS")
    if settings.get("KUSTOMER_PORTAL_URL", "").strip():
        portal = env_url(settings, "KUSTOMER_PORTAL_URL")
        hosts |= {(urlsplit(portal).hostname or "").lower()}
    return hosts


def check_destination(vendor: str, raw: str | None, target: Target, option: str) -> str | None:
    """``raw`` rebuilt as the bridge rebuilds it, when ``target``'s function for ``vendor`` accepts it; without
    ``raw``, whether a Kustomer link has a portal to land on.

    ``UsageError`` (exit 2) when it refuses it, naming the host and the settings; ``TargetError`` (exit 3) when
    the target does not report a setting the answer depends on, or holds one its function cannot start with.
    """
    url = check_form(vendor, raw, option)
    if url is None:
        _check_landing(vendor, target, option)
        return None
    variables = _VARIABLES[vendor]
    known = {name: value for name in variables if (value := target.setting(name)) is not None}
    unknown = [name for name in variables if name not in known]
    try:
        if "CLICKFUNNELS_WORKSPACE_DOMAIN" in unknown:  # the one variable the function cannot start without
            hosts = env_hostnames(known, "CLICKFUNNELS_REDIRECT_HOSTS")
        else:
            hosts = allowed_hosts(vendor, known)
    except ConfigurationError as exc:
        raise TargetError(f"{target.where}: {exc}: its {vendor} function cannot start") from exc
    host = urlsplit(url).hostname or ""
    if host not in hosts:
        named = ", ".join(_setting_names(variables, target))
        if unknown:
            fix = "restart it with `make run`" if target.local else "deploy the current template.yaml"
            raise TargetError(
                f"{target.where} does not report {', '.join(_setting_names(unknown, target))}: cannot tell whether "
                f"its {vendor} function allows {host} ({fix})"
            )
        allowed = ", ".join(sorted(hosts)) or "none"
        raise UsageError(
            f"{option}: host {host} is not allowed by {target.where} ({named}: {allowed}): "
            "the bridge would refuse every link"
        )
    if vendor == "kustomer":
        names = {name.lower() for name, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
        if KUSTOMER_TOKEN_PARAMETER.lower() in names:
            raise UsageError(
                f"{option} already has an {KUSTOMER_TOKEN_PARAMETER} parameter: the bridge refuses such a "
                "destination, because it adds its own (kustomer_redirect_uri_token)"
            )
    return url


def _check_landing(vendor: str, target: Target, option: str) -> None:
    """Without a destination, Kustomer's link lands on ``KUSTOMER_PORTAL_URL``; with neither, every click is a 400."""
    if vendor != "kustomer":
        return
    portal = target.setting("KUSTOMER_PORTAL_URL")
    [name] = _setting_names(["KUSTOMER_PORTAL_URL"], target)
    if portal is None:
        fix = "restart it with `make run`" if target.local else "deploy the current template.yaml"
        raise TargetError(
            f"{target.where} does not report {name}: cannot tell where kustomer links without {option} land ({fix})"
        )
    if not portal.strip():
        raise UsageError(f"kustomer links need {option}: {target.where} has no {name}")


def _setting_names(variables: list[str] | tuple[str, ...], target: Target) -> list[str]:
    """How the operator sets each variable: the stack parameter behind it when deployed, the variable locally."""
    if target.local:
        return list(variables)
    parameters: dict[str, str] = {}
    for spec in functions(load_template()):
        for variable, value in spec.environment.items():
            if isinstance(value, dict) and isinstance(value.get("Ref"), str):
                parameters.setdefault(variable, value["Ref"])
    return [parameters.get(variable, variable) for variable in variables]
