"""`make run`: the whole bridge on one machine, no AWS account, no Docker, no internet.

Moto stands in for Secrets Manager and DynamoDB, the handlers run in this process behind an HTTP server
speaking API Gateway payload v2 (one port for the HTTP API, one more per function URL), a demo platform
signs you in when ``PLATFORM_LOGIN_URL`` is not set, and vendor stand-ins (``local.vendors``) answer for the
placeholder vendor hosts, so a sign-in ends on the vendor's "Signed in as ..." page. Everything else is
derived from template.yaml.

Ports, all planned before anything starts: ``PORT`` the HTTP API, ``PORT+1``... the function URLs in template
order, then the stand-ins; moto on ``LOCAL_AWS_PORT``. While it runs, the stack's whereabouts are in
``local.state``'s file, for local commands. Ctrl-C, SIGTERM or SIGHUP stops it quietly, whenever it comes, and
the file goes with it on every way out (a second signal, or one during start-up, included).

This module runs the stack; what it runs is decided beforehand: the settings and ports in ``local.config``,
the stand-ins in ``local.standins``, the whole plan in ``local.plan``, and what to open in ``local.listing``.
"""

# The stop handlers go in before the imports (see _stopped_while_loading), so imports follow code:
# ruff: noqa: E402
from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType

# Ctrl-C, `kill`, and the terminal closing (unless the stack was started with SIGHUP ignored: nohup).
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _stopped_while_loading(signum: int, frame: FrameType | None) -> None:
    """A stop before main() took over (`make run` just started): nothing runs yet, so leave now."""
    _say_stopped()
    os._exit(0)


def _say_stopped() -> None:
    """In a signal handler: written straight to the file descriptor (``print`` may be half-way through a line)."""
    with contextlib.suppress(OSError):
        os.write(1, b"stopped\n")


def _handle_stops(handler: Callable[[int, FrameType | None], None]) -> None:
    for signum in _STOP_SIGNALS:
        if signum != signal.SIGHUP or signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, handler)


if __name__ == "__main__":  # first, so a stop while the modules below load is as quiet as any other
    _handle_stops(_stopped_while_loading)

import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from local.config import MOTO_HOST, Config, PortUse, StartError, check_free, local_url, port_unavailable, resolve_oidc
from local.console import Console, format_line
from local.demo_platform import DemoPlatform, secret_key
from local.dynamodb import EngineError, start_endpoint
from local.gateway import ApiRoute, RouteTable, function_url_app, http_api_app
from local.identity_provider import LocalProvider, ProviderStartError
from local.lambdas import LocalFunction, add_layers_to_path, load_functions
from local.listing import banner, local_pages, make_listing
from local.plan import LOGIN_TOKEN_SECRET_VAR, StackPlan, plan_stack
from local.server import App, Server, serve
from local.standins import standin_app
from local.state import LocalStackState, remove_state, state_file, write_state
from local.template import has_default_route

if TYPE_CHECKING:
    from local.aws import LocalSecret, LocalTable

__all__ = ["main"]

PROVIDER_SITE = "OpenID provider"


# The signals (Ctrl-C, SIGTERM) that asked the stack to stop. The handler only notes them: an exception raised
# from a signal handler lands anywhere (a weakref callback prints it as "Exception ignored" and drops it), so
# the start-up looks here between its steps, and the running stack polls it.
_stop_signals: list[int] = []
_POLL_SECONDS = 0.2
# A second stop this soon after the first is the same request: when `make run`'s process group is signalled, make
# passes its own SIGTERM on to the stack, so one `kill -TERM -PGID` arrives twice. A later one means "now".
_REPEAT_SECONDS = 1.0
_first_stop_at: list[float] = []
# The state file this stack writes (``local.state``): removed on the way out, however the stack leaves.
_state_paths: list[Path] = []


class _Stopped(Exception):
    """Ctrl-C or SIGTERM while the stack was starting: undo what has started."""


