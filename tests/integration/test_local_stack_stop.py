"""Stopping `make run` however it is stopped: the state file (.local-stack.json, ``local.state``) goes, and so does
every process the stack started (issue 17, item 7).

`make run` is started as a terminal or a supervisor starts it, in a process group of its own, and the group is
signalled: make passes its own SIGTERM on to the stack, so one `kill -TERM -PGID` reaches the stack twice, which
used to make it leave without cleaning up. Whatever stays behind is looked for among the processes the stack had
started (the JVM of DynamoDB Local, the OpenID provider's Node.js), which live in sessions of their own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from local.dynamodb import unavailable
from local.template import functions
from tests.helpers import ROOT
from tests.integration.stack import STACK_ENV, free_block, provider_missing, stack_dynamodb

# make's own prerequisites of `run` are taken as built (the tests run inside that venv): make runs the stack only.
MAKE_RUN = [
    "make", "-s", "--no-print-directory", "-C", str(ROOT), "-o", ".venv/.installed",
    "-o", "local/oidc_provider/node_modules/.installed", "-o", "local/dynamodb_local/node_modules/.installed", "run",
]  # fmt: skip
_PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


@dataclass
class MakeRun:
    process: subprocess.Popen[bytes]
    state_file: Path
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def descendants(self) -> set[int]:
        """make's children, theirs, and so on (the stack, and what it started in sessions of its own)."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(parent, []).append(int(entry.name))
        found, todo = set(), [self.process.pid]
        while todo:
            for child in children.get(todo.pop(), []):
                found.add(child)
                todo.append(child)
        return found

    def signal_group(self, signum: int) -> None:
        os.killpg(self.process.pid, signum)  # the group `make run` leads, as a terminal's Ctrl-C or `kill -PGID`

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{what}: not within {timeout:g} s\n{self.output()[-3000:]}")
            time.sleep(0.05)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.fixture
def make_run(tmp_path: Path) -> Iterator[Callable[..., MakeRun]]:
    started: list[MakeRun] = []

    def start(**env: str) -> MakeRun:
        names = [s for s in functions() if s.function_url]
        port = free_block(1 + len(names) + 1)
        environment = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}
        environment |= {
            **STACK_ENV,
            "PORT": str(port),
            "LOCAL_AWS_PORT": str(free_block(1)),
            "HOST": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
            "VENDOR_STANDINS": "off",
            "OIDC": "off",
            "LOCAL_STACK_FILE": str(tmp_path / "local-stack.json"),
            **env,
        }
        log = tmp_path / "make-run.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                MAKE_RUN, env=environment, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        run = MakeRun(process, Path(environment["LOCAL_STACK_FILE"]), log)
        started.append(run)
        return run

    yield start
    for run in started:  # a failed test's leftovers
        if run.process.poll() is None:
            os.killpg(run.process.pid, signal.SIGKILL)
            run.process.wait()


def _stopped_cleanly(run: MakeRun, before: set[int]) -> None:
    """make and the stack gone, then every process the stack had started, and the state file with them."""
    run.process.wait(timeout=30)
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in before) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = {pid: _command(pid) for pid in before if _running(pid)}
    assert not left, f"still running: {left}\n{run.output()[-2000:]}"
    assert not run.state_file.exists(), run.output()[-2000:]
    assert not list(run.state_file.parent.glob(f".{run.state_file.name}.*")), "a half-written state file"
    assert "Traceback" not in run.output(), run.output()[-3000:]


@pytest.mark.parametrize(
    "signals",
    [
        pytest.param([signal.SIGTERM], id="kill-the-group"),  # make passes it on: the stack gets two at once
        pytest.param([signal.SIGTERM, signal.SIGTERM], id="kill-the-group-twice"),
        pytest.param([signal.SIGINT], id="ctrl-c"),
        pytest.param([signal.SIGINT, signal.SIGTERM], id="ctrl-c-then-kill"),
        pytest.param([signal.SIGHUP], id="terminal-closed"),
    ],
)
def test_stopping_make_run_removes_the_state_file(make_run: Callable[..., MakeRun], signals: list[int]) -> None:
    run = make_run(**stack_dynamodb())
    run.wait_until(run.state_file.exists, "the state file")
    before = run.descendants()
    for signum in signals:
        run.signal_group(signum)
        time.sleep(0.05)
    _stopped_cleanly(run, before)
    assert run.output().rstrip().endswith("stopped")


def test_a_stop_during_start_up_leaves_nothing_behind(make_run: Callable[..., MakeRun]) -> None:
    """Stopped as its own DynamoDB Local (a JVM) and the local OpenID provider (Node.js) start, twice over."""
    if unavailable():
        pytest.skip(f"DynamoDB Local cannot run here: {unavailable()}")
    run = make_run(OIDC="off" if provider_missing() else "on")
    run.wait_until(lambda: any(_command(pid) == "java" for pid in run.descendants()), "DynamoDB Local")
    before = run.descendants()
    assert not run.state_file.exists()  # still starting
    run.signal_group(signal.SIGTERM)
    time.sleep(0.05)
    run.signal_group(signal.SIGTERM)
    _stopped_cleanly(run, before)


def test_a_stop_while_the_stack_loads_leaves_nothing_behind(make_run: Callable[..., MakeRun]) -> None:
    """Ctrl-C right after `make run`: the stack is still importing its modules (or make has not started it yet)."""
    run = make_run(**stack_dynamodb())
    run.wait_until(lambda: bool(run.descendants()), "the stack's process")
    time.sleep(0.3)
    before = run.descendants()
    run.signal_group(signal.SIGINT)
    time.sleep(0.05)
    run.signal_group(signal.SIGTERM)
    _stopped_cleanly(run, before)


def _command(pid: int) -> str:
    """The process's executable name (``java``, ``node``, ``python3.13``)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def test_asked_again_a_moment_later_the_stack_leaves_at_once_and_still_removes_the_state_file(
    tmp_path: Path,
) -> None:
    """The second stop, when the first is held up: no orderly stop, but no state file left for local commands."""
    state = tmp_path / "local-stack.json"
    program = textwrap.dedent(
        f"""
        import os, signal, time
        from pathlib import Path
        from local import stack
        from local.state import LocalStackState, write_state
        path = Path({str(state)!r})
        stack._state_paths.append(path)
        write_state(LocalStackState(os.getpid(), "http://x", "http://y", "eu-west-1", {{}}, {{}}, {{}}), path)
        stack._stop_on_signals()
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(stack._REPEAT_SECONDS + 0.1)  # the orderly stop, held up
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
        print("not stopped")
        """
    )
    env = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}
    result = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stdout) == (0, "stopped\n"), result.stderr
    assert not state.exists()
