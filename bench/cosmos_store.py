"""Latency of the Cosmos DB store's hot paths against the local wire-compatible server (or a real account).

    python -m bench.cosmos_store [--people 500] [--rounds 300]

Set COSMOS_TEST_ENDPOINT / COSMOS_TEST_KEY to measure a real account instead (a database named
``tp-bench-...`` is created and dropped). The local server charges no request units and runs in one
Node process, so its figures show our client-side cost and round trips, not Cosmos DB's latency.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from teams_proactive.bot.delivery import broadcasts
from teams_proactive.bot.delivery.broadcasts import BroadcastService
from teams_proactive.bot.delivery.dispatcher import Dispatcher, DispatcherSettings
from teams_proactive.bot.model import Broadcast, Delivery, Reference, Surface, now
from teams_proactive.bot.store.cosmos import CosmosStore

from bench.common import summary
from tests.support.cosmos_fixtures import CosmosTarget, drop_database
from tests.support.cosmos_server import CosmosServer


async def timed(rounds: int, call: Callable[[int], Awaitable[Any]]) -> list[float]:
    for i in range(min(20, rounds)):  # warm-up: connections, container properties
        await call(i)
    samples = []
    for i in range(rounds):
        started = time.perf_counter()
        await call(i)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def measure(target: CosmosTarget, people: int, rounds: int) -> None:
    database = f"tp-bench-{uuid.uuid4().hex[:8]}"
    store = CosmosStore(target.endpoint, key=target.key, database=database)
    started = time.perf_counter()
    await store.open()
    print(f"open (database + 8 containers, created): {(time.perf_counter() - started) * 1000:.0f} ms")
    try:
        refs = [
            Reference(
                tenant_id="t1",
                user_key=f"u{i}",
                surface=Surface.TEAMS,
                conversation_id=f"a:{i}",
                service_url="https://smba.example/",
                channel_id="msteams",
                user_id=f"29:{i}",
                bot_id="28:b",
                aad_object_id=str(uuid.uuid4()),
                upn=f"user{i}@contoso.example",
                email=f"user{i}@contoso.example",
            )
            for i in range(people)
        ]
        started = time.perf_counter()
        for ref in refs:
            await store.references.write(ref, None)
        print(
            f"create reference + aliases (first write): {(time.perf_counter() - started) * 1000 / people:.2f} ms each"
        )
        deliveries = [
            Delivery(
                id=f"d{i:05}",
                owner="k",
                tenant_id="t1",
                user_key=f"u{i % people}",
                recipient="x",
                content={"text": "hello"},
                not_before=now() + 3600,
            )
            for i in range(1000)
        ]
        started = time.perf_counter()
        await store.outbox.create_many(deliveries)
        print(f"create_deliveries(1000): {(time.perf_counter() - started) * 1000:.0f} ms")

        async def replace(i: int) -> None:
            ref = await store.references.get("t1", f"u{i % people}", Surface.TEAMS)
            assert ref is not None
            ref.last_seen = now()
            await store.references.write(ref, ref.etag)

        cases: list[tuple[str, Callable[[int], Awaitable[Any]]]] = [
            ("get_reference (point read)", lambda i: store.references.get("t1", f"u{i % people}", Surface.TEAMS)),
            ("get_delivery (point read)", lambda i: store.outbox.get(f"d{i % 1000:05}")),
            ("person_references (1-partition query)", lambda i: store.references.of_person("t1", f"u{i % people}")),
            ("resolve by UPN (2 point reads)", lambda i: store.references.resolve(f"user{i % people}@contoso.example", "t1")),
            ("read + conditional replace of a reference", replace),
            ("claim_due, nothing due (1 query)", lambda i: store.outbox.claim_due("o", now(), 32, 30)),
            ("next_due_at (aggregate query)", lambda i: store.outbox.next_due_at()),
            ("acquire_lease (read + conditional write)", lambda i: store.leases.acquire("dispatcher", "o", 10)),
        ]
        print(f"\nms per call, {rounds} sequential calls each (asyncio client, one connection pool):")
        for name, call in cases:
            print(f"  {name:<50} {summary(await timed(rounds, call))}")
        await expansion(store, [ref.upn or "" for ref in refs])
    finally:
        await store.close()
        await drop_database(target, database)


async def expansion(store: CosmosStore, upns: list[str]) -> None:
    """StartBroadcast's preparation: every UPN of the list resolved, checked and queued, as the
    coordinator does it, at the shipped concurrency and one at a time (the way it used to)."""
    # Never started: expanding only wakes it.
    service = BroadcastService(store, Dispatcher(store, None, DispatcherSettings()))  # type: ignore[arg-type]
    print(f"\nbroadcast expansion, a list of {len(upns)} UPNs (resolve, check, queue):")
    for concurrency in (broadcasts.RESOLVE_CONCURRENCY, 1):
        shipped, broadcasts.RESOLVE_CONCURRENCY = broadcasts.RESOLVE_CONCURRENCY, concurrency
        broadcast = Broadcast(
            id=uuid.uuid4().hex, owner="k", tenant_id="t1", content={"text": "hello"}, recipients=upns
        )
        await store.broadcasts.create(broadcast)
        started = time.perf_counter()
        await service.step()
        seconds = time.perf_counter() - started
        broadcasts.RESOLVE_CONCURRENCY = shipped
        stored = await store.broadcasts.get(broadcast.id)
        assert stored is not None and stored.status == "running" and stored.total == len(upns)
        print(f"  {concurrency:>2} at a time: {seconds:.2f} s, {len(upns) / seconds:.0f} recipients/s")
        await store.broadcasts.write(dataclasses.replace(stored, status="completed"), stored.etag or "")


def main() -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    endpoint = os.environ.get("COSMOS_TEST_ENDPOINT", "").strip()
    if endpoint:
        print(f"account: {endpoint}")
        asyncio.run(
            measure(CosmosTarget(endpoint, os.environ.get("COSMOS_TEST_KEY", ""), False), args.people, args.rounds)
        )
        return
    with CosmosServer() as server:
        print(f"local @vercel/cosmosdb-server (keep-alive) at {server.endpoint}")
        asyncio.run(measure(CosmosTarget(server.endpoint, server.key, True), args.people, args.rounds))


if __name__ == "__main__":
    main()
