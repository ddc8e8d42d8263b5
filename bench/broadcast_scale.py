"""One broadcast to 100,000 people: accept time, server memory, time to the first send, rate, lost, duplicates.

    python -m bench.broadcast_scale [--people 100000] [--store sqlite|cosmos|both] [--cosmos-people 100000]
                                    [--rate 1000] [--concurrency 64] [--cosmos-concurrency 256]

For each store, the people are seeded straight into it (reachable: an active Teams reference each),
the real server process starts on it (``teams-proactive serve``), and one StartBroadcast names every
one of them by UPN (the list is stored in chunks). A fake Bot Connector on loopback answers at once
and without a rate cap; the server's per-tenant budget is raised (``SEND_RATE_PER_TENANT``) so the
figures show the engine, not Teams' 50/s. Printed: how long the API took to accept the broadcast;
the server's resident memory growth from before the call to the highest seen during the run (read
from /proc every half second); the time from the call to the first message at the fake; the
sustained send rate (5th to 95th percentile send); and how many people got no message (lost) or more
than one (duplicates).

The local Cosmos DB server (tests/support/cosmos_server.cjs) is one Node process holding every
document in memory. Its launcher scopes a single-partition query to its partition, as Cosmos DB
does, but a cross-partition query (the dispatcher's due-query, GetBroadcast's counts) still reads
every delivery: about 0.3 s for the due-query over 100,000, which Cosmos DB answers from its index.
So the Cosmos run claims bigger batches (``--cosmos-concurrency``, a quarter of it per due-query)
and seeds from two processes. The people have user and chat ids of the length Teams gives them (90
and 131 characters): what the server keeps per chat is measured at its real size. Measured
2026-12-01 on the 2-core development machine, one run, 100,000 people: seeded in 324 s; accept
0.53 s; server RSS 113 MB before and +73 MB at most; first send 0.82 s after the call; 120
messages/s sustained, last send 827 s after the call; lost 0, duplicates 0; about 20 min of
wall-clock time in all. The rate is bound by our server process's CPU (resolving, indexing, writing
and sending, most of it in the azure-cosmos SDK) and by the test server, not by Cosmos DB.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import multiprocessing
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from teams_proactive.bot.store.base import Store

from bench.common import API_KEY
from tests.support.fake_connector import FakeConnector
from tests.support.people import SeededPerson, people, reference
from tests.support.server_process import ServerProcess

TEXT = "Hello from the scale bench"
SEED_CONCURRENCY = 64
SEED_PROCESSES = 2


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def seed(store: Store, crowd: list[SeededPerson], service_url: str) -> None:
    await store.open()
    try:
        for start in range(0, len(crowd), SEED_CONCURRENCY):
            window = crowd[start : start + SEED_CONCURRENCY]
            await asyncio.gather(*(store.references.write(reference(p, service_url), None) for p in window))
    finally:
        await store.close()


def _seed_cosmos_share(endpoint: str, key: str, database: str, crowd: list[SeededPerson], service_url: str) -> None:
    from teams_proactive.bot.store.cosmos import CosmosStore

    asyncio.run(seed(CosmosStore(endpoint, key=key, database=database), crowd, service_url))


def seed_cosmos(endpoint: str, key: str, database: str, crowd: list[SeededPerson], service_url: str) -> None:
    """The store's own write path, from SEED_PROCESSES processes at once: one Python process spends
    about 1 ms of CPU on each Cosmos DB call, and each new person is 7 of them."""
    from teams_proactive.bot.store.cosmos import CosmosStore

    asyncio.run(seed(CosmosStore(endpoint, key=key, database=database), crowd[:1], service_url))  # containers
    shares = [crowd[1 + i :: SEED_PROCESSES] for i in range(SEED_PROCESSES)]
    # Spawned, not forked: this process runs threads (the fake connector, the server's log pumps).
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(SEED_PROCESSES, mp_context=spawn) as pool:
        done = [pool.submit(_seed_cosmos_share, endpoint, key, database, share, service_url) for share in shares]
        for future in done:
            future.result()


def run(store_env: dict[str, str], crowd: list[SeededPerson], fake: FakeConnector, workdir: Path,
        rate: float, concurrency: int) -> dict[str, Any]:  # fmt: skip
    env = {
        **store_env,
        "CONNECTOR_API_KEY": API_KEY,
        "RATE_LIMIT_PER_MINUTE": "0",
        "SEND_RATE_PER_TENANT": str(rate),
        "SEND_CONCURRENCY": str(concurrency),
        "SERVER_CWD": str(workdir),
    }
    upns = [p.upn for p in crowd]
    with ServerProcess(env, log_path=workdir / "server.log") as server:
        warm = server.api("POST", "/api/v1/messages", API_KEY, json={"recipient": upns[0], "text": "warm-up"})
        assert warm.status_code == 200, warm.text
        time.sleep(1)
        rss_before = rss_mb(server.pid)
        sent_before = len(fake.received)
        started = time.monotonic()
        response = server.api("POST", "/api/v1/broadcasts", API_KEY, json={"recipients": upns, "text": TEXT},
                              timeout=300)  # fmt: skip
        accept = time.monotonic() - started
        # StartBroadcast answers 200 with the broadcast's id at once (202 only with waitForCompletion).
        assert response.status_code == 200, response.text
        status_path = f"/api/v1/broadcasts/{response.json()['id']}"
        rss_peak = rss_mb(server.pid)
        first_send: float | None = None
        report: dict[str, Any] = {}
        last_poll = 0.0
        # Generous: the Cosmos test server run sends about 100 messages/s on the 2-core machine.
        deadline = started + max(600.0, len(crowd) / rate * 5, len(crowd) / 20)
        while time.monotonic() < deadline:
            time.sleep(0.5)  # sampling interval of a measurement, not synchronisation
            rss_peak = max(rss_peak, rss_mb(server.pid))
            if first_send is None and len(fake.received) > sent_before:
                first_send = min(r.at for r in fake.received[sent_before:]) - started
            if time.monotonic() - last_poll >= 2.0:
                last_poll = time.monotonic()
                answer = server.api("GET", status_path, API_KEY, timeout=60)
                assert answer.status_code == 200, answer.text
                report = answer.json()
                if report.get("status") == "completed":
                    break
        finished = report.get("status") == "completed"
    sends = [r for r in fake.sent() if r.activity.get("text") == TEXT]
    copies = collections.Counter(r.conversation_id for r in sends)
    times = sorted(r.at for r in sends)
    lo, hi = int(len(times) * 0.05), int(len(times) * 0.95) - 1
    return {
        "people": len(crowd),
        "finished": finished,
        "accept_s": accept,
        "rss_before_mb": rss_before,
        "rss_growth_mb": rss_peak - rss_before,
        "first_send_s": first_send,
        "rate": (hi - lo) / (times[hi] - times[lo]) if hi > lo else float("nan"),
        "total_s": (times[-1] - started) if times else float("nan"),
        "lost": sum(1 for p in crowd if p.conversation_id not in copies),
        "duplicates": sum(c - 1 for c in copies.values()),
        "counts": report.get("counts"),
    }


def sqlite_run(count: int, rate: float, concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tp-scale-") as tmp, FakeConnector() as fake:
        from teams_proactive.bot.store.sqlite import SqliteStore

        workdir = Path(tmp)
        crowd = people(count, tenant_id="tenant-scale", documented_ids=True)
        started = time.monotonic()
        asyncio.run(seed(SqliteStore(str(workdir / "store.db")), crowd, fake.service_url("scale")))
        print(f"  seeded {count:,} people in {time.monotonic() - started:.0f} s", flush=True)
        return run({"STORE_URL": f"sqlite:///{workdir / 'store.db'}"}, crowd, fake, workdir, rate, concurrency)


def cosmos_run(count: int, rate: float, concurrency: int) -> dict[str, Any]:
    from tests.support.cosmos_server import CosmosServer

    with tempfile.TemporaryDirectory(prefix="tp-scale-") as tmp, FakeConnector() as fake, CosmosServer() as cosmos:
        workdir = Path(tmp)
        database = f"tp-scale-{uuid.uuid4().hex[:8]}"
        crowd = people(count, tenant_id="tenant-scale", documented_ids=True)
        started = time.monotonic()
        seed_cosmos(cosmos.endpoint, cosmos.key, database, crowd, fake.service_url("scale"))
        print(f"  seeded {count:,} people in {time.monotonic() - started:.0f} s", flush=True)
        env = {"STORE_URL": "cosmos", "COSMOS_ENDPOINT": cosmos.endpoint, "COSMOS_KEY": cosmos.key,
               "COSMOS_DATABASE": database}  # fmt: skip
        return run(env, crowd, fake, workdir, rate, concurrency)


def show(name: str, figures: dict[str, Any]) -> None:
    first = figures["first_send_s"]
    print(
        f"{name}: {figures['people']:,} people, {'completed' if figures['finished'] else 'NOT completed'}\n"
        f"  accept {figures['accept_s']:.2f} s (target <= 2 s)\n"
        f"  server RSS {figures['rss_before_mb']:.0f} MB before, growth {figures['rss_growth_mb']:.0f} MB"
        " (target <= 100 MB)\n"
        + (f"  first send {first:.2f} s after the call\n" if first is not None else "  no send seen\n"),
        end="",
    )
    print(
        f"  rate {figures['rate']:.0f} messages/s sustained; last send {figures['total_s']:.0f} s after the call\n"
        f"  lost {figures['lost']}, duplicates {figures['duplicates']} (targets 0, 0); report {figures['counts']}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--cosmos-people", type=int, default=100_000)
    parser.add_argument("--store", choices=["sqlite", "cosmos", "both"], default="both")
    parser.add_argument("--rate", type=float, default=1000.0, help="SEND_RATE_PER_TENANT for the run")
    parser.add_argument("--concurrency", type=int, default=64, help="SEND_CONCURRENCY for the SQLite run")
    parser.add_argument(
        "--cosmos-concurrency",
        type=int,
        default=256,
        help="SEND_CONCURRENCY for the Cosmos run: the dispatcher claims a quarter of it per due-query, and"
        " the test server answers each by reading all 100,000 deliveries (Cosmos DB serves it from its index)",
    )
    args = parser.parse_args()
    if args.store in ("sqlite", "both"):
        print("SQLite:", flush=True)
        show("SQLite", sqlite_run(args.people, args.rate, args.concurrency))
    if args.store in ("cosmos", "both"):
        print("Cosmos DB (local test server):", flush=True)
        show("Cosmos", cosmos_run(args.cosmos_people, args.rate, args.cosmos_concurrency))


if __name__ == "__main__":
    main()
