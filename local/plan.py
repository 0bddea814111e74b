"""The stack plan: everything `make run` decides before it starts anything (names, environments, keys,
stand-ins, ports), from template.yaml, the local defaults and the shell. ``plan_stack`` binds nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local import identity_provider
from local.config import Config, PortUse, StartError, plan_ports, port_conflict
from local.demo_platform import LOGIN_PATH
from local.identity_provider import CALLBACK_PATH, ProviderPlan
from local.lambdas import LOCAL_DEFAULTS, function_environment, shell_wins
from local.standins import StandIn, brand_secrets, plan_standins
from local.template import FunctionSpec, functions, load_template

if TYPE_CHECKING:
    from local.aws import LocalSecret, LocalTable

__all__ = [
    "LOGIN_TOKEN_SECRET_VAR",
    "OIDC_CLIENT_SECRET_NAME",
    "OIDC_CLIENT_SECRET_VAR",
    "StackPlan",
    "enabled_template",
    "function_name",
    "plan_stack",
    "select_vendors",
]

LOGIN_TOKEN_SECRET_VAR = "LOGIN_TOKEN_SECRET_ID"
OIDC_CLIENT_SECRET_VAR = "OIDC_CLIENT_SECRET_ID"
OIDC_CLIENT_SECRET_NAME = "sso-bridge/oidc-client"  # the template's ${AWS::StackName}/oidc-client


def function_name(spec: FunctionSpec) -> str:
    """The function's folder (``functions/<vendor>``): the vendor's name everywhere (VENDORS, state, links)."""
    return Path(spec.code_uri).name


def select_vendors(raw: str | None, available: Sequence[str]) -> tuple[str, ...]:
    """``VENDORS`` (comma-separated, any case): the vendors to serve, in template order; unset is every one.

    Refused in one line naming the valid ones: a name that is no vendor, or no name at all (empty, commas).
    """
    if raw is None:
        return tuple(available)
    choices = ", ".join(available)
    names = [name.strip().lower() for name in raw.split(",") if name.strip()]
    if not names:
        raise StartError(f"VENDORS names no vendor: set it to one or more of {choices} (comma-separated), or unset it")
    unknown = [name for name in dict.fromkeys(names) if name not in available]
    if unknown:
        listed = ", ".join(repr(name[:40]) for name in unknown[:3])
        raise StartError(f"VENDORS: {listed} is not a vendor: choose from {choices}")
    return tuple(vendor for vendor in available if vendor in names)


def enabled_template(template: dict[str, Any], vendors: Sequence[str]) -> dict[str, Any]:
    """The template as deployed with only ``vendors`` switched on: the other vendors' functions are gone (and
    with them their secrets, tables, routes and function URLs, which the local stack derives from the functions).

    The OpenID Connect callback route moves to the first enabled function when its own function is off: any
    vendor's function serves it (see template.yaml's ``OidcCallback``).
    """
    resources = dict(template.get("Resources", {}))
    callbacks: dict[str, Any] = {}
    kept: list[str] = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != _FUNCTION_TYPE:
            continue
        if Path(str(resource.get("Properties", {}).get("CodeUri", ""))).name in vendors:
            kept.append(logical_id)
            continue
        del resources[logical_id]
        events = resource.get("Properties", {}).get("Events", {})
        callbacks |= {name: event for name, event in events.items() if _is_callback(event)}
    served = any(_is_callback(event) for logical_id in kept for event in _events(resources[logical_id]).values())
    if callbacks and kept and not served:
        first = resources[kept[0]]
        properties = {**first["Properties"], "Events": {**_events(first), **callbacks}}
        resources[kept[0]] = {**first, "Properties": properties}
    return {**template, "Resources": resources}


_FUNCTION_TYPE = "AWS::Serverless::Function"


def _events(resource: Mapping[str, Any]) -> dict[str, Any]:
    events: dict[str, Any] = resource.get("Properties", {}).get("Events") or {}
    return events


def _is_callback(event: Any) -> bool:
    properties = event.get("Properties", {}) if isinstance(event, dict) else {}
    return bool(event.get("Type") == "HttpApi" and properties.get("Path") == CALLBACK_PATH)


@dataclass(frozen=True)
class StackPlan:
    """Everything decided before anything starts: names, environments, keys, stand-ins, ports."""

    config: Config
    template: dict[str, Any]
    specs: list[FunctionSpec]
    secrets: list[LocalSecret]
    tables: list[LocalTable]
    environments: list[dict[str, str]]  # per function, from the template and the local defaults
    effective: list[dict[str, str]]  # the same as the handlers see them: what the shell sets wins
    standins: list[StandIn]
    ports: list[PortUse]  # the API, the function URLs, the stand-ins, the local OpenID provider, moto
    provider: ProviderPlan | None = None  # the local OpenID provider, when signed-out users go there
    oidc_issuer: str | None = None  # the OpenID provider the functions use (local or the shell's), if any

    @property
    def url_uses(self) -> dict[str, PortUse]:
        """Function URL ports by the function's logical id."""
        url_specs = [spec for spec in self.specs if spec.function_url]
        return {spec.logical_id: self.ports[i] for i, spec in enumerate(url_specs, start=1)}

    @property
    def standin_uses(self) -> list[tuple[StandIn, PortUse]]:
        first = 1 + len(self.url_uses)
        return [(site, self.ports[first + i]) for i, site in enumerate(self.standins)]

    @property
    def provider_use(self) -> PortUse | None:
        return self.ports[-2] if self.provider is not None else None

    @property
    def oidc_client_secret(self) -> LocalSecret | None:
        return next((item for item in self.secrets if item.env_var == OIDC_CLIENT_SECRET_VAR), None)


