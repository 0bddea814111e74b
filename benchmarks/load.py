"""The local stack (`make run`) under load: CLIENTS concurrent clients for SECONDS, interactive ClickFunnels
sign-ins, each with a fresh login token, over keep-alive connections.

The stack is started as the integration tests start it (tests/integration/stack.py: a subprocess on free ports,
keys from tests.helpers). It runs every function in one Python process, one request at a time across functions,
so this measures that process (source code, dev venv, moto in-process), not Lambda: read it as `make run`'s
capacity. The clients run as threads in this process; a request that fails to connect or answers anything but
302 is an error.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from typing import Any

from tests.helpers import make_login_token

__all__ = ["load_test"]

PATH = "/clickfunnels/sso?redirect_to=https%3A%2F%2Fyourworkspace.myclickfunnels.com%2Fcustomers%2Forders"


def load_test(seconds: float = 10.0, clients: int = 20) -> dict[str, Any]:
    from tests.helpers import ROOT
    from tests.integration.stack import start_stack

    # This checkout's layer first, whatever the venv's .pth points at (a worktree shares the main venv).
    stack = start_stack({"PYTHONPATH": str(ROOT / "layers" / "signing")})
    try:
        return _drive(stack.port, seconds, clients)
    finally:
        stack.stop()


def _drive(port: int, seconds: float, clients: int) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    go = threading.Event()
    deadline = [0.0]

    def client(number: int) -> None:
        mine: list[float] = []
        seen: Counter[str] = Counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        go.wait()
        while time.perf_counter() < deadline[0]:
            token = make_login_token(f"load.user{number}@example.com", aud="clickfunnels", lifetime=120)
            start = time.perf_counter()
            try:
                connection.request("GET", f"{PATH}&login_token={token}", headers={"Accept": "text/html"})
                response = connection.getresponse()
                response.read()
                status = str(response.status)
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()
            except (OSError, http.client.HTTPException) as exc:
                status = type(exc).__name__
                connection.close()
            mine.append(time.perf_counter() - start)
            seen[status] += 1
        connection.close()
        with lock:
            latencies.extend(mine)
            statuses.update(seen)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    deadline[0] = started + seconds
    go.set()
    for thread in threads:
        thread.join(seconds + 60)
    elapsed = time.perf_counter() - started
    latencies.sort()
    count = len(latencies)

    def percentile(p: float) -> float:
        return latencies[min(count - 1, int(count * p))] * 1e3 if count else 0.0

    return {
        "seconds": seconds,
        "clients": clients,
        "requests": count,
        "requests_per_s": count / elapsed,
        "p50_ms": percentile(0.50),
        "p99_ms": percentile(0.99),
        "max_ms": latencies[-1] * 1e3 if count else 0.0,
        "errors": sum(n for status, n in statuses.items() if status != "302"),
        "statuses": dict(statuses),
    }
