"""Reads and answers of a broadcast's delivered messages, counted by every backend (GetBroadcast's ``engagement``)."""

from __future__ import annotations

from teams_proactive.bot.model import Delivery, DeliveryStatus
from teams_proactive.bot.store.base import Store


def _delivery(
    i: int,
    broadcast_id: str,
    *,
    delivered_at: float | None = None,
    read_at: float | None = None,
    responded_at: float | None = None,
) -> Delivery:
    return Delivery(
        id=f"{broadcast_id}-{i}", owner="k", tenant_id="t1", user_key=f"u{i}", recipient=f"u{i}@contoso.example",
        content={"text": "hi"}, broadcast_id=broadcast_id,
        status=DeliveryStatus.DELIVERED if delivered_at is not None else DeliveryStatus.QUEUED,
        delivered_at=delivered_at, read_at=read_at, responded_at=responded_at,
    )  # fmt: skip


async def test_reads_and_answers_are_tallied_per_broadcast(store: Store) -> None:
    await store.outbox.create_many(
        [
            _delivery(0, "b1"),  # not delivered yet
            _delivery(1, "b1", read_at=1_700_000_900.0),  # a receipt without a delivery does not count
            _delivery(2, "b1", delivered_at=1_700_000_000.0),  # delivered, no receipt
            _delivery(3, "b1", delivered_at=1_700_000_000.0, read_at=1_700_000_100.5),
            _delivery(4, "b1", delivered_at=1_700_000_000.0, responded_at=1_700_000_200.0),  # answered, no receipt
            _delivery(5, "b1", delivered_at=1_700_000_000.0, read_at=1_700_000_400.0, responded_at=1_700_000_300.0),
            _delivery(6, "b1", delivered_at=1_700_000_000.0, read_at=1_700_000_500.0, responded_at=1_700_000_600.0),
        ]
    )
    await store.outbox.create_many([_delivery(i, "b2", delivered_at=1_700_000_000.0) for i in range(3)])

    tally = await store.outbox.tally_reads("b1")
    assert (tally.delivered, tally.answered) == (5, 3)
    # The first of receipt and answer, per person.
    assert sorted(tally.seen) == [1_700_000_100.5, 1_700_000_200.0, 1_700_000_300.0, 1_700_000_500.0]

    other = await store.outbox.tally_reads("b2")
    assert (other.delivered, other.answered, other.seen) == (3, 0, [])
    empty = await store.outbox.tally_reads("none")
    assert (empty.delivered, empty.answered, empty.seen) == (0, 0, [])
