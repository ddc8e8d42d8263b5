"""What every repository shares: the store's errors, pages, person keys and the read-modify-write loop."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from teams_proactive.bot.model import now

log = logging.getLogger(__name__)

T = TypeVar("T")

# How often a read-modify-write is retried when another writer changed the record in between.
MAX_CONFLICT_RETRIES = 20


class StoreError(Exception):
    """Base of the store's own errors."""


class ConcurrencyConflict(StoreError):
    """A conditional write lost: the record changed (or appeared) since it was read."""


class StoreTooNew(StoreError):
    """The store was written by a newer release (a higher schema version): this build refuses to write to it."""


@dataclass(slots=True)
class Page(Generic[T]):
    items: list[T]
    next_token: str | None


@dataclass(slots=True)
class ReadTally:
    """What GetBroadcast's engagement needs from a broadcast's delivered messages, without the messages."""

    delivered: int  # deliveries with ``delivered_at`` (recalled ones included)
    answered: int  # of those, with ``responded_at``
    seen: list[float]  # of those, the first of ``read_at`` / ``responded_at`` where either is set


@dataclass(slots=True, frozen=True)
class PersonKey:
    tenant_id: str
    user_key: str


async def read_modify_write(
    read: Callable[[], Any],
    change: Callable[[Any], Any],
    write: Callable[[Any, str | None], Any],
) -> Any:
    """Read, apply ``change`` to a copy (None: nothing to write) and write it against the etag read,
    again from the read when another writer got there first."""
    for _ in range(MAX_CONFLICT_RETRIES):
        current = await read()
        updated = change(current.copy() if current is not None else None)
        if updated is None:
            return current
        updated.updated_at = now()
        try:
            return await write(updated, current.etag if current is not None else None)
        except ConcurrencyConflict:
            log.debug("write conflict, retrying read-modify-write")
            continue
    raise ConcurrencyConflict("record kept changing; gave up after retries")


def visible(records: Iterable[T], at: float | None = None) -> list[T]:
    """Hide records whose retention ran out, even before the backend removes them."""
    moment = at or now()
    return [r for r in records if getattr(r, "expires_at", None) is None or r.expires_at > moment]  # type: ignore[attr-defined]