def _oidc_secret(shell: Mapping[str, str], planned: Sequence[LocalSecret]) -> LocalSecret:
    """The client secret's entry in the emulated Secrets Manager, seeded from ``OIDC_CLIENT_SECRET``."""
    from local.aws import plan_extra_secret

    name = (shell.get(OIDC_CLIENT_SECRET_VAR) or "").strip() or OIDC_CLIENT_SECRET_NAME
    existing = next((item for item in planned if item.name == name), None)
    if existing is not None:  # the template creates it (a reference): seeded from OIDC_CLIENT_SECRET all the same
        return replace(existing, env_var=OIDC_CLIENT_SECRET_VAR, seed_var="OIDC_CLIENT_SECRET")
    return replace(plan_extra_secret(name, "OIDC_CLIENT_SECRET", shell), env_var=OIDC_CLIENT_SECRET_VAR)


def _provider_plan(config: Config, shell: Mapping[str, str], ports: Sequence[PortUse], url_count: int) -> ProviderPlan:
    """The local provider on the last port of the ``PORT`` block; the bridge is its one client."""
    bridge_ports = [use.port for use in ports[: 1 + url_count]]  # the HTTP API and every function URL
    logout = tuple(uri for uri in [(shell.get("PLATFORM_LOGOUT_URL") or "").strip()] if uri)
    return ProviderPlan(
        host=config.host,
        port=ports[-2].port,
        client_id=(shell.get("OIDC_CLIENT_ID") or "").strip() or identity_provider.CLIENT_ID,
        redirect_uris=identity_provider.bridge_uris(bridge_ports, CALLBACK_PATH),
        post_logout_redirect_uris=identity_provider.bridge_uris([config.port], "/") + logout,
    )


def plan_stack(config: Config, shell: Mapping[str, str], template: dict[str, Any] | None = None) -> StackPlan:
    """The stack ``config`` and ``shell`` describe; ``StartError`` when its ports collide (none is bound here)."""
    from local import aws

    template = template or load_template()
    vendors = select_vendors(config.vendors, [function_name(spec) for spec in functions(template)])
    template = enabled_template(template, vendors)
    specs = functions(template)
    local_secrets = aws.plan_secrets(template, shell)
    oidc_secret = _oidc_secret(shell, local_secrets) if config.oidc != "off" else None
    local_secrets = [item for item in local_secrets if oidc_secret is None or item.name != oidc_secret.name]
    tables = [table for table in aws.plan_tables(template, shell) if table.env_vars]  # used by an enabled function
    resources = {item.logical_id: item.name for item in local_secrets if item.logical_id}
    resources |= {table.logical_id: table.name for table in tables}
    defaults = {**LOCAL_DEFAULTS, "PLATFORM_LOGIN_URL": config.platform_login_url or config.base_url + LOGIN_PATH}
    environments = [function_environment(s, template, resources=resources, defaults=defaults) for s in specs]
    effective = [shell_wins(env, shell) for env in environments]
    local_secrets += brand_secrets(effective, shell, local_secrets)
    standins = plan_standins(effective, local_secrets, api_url=config.base_url) if config.standins else []
    url_count = sum(1 for spec in specs if spec.function_url)
    uses = [f"the {function_name(spec)} function URL" for spec in specs if spec.function_url]
    uses += [f"the stand-in for {site.host}" for site in standins]
    uses += ["the local OpenID provider"] if config.local_provider else []
    ports = plan_ports(config, uses)
    problem = port_conflict(ports)
    if problem:
        raise StartError(problem)
    provider = _provider_plan(config, shell, ports, url_count) if config.local_provider else None
    issuer = None
    if oidc_secret is not None:
        local_secrets.append(oidc_secret)
        issuer = provider.issuer if provider is not None else (shell.get("OIDC_ISSUER") or "").strip()
        client_id = provider.client_id if provider is not None else (shell.get("OIDC_CLIENT_ID") or "").strip()
        oidc = {"OIDC_ISSUER": issuer, "OIDC_CLIENT_ID": client_id, OIDC_CLIENT_SECRET_VAR: oidc_secret.name}
        # Again, now that the provider's port is known; what the template does not list (yet) is added.
        with_oidc = {**defaults, **oidc}
        environments = [
            {**oidc, **function_environment(s, template, resources=resources, defaults=with_oidc)} for s in specs
        ]
        effective = [shell_wins(env, shell) for env in environments]
    return StackPlan(
        config,
        template,
        specs,
        local_secrets,
        tables,
        environments,
        effective,
        standins,
        ports,
        provider=provider,
        oidc_issuer=issuer,
    )
