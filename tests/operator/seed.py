"""A day of activity for the dashboard tests: people in every state (through the real bot endpoint and
the real dispatcher), deliveries finished over the past hours, and a broadcast half-way through."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from teams_proactive.bot.model import Broadcast, Delivery, DeliveryStatus, now

from tests.conftest import API_KEY
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector, Scripted
from tests.support.live_app import LiveApp

CONTOSO = "tenant-contoso"
FABRIKAM = "tenant-fabrikam"
HOUR = 3600
# (hours ago, delivered, failed with this code). At least two hours back: the live sends of the seed
# land in the current clock hour, or in the previous one when the seeding straddles an hour's end,
# and must never share a chart bar with a seeded group.
HISTORY = [(5, 12, 0, ""), (3, 20, 4, "RecipientUnreachable"), (2, 7, 2, "TeamsError")]


@dataclass
class Seeded:
    users: dict[str, act.TeamsUser] = field(default_factory=dict)
    broadcast_id: str = ""


def seed(live: LiveApp, connector: FakeConnector, make_user) -> Seeded:  # type: ignore[no-untyped-def]
    seeded = Seeded()
    url = connector.service_url("a")

    def install(key: str, name: str, upn: str, tenant: str = CONTOSO) -> act.TeamsUser:
        user = make_user(name=name, upn=upn, tenant_id=tenant)
        assert live.activity(act.install(user, url)).status_code == 200
        seeded.users[key] = user
        return user

    install("adele", "Adele Vance", "adele@contoso.example")
    install("megan", "Megan Bowen", "megan@contoso.example")
    install("nestor", '=HYPERLINK("http://evil.example")', "nestor@contoso.example")
    install("lynne", "Lynne Robbins", "lynne@contoso.example")
    install("diego", "Diego Siciliani", "diego@contoso.example")
    install("patti", "Patti Fernandez", "patti@fabrikam.example", FABRIKAM)

    # Lynne removes the app; Diego types "stop"; Nestor blocks the chat (Teams answers 403 to a send).
    assert live.activity(act.uninstall(seeded.users["lynne"], url)).status_code == 200
    assert live.activity(act.message(seeded.users["diego"], url, "stop")).status_code == 200
    nestor = seeded.users["nestor"]
    connector.fail_next(
        1,
        Scripted(403, "ConversationBlockedByUser", "User blocked the conversation with the bot."),
        nestor.conversation_id,
    )
    blocked = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": nestor.upn, "text": "hi", "wait": 30})
    assert blocked.json()["status"] == "failed", blocked.text

    # Deliveries that finished over the last hours (written as the dispatcher leaves them).
    at = now()
    adele = seeded.users["adele"]
    history: list[Delivery] = []
    for hours_ago, delivered, failed, code in HISTORY:
        finished = at - hours_ago * HOUR
        for i in range(delivered + failed):
            ok = i < delivered
            history.append(
                Delivery(
                    id=uuid.uuid4().hex,
                    owner="bootstrap",
                    tenant_id=CONTOSO,
                    user_key=adele.aad_object_id,
                    recipient=adele.upn,
                    content={"text": "earlier"},
                    status=DeliveryStatus.DELIVERED if ok else DeliveryStatus.FAILED,
                    attempts=1,
                    error=None if ok else {"code": code, "message": f"{code} (seeded)"},
                    created_at=finished - 1,
                    updated_at=finished,
                    delivered_at=finished if ok else None,
                    not_before=finished - 1,
                )
            )
    store = live.runtime.store
    live.runtime.call(store.outbox.create_many(history))

    # A broadcast to 10 people: 4 delivered, 1 failed, 5 still waiting (scheduled far ahead).
    broadcast = Broadcast(
        id=uuid.uuid4().hex, owner="ops", tenant_id=CONTOSO, content={"text": "All hands"}, recipients=None,
        status="running", total=10, created_at=at - 600,
    )  # fmt: skip
    live.runtime.call(store.broadcasts.create(broadcast))
    parts = []
    for i in range(10):
        status = DeliveryStatus.DELIVERED if i < 4 else DeliveryStatus.FAILED if i == 4 else DeliveryStatus.SCHEDULED
        parts.append(
            Delivery(
                id=f"{broadcast.id}-{i}",
                owner="ops",
                tenant_id=CONTOSO,
                user_key=f"someone-{i}",
                recipient=f"someone-{i}@contoso.example",
                content={"text": "All hands"},
                status=status,
                broadcast_id=broadcast.id,
                error={"code": "RecipientUnreachable", "message": "gone"} if i == 4 else None,
                delivered_at=at - 300 if i < 4 else None,
                updated_at=at - 300,
                not_before=at + 365 * 86400 if status == DeliveryStatus.SCHEDULED else at - 300,
            )
        )
    live.runtime.call(store.outbox.create_many(parts))
    seeded.broadcast_id = broadcast.id
    return seeded


WELCOME_CARD = {
    "type": "AdaptiveCard",
    "version": "1.4",
    "body": [
        {"type": "TextBlock", "text": "Quarterly <b>survey</b> is open", "weight": "Bolder"},
        {"type": "TextBlock", "text": "Tell us how the quarter went."},
        {"type": "Input.Text", "id": "comment", "label": "Your comment"},
    ],
    "actions": [{"type": "Action.Submit", "title": "Send answer"}],
}


def seed_finished_card_broadcast(live: LiveApp) -> str:
    """A finished broadcast of a card, two hours old: 3 delivered (one read), 2 failed, 2 skipped."""
    at = now()
    broadcast = Broadcast(
        id=uuid.uuid4().hex, owner="comms", tenant_id=CONTOSO, content={"card": WELCOME_CARD, "summary": "Survey"},
        recipients=None, status="completed", total=7, created_at=at - 2 * HOUR, completed_at=at - HOUR,
        skipped=[
            {"recipient": "ghost@contoso.example", "code": "UserNotFound", "message": "Nobody with this address."},
            {"recipient": "quiet@contoso.example", "code": "OptedOut", "message": "The person opted out."},
        ],
    )  # fmt: skip
    store = live.runtime.store
    live.runtime.call(store.broadcasts.create(broadcast))
    outcomes = [
        (DeliveryStatus.DELIVERED, None, True),
        (DeliveryStatus.DELIVERED, None, False),
        (DeliveryStatus.DELIVERED, None, False),
        (DeliveryStatus.FAILED, {"code": "TeamsError", "message": "Teams answered 500."}, False),
        (DeliveryStatus.FAILED, {"code": "RecipientUnreachable", "message": "The bot was removed."}, False),
    ]
    parts = []
    for i, (status, error, read) in enumerate(outcomes):
        parts.append(
            Delivery(
                id=f"{broadcast.id}-{i}",
                owner="comms",
                tenant_id=CONTOSO,
                user_key=f"reader-{i}",
                recipient=f"reader-{i}@contoso.example",
                content={"card": WELCOME_CARD},
                status=status,
                broadcast_id=broadcast.id,
                error=error,
                delivered_at=at - 2 * HOUR + 60 if status == DeliveryStatus.DELIVERED else None,
                read_at=at - HOUR - 60 if read else None,
                updated_at=at - 2 * HOUR + 60,
                not_before=at - 2 * HOUR,
            )
        )
    live.runtime.call(store.outbox.create_many(parts))
    return broadcast.id
