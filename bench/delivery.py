"""Broadcast throughput under Teams' pacing, CPU per message and per inbound activity, and the classic loop.

    python -m bench.delivery [--recipients 5000] [--classic 300] [--inbound 1000]
    python -m bench.delivery --rate 500 --recipients 10000 --classic 0 --inbound 0 --dispatcher-alone 0

Against the fake Bot Connector (50-150 ms latency, 50 requests/s per-app cap answering 429 above it, and
Teams' per-chat limits, 7/1 s, 8/2 s, 60/30 s, 1,800/h per conversation, answering 429 when broken):
1. the real server process (SQLite) broadcasts one message to every recipient; prints the sustained
   rate, the share of calls answered 429, duplicates, and the server's CPU per delivered message;
2. inbound activities posted to /api/messages; prints the server's CPU per activity;
3. the classic sample's approach (botbuilder ``CloudAdapter.continue_conversation`` in a sequential
   loop over stored references) against the same fake, on a subset, extrapolated to all recipients.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import multiprocessing
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from types import SimpleNamespace
from typing import Any

import requests

from bench.common import API_KEY, Bench, bench_setup, wait_until
from tests.support import activities as act
from tests.support.people import SeededPerson, reference

LATENCY = (0.05, 0.15)
IDLE_SECONDS = 10.0
RATE_CAP = 50.0


def run_broadcast(bench: Bench, recipients: int) -> dict[str, Any]:
    server, fake = bench.server, bench.fake
    upns = [p.upn for p in bench.people[:recipients]]
    # Warm the server up (imports, first connections) and measure its idle CPU for a baseline.
    warm = server.api("POST", "/api/v1/messages", API_KEY, json={"recipient": upns[-1], "text": "warm-up"})
    assert warm.status_code == 200, warm.text
    # Ten seconds: the CPU counters tick every 10 ms, and an idle server uses a few ms a second.
    idle_start = server.cpu_seconds()
    time.sleep(IDLE_SECONDS)
    idle_per_second = (server.cpu_seconds() - idle_start) / IDLE_SECONDS
    calls_before, throttled_before, sent_before = fake.calls, fake.throttled, len(fake.sent())
    chat_throttled_before = fake.chat_throttled

    cpu_start = server.cpu_seconds()
    started = time.monotonic()
    response = server.api(
        "POST",
        "/api/v1/broadcasts",
        API_KEY,
        json={"recipients": upns, "text": "Hello from bench", "waitForCompletion": True},
    )
    assert response.status_code == 202, response.text
    location = response.headers["Location"]
    report: dict[str, Any] = {}

    def done() -> bool:
        nonlocal report
        answer = server.http.get(location, headers={"X-API-Key": API_KEY}, timeout=30)
        report = answer.json()
        return answer.status_code == 200

    finished = wait_until(done, timeout=recipients / RATE_CAP * 3 + 60, every=1.0)
    elapsed = time.monotonic() - started
    cpu = server.cpu_seconds() - cpu_start

    sends = [r for r in fake.sent()[sent_before:] if r.activity.get("text") == "Hello from bench"]
    times = sorted(r.at for r in sends)
    copies = collections.Counter(r.conversation_id for r in sends)
    # Sustained: between the 5th and the 95th percentile send, leaving out ramp-up and the tail.
    lo, hi = int(len(times) * 0.05), int(len(times) * 0.95) - 1
    sustained = (hi - lo) / (times[hi] - times[lo]) if hi > lo else float("nan")
    calls = fake.calls - calls_before
    throttled = fake.throttled - throttled_before
    delivered = report.get("counts", {}).get("delivered", 0)
    return {
        "finished": finished,
        "elapsed": elapsed,
        "report_counts": report.get("counts"),
        "delivered": delivered,
        "distinct": len(copies),
        "duplicates": sum(c - 1 for c in copies.values()),
        "first_to_last": times[-1] - times[0] if times else float("nan"),
        "sustained": sustained,
        "calls": calls,
        "throttled": throttled,
        "chat_throttled": fake.chat_throttled - chat_throttled_before,
        "cpu": cpu,
        "cpu_per_message_ms": (cpu - idle_per_second * elapsed) / max(1, delivered) * 1000,
        "cpu_per_message_raw_ms": cpu / max(1, delivered) * 1000,
        "idle_cpu_per_second": idle_per_second,
    }


def _dispatcher_alone(db: str, service_url: str, count: int, rate: float, concurrency: int, pipe: Connection) -> None:
    """Child process: the dispatcher with its store and client, nothing else; reports its CPU."""
    import aiohttp
    from teams_proactive.bot.delivery.dispatcher import Dispatcher, DispatcherSettings
    from teams_proactive.bot.eventloop import new_event_loop
    from teams_proactive.bot.model import Delivery
    from teams_proactive.bot.outbound import BotConnectorClient
    from teams_proactive.bot.store.sqlite import SqliteStore

    from tests.support.people import people, seed

    async def no_token() -> None:
        return None

    async def run() -> dict[str, Any]:
        store = SqliteStore(db)
        await store.open()
        crowd = people(count, tenant_id="tenant-solo", prefix="solo")
        await seed(store, crowd, service_url)
        await store.outbox.create_many(
            [
                Delivery(
                    id=f"solo-{i}",
                    owner="bench",
                    tenant_id=p.tenant_id,
                    user_key=p.user_key,
                    recipient=p.upn,
                    content={"text": "Hello from the dispatcher alone"},
                    broadcast_id="solo",
                )
                for i, p in enumerate(crowd)
            ]
        )
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:
            dispatcher = Dispatcher(
                store,
                BotConnectorClient(session, no_token),
                DispatcherSettings(rate_per_tenant=rate, concurrency=concurrency),
            )
            finished = [dispatcher.watch(f"solo-{i}") for i in range(count)]
            cpu_start, started = time.process_time(), time.monotonic()
            dispatcher.start()
            await asyncio.gather(*finished)
            cpu, elapsed = time.process_time() - cpu_start, time.monotonic() - started
            await dispatcher.stop()
        await store.close()
        return {"cpu": cpu, "elapsed": elapsed, "stats": dict(dispatcher.stats)}

    # The loop the server's dispatcher runs on (uvloop where it installs).
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        pipe.send(runner.run(run()))


def run_dispatcher_alone(bench: Bench, count: int, concurrency: int) -> dict[str, Any]:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=_dispatcher_alone,
        args=(str(bench.workdir / "solo.db"), bench.fake.service_url("solo"), count, RATE_CAP, concurrency, child),
    )
    throttled_before = bench.fake.throttled
    process.start()
    result: dict[str, Any] = parent.recv()
    process.join(30)
    result["throttled"] = bench.fake.throttled - throttled_before
    result["cpu_per_message_ms"] = result["cpu"] / count * 1000
    result["rate"] = count / result["elapsed"]
    return result


def _person_user(person: SeededPerson) -> act.TeamsUser:
    return act.TeamsUser(
        name=person.upn.split("@")[0],
        upn=person.upn,
        tenant_id=person.tenant_id,
        aad_object_id=person.user_key,
        user_id=person.user_id,
        conversation_id=person.conversation_id,
    )


def run_inbound(bench: Bench, count: int, kind: str, threads: int = 8) -> dict[str, Any]:
    """Post ``count`` activities; ``reaction`` (the bot does not answer) or ``help`` (it answers)."""
    service_url = bench.fake.service_url("bench")
    activities = []
    for i in range(count):
        person = bench.people[i % len(bench.people)]
        activity = act.message(_person_user(person), service_url, "help")
        if kind == "reaction":
            activity["type"] = "messageReaction"
            activity.pop("text")
            activity["reactionsAdded"] = [{"type": "like"}]
            activity["replyToId"] = "act-1"
        activities.append(activity)
    sessions = threading.local()

    def post(activity: dict[str, Any]) -> int:
        session = getattr(sessions, "s", None)
        if session is None:
            session = sessions.s = requests.Session()
            session.trust_env = False
        return session.post(bench.server.url + "/api/messages", json=activity, timeout=60).status_code

    # Warm-up: the first turns import and build what later ones reuse.
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(post, activities[:20]))
    sent_before = len(bench.fake.sent())
    # The bot's replies are not paced (the SDK sends them): lift the fake's cap so none is refused.
    cap, bench.fake.rate_cap = bench.fake.rate_cap, None
    cpu_start = bench.server.cpu_seconds()
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(threads) as pool:
            statuses = list(pool.map(post, activities))
    finally:
        bench.fake.rate_cap = cap
    elapsed = time.monotonic() - started
    cpu = bench.server.cpu_seconds() - cpu_start
    return {
        "kind": kind,
        "count": count,
        "ok": sum(1 for s in statuses if s == 200),
        "replies": len(bench.fake.sent()) - sent_before,
        "elapsed": elapsed,
        "cpu_per_activity_ms": cpu / count * 1000,
    }


def run_classic(bench: Bench, count: int) -> dict[str, Any]:
    """The botbuilder sample's proactive loop: continue_conversation per stored reference, one by one."""
    from botbuilder.core import TurnContext
    from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
    from botbuilder.schema import ConversationReference

    service_url = bench.fake.service_url("classic")
    references = [reference(p, service_url).conversation_reference for p in bench.people[:count]]
    result: dict[str, Any] = {}

    async def loop() -> None:
        config = SimpleNamespace(APP_ID="", APP_PASSWORD="", APP_TYPE="MultiTenant", APP_TENANTID="")
        adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(config))

        async def callback(context: TurnContext) -> None:
            await context.send_activity("Hello from the classic loop")

        # One warm-up send (imports, first connection), not counted.
        await adapter.continue_conversation(ConversationReference().deserialize(references[0]), callback, "")
        cpu_start, started = time.thread_time(), time.monotonic()
        for ref in references:
            await adapter.continue_conversation(ConversationReference().deserialize(ref), callback, "")
        result["elapsed"] = time.monotonic() - started
        result["cpu"] = time.thread_time() - cpu_start

    thread = threading.Thread(target=lambda: asyncio.run(loop()), name="classic-loop")
    sent_before = len(bench.fake.sent())
    thread.start()
    thread.join()
    result["delivered"] = len(bench.fake.sent()) - sent_before - 1
    result["rate"] = count / result["elapsed"]
    result["cpu_per_message_ms"] = result["cpu"] / count * 1000
    return result


