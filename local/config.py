"""What `make run` is asked for (``Config``, from the shell) and where it listens (the port plan).

Read once at start; every refusal is a ``StartError`` whose one line names the setting to change.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from local import identity_provider
from local.console import parse_log_format

__all__ = [
    "MOTO_HOST",
    "OIDC_MODES",
    "Config",
    "PortUse",
    "StartError",
    "check_free",
    "local_url",
    "plan_ports",
    "port_conflict",
    "port_unavailable",
    "resolve_oidc",
]

MOTO_HOST = "127.0.0.1"
_SWITCH = {"on": True, "1": True, "true": True, "yes": True, "off": False, "0": False, "false": False, "no": False}


class StartError(Exception):
    """The stack cannot start: the message is one line that says which setting to change."""


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
    vendors: str | None = None  # VENDORS as given (None: unset, every vendor), checked by local.plan

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
            vendors=env.get("VENDORS"),
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


def local_url(port: int, path: str = "/") -> str:
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


def check_free(plan: Sequence[PortUse], host: str) -> None:
    """Every port bindable before anything starts, so a busy one stops the stack with one clear line."""
    for use in plan:
        with socket.socket() as probe:
            # As the servers bind (allow_reuse_address): a port in TIME_WAIT is free for them.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((MOTO_HOST if use.setting == "LOCAL_AWS_PORT" else host, use.port))
            except OSError as exc:
                raise StartError(port_unavailable(use, exc)) from None


def resolve_oidc(config: Config) -> tuple[Config, str | None]:
    """``auto`` becomes ``local`` when the provider can run here, else ``off`` with a line saying why."""
    if not config.local_provider:
        return config, None
    reason = identity_provider.unavailable()
    if reason is None:
        return config, None
    if config.oidc == "local":
        raise StartError(f"OIDC=on, but {reason}")
    return replace(config, oidc="off"), f"No local OpenID provider ({reason}): sign-in at the demo platform."
