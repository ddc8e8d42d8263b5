"""Things that happen in the bot that flows can subscribe to (the connector's webhook triggers)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from teams_proactive.bot.store.base import PersonKey


class BotEvent(StrEnum):
    USER_MESSAGE = "userMessage"
    CARD_SUBMITTED = "cardSubmitted"
    INSTALLATION = "installationChanged"
    DELIVERY_FAILED = "deliveryFailed"
    MESSAGE_READ = "messageRead"  # a read receipt covered a delivered message (bot/receipts.py)


class EventSink(Protocol):
    async def publish(
        self, event: BotEvent, tenant_id: str | None, payload: dict[str, Any], person: PersonKey | None = None
    ) -> int:
        """Hand an event to whoever subscribed; returns how many subscribers will be told.
        ``person`` is whom the event is about, so that forgetting them also drops it."""
        ...


class NoEvents:
    """The sink used when nothing subscribes (e.g. the middleware inside someone else's bot)."""

    async def publish(
        self, event: BotEvent, tenant_id: str | None, payload: dict[str, Any], person: PersonKey | None = None
    ) -> int:
        return 0
