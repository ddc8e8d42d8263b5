"""A local, in-memory Cosmos DB peer for tests: ``@vercel/cosmosdb-server`` run by ``cosmos_server.cjs``.

Usage::

    with CosmosServer() as server:
        async with azure.cosmos.aio.CosmosClient(server.endpoint, credential=server.key) as client:
            ...

The server speaks the Cosmos DB REST protocol over HTTPS on 127.0.0.1 with a self-signed certificate.
The ``azure-cosmos`` SDK (sync and ``aio``) needs no TLS option for it: it turns certificate
verification off by itself when the endpoint host is ``127.0.0.1`` or ``localhost``. The server does
not check request signatures, but the SDK needs a well-formed base64 key to sign with; ``key`` is the
public, well-known emulator key. Data lives in the node process and is lost when it stops.

Unless ``stock=True``, the launcher fixes three bugs of the package: a point read of a missing item
answers 404 (``CosmosResourceNotFoundError``) instead of crashing into a 500; a query with a
partition key is evaluated over that partition's items only (as on Cosmos DB), not the whole
container; and the query engine reads a container's items in linear time, not quadratic.

Known gaps of the fake are listed in ``tests/support/COSMOS_NOTES.md``.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import json
import queue
import shutil
import ssl
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

__all__ = ["EMULATOR_KEY", "CosmosServer", "CosmosServerError", "CosmosServerUnavailableError"]

#: The public key of the Azure Cosmos DB emulator. Any base64 string works with this server.
EMULATOR_KEY: Final = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="

_HOST: Final = "127.0.0.1"
_SUPPORT_DIR: Final = Path(__file__).resolve().parent
_LAUNCHER: Final = _SUPPORT_DIR / "cosmos_server.cjs"
_PACKAGE_DIR: Final = _SUPPORT_DIR.parent / "node" / "node_modules" / "@vercel" / "cosmosdb-server"
_LOG_LINES: Final = 200


class CosmosServerError(RuntimeError):
    """The server failed to start, exited early, or did not answer in time."""


class CosmosServerUnavailableError(CosmosServerError):
    """``node`` or the npm package is missing (a test suite may turn this into a skip)."""


class CosmosServer:
    """Run ``@vercel/cosmosdb-server`` on 127.0.0.1 for the lifetime of a ``with`` block.

    Args:
        port: TCP port to listen on; 0 (default) lets the OS choose a free one.
        startup_timeout: seconds to wait for the server to listen and answer.
        node: path of the ``node`` executable; default: ``node`` found on ``PATH``.
        stock: serve the package exactly as published (a read of a missing item then answers
            HTTP 500, raised by the SDK as ``CosmosHttpResponseError`` after one retry, a query's
            partition key is ignored, and a query over n items costs n² steps).

    The child is started with a stdin pipe: if this Python process dies without calling
    :meth:`stop`, the launcher sees EOF and exits too.
    """

    key: Final[str] = EMULATOR_KEY

    def __init__(
        self,
        port: int = 0,
        *,
        startup_timeout: float = 30.0,
        node: str | None = None,
        stock: bool = False,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"invalid port {port}")
        self._requested_port = port
        self._startup_timeout = startup_timeout
        self._node = node
        self._stock = stock
        self._proc: subprocess.Popen[str] | None = None
        self._port: int | None = None
        self._log: collections.deque[str] = collections.deque(maxlen=_LOG_LINES)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ properties

    @property
    def port(self) -> int:
        """The port the server listens on (after :meth:`start`)."""
        if self._port is None:
            raise CosmosServerError("server not started")
        return self._port

    @property
    def endpoint(self) -> str:
        """Account endpoint for ``CosmosClient``: ``https://127.0.0.1:PORT/``."""
        return f"https://{_HOST}:{self.port}/"

    @property
    def running(self) -> bool:
        """True while the node process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def log(self) -> list[str]:
        """The last lines the server wrote (stderr and stdout): its stack traces for HTTP 500s."""
        return list(self._log)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> CosmosServer:
        """Start the server and return once it answers an HTTPS request. Idempotent while running."""
        if self.running:
            return self
        node = self._node or shutil.which("node")
        if node is None:
            raise CosmosServerUnavailableError("node executable not found on PATH")
        if not _PACKAGE_DIR.is_dir():
            raise CosmosServerUnavailableError(f"{_PACKAGE_DIR} missing: run `npm ci` in {_PACKAGE_DIR.parents[2]}")
        self._port = None
        self._lines = queue.Queue()
        try:
            self._proc = subprocess.Popen(
                [node, str(_LAUNCHER), str(self._requested_port), *(["--stock"] if self._stock else [])],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                errors="replace",
                start_new_session=True,  # a Ctrl-C in the terminal reaches pytest, which calls stop()
            )
        except OSError as err:
            raise CosmosServerUnavailableError(f"cannot run {node}: {err}") from err
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._pump, args=(self._proc.stdout, True), daemon=True),
            threading.Thread(target=self._pump, args=(self._proc.stderr, False), daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        try:
            deadline = time.monotonic() + self._startup_timeout
            self._port = self._wait_listening(deadline)
            self._wait_answering(deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout`` seconds). Safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for thread in self._threads:
            thread.join(timeout)  # they end at EOF, i.e. when the process has exited
        self._threads = []
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def __enter__(self) -> CosmosServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers for tests

    def reset(self) -> None:
        """Delete every database (the server is in-memory, so this returns it to empty).

        Uses plain HTTPS calls: the server does not check request signatures.
        """
        status, body = self._request("GET", "/dbs")
        if status != 200:
            raise CosmosServerError(f"GET /dbs answered {status}")
        for database in body.get("Databases", []):
            db_id = urllib.parse.quote(str(database["id"]), safe="")
            status, _ = self._request("DELETE", f"/dbs/{db_id}")
            if status not in (204, 404):
                raise CosmosServerError(f"DELETE /dbs/{db_id} answered {status}")

    # ------------------------------------------------------------------ internals

    def _pump(self, stream: IO[str], is_stdout: bool) -> None:
        for line in stream:
            line = line.rstrip("\n")
            if is_stdout and line.startswith("LISTENING "):
                self._lines.put(line)
            else:
                self._log.append(line)
        if is_stdout:
            self._lines.put(None)  # EOF: the process is exiting

    def _wait_listening(self, deadline: float) -> int:
        try:
            line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise CosmosServerError(self._failure("did not print LISTENING in time")) from None
        if line is None:
            raise CosmosServerError(self._failure("exited before listening"))
        try:
            return int(line.split()[1])
        except (IndexError, ValueError):
            raise CosmosServerError(self._failure(f"unexpected line {line!r}")) from None

    def _wait_answering(self, deadline: float) -> None:
        delay = 0.01
        while True:
            try:
                status, body = self._request("GET", "/", timeout=max(0.1, deadline - time.monotonic()))
                if status == 200 and body.get("writableLocations"):
                    return
                problem = f"GET / answered {status}"
            except (OSError, http.client.HTTPException, ValueError) as err:
                problem = f"GET / failed: {err!r}"
            if not self.running:
                raise CosmosServerError(self._failure("exited during startup"))
            if time.monotonic() + delay > deadline:
                raise CosmosServerError(self._failure(problem))
            time.sleep(delay)  # only reached if the first probe fails; backs off to 0.2 s
            delay = min(delay * 2, 0.2)

    def _request(self, method: str, path: str, timeout: float = 10.0) -> tuple[int, Any]:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the package's certificate is self-signed and expired
        conn = http.client.HTTPSConnection(_HOST, self.port, timeout=timeout, context=context)
        try:
            conn.request(method, path, headers={"Accept": "application/json"})
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        return response.status, (json.loads(raw) if raw else {})

    def _failure(self, what: str) -> str:
        code: int | None = None
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self._proc.wait(0.5)  # it is usually exiting: let it finish writing stderr
        if code is not None:
            for thread in self._threads:
                thread.join(1.0)
        tail = "\n".join(self.log[-20:])
        return f"cosmos server {what} (exit code {code}); log:\n{tail}"
