"""The HTTP transport the Cosmos DB store gives the azure-cosmos SDK: a bounded, environment-aware pool.

azure-core's default ``AioHttpTransport`` makes an ``aiohttp.ClientSession`` with aiohttp's default
connector (up to 100 connections per host) that "trusts the environment". Both cost more than they
give here:

- Every TLS connection keeps a 256 KiB read buffer (asyncio's and uvloop's SSL protocol) plus
  OpenSSL's own state for its whole life. A broadcast keeps hundreds of store calls in flight (the
  dispatcher's claims and outcomes, the expansion's resolves and writes), so the pool grew to 100
  connections and ~27 MB during a 100,000-person run (tracemalloc: 24.8 MB allocated under
  ``loop.create_connection``), a quarter of the server's memory growth. One HTTP/1.1 connection
  carries a call at a time; at Cosmos DB's few milliseconds a call, ``MAX_CONNECTIONS`` of them carry
  thousands of calls a second, far more than Teams' 50 sends a second need. Calls beyond that wait
  for a free connection inside aiohttp, in order.
- Trusting the environment makes aiohttp look up the proxy variables and ``~/.netrc`` on a worker
  thread for every request (two thread hops per call, about 40% of the store's CPU per call,
  measured), and a ``~/.netrc`` entry for the account host clashes with Cosmos DB's own
  Authorization header. That only helps when a proxy is configured, so the environment is trusted
  only then.
"""

from __future__ import annotations

import urllib.request

import aiohttp
from azure.core.pipeline.transport import AioHttpTransport

MAX_CONNECTIONS = 32


def proxy_configured() -> bool:
    """Whether the environment names an HTTP proxy (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``,
    any case; ``NO_PROXY`` alone names none)."""
    return any(scheme in ("http", "https", "all") for scheme in urllib.request.getproxies())


class PooledTransport(AioHttpTransport):
    """azure-core's aiohttp transport over a session of at most ``max_connections`` connections."""

    def __init__(self, *, max_connections: int = MAX_CONNECTIONS) -> None:
        self._trust_env = proxy_configured()
        super().__init__(use_env_settings=self._trust_env)
        self.max_connections = max_connections
        self._session_made = False

    async def open(self) -> None:
        # Once only: after close() the base class refuses to open again ("HTTP transport has already
        # been closed"), so a store call made after the store closed fails instead of quietly opening
        # a session nobody closes.
        if self.session is None and not self._session_made:
            self._session_made = True
            # Made here, on the running loop, with the settings azure-core's own session has (no
            # cookies, bodies left compressed for the pipeline); closed by the base class's close().
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=self.max_connections),
                trust_env=self._trust_env,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
            )
        await super().open()
