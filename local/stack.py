"""`make run`: the whole bridge on one machine, no AWS account, no Docker, no internet.

Moto stands in for Secrets Manager and DynamoDB, the handlers run in this process behind an HTTP server
speaking API Gateway payload v2 (one port for the HTTP API, one more per function URL), a demo platform
signs you in when ``PLATFORM_LOGIN_URL`` is not set, and vendor stand-ins (``local.vendors``) answer for the
placeholder vendor hosts, so a sign-in ends on the vendor's "Signed in as ..." page. Everything else is
derived from template.yaml.

Ports, all planned before anything starts: ``PORT`` the HTTP API, ``PORT+1``... the function URLs in template
order, then the stand-ins; moto on ``LOCAL_AWS_PORT``. While it runs, the stack's whereabouts are in
``local.state``'s file, for local commands. Ctrl-C or SIGTERM stops it quietly, whenever it comes.
"""

# The stop handlers go in before the imports (see _stopped_while_loading), so imports follow code:
# ruff: noqa: E402
from __future__ import annotations

import os
import signal
import sys
from types import FrameType


def _stopped_while_loading(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C or SIGTERM before main() took over (`make run` just started): nothing runs yet, so leave now.

    Also a second one once main() runs: the first asked for a clean stop, and something is holding it up.
    """
    print("stopped", flush=True)
    os._exit(0)


if __name__ == "__main__":  # first, so a stop while the modules below load is as quiet as any other
    signal.signal(signal.SIGINT, _stopped_while_loading)
    signal.signal(signal.SIGTERM, _stopped_while_loading)

import contextlib
import errno
import json
import socket
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from local import identity_provider, vendors
from local.console import Console, format_line, note, parse_log_format
from local.demo_platform import LOGIN_PATH, DemoPlatform, secret_key
from local.gateway import ApiRoute, RouteTable, function_url_app, http_api_app
from local.identity_provider import ACCOUNTS, CALLBACK_PATH, LocalProvider, ProviderPlan, ProviderStartError
from local.lambdas import (
    DEMO_KUSTOMER_BRAND,
    LOCAL_DEFAULTS,
    LocalFunction,
    add_layers_to_path,
    function_environment,
    load_functions,
    shell_wins,
)
from local.pages import Link, Section, index_page
from local.server import App, Reply, Request, Server, serve
from local.state import LocalStackState, remove_state, state_file, write_state
from local.template import FunctionSpec, functions, load_template

if TYPE_CHECKING:
    from local.aws import LocalSecret, LocalTable

__all__ = [
    "OIDC_CLIENT_SECRET_NAME",
    "Config",
    "KustomerBrand",
    "PortUse",
    "StackPlan",
    "StandIn",
    "StartError",
    "brand_secrets",
    "kustomer_brands",
    "main",
    "plan_ports",
    "plan_stack",
    "plan_standins",
    "port_conflict",
    "port_unavailable",
]

LOGIN_TOKEN_SECRET_VAR = "LOGIN_TOKEN_SECRET_ID"
OIDC_CLIENT_SECRET_VAR = "OIDC_CLIENT_SECRET_ID"
OIDC_CLIENT_SECRET_NAME = "sso-bridge/oidc-client"  # the template's ${AWS::StackName}/oidc-client
PROVIDER_SITE = "OpenID provider"
MOTO_HOST = "127.0.0.1"
_SWITCH = {"on": True, "1": True, "true": True, "yes": True, "off": False, "0": False, "false": False, "no": False}


# The signals (Ctrl-C, SIGTERM) that asked the stack to stop. The handler only notes them: an exception raised
# from a signal handler lands anywhere (a weakref callback prints it as "Exception ignored" and drops it), so
# the start-up looks here between its steps, and the running stack polls it.
_stop_signals: list[int] = []
_POLL_SECONDS = 0.2


class StartError(Exception):
    """The stack cannot start: the message is one line that says which setting to change."""


class _Stopped(Exception):
    """Ctrl-C or SIGTERM while the stack was starting: undo what has started."""


# Config.oidc: where signed-out users sign in. "local": the local OpenID provider (local.identity_provider);
# "auto": the same when Node.js and the provider are installed, else the demo platform; "external": the shell's
# OIDC_ISSUER; "off": the demo platform, or PLATFORM_LOGIN_URL.
OIDC_MODES = ("local", "auto", "external", "off")


@dataclass(frozen=True)
class Config:
    host: str
    port: int
    aws_port: int
    platform_login_url: str | None  # None: serve the demo platform
    standins: bool = False  # VENDOR_STANDINS
    log_format: str = "line"  # LOCAL_LOGS
    oidc: str = "off"  # one of OIDC_MODES, from OIDC, OIDC_ISSUER and PLATFORM_LOGIN_URL

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        switch = (env.get("VENDOR_STANDINS") or "on").strip().lower()
        if switch not in _SWITCH:
            raise StartError(f"VENDOR_STANDINS must be on or off, got {env['VENDOR_STANDINS']!r}")
        try:
            log_format = parse_log_format(env.get("LOCAL_LOGS"))
        except ValueError as exc:
            raise StartError(str(exc)) from None
        return cls(
            host=env.get("HOST") or "127.0.0.1",
            port=_port_setting(env, "PORT", 3000),
            aws_port=_port_setting(env, "LOCAL_AWS_PORT", 4566),
            platform_login_url=env.get("PLATFORM_LOGIN_URL") or None,
            standins=_SWITCH[switch],
            log_format=log_format,
            oidc=_oidc_mode(env),
        )

    @property
    def local_provider(self) -> bool:
        """Whether the plan has the local OpenID provider (``auto`` plans it; ``_run`` may drop it)."""
        return self.oidc in ("local", "auto")

    @property
    def base_url(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def aws_endpoint(self) -> str:
        return f"http://{MOTO_HOST}:{self.aws_port}"


def _port_setting(env: Mapping[str, str], name: str, default: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise StartError(f"{name} must be a port number, got {raw!r}") from None


def _oidc_mode(env: Mapping[str, str]) -> str:
    """``OIDC`` (on/off) against ``OIDC_ISSUER`` and ``PLATFORM_LOGIN_URL``: see ``OIDC_MODES``."""
    raw = (env.get("OIDC") or "").strip().lower()
    if raw and raw not in _SWITCH:
        raise StartError(f"OIDC must be on or off, got {env['OIDC']!r}")
    if (env.get("OIDC_ISSUER") or "").strip():
        if raw and not _SWITCH[raw]:
            raise StartError("OIDC=off and OIDC_ISSUER are both set: unset one of them")
        if not (env.get("OIDC_CLIENT_SECRET") or "").strip():
            raise StartError(
                "OIDC_ISSUER is set: set OIDC_CLIENT_SECRET to the bridge's client secret at that provider "
                "(and OIDC_CLIENT_ID to its client id)"
            )
        return "external"
    if raw:
        return "local" if _SWITCH[raw] else "off"
    # Your own sign-in page set, and nothing said about OIDC: it is the one users go to.
    return "off" if env.get("PLATFORM_LOGIN_URL") else "auto"


def _url(port: int, path: str = "/") -> str:
    return f"http://localhost:{port}{path}"


# Ports.


@dataclass(frozen=True)
class PortUse:
    port: int
    what: str  # the clickfunnels function URL
    setting: str  # PORT or LOCAL_AWS_PORT
    offset: int = 0

    @property
    def formula(self) -> str:
        return f"{self.setting}+{self.offset}" if self.offset else self.setting


def plan_ports(config: Config, after_api: Sequence[str]) -> list[PortUse]:
    """The API on ``PORT``, ``after_api`` (function URLs, then stand-ins) on ``PORT+1``..., moto last."""
    plan = [PortUse(config.port, "the HTTP API", "PORT")]
    plan += [PortUse(config.port + i, what, "PORT", i) for i, what in enumerate(after_api, start=1)]
    plan.append(PortUse(config.aws_port, "moto (the AWS endpoint)", "LOCAL_AWS_PORT"))
    return plan


def port_conflict(plan: Sequence[PortUse]) -> str | None:
    """One line naming the two settings that collide (or the one out of range); None when the plan works."""
    block = [use for use in plan if use.setting == "PORT"]
    first, last = block[0].port, block[-1].port
    span = f"{first}-{last}" if last > first else str(first)
    for use in plan:
        if not 1 <= use.port <= 65535:
            base, direction = use.port - use.offset, "lower" if use.port > 65535 else "higher"
            return (
                f"{use.setting}={base} puts {use.what} on port {use.port} ({use.formula}), outside 1-65535: "
                f"set {use.setting} {direction}"
            )
    moto = next(use for use in plan if use.setting == "LOCAL_AWS_PORT")
    clash = next((use for use in block if use.port == moto.port), None)
    if clash is not None:
        return (
            f"LOCAL_AWS_PORT={moto.port} collides with PORT={first}: port {moto.port} is {clash.what} "
            f"({clash.formula}), and the stack takes ports {span} from PORT. "
            f"Set LOCAL_AWS_PORT outside {span}, or move PORT."
        )
    return None


def port_unavailable(use: PortUse, exc: OSError) -> str:
    """One line for a port the stack cannot listen on, naming the setting to change."""
    if exc.errno == errno.EADDRINUSE:
        if use.setting == "PORT":
            return (
                f"Port {use.port} ({use.what}, {use.formula}) is in use by another program: "
                "set PORT to the first of a block of free ports"
            )
        return f"Port {use.port} ({use.what}) is in use by another program: set {use.setting} to a free port"
    return f"Cannot listen on port {use.port} ({use.what}, {use.formula}): {exc.strerror or exc}; set {use.setting}"


def _check_free(plan: Sequence[PortUse], host: str) -> None:
    """Every port bindable before anything starts, so a busy one stops the stack with one clear line."""
    for use in plan:
        with socket.socket() as probe:
            # As the servers bind (allow_reuse_address): a port in TIME_WAIT is free for them.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((MOTO_HOST if use.setting == "LOCAL_AWS_PORT" else host, use.port))
            except OSError as exc:
                raise StartError(port_unavailable(use, exc)) from None


# Kustomer brands and vendor stand-ins.


@dataclass(frozen=True)
class KustomerBrand:
    name: str | None  # None: the default brand
    secret_id: str
    hosts: tuple[str, ...]  # the portal's host first, then the other redirect hosts

    @property
    def path(self) -> str:
        return "/kustomer/login" if self.name is None else f"/kustomer/brands/{self.name}/login"


def _host(url: str) -> str:
    return (urlsplit(url.strip()).hostname or "").lower()


def _hosts(portal_url: str, redirect_hosts: Sequence[str]) -> tuple[str, ...]:
    hosts = [_host(portal_url)] if portal_url.strip() else []
    hosts += [host.strip().lower() for host in redirect_hosts if host.strip()]
    return tuple(dict.fromkeys(host for host in hosts if host))


def kustomer_brands(env: Mapping[str, str]) -> list[KustomerBrand]:
    """The Kustomer function's brands, default first, read leniently: the function itself refuses bad ones."""
    if "KUSTOMER_SECRET_ID" not in env:
        return []
    hosts = _hosts(env.get("KUSTOMER_PORTAL_URL", ""), env.get("KUSTOMER_REDIRECT_HOSTS", "").split(","))
    brands = [KustomerBrand(None, env["KUSTOMER_SECRET_ID"], hosts)]
    try:
        config = json.loads(env.get("KUSTOMER_BRANDS") or "{}")
    except ValueError:
        return brands
    for name, entry in config.items() if isinstance(config, dict) else ():
        if not isinstance(entry, dict) or not isinstance(entry.get("secret_id"), str):
            continue
        listed, portal = entry.get("redirect_hosts"), entry.get("portal_url")
        redirect = [host for host in listed if isinstance(host, str)] if isinstance(listed, list) else []
        hosts = _hosts(portal if isinstance(portal, str) else "", redirect)
        brands.append(KustomerBrand(str(name), entry["secret_id"], hosts))
    return brands


def brand_seed_var(brand: str) -> str:
    return f"KUSTOMER_{brand.upper().replace('-', '_')}_JWT_SECRET"


def brand_secrets(
    environments: Sequence[Mapping[str, str]], shell: Mapping[str, str], planned: Sequence[LocalSecret]
) -> list[LocalSecret]:
    """Brand secrets to seed: the demo brand's while ``KUSTOMER_BRANDS`` is the local default, and any brand's
    whose key the shell gives as ``KUSTOMER_<BRAND>_JWT_SECRET``. Others are the operator's to create."""
    from local.aws import plan_extra_secret

    taken = {secret.name for secret in planned}
    found = []
    for env in environments:
        for brand in kustomer_brands(env):
            if brand.name is None or brand.secret_id in taken:
                continue
            seed_var = brand_seed_var(brand.name)
            demo = brand.name == DEMO_KUSTOMER_BRAND and "KUSTOMER_BRANDS" not in shell
            if demo or seed_var in shell:
                found.append(plan_extra_secret(brand.secret_id, seed_var, shell))
                taken.add(brand.secret_id)
    return found


def _placeholder_hosts() -> frozenset[str]:
    """The vendor hosts of ``LOCAL_DEFAULTS``: made up, so the stack may answer for them."""
    hosts = {LOCAL_DEFAULTS["CLICKFUNNELS_WORKSPACE_DOMAIN"], _host(LOCAL_DEFAULTS["HAPPYFOX_ACCOUNT_URL"])}
    for brand in kustomer_brands({**LOCAL_DEFAULTS, "KUSTOMER_SECRET_ID": "-"}):
        hosts.update(brand.hosts)
    return frozenset(hosts)


@dataclass(frozen=True)
class StandIn:
    """A vendor site served locally for a placeholder host; ``entry`` is the page to open first."""

    vendor: str  # clickfunnels, kustomer, happyfox
    host: str
    key: str
    entry: str
    login_url: str = ""  # Kustomer's Redirect URI, HappyFox's Remote Login URL (on the stack's HTTP API)
    brand: str | None = None

    @property
    def label(self) -> str:
        titles = {
            "clickfunnels": "ClickFunnels customer center",
            "kustomer": "Kustomer help center",
            "happyfox": "HappyFox support centre",
        }
        brand = f", brand {self.brand}" if self.brand else ""
        return f"{titles[self.vendor]} for {self.host}{brand}"

    def app(self) -> App:
        if self.vendor == "clickfunnels":
            return vendors.clickfunnels(workspace_domain=self.host, key=self.key)
        if self.vendor == "kustomer":
            return vendors.kustomer(portal_host=self.host, key=self.key, redirect_uri=self.login_url)
        return vendors.happyfox(account_host=self.host, key=self.key, remote_login_url=self.login_url)


def plan_standins(
    environments: Sequence[Mapping[str, str]], local_secrets: Sequence[LocalSecret], *, api_url: str
) -> list[StandIn]:
    """One stand-in per placeholder vendor host the functions use, keyed with the secret seeded for it.

    A host set in the shell to a real one has none: its redirects go to the real vendor.
    """
    keys = {secret.name: secret.value for secret in local_secrets}
    placeholders = _placeholder_hosts()
    sites: dict[str, StandIn] = {}

    def add(site: StandIn) -> None:
        if site.host in placeholders and site.key and site.host not in sites:
            sites[site.host] = site

    for env in environments:
        if "CLICKFUNNELS_WORKSPACE_DOMAIN" in env:
            key = keys.get(env.get("CLICKFUNNELS_SECRET_ID", ""), "")
            add(StandIn("clickfunnels", env["CLICKFUNNELS_WORKSPACE_DOMAIN"].strip().lower(), key, "/"))
        for brand in kustomer_brands(env):
            for host in brand.hosts:
                login_url = f"{api_url}{brand.path}"
                add(StandIn("kustomer", host, keys.get(brand.secret_id, ""), "/login", login_url, brand.name))
        if "HAPPYFOX_ACCOUNT_URL" in env:
            key = keys.get(env.get("HAPPYFOX_SECRET_ID", ""), "")
            add(StandIn("happyfox", _host(env["HAPPYFOX_ACCOUNT_URL"]), key, "/", f"{api_url}/happyfox/login"))
    return list(sites.values())


def _standin_app(app: App) -> App:
    """The stand-in, with an outcome for its log line (stand-ins print nothing)."""

    def noted(request: Request) -> Reply:
        reply = app(request)
        if reply.status == 200 and b"<h1>Signed in as " in reply.body:
            note("signed_in")
        else:
            note("refused" if reply.status >= 400 else "page")
        return reply

    return noted


# What to open: the index page and the banner list the same links.


def _route_links(loaded: Sequence[LocalFunction], effective: Sequence[Mapping[str, str]], port: int) -> list[Link]:
    links: list[Link] = []
    for function, env in zip(loaded, effective, strict=True):
        brands = [brand.name for brand in kustomer_brands(env) if brand.name]
        # The OpenID provider's way back is no page to open: it needs the provider's code and the browser's cookie.
        routes = [r for r in function.spec.routes if r.method in ("GET", "ANY") and r.path != CALLBACK_PATH]
        paths = dict.fromkeys(r.path for r in routes)
        for path in paths:
            if "{brand}" in path and brands:
                links += [(_url(port, path.replace("{brand}", b)), f"{function.name}, brand {b}") for b in brands]
            elif "{brand}" in path:
                links.append((_url(port, path), f"{function.name}: no brand configured (KUSTOMER_BRANDS)"))
            else:
                links.append((_url(port, path), function.name))
    return links


@dataclass(frozen=True)
class _Listing:
    sections: list[Section]
    notes: list[str]


def _discovery_url(issuer: str) -> str:
    return f"{issuer.rstrip('/')}/.well-known/openid-configuration"


_ANY_OTHER_LOGIN = "any password; any other login is that email (@example.com added when bare), verified"


def _verdict(verified: bool) -> str:
    return "verified: signed in" if verified else "NOT verified: refused with a 403"


def _account_lines() -> list[str]:
    """Who can sign in at the local provider, and what the bridge makes of each (see local.identity_provider)."""
    width = max(len(account.login) for account in ACCOUNTS) + 2
    lines = [
        f"log in as {account.login.ljust(width)}{account.email}, email {_verdict(account.email_verified)}"
        for account in ACCOUNTS
    ]
    return [*lines, _ANY_OTHER_LOGIN]


def _account_text() -> str:
    """The same as one sentence, for the index page."""
    accounts = [
        f"log in as {account.login} ({account.email}, email {_verdict(account.email_verified)})" for account in ACCOUNTS
    ]
    return "; ".join([*accounts, _ANY_OTHER_LOGIN])


def _listing(
    config: Config,
    loaded: Sequence[LocalFunction],
    effective: Sequence[Mapping[str, str]],
    url_ports: Mapping[str, int],
    standins: Sequence[tuple[StandIn, int]],
    plan: StackPlan,
    oidc_note: str | None,
) -> _Listing:
    sections = [
        Section("Sign-in links (HTTP API)", _route_links(loaded, effective, config.port)),
        Section(
            "Function URLs (email links)",
            [(_url(url_ports[f.spec.logical_id]), f.name) for f in loaded if f.spec.logical_id in url_ports],
        ),
    ]
    if standins:
        note_text = (
            "Vendor hosts are served locally: the bridge's redirects to them land on these stand-ins, which check "
            "the vendor token as the vendor would. VENDOR_STANDINS=off sends them to the real vendors."
        )
        links = [(_url(port, site.entry), site.label) for site, port in standins]
        sections.append(Section("Vendor stand-ins", links, note_text))
    notes = [f"AWS endpoint (moto), for aws --endpoint-url and boto3, not a web page: {config.aws_endpoint}"]
    provider, issuer = plan.provider, plan.oidc_issuer
    if provider is not None:
        note_text = (
            f"Signed-out users sign in here (panva's oidc-provider, on this machine): {_account_text()}. "
            "OIDC=off sends them to the demo platform instead."
        )
        link = (_discovery_url(provider.issuer), f"the local OpenID provider {provider.issuer} (discovery document)")
        sections.append(Section("OpenID provider (sign-in)", [link], note_text))
    elif issuer:
        notes.insert(0, f"Signed-out users sign in at the OpenID provider (OIDC_ISSUER): {issuer}")
    if oidc_note:
        notes.insert(0, oidc_note)
    if config.platform_login_url is None:
        what = "demo platform sign-in" + (" (login tokens, beside OpenID Connect)" if issuer else "")
        sections.append(Section("Local", [(f"{config.base_url}{LOGIN_PATH}", what)]))
    else:
        notes.insert(0, f"Sign-in page (PLATFORM_LOGIN_URL): {config.platform_login_url}")
    return _Listing(sections, notes)


def _banner(
    config: Config,
    listing: _Listing,
    local_secrets: Sequence[LocalSecret],
    plan: StackPlan,
    oidc_note: str | None,
) -> str:
    lines = ["", "sso-bridge local stack", f"  AWS endpoint (moto): {config.aws_endpoint}  (not a web page)"]
    generated = [item for item in local_secrets if item.generated]
    if generated:
        lines.append("  Generated keys (set these variables to keep them across runs):")
        lines += [f"    {item.seed_var}={item.value}" for item in generated]
    width = max((len(url) for section in listing.sections for url, _ in section.links), default=0) + 3
    for section in listing.sections:
        if section.title in ("Local", "OpenID provider (sign-in)"):
            continue
        heading = section.title
        if section.title == "Vendor stand-ins":
            heading += " (vendor hosts are served locally; VENDOR_STANDINS=off for the real ones)"
        lines.append(f"  {heading}:")
        # A templated path ({brand}) is no link to open: the index shows it as text, the banner not at all.
        lines += [f"    {url.ljust(width)}{what}" for url, what in section.links if "{" not in url]
    sign_in = config.platform_login_url or f"{config.base_url}{LOGIN_PATH}  (demo platform)"
    provider, issuer = plan.provider, plan.oidc_issuer
    if provider is not None:
        lines.append("  Sign-in: the local OpenID provider (OIDC=off for the demo platform instead)")
        lines += [f"    {_discovery_url(provider.issuer)}"] + [f"    {line}" for line in _account_lines()]
        lines.append(f"  Login tokens work beside it: {sign_in}, make login-token")
    elif issuer:
        lines.append(f"  Sign-in: the OpenID provider {issuer} (OIDC_ISSUER)")
        lines.append(f"  Login tokens work beside it: {sign_in}, make login-token")
    else:
        lines.append(f"  Sign-in page: {sign_in}")
        if oidc_note:
            lines.append(f"  {oidc_note}")
    lines += [
        f"  Index: {config.base_url}/",
        "  One line per request below (LOCAL_LOGS=json adds the handlers' JSON). Ctrl-C to stop.",
        "",
    ]
    return "\n".join(lines)


def _local_pages(listing: _Listing, demo: DemoPlatform | None) -> Callable[[Request], Reply | None]:
    index = index_page(listing.sections, notes=listing.notes)

    def pages(request: Request) -> Reply | None:
        if demo is not None and (reply := demo(request)) is not None:
            outcome = "signed_in" if reply.status in (302, 303) else "form" if reply.status == 200 else "refused"
            note("demo_platform", outcome)
            return reply
        if request.path == "/" and request.method in ("GET", "HEAD"):
            note("index")
            return index
        return None

    return pages


# Running.


def _state(
    config: Config,
    loaded: Sequence[LocalFunction],
    url_ports: Mapping[str, int],
    local_secrets: Sequence[LocalSecret],
    tables: Sequence[LocalTable],
) -> LocalStackState:
    from sso_bridge import settings as layer

    # As the functions read them: they share this process's environment.
    env = os.environ
    settings = {
        "LINK_TOKEN_MAX_TTL": layer.env_int(
            env, "LINK_TOKEN_MAX_TTL", layer.LINK_TTL_DEFAULT, minimum=300, maximum=layer.LINK_TTL_MAX
        ),
        "LOGIN_TOKEN_MAX_TTL": layer.env_int(
            env, "LOGIN_TOKEN_MAX_TTL", layer.INTERACTIVE_TTL_DEFAULT, minimum=30, maximum=layer.INTERACTIVE_TTL_MAX
        ),
    }
    return LocalStackState(
        pid=os.getpid(),
        api_url=config.base_url,
        aws_endpoint=config.aws_endpoint,
        region=os.environ["AWS_REGION"],
        function_urls={f.name: _url(url_ports[f.spec.logical_id]) for f in loaded if f.spec.logical_id in url_ports},
        secret_ids={secret.env_var: secret.name for secret in local_secrets if secret.env_var},
        tables={name: table.name for table in tables for name in table.env_vars},
        settings={name: str(value) for name, value in settings.items()},
    )


def _function_name(spec: FunctionSpec) -> str:
    return Path(spec.code_uri).name


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
    specs = functions(template)
    local_secrets = aws.plan_secrets(template, shell)
    oidc_secret = _oidc_secret(shell, local_secrets) if config.oidc != "off" else None
    local_secrets = [item for item in local_secrets if oidc_secret is None or item.name != oidc_secret.name]
    tables = aws.plan_tables(template, shell)
    resources = {item.logical_id: item.name for item in local_secrets if item.logical_id}
    resources |= {table.logical_id: table.name for table in tables}
    defaults = {**LOCAL_DEFAULTS, "PLATFORM_LOGIN_URL": config.platform_login_url or config.base_url + LOGIN_PATH}
    environments = [function_environment(s, template, resources=resources, defaults=defaults) for s in specs]
    effective = [shell_wins(env, shell) for env in environments]
    local_secrets += brand_secrets(effective, shell, local_secrets)
    standins = plan_standins(effective, local_secrets, api_url=config.base_url) if config.standins else []
    url_count = sum(1 for spec in specs if spec.function_url)
    uses = [f"the {_function_name(spec)} function URL" for spec in specs if spec.function_url]
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


def _run(shell: dict[str, str], cleanup: contextlib.ExitStack) -> None:
    """Start everything (each piece undone by ``cleanup``), then wait for Ctrl-C or SIGTERM."""
    # Powertools warns on every request that only counts a cold start; noise for a local console.
    warnings.filterwarnings("ignore", "No application metrics to publish")
    if not shell.get("PLATFORM_LOGIN_URL"):
        shell.pop("PLATFORM_LOGIN_URL", None)  # empty is unset: the demo platform's URL goes in
    config, oidc_note = _resolve_oidc(Config.from_env(shell))
    from local import aws  # boto3 and moto take a second to import: after the signal handlers are in place

    plan = plan_stack(config, shell)
    _check_free(plan.ports, config.host)
    _go_on()
    console = Console(log_format=config.log_format)
    provider = None
    if plan.provider is not None and plan.oidc_client_secret is not None:
        # Node loads while moto and the handlers do; the servers start once it listens.
        provider = LocalProvider(
            plan.provider, client_secret=plan.oidc_client_secret.value, on_request=_provider_line(console)
        )
        provider.start()
        cleanup.callback(provider.stop)
    template, specs, local_secrets, tables = plan.template, plan.specs, plan.secrets, plan.tables
    url_uses, standin_uses = plan.url_uses, plan.standin_uses
    url_ports = {logical_id: use.port for logical_id, use in url_uses.items()}
    standin_ports = [(site, use.port) for site, use in standin_uses]

    try:
        moto = aws.start_moto(MOTO_HOST, config.aws_port)
    except OSError as exc:
        raise StartError(port_unavailable(plan.ports[-1], exc)) from None
    cleanup.callback(moto.stop)
    _go_on()
    aws.point_sdk_at(config.aws_endpoint, os.environ)
    os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
    aws.seed(local_secrets, tables)
    _go_on()

    console.install()  # before the handlers' loggers pick up sys.stdout
    cleanup.callback(console.uninstall)
    add_layers_to_path(template)
    from sso_bridge.errors import ConfigurationError  # importable once the layer is on the path

    try:
        loaded = load_functions(specs, plan.environments, template, shell=shell)
    except ConfigurationError as exc:
        raise StartError(f"Configuration error: {exc} (set it in your shell)") from None
    _go_on()

    demo = None
    if config.platform_login_url is None:
        # The secret's current version at each sign-in, so the demo follows `make rotate-login-key LOCAL=1`.
        login_secret = next(item.name for item in local_secrets if item.env_var == LOGIN_TOKEN_SECRET_VAR)
        audiences = sorted({function.audience for function in loaded})
        ports = {config.port, *url_ports.values()}
        demo = DemoPlatform(key=secret_key(login_secret), audiences=audiences, ports=ports, home=f"{config.base_url}/")
    origins = {site.host: _url(port, "") for site, port in standin_ports}
    listing = _listing(config, loaded, plan.effective, url_ports, standin_ports, plan, oidc_note)
    if provider is not None:
        try:
            provider.wait_ready()
        except ProviderStartError as exc:
            raise StartError(f"{exc} (OIDC=off starts the stack without it)") from None
        _go_on()

    servers: list[Server] = []
    cleanup.callback(_stop_all, servers)

    def start(use: PortUse, app: App) -> None:
        try:
            servers.append(serve(config.host, use.port, app, access_log=False))
        except OSError as exc:
            raise StartError(port_unavailable(use, exc)) from None

    table = RouteTable([ApiRoute(r.method, r.path, f.invoke) for f in loaded for r in f.spec.routes])
    api = http_api_app(table, fallback=_local_pages(listing, demo), vendor_origins=origins)
    start(plan.ports[0], console.logged(api))
    for function in loaded:
        if function.spec.logical_id in url_uses:
            function_id = function.spec.logical_id.lower()
            app = function_url_app(function.invoke, function_id=function_id, vendor_origins=origins)
            start(url_uses[function.spec.logical_id], console.logged(app, site=f"{function.name} function URL"))
    for site, use in standin_uses:
        start(use, console.logged(_standin_app(site.app()), site=f"stand-in for {site.host}"))
    _go_on()

    path = state_file(shell)
    try:
        write_state(_state(config, loaded, url_ports, local_secrets, tables), path)
    except OSError as exc:
        console.print(f"Cannot write {path} ({exc.strerror}): local commands will not find this stack", error=True)
    else:
        cleanup.callback(remove_state, path, pid=os.getpid())
    console.print(_banner(config, listing, local_secrets, plan, oidc_note))
    while not _stop_signals:
        time.sleep(_POLL_SECONDS)


def _resolve_oidc(config: Config) -> tuple[Config, str | None]:
    """``auto`` becomes ``local`` when the provider can run here, else ``off`` with a line saying why."""
    if not config.local_provider:
        return config, None
    reason = identity_provider.unavailable()
    if reason is None:
        return config, None
    if config.oidc == "local":
        raise StartError(f"OIDC=on, but {reason}")
    return replace(config, oidc="off"), f"No local OpenID provider ({reason}): sign-in at the demo platform."


def _provider_line(console: Console) -> Callable[[dict[str, object]], None]:
    """The provider's request records as console lines, like every other server's (``site``: OpenID provider)."""

    def line(record: dict[str, object]) -> None:
        method, path, status = record.get("method"), record.get("path"), record.get("status")
        if not (isinstance(method, str) and isinstance(path, str) and isinstance(status, int)):
            return
        route, error = record.get("route"), record.get("error")
        outcome = route if isinstance(route, str) else None
        reason = error if isinstance(error, str) else None
        console.print(format_line(time.time(), method, path, status, outcome, reason, PROVIDER_SITE))

    return line


def _stop_all(servers: Sequence[Server]) -> None:
    """Each server takes up to half a second to notice a shutdown: stop them all at once."""
    stopping = [threading.Thread(target=server.stop) for server in servers]
    for thread in stopping:
        thread.start()
    for thread in stopping:
        thread.join()


def _stop_on_signals() -> None:
    """From here on, Ctrl-C and SIGTERM (how the tests stop the stack) ask for a stop; see ``_stop_signals``."""

    def stop(signum: int, frame: FrameType | None) -> None:
        if _stop_signals:  # asked twice: whatever holds the stack up, leave now
            _stopped_while_loading(signum, frame)
        _stop_signals.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)  # also when started with SIGINT ignored (`cmd &`)


def _go_on() -> None:
    """Between start-up steps (none takes more than a second or so): unwind if a stop was asked for."""
    if _stop_signals:
        raise _Stopped


def main() -> int:
    """0 when stopped by Ctrl-C or SIGTERM (so `make run` says nothing more), 1 when it cannot start."""
    _stop_on_signals()
    try:
        with contextlib.ExitStack() as cleanup:
            _run(dict(os.environ), cleanup)
    except StartError as exc:
        print(exc, file=sys.stderr, flush=True)
        return 1
    except _Stopped:
        pass
    print("stopped", flush=True)
    return 0


def _exit(status: int) -> None:
    """Leave at once: everything is stopped, the state file removed, and output flushed here.

    Not through the interpreter's own exit: tearing down moto's modules takes seconds.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    _exit(main())
