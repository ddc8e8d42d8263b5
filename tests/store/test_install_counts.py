"""Install outcomes of a broadcast's deliveries, counted by every backend (GetBroadcast's ``installs``)."""

from __future__ import annotations

from teams_proactive.bot.model import Delivery
from teams_proactive.bot.store.base import Store


def _delivery(i: int, broadcast_id: str, outcome: str | None) -> Delivery:
    return Delivery(
        id=f"{broadcast_id}-{i}", owner="k", tenant_id="t1", user_key=f"u{i}", recipient=f"u{i}@contoso.example",
        content={"text": "hi"}, broadcast_id=broadcast_id, install_if_missing=True, install_outcome=outcome,
    )  # fmt: skip


async def test_install_outcomes_are_counted_per_broadcast(store: Store) -> None:
    outcomes = ["installed"] * 3 + ["alreadyInstalled"] * 2 + ["InstallBlockedByPolicy", None, None]
    await store.outbox.create_many([_delivery(i, "b1", o) for i, o in enumerate(outcomes)])
    await store.outbox.create_many([_delivery(i, "b2", "installed") for i in range(2)])
    assert await store.outbox.count_install_outcomes("b1") == {
        "installed": 3, "alreadyInstalled": 2, "InstallBlockedByPolicy": 1,
    }  # fmt: skip
    assert await store.outbox.count_install_outcomes("b2") == {"installed": 2}
    assert await store.outbox.count_install_outcomes("none") == {}
