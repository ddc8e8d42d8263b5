"""One Teams budget: updates, deletes and card updates are paced with the sends (counts, not timings)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.conftest import API_KEY
from tests.delivery.conftest import install, send
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp


def most_in_any_window(times: list[float], window: float) -> int:
    """The largest number of calls that arrived within ``window`` seconds of each other."""
    times = sorted(times)
    best = start = 0
    for end, at in enumerate(times):
        while at - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_an_update_and_delete_burst_to_one_chat_keeps_the_conversation_windows(
    live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = make_user()
    install(live, connector, user)
    sent = [send(live, {"recipient": user.upn, "text": f"n{i}", "wait": 30}).json() for i in range(6)]
    assert all(s["status"] == "delivered" for s in sent)

    def update(d: dict) -> int:
        return live.api("PUT", f"/api/v1/messages/{d['id']}", API_KEY, json={"text": "changed"}).status_code

    def delete(d: dict) -> int:
        return live.api("DELETE", f"/api/v1/messages/{d['id']}", API_KEY).status_code

    with ThreadPoolExecutor(12) as pool:
        assert set(pool.map(update, sent)) == {200}
        assert set(pool.map(delete, sent)) == {200}

    calls = [r for r in connector.received if r.conversation_id == user.conversation_id]
    assert [r.method for r in calls].count("PUT") == 6 and [r.method for r in calls].count("DELETE") == 6
    times = [r.at for r in calls]  # the welcome, 6 sends, 6 updates, 6 deletes
    assert len(times) == 19
    # Teams' per-conversation limits hold over sends, updates and deletes together.
    shown = " ".join(f"{r.method}@{r.at - times[0]:.3f}" for r in calls)
    assert most_in_any_window(times, 1.0) <= 7, shown
    assert most_in_any_window(times, 2.0) <= 8, shown


def test_updates_across_a_tenant_keep_the_tenant_rate(
    app_env: dict[str, str], connector: FakeConnector, make_user
) -> None:
    with LiveApp({**app_env, "SEND_RATE_PER_TENANT": "5"}) as app:
        users = [make_user(name=f"P{i}", upn=f"p{i}@contoso.example") for i in range(12)]
        for user in users:
            install(app, connector, user)
        sent = [send(app, {"recipient": u.upn, "text": "first", "wait": 60}).json() for u in users]
        assert all(s["status"] == "delivered" for s in sent)
        before = len(connector.received)

        def update(d: dict) -> int:
            return app.api("PUT", f"/api/v1/messages/{d['id']}", API_KEY, json={"text": "changed"}).status_code

        with ThreadPoolExecutor(12) as pool:
            assert set(pool.map(update, sent)) == {200}
        updates = [r.at for r in connector.received[before:] if r.method == "PUT"]
        assert len(updates) == 12
        # 12 updates at once, to 12 chats, leave on the tenant's schedule: at most 5 per second as they
        # leave; as they arrive, one more may fall into a second when an earlier one was delayed on the
        # way (without the budget all 12 arrive within a few milliseconds).
        assert most_in_any_window(updates, 1.0) <= 5 + 1
        all_calls = [r.at for r in connector.received]
        assert most_in_any_window(all_calls, 1.0) <= 5 + 1


def test_a_reply_in_a_turn_does_not_wait_out_a_long_pause(live: LiveApp, connector: FakeConnector, make_user) -> None:
    from tests.support import activities as act

    user = make_user()
    install(live, connector, user)
    before = len(connector.sent(user.conversation_id))
    # Teams said 429 with Retry-After: 120 s: sends wait, but a person waiting on a turn gets an answer.
    live.runtime.call(_pause(live, user.tenant_id, 120.0))
    response = live.activity(act.message(user, connector.service_url(), "help"))
    assert response.status_code == 200
    assert len(connector.sent(user.conversation_id)) == before + 1  # the help text went out in the turn


async def _pause(live: LiveApp, tenant_id: str, seconds: float) -> None:
    live.runtime.dispatcher.budget.throttled(tenant_id, seconds)
