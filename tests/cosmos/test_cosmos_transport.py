"""The store's HTTP transport reads the environment's proxy settings only when a proxy is named.

azure-core lets aiohttp "trust the environment" by default: every request then looks up the proxy
variables and ``~/.netrc`` on a worker thread, and a ``.netrc`` entry for the account's host turns
into HTTP basic auth that aiohttp refuses to combine with Cosmos DB's own Authorization header.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import pytest

from bot.model import Broadcast
from bot.store.cosmos import _proxy_configured
from tests.cosmos.conftest import OpenStore
from tests.support.cosmos_fixtures import CosmosTarget

pytestmark = pytest.mark.cosmos

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
    created = await store.create_broadcast(
        Broadcast(id="b-netrc", owner="k1", tenant_id="t1", content={"text": "hi"}, recipients=["a@contoso.example"])
    )
    fetched = await store.get_broadcast("b-netrc")
    assert fetched is not None and fetched.etag == created.etag


def test_the_environment_is_trusted_only_when_it_names_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    no_proxy(monkeypatch)
    assert not _proxy_configured()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # what tests/support/server_process.py sets
    assert not _proxy_configured()
    monkeypatch.setenv("https_proxy", "http://proxy.contoso.example:8080")
    assert _proxy_configured()
