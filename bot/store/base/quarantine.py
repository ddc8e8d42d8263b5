"""The quarantine repository: records a loop could not read or process, moved aside with a short reason."""

from __future__ import annotations

import abc
from dataclasses import dataclass

from teams_proactive.bot.store.base.records import PersonKey

# What can be moved aside: the records the background loops read many of at a time.
KINDS = ("delivery", "broadcast", "notification", "reference")

# Kept this long unless the store is told otherwise (create_store sets DELIVERY_RETENTION_DAYS).
DEFAULT_KEEP_SECONDS = 30 * 86400.0


@dataclass(frozen=True, slots=True)
class QuarantinedRecord:
    """One record moved aside: which kind, which id, why (never its content), when, and until when it is kept."""

    kind: str
    record_id: str
    reason: str
    quarantined_at: float
    expires_at: float | None

    def to_doc(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "id": self.record_id,
            "reason": self.reason,
            "quarantinedAt": self.quarantined_at,
            "expiresAt": self.expires_at,
        }


class Quarantine(abc.ABC):
    """Records of ``KINDS`` moved out of their table (so no loop reads them again) and kept, as they
    were stored, for the retention period; the purge removes them physically after that.

    The repositories move a record they cannot decode here themselves (a claim or a scan meets it); a
    loop moves one here with :meth:`isolate` when processing it keeps failing.
    """

    keep_seconds: float = DEFAULT_KEEP_SECONDS

    @abc.abstractmethod
    async def isolate(self, kind: str, record_id: str, reason: str) -> bool:
        """Move the stored record aside with ``reason`` (short; never its content). False when there
        was no such record (already moved, deleted or expired). A reference's id is
        ``tenant|user key|surface`` (``Reference.doc_id``)."""

    @abc.abstractmethod
    async def list(self, kind: str | None = None, limit: int = 100) -> list[QuarantinedRecord]:
        """Records moved aside (still kept), newest first."""

    @abc.abstractmethod
    async def counts(self) -> dict[str, int]:
        """How many records of each kind are kept in quarantine (every kind of ``KINDS``, 0 too)."""

    @abc.abstractmethod
    async def remove(self, kind: str, record_id: str) -> bool:
        """Delete one quarantined record for good (an operator cleared it); False when absent."""

    @abc.abstractmethod
    async def forget(self, person: PersonKey) -> int:
        """Delete the quarantined records known to be about ``person`` (ForgetRecipient): those whose
        tenant and person key could be read when they were moved aside. Returns how many went."""
