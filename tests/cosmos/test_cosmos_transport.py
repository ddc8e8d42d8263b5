"""The store's HTTP transport: a bounded pool of connections that reads the environment's proxy
settings only when a proxy is named.

azure-core lets aiohttp "trust the environment" by default: every request then looks up the proxy
variables and ``~/.netrc`` on a worker thread, and a ``.netrc`` entry for the account's host turns
into HTTP basic auth that aiohttp refuses to combine with Cosmos DB's own Authorization header.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import urllib.parse
from pathlib import Path

import pytest
from teams_proactive.bot.model import Broadcast
from teams_proactive.bot.store.cosmos.transport import MAX_CONNECTIONS, proxy_configured

from tests.cosmos.conftest import OpenStore
from tests.support.cosmos_fixtures import CosmosTarget

pytestmark = pytest.mark.cosmos

PROC_NET_TCP_EXISTS = Path("/proc/net/tcp").exists()
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


async def test_a_netrc_entry_for_the_account_host_does_not_break_the_store(
    open_store: OpenStore, cosmos_target: CosmosTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_proxy(monkeypatch)
    host = urllib.parse.urlsplit(cosmos_target.endpoint).hostname
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine {host} login someone password not-a-cosmos-key\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))  # read by aiohttp when it trusts the environment
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # names no proxy
    store = await open_store()  # with a trusting transport: ValueError "Cannot combine AUTHORIZATION header ..."
    created = await store.broadcasts.create(
        Broadcast(id="b-netrc", owner="k1", tenant_id="t1", content={"text": "hi"}, recipients=["a@contoso.example"])
    )
    fetched = await store.broadcasts.get("b-netrc")
    assert fetched is not None and fetched.etag == created.etag


def test_the_environment_is_trusted_only_when_it_names_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    no_proxy(monkeypatch)
    assert not proxy_configured()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # what tests/support/server_process.py sets
    assert not proxy_configured()
    monkeypatch.setenv("https_proxy", "http://proxy.contoso.example:8080")
    assert proxy_configured()


def sockets_connected_to(port: int) -> set[str]:
    """Inodes of this process's established TCP connections to ``port`` on loopback (/proc: Linux)."""
    ours = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:["):
                ours.add(target[len("socket:[") : -1])
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port = int(fields[2].rsplit(":", 1)[1], 16)
        if fields[3] == "01" and remote_port == port and fields[9] in ours:  # 01: ESTABLISHED
            found.add(fields[9])
    return found


async def test_a_burst_of_store_calls_shares_a_bounded_pool_of_connections(
    open_store: OpenStore, cosmos_target: CosmosTarget
) -> None:
    # Each TLS connection keeps a 256 KiB read buffer for its life: aiohttp's default pool (100 per
    # host) held ~27 MB during a 100,000-person broadcast. The store's own pool stops at MAX_CONNECTIONS.
    if not cosmos_target.local or not PROC_NET_TCP_EXISTS:
        pytest.skip("counts this process's connections to the local test server through /proc")
    port = urllib.parse.urlsplit(cosmos_target.endpoint).port
    assert port is not None
    earlier = sockets_connected_to(port)  # other stores' idle connections to the shared server
    store = await open_store()
    await store.broadcasts.create(
        Broadcast(id="b-pool", owner="k1", tenant_id="t1", content={"text": "hi"}, recipients=["a@contoso.example"])
    )
    burst = 4 * MAX_CONNECTIONS
    read = await asyncio.gather(*(store.broadcasts.get("b-pool") for _ in range(burst)))
    assert all(b is not None and b.id == "b-pool" for b in read)
    connections = len(sockets_connected_to(port) - earlier)
    # All started before any finished, so the pool filled up (and no further: 100 without the cap).
    assert 1 < connections <= MAX_CONNECTIONS


async def test_a_store_call_after_close_fails_instead_of_opening_a_new_pool(open_store: OpenStore) -> None:
    store = await open_store()
    await store.broadcasts.create(
        Broadcast(id="b-closed", owner="k1", tenant_id="t1", content={"text": "hi"}, recipients=["a@contoso.example"])
    )
    await store.close()
    # azure-core's own transport refuses to reopen; a pool made again here would never be closed.
    with pytest.raises(ValueError, match="already been closed"):
        await store.broadcasts.get("b-closed")
