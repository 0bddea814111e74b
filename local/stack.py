"""`make run`: the whole bridge on one machine, no AWS account, no Docker.

Moto stands in for Secrets Manager and DynamoDB, the handlers run in this process behind an HTTP server
speaking API Gateway payload v2 (one port for the HTTP API, one more per function URL), and a demo platform
signs you in when ``PLATFORM_LOGIN_URL`` is not set. Everything is derived from template.yaml.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import FrameType

from local.aws import LocalSecret, plan_secrets, plan_tables, point_sdk_at, seed, start_moto
from local.demo_platform import LOGIN_PATH, DemoPlatform
from local.gateway import ApiRoute, RouteTable, function_url_app, http_api_app
from local.lambdas import LOCAL_DEFAULTS, LocalFunction, add_layers_to_path, function_environment, load_functions
from local.pages import Link, index_page
from local.server import Reply, Request, Server, serve
from local.template import functions, load_template

__all__ = ["Config", "main"]

LOGIN_TOKEN_SECRET_VAR = "LOGIN_TOKEN_SECRET_ID"


@dataclass(frozen=True)
class Config:
    host: str
    port: int
    aws_port: int
    platform_login_url: str | None  # None: serve the demo platform

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        try:
            port = int(env.get("PORT") or 3000)
            aws_port = int(env.get("LOCAL_AWS_PORT") or 4566)
        except ValueError as exc:
            raise SystemExit("PORT and LOCAL_AWS_PORT must be port numbers") from exc
        return cls(
            host=env.get("HOST") or "127.0.0.1",
            port=port,
            aws_port=aws_port,
            platform_login_url=env.get("PLATFORM_LOGIN_URL") or None,
        )

    @property
    def base_url(self) -> str:
        return f"http://localhost:{self.port}"


def _url(port: int, path: str = "/") -> str:
    return f"http://localhost:{port}{path}"


def _print_banner(
    config: Config,
    loaded: list[LocalFunction],
    url_ports: dict[str, int],
    local_secrets: list[LocalSecret],
) -> None:
    lines = ["", "sso-bridge local stack", f"  AWS endpoint (moto):  http://127.0.0.1:{config.aws_port}"]
    generated = [item for item in local_secrets if item.generated]
    if generated:
        lines.append("  Generated keys (set these variables to keep them across runs):")
        lines += [f"    {item.seed_var}={item.value}" for item in generated]
    lines.append("  Open:")
    for function in loaded:
        lines += [f"    {_url(config.port, r.path)}   ({r.method}, {function.name})" for r in function.spec.routes]
        if function.spec.logical_id in url_ports:
            port = url_ports[function.spec.logical_id]
            lines.append(f"    {_url(port)}   (function URL, {function.name})")
    sign_in = config.platform_login_url or f"{config.base_url}{LOGIN_PATH} (demo platform)"
    lines += [f"  Sign-in page: {sign_in}", f"  Index: {config.base_url}/", "  Ctrl-C to stop.", ""]
    print("\n".join(lines), flush=True)


def _local_pages(
    config: Config, loaded: list[LocalFunction], url_ports: dict[str, int], demo: DemoPlatform | None
) -> Callable[[Request], Reply | None]:
    routes: list[Link] = [
        (_url(config.port, route.path), f"{route.method}, {function.name}")
        for function in loaded
        for route in function.spec.routes
        if route.method in ("GET", "ANY")
    ]
    urls: list[Link] = [(_url(url_ports[f.spec.logical_id]), f.name) for f in loaded if f.spec.logical_id in url_ports]
    extras: list[Link] = [(f"{config.base_url}{LOGIN_PATH}", "demo platform sign-in")] if demo else []
    extras.append((f"http://127.0.0.1:{config.aws_port}", "moto (AWS endpoint)"))
    index = index_page(routes=routes, function_urls=urls, extras=extras)

    def pages(request: Request) -> Reply | None:
        if demo is not None and (reply := demo(request)) is not None:
            return reply
        if request.path == "/" and request.method in ("GET", "HEAD"):
            return index
        return None

    return pages


def _stop(servers: list[Server]) -> None:
    for server in servers:
        server.stop()


def main() -> int:
    # Powertools warns on every request that only counts a cold start; noise for a local console.
    warnings.filterwarnings("ignore", "No application metrics to publish")
    shell = dict(os.environ)
    config = Config.from_env(shell)
    template = load_template()
    specs = functions(template)
    url_ports = {s.logical_id: config.port + 1 + i for i, s in enumerate(x for x in specs if x.function_url)}

    try:
        moto = start_moto("127.0.0.1", config.aws_port)
    except OSError as exc:
        print(f"Cannot start moto on 127.0.0.1:{config.aws_port} ({exc.strerror}); set LOCAL_AWS_PORT", file=sys.stderr)
        return 1
    servers: list[Server] = []
    try:
        point_sdk_at(f"http://127.0.0.1:{config.aws_port}", os.environ)
        os.environ["POWERTOOLS_TRACE_DISABLED"] = "true"
        local_secrets = plan_secrets(template, shell)
        tables = plan_tables(template, shell)
        seed(local_secrets, tables)

        resources = {item.logical_id: item.name for item in local_secrets}
        resources |= {table.logical_id: table.name for table in tables}
        demo_url = f"{config.base_url}{LOGIN_PATH}"
        defaults = {**LOCAL_DEFAULTS, "PLATFORM_LOGIN_URL": config.platform_login_url or demo_url}
        environments = [function_environment(s, template, resources=resources, defaults=defaults) for s in specs]
        if config.platform_login_url is None:
            for env in environments:
                if "PLATFORM_LOGIN_URL" in env:
                    env["PLATFORM_LOGIN_URL"] = demo_url
        add_layers_to_path(template)
        from sso_bridge.errors import ConfigurationError  # importable once the layer is on the path

        try:
            loaded = load_functions(specs, environments, template, shell=shell)
        except ConfigurationError as exc:
            print(f"Configuration error: {exc} (set it in your shell)", file=sys.stderr)
            return 1

        demo = None
        if config.platform_login_url is None:
            login_key = next(item.value for item in local_secrets if item.env_var == LOGIN_TOKEN_SECRET_VAR)
            audiences = sorted({function.audience for function in loaded})
            demo = DemoPlatform(key=login_key, audiences=audiences, ports={config.port, *url_ports.values()})

        table = RouteTable([ApiRoute(r.method, r.path, f.invoke) for f in loaded for r in f.spec.routes])
        pages = _local_pages(config, loaded, url_ports, demo)
        servers.append(serve(config.host, config.port, http_api_app(table, fallback=pages)))
        for function in loaded:
            if function.spec.logical_id in url_ports:
                app = function_url_app(function.invoke, function_id=function.spec.logical_id.lower())
                servers.append(serve(config.host, url_ports[function.spec.logical_id], app))
        _print_banner(config, loaded, url_ports, local_secrets)
        _wait_for_stop()
    except OSError as exc:
        print(f"Cannot start the local stack: {exc}; set PORT (and HOST) to free ones", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        _stop(servers)
        moto.stop()
    print("stopped", flush=True)
    return 0


def _wait_for_stop() -> None:
    """Block until Ctrl-C or SIGTERM (how the tests stop the stack)."""

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored (`cmd &`)
    threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
