"""ReferenceCapture inside a botbuilder turn pipeline (botbuilder's own TestAdapter), without HTTP.

What the owner's flags change (opt-out commands), which invokes it keeps (only our cards') and which
it passes on, and that a failing store is counted and never reaches the host's turn.
"""

from __future__ import annotations

import asyncio
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.core.adapters import TestAdapter
from botbuilder.schema import Activity
from prometheus_client import REGISTRY
from teams_proactive.bot.cardtags import CARD_WAIT_KEY
from teams_proactive.bot.store.memory import MemoryStore
from teams_proactive.bot.store.memory.references import MemoryReferences
from teams_proactive.bot.store.memory.subscriptions import MemorySubscriptions

from teams_proactive.capture import ReferenceCapture
from tests.connector.test_card_wait import invoke
from tests.support import activities as act

URL = "https://smba.trafficmanager.net/emea/"


class Host:
    """The host bot's logic: records what reached it."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, context: TurnContext) -> None:
        self.seen.append(f"{context.activity.type}:{context.activity.name or context.activity.text or ''}")


def run(capture: ReferenceCapture, activity: dict[str, Any]) -> tuple[Host, list[Activity]]:
    """One turn; returns what reached the host and what the turn sent (TestAdapter keeps replies)."""
    host = Host()
    parsed = Activity.deserialize(activity)
    adapter = TestAdapter(template_or_conversation=parsed)
    adapter.use(capture)

    async def turn() -> None:
        await adapter.run_pipeline(adapter.create_turn_context(parsed), host)

    asyncio.run(turn())
    return host, list(adapter.activity_buffer)


def opted_out(store: MemoryStore, user: act.TeamsUser) -> bool:
    async def read() -> bool:
        refs = await store.references.of_person(user.tenant_id, user.aad_object_id.lower())
        return bool(refs) and all(r.opted_out for r in refs)

    return asyncio.run(read())


def test_stop_opts_out_only_when_the_owner_turns_the_commands_on() -> None:
    user = act.TeamsUser(name="Ana Lima", upn="ana@contoso.example")
    store = MemoryStore()
    host, _ = run(ReferenceCapture(store=store), act.message(user, URL, "stop"))
    assert host.seen == ["message:stop"] and not opted_out(store, user)

    with_commands = ReferenceCapture(store=store, opt_out_commands=True)
    host, _ = run(with_commands, act.message(user, URL, "stop"))
    assert host.seen == ["message:stop"]  # the host still answers it, in its own words
    assert opted_out(store, user)
    run(with_commands, act.message(user, URL, "start"))
    assert not opted_out(store, user)


def test_our_card_invoke_is_answered_here_and_every_other_invoke_goes_to_the_host() -> None:
    user = act.TeamsUser(name="Ana Lima", upn="ana@contoso.example")
    capture = ReferenceCapture(store=MemoryStore())
    ours = invoke(user, URL, {"verb": "ok", "data": {CARD_WAIT_KEY: "card-1"}}, {}, "1700000000001")
    host, sent = run(capture, ours)
    assert host.seen == []
    (answer,) = sent  # the invoke's answer, and nothing said to the person
    assert answer.type == "invokeResponse" and answer.value.status == 200 and answer.value.body.status_code == 200

    foreign = invoke(user, URL, {"verb": "theirs", "data": {"orderId": 7}}, {}, "1700000000002")
    host, sent = run(capture, foreign)
    assert host.seen == ["invoke:adaptiveCard/action"] and sent == []
    task = {**act.message(user, URL, ""), "type": "invoke", "name": "task/fetch", "value": {"data": {}}}
    host, _ = run(capture, task)
    assert host.seen == ["invoke:task/fetch"]


class BrokenReferences(MemoryReferences):
    async def get(self, *args: Any) -> Any:
        raise OSError("disk gone")


class BrokenSubscriptions(MemorySubscriptions):
    async def list_all(self, *args: Any) -> Any:
        raise OSError("disk gone")


class BrokenStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.references = BrokenReferences(self.db)
        self.subscriptions = BrokenSubscriptions(self.db)


def test_a_failing_store_is_counted_and_the_host_turn_goes_on() -> None:
    user = act.TeamsUser(name="Ana Lima", upn="ana@contoso.example")

    def failures() -> float:
        return sum(
            REGISTRY.get_sample_value("teams_proactive_capture_failures_total", {"stage": stage}) or 0.0
            for stage in ("reference", "inbound")
        )

    before = failures()
    host, _ = run(ReferenceCapture(store=BrokenStore()), act.message(user, URL, "hello"))
    assert host.seen == ["message:hello"]
    assert failures() >= before + 1


def test_someone_who_opted_out_stays_opted_out_on_a_surface_they_use_later() -> None:
    user = act.TeamsUser(name="Ana Lima", upn="ana@contoso.example")
    store = MemoryStore()
    run(ReferenceCapture(store=store, opt_out_commands=True), act.message(user, URL, "stop"))
    run(ReferenceCapture(store=store), act.m365_copilot_message(user, URL, "what's new?"))

    async def surfaces() -> dict[str, bool]:
        refs = await store.references.of_person(user.tenant_id, user.aad_object_id.lower())
        return {r.surface: r.opted_out for r in refs}

    assert asyncio.run(surfaces()) == {"teams": True, "m365-copilot": True}


def test_an_activity_with_text_the_store_could_not_read_back_reaches_the_host_and_nothing_is_stored() -> None:
    user = act.TeamsUser(name="Ana Lima", upn="ana@contoso.example")
    store = MemoryStore()
    before = REGISTRY.get_sample_value("teams_proactive_capture_failures_total", {"stage": "unreadable"}) or 0.0
    submit = act.card_submit(user, URL, {"comment": "fine\ud800"})  # a lone surrogate in a card's value
    host, _ = run(ReferenceCapture(store=store), submit)
    assert host.seen == ["message:"]
    assert asyncio.run(store.references.of_person(user.tenant_id, user.aad_object_id.lower())) == []
    after = REGISTRY.get_sample_value("teams_proactive_capture_failures_total", {"stage": "unreadable"})
    assert after == before + 1


class HangingReferences(MemoryReferences):
    async def get(self, *args: Any) -> Any:
        await asyncio.Event().wait()  # a store that never answers (a lock held elsewhere)


def test_a_store_that_hangs_does_not_hold_the_hosts_turn(monkeypatch: Any) -> None:
    import teams_proactive.capture as capture_module

    monkeypatch.setattr(capture_module, "CAPTURE_TIMEOUT_SECONDS", 0.2)
    store = MemoryStore()
    store.references = HangingReferences(store.db)
    user = act.TeamsUser(name="Ana Lima", upn="ana@contoso.example")
    before = REGISTRY.get_sample_value("teams_proactive_capture_failures_total", {"stage": "inbound"}) or 0.0
    host, _ = run(ReferenceCapture(store=store), act.message(user, URL, "hello"))
    assert host.seen == ["message:hello"]
    assert REGISTRY.get_sample_value("teams_proactive_capture_failures_total", {"stage": "inbound"}) == before + 1
