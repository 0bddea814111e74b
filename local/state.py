"""Where the running `make run` stack is, so local commands find it without exported variables.

The stack writes one JSON file when it is up and removes it when it stops. It names endpoints, resource
names and settings, never a key: commands read keys from the stack's emulated Secrets Manager, as they read
them from AWS when deployed. The file's path is ``LOCAL_STACK_FILE`` (tests give each stack its own), else
``.local-stack.json`` at the repository root.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = [
    "DEFAULT_STATE_FILE",
    "LocalStackState",
    "NoLocalStack",
    "read_state",
    "remove_state",
    "state_file",
    "write_state",
]

DEFAULT_STATE_FILE = Path(__file__).resolve().parent.parent / ".local-stack.json"


class NoLocalStack(Exception):
    """No running local stack: the message says how to start one."""


@dataclass(frozen=True)
class LocalStackState:
    pid: int
    api_url: str  # http://localhost:3000
    aws_endpoint: str  # moto: http://127.0.0.1:4566
    region: str
    function_urls: dict[str, str]  # vendor (functions/<vendor>) -> http://localhost:3001/
    secret_ids: dict[str, str]  # function variable (LOGIN_TOKEN_SECRET_ID, ...) -> secret name in moto
    tables: dict[str, str]  # function variable (JTI_TABLE_NAME, ...) -> table name in moto
    settings: dict[str, str] = field(default_factory=dict)  # variables commands must agree with (LINK_TOKEN_MAX_TTL)
    vendor_origins: dict[str, str] = field(default_factory=dict)  # vendor host -> its local stand-in's origin

    def aws_environment(self) -> dict[str, str]:
        """Variables that point boto3 at the stack's moto with dummy credentials, never at AWS."""
        return {
            "AWS_ENDPOINT_URL": self.aws_endpoint,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_SESSION_TOKEN": "local",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }


def state_file(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    configured = environ.get("LOCAL_STACK_FILE", "").strip()
    return Path(configured) if configured else DEFAULT_STATE_FILE


def _temporary(path: Path, pid: int) -> Path:
    return path.with_name(f".{path.name}.{pid}.tmp")


def write_state(state: LocalStackState, path: Path) -> None:
    """Written whole (temporary file, then rename), so a reader never sees half a file."""
    temporary = _temporary(path, os.getpid())
    temporary.write_text(json.dumps(asdict(state), indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)


def remove_state(path: Path, *, pid: int) -> None:
    """Remove ``path`` if it is still ours (another stack may have started since), and any copy of it that
    ``pid`` had not finished writing (a stop in the middle of ``write_state``)."""
    with contextlib.suppress(OSError):
        _temporary(path, pid).unlink(missing_ok=True)
    with contextlib.suppress(OSError, ValueError, NoLocalStack):
        if _load(path).pid == pid:
            path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _load(path: Path) -> LocalStackState:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise NoLocalStack(f"no local stack is running (no {path}): start one with `make run`") from exc
    except (OSError, ValueError) as exc:
        raise NoLocalStack(f"cannot read {path} ({exc}): restart the local stack with `make run`") from exc
    try:
        return LocalStackState(**data)
    except TypeError as exc:
        raise NoLocalStack(f"{path} is from another version: restart the local stack with `make run`") from exc


def read_state(environ: Mapping[str, str] | None = None) -> LocalStackState:
    """The running stack; ``NoLocalStack`` when there is none (a stale file from a killed stack included)."""
    path = state_file(environ)
    state = _load(path)
    if not _alive(state.pid):
        raise NoLocalStack(f"the local stack that wrote {path} is gone: start one with `make run`")
    return state
