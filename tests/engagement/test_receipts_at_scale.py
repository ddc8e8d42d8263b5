"""Read receipts and card answers past one page of deliveries (the receipt code reads the person's deliveries
500 at a time): a receipt covers every earlier message however many there are, and an answer finds its card
on a later page."""

from __future__ import annotations

from teams_proactive.bot.model import Delivery, DeliveryStatus, now

from tests.conftest import API_KEY
from tests.engagement.conftest import read_receipt
from tests.support import activities as act
from tests.support.fake_connector import MESSAGE_ID_BASE, FakeConnector
from tests.support.live_app import LiveApp

COUNT = 1_203  # three pages of 500, the last one partly filled


def _seed(live: LiveApp, user: act.TeamsUser) -> list[Delivery]:
    """COUNT delivered messages in the person's chat, as the dispatcher leaves them (ids growing with time)."""
    at = now()
    deliveries = [
        Delivery(id=f"seeded-{i:05d}", owner="bootstrap", tenant_id=user.tenant_id, user_key=user.aad_object_id,
                 recipient=user.upn, content={"text": f"m{i}"}, status=DeliveryStatus.DELIVERED,
                 conversation_id=user.conversation_id, service_url="https://smba.example/", delivered_at=at,
                 message_id=str(MESSAGE_ID_BASE + 10_000 + i), created_at=at + i / 1000, updated_at=at)
        for i in range(COUNT)
    ]  # fmt: skip
    for delivery in deliveries:
        live.runtime.call(live.runtime.store.outbox.create(delivery))
    return deliveries


def test_one_receipt_marks_every_earlier_message_past_the_first_page(
    engage_live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = make_user()
    assert engage_live.activity(act.install(user, connector.service_url())).status_code == 200
    deliveries = _seed(engage_live, user)
    last_read = deliveries[-2].message_id  # everything but the newest one was read
    assert engage_live.activity(read_receipt(user, connector.service_url(), last_read)).status_code == 200
    store = engage_live.runtime.store
    read = [engage_live.runtime.call(store.outbox.get(d.id)) for d in deliveries]
    assert sum(1 for d in read if d is not None and d.read_at is not None) == COUNT - 1
    assert read[-1] is not None and read[-1].read_at is None
    shown = engage_live.api("GET", f"/api/v1/messages/{deliveries[0].id}", API_KEY).json()
    assert shown["readAt"] is not None


def test_an_answer_finds_its_card_on_a_later_page(engage_live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    assert engage_live.activity(act.install(user, connector.service_url())).status_code == 200
    deliveries = _seed(engage_live, user)
    store = engage_live.runtime.store
    for target in (deliveries[0], deliveries[777], deliveries[-1]):
        answer = act.card_submit(user, connector.service_url(), {"answer": "yes"})
        answer["replyToId"] = target.message_id
        assert engage_live.activity(answer).status_code == 200
        stored = engage_live.runtime.call(store.outbox.get(target.id))
        assert stored is not None and stored.responded_at is not None, target.id
    answered = [engage_live.runtime.call(store.outbox.get(d.id)) for d in deliveries]
    assert sum(1 for d in answered if d is not None and d.responded_at is not None) == 3
