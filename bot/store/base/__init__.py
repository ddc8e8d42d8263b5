"""The store's interfaces: ``Store`` and the repositories it hands out, with the types they share."""

from __future__ import annotations

from teams_proactive.bot.store.base.broadcasts import Broadcasts
from teams_proactive.bot.store.base.erasures import Erasures
from teams_proactive.bot.store.base.keys import Keys
from teams_proactive.bot.store.base.leases import Leases
from teams_proactive.bot.store.base.outbox import Outbox
from teams_proactive.bot.store.base.quarantine import KINDS as QUARANTINE_KINDS
from teams_proactive.bot.store.base.quarantine import Quarantine, QuarantinedRecord
from teams_proactive.bot.store.base.records import (
    MAX_CONFLICT_RETRIES,
    ConcurrencyConflict,
    Page,
    PersonKey,
    ReadTally,
    StoreError,
    StoreTooNew,
    read_modify_write,
    visible,
)
from teams_proactive.bot.store.base.references import References
from teams_proactive.bot.store.base.store import REPOSITORIES, DatabaseStore, Store
from teams_proactive.bot.store.base.subscriptions import Subscriptions

__all__ = [
    "MAX_CONFLICT_RETRIES",
    "QUARANTINE_KINDS",
    "REPOSITORIES",
    "Broadcasts",
    "ConcurrencyConflict",
    "DatabaseStore",
    "Erasures",
    "Keys",
    "Leases",
    "Outbox",
    "Page",
    "PersonKey",
    "Quarantine",
    "QuarantinedRecord",
    "ReadTally",
    "References",
    "Store",
    "StoreError",
    "StoreTooNew",
    "Subscriptions",
    "read_modify_write",
    "visible",
]
