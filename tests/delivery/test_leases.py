"""Several dispatchers on one SQLite store: claims never overlap, a lapsed lease is taken over, a lost one never sends."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from teams_proactive.bot.delivery.dispatcher import LEADER_LEASE, Dispatcher, DispatcherSettings
from teams_proactive.bot.model import Delivery, DeliveryStatus, now
from teams_proactive.bot.outbound import BotConnectorClient
from teams_proactive.bot.store.sqlite import SqliteStore

from tests.delivery.conftest import FAST
from tests.support.fake_connector import FakeConnector
from tests.support.people import SeededPerson, people, seed


async def _no_token() -> None:
    return None


def _deliveries(crowd: list[SeededPerson], tag: str) -> list[Delivery]:
    return [
        Delivery(
            id=f"{tag}-{i}",
            owner="tests",
            tenant_id=p.tenant_id,
            user_key=p.user_key,
            recipient=p.upn,
            content={"text": tag},
            broadcast_id=tag,
        )
        for i, p in enumerate(crowd)
    ]


async def _until(condition: Callable[[], Awaitable[bool]], seconds: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def _all_final(store: SqliteStore, tag: str, count: int) -> bool:
    counts = await store.outbox.count(tag)
    return counts.get(DeliveryStatus.DELIVERED, 0) + counts.get(DeliveryStatus.FAILED, 0) == count


def _copies(connector: FakeConnector, text: str) -> collections.Counter[str]:
    return collections.Counter(r.conversation_id for r in connector.sent() if r.activity.get("text") == text)


def test_concurrent_claims_from_two_processes_never_overlap(tmp_path: Path) -> None:
    path = str(tmp_path / "store.db")
    crowd = people(400, tenant_id="t")

    async def prepare() -> None:
        store = SqliteStore(path)
        await store.open()
        await store.outbox.create_many(_deliveries(crowd, "claims"))
        await store.close()

    asyncio.run(prepare())
    claimed: dict[str, list[str]] = {}
    start = threading.Barrier(4)

    def claimer(name: str) -> None:
        async def run() -> None:
            store = SqliteStore(path)  # its own connections, as another process would have
            await store.open()
            mine = claimed.setdefault(name, [])
            for _ in range(20):  # 4 claimers x 7 x 20 rounds: more than there is
                start.wait()  # every round, all four claim at the same moment
                mine.extend(d.id for d in await store.outbox.claim_due(name, now(), 7, 60.0))
            await store.close()

        asyncio.run(run())

    threads = [threading.Thread(target=claimer, args=(f"dispatcher-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [d for ids in claimed.values() for d in ids]
    assert len(everything) == len(set(everything)) == 400
    assert all(claimed.values())  # every one of them won some


def test_two_dispatchers_on_one_store_send_each_message_once(tmp_path: Path, connector: FakeConnector) -> None:
    path = str(tmp_path / "store.db")
    crowd = people(300, tenant_id="t")

    async def run() -> tuple[list[bool], dict[str, int]]:
        stores = [SqliteStore(path), SqliteStore(path)]
        for store in stores:
            await store.open()
        await seed(stores[0], crowd, connector.service_url())
        async with aiohttp.ClientSession() as session:
            client = BotConnectorClient(session, _no_token, timeout_seconds=FAST.send_timeout_seconds)
            dispatchers = [Dispatcher(store, client, FAST) for store in stores]
            for dispatcher in dispatchers:
                dispatcher.start()
            await stores[1].outbox.create_many(_deliveries(crowd, "pair"))
            for dispatcher in dispatchers:
                dispatcher.notify()
            await _until(lambda: _all_final(stores[0], "pair", 300))
            leaders = [d.is_leader for d in dispatchers]
            for dispatcher in dispatchers:
                await dispatcher.stop()
            counts = await stores[0].outbox.count("pair")
        for store in stores:
            await store.close()
        return leaders, counts

    leaders, counts = asyncio.run(run())
    assert sorted(leaders) == [False, True]  # one sends, the other stands by
    assert counts == {DeliveryStatus.DELIVERED: 300}
    copies = _copies(connector, "pair")
    assert len(copies) == 300 and set(copies.values()) == {1}


def test_a_dead_dispatchers_work_is_taken_over(tmp_path: Path, connector: FakeConnector) -> None:
    """The sending dispatcher stops mid-broadcast without a word: the other one finishes the job, and
    only sends that were under way at that moment can arrive twice."""
    path = str(tmp_path / "store.db")
    crowd = people(200, tenant_id="t")
    settings = dataclasses.replace(
        FAST,
        rate_per_tenant=100.0,
        concurrency=8,
        lease_seconds=3.0,
        leader_lease_seconds=1.0,
        send_timeout_seconds=1.0,
    )
    connector.latency = (0.02, 0.05)

    async def run() -> dict[str, int]:
        stores = [SqliteStore(path), SqliteStore(path)]
        for store in stores:
            await store.open()
        await seed(stores[0], crowd, connector.service_url())
        async with aiohttp.ClientSession() as session:
            client = BotConnectorClient(session, _no_token, timeout_seconds=settings.send_timeout_seconds)
            first = Dispatcher(stores[0], client, settings)
            first.start()
            await _until(lambda: _leader(first))
            second = Dispatcher(stores[1], client, settings)
            second.start()
            await stores[0].outbox.create_many(_deliveries(crowd, "takeover"))
            first.notify()
            await _until(lambda: _some_sent(connector, "takeover", 60))
            # The first dispatcher dies: its loop and its sends stop, its leases stay behind.
            assert first._task is not None
            first._task.cancel()
            for task in list(first._inflight):
                task.cancel()
            await _until(lambda: _all_final(stores[1], "takeover", 200))
            assert second.is_leader
            await second.stop()
            counts = await stores[1].outbox.count("takeover")
        for store in stores:
            await store.close()
        return counts

    counts = asyncio.run(run())
    assert counts == {DeliveryStatus.DELIVERED: 200}
    copies = _copies(connector, "takeover")
    assert len(copies) == 200
    assert sum(c - 1 for c in copies.values()) <= settings.concurrency


async def _leader(dispatcher: Dispatcher) -> bool:
    return dispatcher.is_leader


async def _some_sent(connector: FakeConnector, text: str, count: int) -> bool:
    return sum(_copies(connector, text).values()) >= count


def test_a_lost_lease_never_sends(tmp_path: Path, connector: FakeConnector) -> None:
    """A dispatcher that was too slow (its claim lapsed and another took the message) does not send it."""
    path = str(tmp_path / "store.db")
    crowd = people(1, tenant_id="t")

    async def run() -> tuple[Dispatcher, Delivery]:
        slow_store, fast_store = SqliteStore(path), SqliteStore(path)
        for store in (slow_store, fast_store):
            await store.open()
        await seed(slow_store, crowd, connector.service_url())
        await slow_store.outbox.create_many(_deliveries(crowd, "lost"))
        async with aiohttp.ClientSession() as session:
            client = BotConnectorClient(session, _no_token, timeout_seconds=FAST.send_timeout_seconds)
            slow = Dispatcher(slow_store, client, FAST)
            fast = Dispatcher(fast_store, client, FAST)
            # The slow one claimed it, and its lease has run out (a negative lease: already over).
            [stale] = await slow_store.outbox.claim_due(slow.owner, now(), 1, -1.0)
            [taken] = await fast_store.outbox.claim_due(fast.owner, now(), 1, FAST.lease_seconds)
            await fast._deliver(taken)
            await slow._deliver(stale)
            final = await fast_store.outbox.get(stale.id)
        for store in (slow_store, fast_store):
            await store.close()
        assert final is not None
        return slow, final

    slow, final = asyncio.run(run())
    assert slow.stats["lease_lost"] == 1 and slow.stats["sent"] == 0
    assert final.status == DeliveryStatus.DELIVERED and final.lease_owner is None
    assert _copies(connector, "lost") == {crowd[0].conversation_id: 1}


def test_the_leader_lease_passes_on_when_released(tmp_path: Path) -> None:
    path = str(tmp_path / "store.db")

    async def run() -> list[bool]:
        store = SqliteStore(path)
        await store.open()
        settings = DispatcherSettings(leader_lease_seconds=5.0)
        results = [
            await store.leases.acquire(LEADER_LEASE, "a", settings.leader_lease_seconds),
            await store.leases.acquire(LEADER_LEASE, "b", settings.leader_lease_seconds),
            await store.leases.acquire(LEADER_LEASE, "a", settings.leader_lease_seconds),  # renewal
        ]
        await store.leases.release(LEADER_LEASE, "a")
        results.append(await store.leases.acquire(LEADER_LEASE, "b", settings.leader_lease_seconds))
        await store.close()
        return results

    assert asyncio.run(run()) == [True, False, True, True]


def test_a_send_that_outlived_its_own_lease_is_not_doubled(tmp_path: Path, connector: FakeConnector) -> None:
    """A long Retry-After pause can outlast a claim: the same dispatcher then claims the message again
    while the first send still waits. The waiting send carries on under the new lease; no second one."""
    path = str(tmp_path / "store.db")
    crowd = people(1, tenant_id="t")

    async def run() -> tuple[Dispatcher, Delivery | None]:
        store = SqliteStore(path)
        await store.open()
        await seed(store, crowd, connector.service_url())
        await store.outbox.create_many(_deliveries(crowd, "outlived"))
        async with aiohttp.ClientSession() as session:
            client = BotConnectorClient(session, _no_token, timeout_seconds=FAST.send_timeout_seconds)
            dispatcher = Dispatcher(store, client, FAST)
            assert await store.leases.acquire(LEADER_LEASE, dispatcher.owner, 60)
            dispatcher.is_leader = True
            # Claimed with a lease that has already run out, and held back by a pause.
            [waiting] = await store.outbox.claim_due(dispatcher.owner, now(), 1, -1.0)
            dispatcher._limiter.pause("t", 1.0)
            first = asyncio.get_running_loop().create_task(dispatcher._deliver(waiting))
            dispatcher._claimed[waiting.id] = waiting
            await dispatcher._claim_and_send(1.0)  # takes the lapsed claim again
            assert dispatcher.in_flight == 0  # no second task
            await first
            final = await store.outbox.get(waiting.id)
        await store.close()
        return dispatcher, final

    dispatcher, final = asyncio.run(run())
    assert final is not None and final.status == DeliveryStatus.DELIVERED and final.lease_owner is None
    assert dispatcher.stats["sent"] == 1 and dispatcher.stats["lease_lost"] == 0
    assert _copies(connector, "outlived") == {crowd[0].conversation_id: 1}


def test_an_outcome_written_after_forget_recipient_keeps_the_scrub(tmp_path: Path, connector: FakeConnector) -> None:
    """ForgetRecipient scrubs a delivery whose send is under way: the outcome is still recorded (so it
    is not sent again), and the scrubbed content and chat stay scrubbed."""
    path = str(tmp_path / "store.db")
    crowd = people(1, tenant_id="t")

    def scrub(current: Delivery) -> Delivery:
        current.content = {}
        current.recipient = "(forgotten)"
        current.conversation_id = None
        return current

    async def run() -> tuple[Dispatcher, Delivery | None]:
        store = SqliteStore(path)
        await store.open()
        await seed(store, crowd, connector.service_url())
        await store.outbox.create_many(_deliveries(crowd, "scrubbed"))
        async with aiohttp.ClientSession() as session:
            client = BotConnectorClient(session, _no_token, timeout_seconds=FAST.send_timeout_seconds)
            dispatcher = Dispatcher(store, client, FAST)
            [claimed] = await store.outbox.claim_due(dispatcher.owner, now(), 1, FAST.lease_seconds)
            await store.outbox.update(claimed.id, scrub)  # meanwhile, ForgetRecipient
            await dispatcher._deliver(claimed)
            final = await store.outbox.get(claimed.id)
        await store.close()
        return dispatcher, final

    dispatcher, final = asyncio.run(run())
    assert final is not None
    assert final.status == DeliveryStatus.DELIVERED and final.lease_owner is None
    assert final.content == {} and final.recipient == "(forgotten)"
    assert final.conversation_id is None and final.message_id is None
    assert dispatcher.stats["lease_lost"] == 0
    assert sum(_copies(connector, "scrubbed").values()) == 1
