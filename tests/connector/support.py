"""Helpers for the connector tests: the committed artefacts, walking a definition, a callback server."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OPENAPI_DIR = ROOT / "openapi"
SAMPLES_DIR = ROOT / "power-automate-samples"
# Microsoft's JSON schemas for the connector files live beside the project, not in it.
REFERENCE_DIR = ROOT.parent / "shared" / "reference"
METHODS = ("get", "put", "post", "delete", "patch")


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    return spec["definitions"][ref.rsplit("/", 1)[-1]]


def properties(schema: dict[str, Any], where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property of a schema, nested objects and array items included, with a dotted name."""
    for name, prop in (schema.get("properties") or {}).items():
        yield f"{where}.{name}", prop
        yield from properties(prop, f"{where}.{name}")
        if isinstance(prop.get("items"), dict):
            yield from properties(prop["items"], f"{where}.{name}[]")


def pending_events(db: Path) -> list[dict[str, Any]]:
    """The webhook callback outbox as the server left it (read straight from the SQLite file)."""
    with sqlite3.connect(db) as conn:
        return [json.loads(body) for (body,) in conn.execute("SELECT body FROM notifications")]


def wait_until(condition: Callable[[], Any], *, timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy (no sleeps as synchronisation)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@dataclass
class Callback:
    path: str
    body: dict[str, Any]
    status: int  # what we answered


@dataclass
class CallbackServer:
    """A local stand-in for Power Automate's callback URL: records POSTs, answers scripted statuses."""

    received: list[Callback] = field(default_factory=list)
    script: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with server.lock:
                    status, headers = server.script.popleft() if server.script else (202, {})
                    server.received.append(Callback(self.path, json.loads(raw or b"{}"), status))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def url(self, name: str = "hook") -> str:
        # Shaped like Power Automate's: a signature in the query string.
        return f"http://127.0.0.1:{self._http.server_address[1]}/workflows/{name}/triggers/manual/run?sig=secret"

    def answer_next(self, *statuses: int, headers: dict[str, str] | None = None) -> None:
        with self.lock:
            for status in statuses:
                self.script.append((status, headers or {}))

    def bodies(self, name: str | None = None, *, ok_only: bool = True) -> list[dict[str, Any]]:
        with self.lock:
            return [
                c.body for c in self.received
                if (name is None or f"/workflows/{name}/" in c.path) and (not ok_only or c.status < 300)
            ]  # fmt: skip

    def __enter__(self) -> CallbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()
