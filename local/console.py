"""What `make run` prints per request: one readable line, the handlers' JSON only on demand.

The handlers log as they do in Lambda: Powertools' Logger writes JSON lines to the ``sys.stdout`` it found
when it was created, and Powertools' metrics ``print`` an EMF blob. ``Console.install`` puts a thread-aware
stand-in for ``sys.stdout`` in place before the handlers are imported; while a request is answered
(``Console.logged``), what its thread writes is kept instead of printed. Requests to different servers run on
different threads, and one function answers one request at a time, so what a thread kept is that request's.

Once the request is answered the console prints one line::

    15:04:05 GET /clickfunnels/sso 302 issued
    15:04:05 GET /clickfunnels/sso 401 refused login_token_signature
    15:04:05 GET / 302 issued  (clickfunnels function URL)

time, method, path (never the query: it carries tokens), status, then the outcome and reason of the last
JSON log line that had one (local pages ``note`` theirs), and the server when it is not the HTTP API. The
metrics blobs are dropped; a logged exception's traceback and anything else a handler printed follow the
line. With ``LOCAL_LOGS=json`` everything the handler printed follows the line, as CloudWatch would hold it.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO, cast

from local.server import App, Reply, Request

__all__ = ["LOG_FORMATS", "Captured", "CapturingStdout", "Console", "format_line", "note", "parse_log_format"]

LOG_FORMATS = ("line", "json")
_MAX_PATH = 200
_MAX_WORD = 80


@dataclass
class Captured:
    """What one request's thread wrote, and what local code noted about it."""

    chunks: list[str] = field(default_factory=list)
    outcome: str | None = None
    reason: str | None = None

    def text(self) -> str:
        return "".join(self.chunks)


_current = threading.local()


def _capture() -> Captured | None:
    captured: Captured | None = getattr(_current, "captured", None)
    return captured


def note(outcome: str, reason: str | None = None) -> None:
    """The outcome (and reason) of the request this thread is answering, for code that logs no JSON."""
    captured = _capture()
    if captured is not None:
        captured.outcome, captured.reason = outcome, reason


@contextmanager
def capturing() -> Iterator[Captured]:
    """Keep what this thread writes to a ``CapturingStdout`` until the block ends."""
    previous = _capture()
    captured = _current.captured = Captured()
    try:
        yield captured
    finally:
        _current.captured = previous


class CapturingStdout:
    """``sys.stdout`` for the stack: a capturing thread's writes are kept, everyone else's go to ``real``."""

    def __init__(self, real: TextIO, lock: threading.Lock) -> None:
        self._real = real
        self._lock = lock

    @property
    def real(self) -> TextIO:
        return self._real

    def write(self, text: str) -> int:
        captured = _capture()
        if captured is not None:
            captured.chunks.append(text)
            return len(text)
        with self._lock:
            return self._real.write(text)

    def writelines(self, lines: Sequence[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if _capture() is None:
            with self._lock:
                self._real.flush()

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno, ...
        return getattr(self._real, name)


def _clean(text: str, limit: int) -> str:
    # One line whatever the request held: no control characters, no spaces that would shift the columns.
    cleaned = "".join(char if char.isprintable() and not char.isspace() else "?" for char in text)
    return cleaned if len(cleaned) <= limit else f"{cleaned[: limit - 3]}..."


def format_line(
    when: float,
    method: str,
    path: str,
    status: int,
    outcome: str | None = None,
    reason: str | None = None,
    site: str | None = None,
) -> str:
    """``15:04:05 GET /clickfunnels/sso 302 issued``: ``path`` must hold no query (it is cut off if it does)."""
    words = [
        time.strftime("%H:%M:%S", time.localtime(when)),
        _clean(method, 16),
        _clean(path.partition("?")[0], _MAX_PATH),
        str(status),
    ]
    words += [_clean(word, _MAX_WORD) for word in (outcome, reason) if word]
    line = " ".join(words)
    return f"{line}  ({site})" if site else line


@dataclass(frozen=True)
class _Parsed:
    outcome: str | None
    reason: str | None
    tracebacks: list[str]  # logged exceptions
    other: list[str]  # lines that are neither log records nor metrics


def _parse(text: str) -> _Parsed:
    outcome = reason = None
    tracebacks: list[str] = []
    other: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            other.append(line)
            continue
        if "_aws" in record:  # an EMF metrics blob
            continue
        if "outcome" in record:
            outcome = str(record["outcome"])
            reason = str(record["reason"]) if record.get("reason") else None
        if record.get("exception"):
            tracebacks.append(str(record["exception"]))
    return _Parsed(outcome, reason, tracebacks, other)


class Console:
    """The stack's output: ``install`` before importing handlers, ``logged`` around every server's app."""

    def __init__(self, *, log_format: str = "line", out: TextIO | None = None, err: TextIO | None = None) -> None:
        if log_format not in LOG_FORMATS:
            raise ValueError(f"log format must be one of {LOG_FORMATS}, got {log_format!r}")
        self._json = log_format == "json"
        self._lock = threading.Lock()
        self._out = out or sys.stdout
        self._err = err or sys.stderr
        self._installed: TextIO | None = None

    def install(self) -> None:
        """Make ``sys.stdout`` capture per thread (until ``uninstall``)."""
        if self._installed is None:
            self._installed = sys.stdout
            sys.stdout = cast(TextIO, CapturingStdout(self._out, self._lock))

    def uninstall(self) -> None:
        if self._installed is not None:
            sys.stdout, self._installed = self._installed, None

    def print(self, text: str, *, error: bool = False) -> None:
        stream = self._err if error else self._out
        with self._lock:
            stream.write(text if text.endswith("\n") else f"{text}\n")
            stream.flush()

    def logged(self, app: App, *, site: str | None = None, clock: Callable[[], float] = time.time) -> App:
        """``app``, printing one line per request (``site`` names the server when it is not the HTTP API)."""

        def logged_app(request: Request) -> Reply:
            with capturing() as captured:
                reply = app(request)
            self.report(request, reply, captured, site=site, when=clock())
            return reply

        return logged_app

    def report(self, request: Request, reply: Reply, captured: Captured, *, site: str | None, when: float) -> None:
        parsed = _parse(captured.text())
        outcome = parsed.outcome or captured.outcome
        reason = parsed.reason if parsed.outcome else captured.reason
        line = format_line(when, request.method, request.path, reply.status, outcome, reason, site)
        if self._json:
            printed = [text for text in captured.text().splitlines() if text.strip()]
            self.print("\n".join([line, *printed]))
            return
        self.print("\n".join([line, *parsed.other]))
        for trace in parsed.tracebacks:
            self.print(trace, error=True)


def parse_log_format(raw: str | None) -> str:
    """``LOCAL_LOGS``: ``line`` (the default) or ``json``; ``ValueError`` naming the variable otherwise."""
    value = (raw or "line").strip().lower() or "line"
    if value not in LOG_FORMATS:
        raise ValueError(f"LOCAL_LOGS must be line or json, got {raw!r}")
    return value
