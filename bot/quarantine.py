"""Moving aside a record a loop keeps failing to process: counted per record, quarantined after a few
failures in a row, so one bad record never stops the loop (issue 24)."""

from __future__ import annotations

import logging
import sqlite3
from collections import OrderedDict

import aiohttp
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from teams_proactive.bot.store.base import Store, StoreError
from teams_proactive.bot.unreadable import reason_of

log = logging.getLogger(__name__)

# Unexpected failures of the same record, in a row, before it is moved aside. More than one, so a
# passing fault (the store briefly away) does not quarantine good records; few, so a bad one is
# retried a handful of times, not for ever.
MAX_FAILURES = 3
# Records whose failures are remembered at once (the oldest forgotten first): bounded memory.
REMEMBERED = 10_000


# Status codes of a store or service that is briefly away or busy (Cosmos DB: timeout, throttled,
# write conflict retry-with, server errors).
_PASSING_STATUSES = frozenset({408, 429, 449})


def is_passing(exc: BaseException) -> bool:
    """A failure of the store or the network, not of the record: it never counts towards quarantine.
    Under a partial outage (Cosmos DB throttling a large broadcast) good records stay where they are."""
    if isinstance(
        exc, StoreError | TimeoutError | ConnectionError | aiohttp.ClientError | sqlite3.OperationalError
        | ServiceRequestError | ServiceResponseError,
    ):
        return True
    if isinstance(exc, HttpResponseError):
        status = exc.status_code or 0
        return status in _PASSING_STATUSES or status >= 500
    return False


class FailureCounter:
    """Failures in a row per record id, in this process (a restart starts the count again)."""

    def __init__(self, limit: int = MAX_FAILURES) -> None:
        self.limit = limit
        self._counts: OrderedDict[str, int] = OrderedDict()

    def failed(self, record_id: str, exc: BaseException | None = None) -> bool:
        """Count one failure; True when the record has now failed ``limit`` times in a row. A passing
        failure (``is_passing``) is not the record's fault: it is not counted."""
        if exc is not None and is_passing(exc):
            return False
        count = self._counts.pop(record_id, 0) + 1
        self._counts[record_id] = count
        while len(self._counts) > REMEMBERED:
            self._counts.popitem(last=False)
        return count >= self.limit

    def succeeded(self, record_id: str) -> None:
        self._counts.pop(record_id, None)


async def isolate(store: Store, kind: str, record_id: str, exc: BaseException) -> bool:
    """Move the record aside with the exception as its reason (never its content); False when it
    could not be (gone already, or the store failed: the loop tries again next time)."""
    try:
        return await store.quarantine.isolate(kind, record_id, reason_of(exc))
    except Exception:
        log.exception("%s %s: could not be moved to quarantine", kind, record_id)
        return False
