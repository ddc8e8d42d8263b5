"""The start-up every aiohttp fake shares: apps served on 127.0.0.1 from an event loop on a thread of its own.

The fakes stand in for Microsoft's cloud while the code under test runs in the test's own thread (and
its own loop, or the Flask app's): the fake's loop must keep answering while the test blocks.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")
START_SECONDS = 10.0  # generous on a loaded machine; a fake that has not started by then is broken


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BackgroundServer:
    """``start()``, then ``serve(app)`` as many apps as needed; ``stop()`` closes them and the loop.

    ``run(coroutine)`` runs something on the servers' loop and waits for it (a fake's set-up that needs
    the loop); ``call_soon(fn)`` hands it a callback without waiting (releasing held requests).
    """

    def __init__(self, name: str = "fake") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._runners: list[web.AppRunner] = []

    def start(self) -> BackgroundServer:
        self._thread.start()
        return self

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(START_SECONDS)

    def call_soon(self, callback: Callable[[], object]) -> None:
        self.loop.call_soon_threadsafe(callback)

    def serve(self, app: web.Application, *, port: int | None = None, ssl_context: ssl.SSLContext | None = None) -> int:
        """Serve ``app`` on 127.0.0.1 (https when given a context); the port it listens on."""
        chosen = port or free_port()
        self.run(self._serve(app, chosen, ssl_context))
        return chosen

    async def _serve(self, app: web.Application, port: int, context: ssl.SSLContext | None) -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
        self._runners.append(runner)

    def stop(self, before: Callable[[], Awaitable[None]] | None = None) -> None:
        """Run ``before`` (a fake's own clean-up) on the loop, close every app, then end the loop."""

        async def close() -> None:
            if before is not None:
                await before()
            for runner in self._runners:
                await runner.cleanup()

        if self._thread.is_alive():
            self.run(close())
            self.call_soon(self.loop.stop)
            self._thread.join(5)
