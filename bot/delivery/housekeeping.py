"""Housekeeping the dispatcher's leader runs in its loop: erasures asked for off the bot turn, then the retention purge."""

from __future__ import annotations

import logging
import time

from teams_proactive.bot.model import now
from teams_proactive.bot.recipients import forget
from teams_proactive.bot.store.base import PersonKey, Store
from teams_proactive.bot.unreadable import reason_of

log = logging.getLogger(__name__)


class Housekeeper:
    """One ``run()`` erases the people waiting to be erased and, when due, purges what expired.

    Erasures come from ``DELETE_ON_UNINSTALL``: the bot turn only queues them (durably, in the
    store), so an uninstall answers at once however much was kept about the person, and an erase
    interrupted by a restart is done again by whichever dispatcher leads next (erasing is idempotent).
    """

    def __init__(self, store: Store, *, purge_every_seconds: float = 3600.0, erase_batch: int = 20) -> None:
        self._store = store
        self.purge_every_seconds = purge_every_seconds
        self._erase_batch = erase_batch
        self._last_purge: float | None = None
        # Read by tests and metrics: people erased and records purged by this process.
        self.stats = {"erased": 0, "erase_failures": 0, "purged": 0, "purges": 0}

    async def run(self) -> None:
        try:
            await self.erase_pending()
        finally:
            # The purge runs even when the erasures could not all be done (issue 24: nothing stops the rest).
            if self._last_purge is None or time.monotonic() - self._last_purge >= self.purge_every_seconds:
                await self.purge()

    async def erase_pending(self) -> int:
        """Erase everyone waiting; one whose erase fails stays pending (tried again on the next run)
        and the others are erased meanwhile."""
        erased = 0
        failed: set[PersonKey] = set()
        while True:
            # The failed ones are the oldest and would fill every batch: ask past them.
            people = [p for p in await self._store.erasures.pending(self._erase_batch + len(failed)) if p not in failed]
            if not people:
                if failed:
                    log.warning(
                        "%d erasures failed; they stay pending and are tried again on the next run", len(failed)
                    )
                return erased
            done = 0
            for person in people:
                try:
                    await forget(self._store, person)
                    await self._store.erasures.done(person)
                except Exception as exc:
                    # No ids and no traceback in the log: they are what is being erased, and an
                    # exception's text may quote them.
                    log.error("an erasure failed (%s); it stays pending and the others go on", reason_of(exc))
                    failed.add(person)
                    self.stats["erase_failures"] += 1
                    continue
                done += 1
                erased += 1
                self.stats["erased"] += 1
            if done:
                # Counts only: the person's ids are what is being erased.
                log.info("erased %d people on uninstall", done)

    async def purge(self) -> dict[str, int]:
        self._last_purge = time.monotonic()
        counts = await self._store.purge_expired(now())
        removed = sum(counts.values())
        self.stats["purges"] += 1
        self.stats["purged"] += removed
        if removed:
            await self._store.compact()
            log.info("retention purge removed %s", ", ".join(f"{n} {kind}" for kind, n in counts.items() if n))
        return counts
