"""One HTTP request from Flask (WSGI) handed to the SDK's Streamable HTTP handler (ASGI) on the bot loop.

The MCP endpoint runs stateless with JSON responses: every POST carries one JSON-RPC message and gets
its whole answer in the response body. That is a plain request/response, which fits the WSGI servers
we already run (waitress, gunicorn gthread) without a second server or an ASGI adapter around Flask,
and keeps any instance able to answer any call behind a load balancer (no sessions to pin).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

log = logging.getLogger(__name__)

# Credentials stay in Flask: the SDK sees the request without them.
HIDDEN_HEADERS = {"x-api-key", "authorization", "cookie"}


@dataclass(slots=True)
class HttpAnswer:
    status: int = 500
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)


class McpBridge:
    """Owns the SDK's session manager (started on first use, on the bot loop) and runs requests through it."""

    def __init__(self, server: Server[Any], loop: asyncio.AbstractEventLoop, *, max_body_bytes: int) -> None:
        self._manager = StreamableHTTPSessionManager(
            app=server, json_response=True, stateless=True, max_request_body_size=max_body_bytes
        )
        self._loop = loop
        self._ready: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock: asyncio.Lock | None = None

    async def _started(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._task is None:
                self._ready, self._stop = asyncio.Event(), asyncio.Event()
                self._task = self._loop.create_task(self._hold(), name="mcp-session-manager")
            ready = self._ready
        await ready.wait()

    async def _hold(self) -> None:
        assert self._ready is not None and self._stop is not None
        try:
            async with self._manager.run():
                self._ready.set()
                await self._stop.wait()
        finally:
            # Should the manager fail to start, requests must fail at once (the SDK says why), not hang.
            self._ready.set()

    async def close(self) -> None:
        if self._task is not None and self._stop is not None:
            self._stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout=10)

    async def handle(self, scope: dict[str, Any], body: bytes) -> HttpAnswer:
        await self._started()
        answer = HttpAnswer()
        finished = asyncio.Event()
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            # The client stays connected until the answer is complete (waitress/gunicorn hold the socket).
            await finished.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer.status = message["status"]
                answer.headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", [])]
            elif message["type"] == "http.response.body":
                answer.body += message.get("body", b"")
                if not message.get("more_body", False):
                    finished.set()

        try:
            await self._manager.handle_request(scope, receive, send)
        finally:
            finished.set()
        return answer


def asgi_scope(
    environ: dict[str, Any], method: str, headers: list[tuple[str, str]], established: dict[str, Any], key: str
) -> dict[str, Any]:
    """The ASGI ``http`` scope for the request Flask is serving, with what auth established under ``key``."""
    server_port = int(environ.get("SERVER_PORT") or 0)
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": environ.get("SERVER_PROTOCOL", "HTTP/1.1").split("/")[-1],
        "method": method,
        "scheme": environ.get("wsgi.url_scheme", "http"),
        "path": "/mcp",
        "raw_path": b"/mcp",
        "root_path": "",
        "query_string": environ.get("QUERY_STRING", "").encode("latin-1"),
        "headers": [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in headers
            if name.lower() not in HIDDEN_HEADERS
        ],
        "client": (environ.get("REMOTE_ADDR", ""), int(environ.get("REMOTE_PORT") or 0)),
        "server": (environ.get("SERVER_NAME", ""), server_port),
        "state": {},
        key: established,
    }
