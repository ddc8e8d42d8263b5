"""What SendMessage adds on top of the Bot Connector's own latency, with concurrent clients on SQLite.

    python -m bench.send_overhead [--clients 20] [--requests 1000] [--via rest|mcp]

Each client is a flow of its own tenant (20 clients: 20 tenants, each well under Teams' 50/s) that
sends one message at a time to a different person and waits for 200 (delivered). The fake Bot
Connector (in a process of its own) answers after 50-150 ms and notes how long it held each call;
overhead = the client's round trip minus that. The server is the real ``teams-proactive serve``
process with its default settings; the clients are asyncio tasks in this process.

``--via mcp`` sends the same messages as ``send_message`` tool calls to ``POST /mcp`` (one JSON-RPC
``tools/call`` per POST, stateless, as Copilot Studio sends them), for the overhead of the MCP layer.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.common import API_KEY, percentile, summary
from tests.support.fake_connector import FakeConnector
from tests.support.people import people, seed_sqlite
from tests.support.server_process import ServerProcess

LATENCY = (0.05, 0.15)


class TimedConnector(FakeConnector):
    """The fake Bot Connector, noting how long it took to answer each send (by conversation)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.held: dict[str, float] = {}

    async def _post(self, request: web.Request) -> web.Response:
        started = time.monotonic()
        try:
            return await super()._post(request)
        finally:
            self.held[request.match_info["cid"]] = time.monotonic() - started


def _serve_fake(pipe: Connection) -> None:
    """Child process: run the fake until told to stop, then hand back how long each call was held."""
    with TimedConnector(latency=LATENCY) as fake:
        pipe.send(fake.service_url("bench"))
        pipe.recv()
        pipe.send(dict(fake.held))


MCP_HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}


async def _clients(url: str, crowds: list[list[str]], via: str = "rest") -> list[tuple[float, str]]:
    results: list[tuple[float, str]] = []
    start = asyncio.Event()
    ready = 0

    async def client(session: aiohttp.ClientSession, upns: list[str]) -> None:
        nonlocal ready

        async def post(upn: str) -> tuple[float, str]:
            message = {"recipient": upn, "text": "overhead probe", "wait": 30}
            if via == "mcp":
                call = {"name": "send_message", "arguments": message}
                target, sent = url + "/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": call}
                headers = {"X-API-Key": API_KEY, **MCP_HEADERS}
            else:
                target, sent, headers = url + "/api/v1/messages", message, {"X-API-Key": API_KEY}
            began = time.monotonic()
            async with session.post(target, json=sent, headers=headers) as response:
                body = await response.json()
                elapsed = time.monotonic() - began
                assert response.status == 200, body
            if via == "mcp":
                assert not body["result"].get("isError"), body
                body = body["result"]["structuredContent"]
            return elapsed, body["conversationId"]

        await post(upns[-1])  # warm-up: the connection, this tenant's first send
        ready += 1
        if ready == len(crowds):
            start.set()
        await start.wait()
        for upn in upns[:-1]:
            results.append(await post(upn))

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
        await asyncio.gather(*(client(session, crowd) for crowd in crowds))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=1000, help="messages in all")
    parser.add_argument("--via", choices=("rest", "mcp"), default="rest", help="SendMessage, or the send_message tool")
    args = parser.parse_args(argv)
    per_client = max(1, args.requests // args.clients)

    parent, child = multiprocessing.Pipe()
    fake_process = multiprocessing.get_context("spawn").Process(target=_serve_fake, args=(child,), daemon=True)
    fake_process.start()
    service_url = parent.recv()
    try:
        with tempfile.TemporaryDirectory(prefix="teams-proactive-bench-") as tmp:
            db = Path(tmp) / "store.db"
            crowds = [
                people(per_client + 1, tenant_id=f"tenant-{c:02d}", prefix=f"c{c:02d}-") for c in range(args.clients)
            ]
            seed_sqlite(str(db), [p for crowd in crowds for p in crowd], service_url)
            env = {
                "STORE_URL": f"sqlite:///{db}",
                "CONNECTOR_API_KEY": API_KEY,
                "RATE_LIMIT_PER_MINUTE": "0",  # the per-key API limit would refuse a benchmark
                "SERVER_CWD": tmp,
            }
            with ServerProcess(env, log_path=Path(tmp) / "server.log") as server:
                cpu_start = server.cpu_seconds()
                began = time.monotonic()
                results = asyncio.run(_clients(server.url, [[p.upn for p in crowd] for crowd in crowds], args.via))
                wall = time.monotonic() - began
                cpu = server.cpu_seconds() - cpu_start
    finally:
        parent.send("stop")
        held: dict[str, float] = parent.recv()
        fake_process.join(10)

    total_ms = [elapsed * 1000 for elapsed, _ in results]
    overhead_ms = [(elapsed - held[cid]) * 1000 for elapsed, cid in results]
    what = "send_message tool call (POST /mcp)" if args.via == "mcp" else "SendMessage"
    print(
        f"{what} (waiting for delivery) x {len(results)}: {args.clients} concurrent clients, one tenant each;"
        f" fake Bot Connector {LATENCY[0] * 1000:.0f}-{LATENCY[1] * 1000:.0f} ms; SQLite; default settings"
    )
    print(f"  round trip (ms):               {summary(total_ms)}")
    print(f"  overhead over connector (ms):  {summary(overhead_ms)}")
    print(
        f"  target p50 < 10 ms and p99 < 50 ms: p50 {percentile(overhead_ms, 50):.1f} ms,"
        f" p99 {percentile(overhead_ms, 99):.1f} ms"
    )
    print(
        f"  {len(results) / wall:.0f} messages/s; server CPU {cpu / len(results) * 1000:.2f} ms per message"
        " (the API request, the outbox and the send together)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