def _state(
    config: Config,
    loaded: Sequence[LocalFunction],
    url_ports: Mapping[str, int],
    local_secrets: Sequence[LocalSecret],
    tables: Sequence[LocalTable],
    plan: StackPlan,
    origins: Mapping[str, str],
) -> LocalStackState:
    from sso_bridge import settings as layer

    # As the functions read them: they share this process's environment.
    env = os.environ
    settings: dict[str, object] = {
        "LINK_TOKEN_MAX_TTL": layer.env_int(
            env, "LINK_TOKEN_MAX_TTL", layer.LINK_TTL_DEFAULT, minimum=300, maximum=layer.LINK_TTL_MAX
        ),
        "LOGIN_TOKEN_MAX_TTL": layer.env_int(
            env, "LOGIN_TOKEN_MAX_TTL", layer.INTERACTIVE_TTL_DEFAULT, minimum=30, maximum=layer.INTERACTIVE_TTL_MAX
        ),
    }
    if plan.oidc_issuer:
        settings["OIDC_ISSUER"] = plan.oidc_issuer
    # What a deployed stack's parameters tell ops.target (variables set by `!Ref Parameter`): vendor hosts, ...
    parameters = plan.template.get("Parameters", {})
    for spec, effective in zip(plan.specs, plan.effective, strict=True):
        for variable, value in spec.environment.items():
            if isinstance(value, dict) and value.get("Ref") in parameters and variable in effective:
                settings.setdefault(variable, effective[variable])
    return LocalStackState(
        pid=os.getpid(),
        api_url=config.base_url,
        aws_endpoint=config.aws_endpoint,
        region=os.environ["AWS_REGION"],
        function_urls={
            f.name: local_url(url_ports[f.spec.logical_id]) for f in loaded if f.spec.logical_id in url_ports
        },
        secret_ids={secret.env_var: secret.name for secret in local_secrets if secret.env_var},
        tables={name: table.name for table in tables for name in table.env_vars},
        settings={name: str(value) for name, value in settings.items()},
        vendor_origins=dict(origins),
    )


def _run(shell: dict[str, str], cleanup: contextlib.ExitStack) -> None:
    """Start everything (each piece undone by ``cleanup``), then wait for Ctrl-C or SIGTERM."""
    # Powertools warns on every request that only counts a cold start; noise for a local console.
    warnings.filterwarnings("ignore", "No application metrics to publish")
    if not shell.get("PLATFORM_LOGIN_URL"):
        shell.pop("PLATFORM_LOGIN_URL", None)  # empty is unset: the demo platform's URL goes in
    config, oidc_note = resolve_oidc(Config.from_env(shell))
    from local import aws  # boto3 and moto take a second to import: after the signal handlers are in place

    plan = plan_stack(config, shell)
    check_free(plan.ports, config.host)
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
        # moto, DynamoDB's calls passed on to Amazon's DynamoDB Local when it can run here (local/dynamodb.py)
        moto, dynamodb_note = start_endpoint(MOTO_HOST, config.aws_port, shell)
    except OSError as exc:
        raise StartError(port_unavailable(plan.ports[-1], exc)) from None
    except EngineError as exc:
        raise StartError(str(exc)) from None
    cleanup.callback(moto.stop)
    console.print(dynamodb_note)
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
    origins = {site.host: local_url(port, "") for site, port in standin_ports}
    listing = make_listing(config, loaded, plan.effective, url_ports, standin_ports, plan, oidc_note)
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
    # $default (paths no route matches) goes to the first enabled vendor's function, as template.yaml's Fallback.
    default = loaded[0].invoke if has_default_route(template) and loaded else None
    api = http_api_app(table, fallback=local_pages(listing, demo), vendor_origins=origins, default=default)
    start(plan.ports[0], console.logged(api))
    for function in loaded:
        if function.spec.logical_id in url_uses:
            function_id = function.spec.logical_id.lower()
            app = function_url_app(function.invoke, function_id=function_id, vendor_origins=origins)
            start(url_uses[function.spec.logical_id], console.logged(app, site=f"{function.name} function URL"))
    for site, use in standin_uses:
        start(use, console.logged(standin_app(site.app()), site=f"stand-in for {site.host}"))
    _go_on()

    path = state_file(shell)
    # Known before it is written, so a stop at any moment from here removes it (``_leave_now`` too)
    _state_paths.append(path)
    cleanup.callback(remove_state, path, pid=os.getpid())
    try:
        write_state(_state(config, loaded, url_ports, local_secrets, tables, plan, origins), path)
    except OSError as exc:
        console.print(f"Cannot write {path} ({exc.strerror}): local commands will not find this stack", error=True)
    console.print(banner(config, listing, local_secrets, plan, oidc_note))
    while not _stop_signals:
        time.sleep(_POLL_SECONDS)


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
    """From here on, Ctrl-C, SIGTERM (how the tests stop the stack) and SIGHUP ask for a stop; see ``_stop_signals``.

    Also when started with SIGINT ignored (`cmd &`). Asked again, later (``_REPEAT_SECONDS``): whatever holds the
    stack up, it leaves now (``_leave_now``).
    """

    def stop(signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if not _first_stop_at:
            _first_stop_at.append(now)
        elif now - _first_stop_at[0] >= _REPEAT_SECONDS:
            _leave_now()
        _stop_signals.append(signum)

    _handle_stops(stop)


def _leave_now() -> None:
    """Leave at once, without the orderly stop: the state file removed first, so no local command finds a stack that
    is gone. The children need nothing: the OpenID provider and DynamoDB Local end when their stdin closes (ours)."""
    for path in _state_paths:
        remove_state(path, pid=os.getpid())
    _say_stopped()
    os._exit(0)


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