def main(argv: list[str] | None = None) -> int:
    global RATE_CAP  # the figures printed all refer to the cap being measured
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=5000)
    parser.add_argument("--classic", type=int, default=250, help="references the classic loop sends to")
    parser.add_argument("--dispatcher-alone", type=int, default=750, help="sends measured with the dispatcher alone")
    parser.add_argument("--inbound", type=int, default=1000, help="inbound activities of each kind")
    parser.add_argument(
        "--concurrency", type=int, default=None, help="SEND_CONCURRENCY of the server (default: enough for --rate)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=RATE_CAP,
        help="the per-tenant budget: SEND_RATE_PER_TENANT of the server and the fake's 429 cap (default 50/s)",
    )
    args = parser.parse_args(argv)
    RATE_CAP = args.rate
    if args.concurrency is None:
        # Sends in flight at the cap: rate x the fake's slowest answer, with a third more for jitter.
        args.concurrency = max(32, int(RATE_CAP * LATENCY[1] * 1.34) + 1)

    env = {"SEND_RATE_PER_TENANT": str(RATE_CAP), "SEND_CONCURRENCY": str(args.concurrency)}
    people_needed = max(args.recipients, args.classic, 1)
    print(
        f"fake Bot Connector: latency {LATENCY[0] * 1000:.0f}-{LATENCY[1] * 1000:.0f} ms, per-app cap"
        f" {RATE_CAP:.0f}/s (429 above it), per-chat limits 7/1 s, 8/2 s, 60/30 s, 1,800/h; server: SQLite, SEND_RATE_PER_TENANT={RATE_CAP:.0f},"
        f" SEND_CONCURRENCY={args.concurrency}",
        flush=True,
    )
    with bench_setup(count=people_needed, latency=LATENCY, rate_cap=RATE_CAP, env=env) as bench:
        b = run_broadcast(bench, args.recipients)
        print(f"\n== StartBroadcast to {args.recipients:,} recipients (dispatcher) ==")
        print(f"  finished: {b['finished']}  report counts: {b['report_counts']}")
        print(f"  delivered {b['delivered']:,} to {b['distinct']:,} conversations, duplicates {b['duplicates']}")
        print(f"  API accepted -> report complete: {b['elapsed']:.1f} s; first -> last send {b['first_to_last']:.1f} s")
        print(f"  sustained rate: {b['sustained']:.1f} msg/s = {b['sustained'] / RATE_CAP * 100:.1f}% of the cap")
        print(
            f"  calls answered 429: {b['throttled']} of {b['calls']:,}"
            f" ({b['throttled'] / max(1, b['calls']) * 100:.2f}%), of them for a chat's own limits:"
            f" {b['chat_throttled']}"
        )
        print(
            f"  server CPU per delivered message: {b['cpu_per_message_ms']:.2f} ms"
            f" (raw {b['cpu_per_message_raw_ms']:.2f} ms incl. idle polling of"
            f" {b['idle_cpu_per_second'] * 1000:.0f} ms/s)"
        )

        if args.dispatcher_alone > 0:
            d = run_dispatcher_alone(bench, args.dispatcher_alone, args.concurrency)
            print(
                f"\n== The dispatcher alone (its own process: store + dispatcher + client), {args.dispatcher_alone:,} sends =="
            )
            print(
                f"  {d['rate']:.1f} msg/s, 429s {d['throttled']}; CPU per delivered message"
                f" {d['cpu_per_message_ms']:.2f} ms (target <= 1 ms); stats {d['stats']}"
            )

        if args.inbound > 0:
            print("\n== Inbound activities to /api/messages (server CPU per activity) ==")
        for kind in ("reaction", "help") if args.inbound > 0 else ():
            r = run_inbound(bench, args.inbound if kind == "reaction" else max(1, args.inbound // 3), kind)
            what = "no reply (capture + SDK turn)" if kind == "reaction" else "'help' answered by the bot"
            print(
                f"  {what}: {r['ok']}/{r['count']} OK, {r['replies']} replies,"
                f" {r['cpu_per_activity_ms']:.2f} ms CPU per activity, {r['count'] / r['elapsed']:.0f}/s"
            )

        if args.classic > 0:
            c = run_classic(bench, args.classic)
            print(f"\n== Classic sample loop: CloudAdapter.continue_conversation, sequential, {args.classic} refs ==")
            print(f"  delivered {c['delivered']} in {c['elapsed']:.1f} s: {c['rate']:.1f} msg/s")
            print(f"  CPU per message (loop thread): {c['cpu_per_message_ms']:.2f} ms")
            extrapolated = args.recipients / c["rate"]
            print(
                f"  extrapolated to {args.recipients:,} recipients: {extrapolated:.0f} s ({extrapolated / 60:.1f} min)"
                f" vs {b['first_to_last']:.0f} s with the dispatcher ({extrapolated / b['first_to_last']:.1f}x)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
