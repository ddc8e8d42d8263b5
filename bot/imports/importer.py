"""Writes imported references into the store: one record per (tenant, person, surface), newer data wins.

Each item is answered: ``imported`` (new record), ``updated`` (a newer reference replaced an older
one), or ``skipped`` with a reason (``Unchanged`` when the store already holds exactly this, ``Older``
when the store's record is newer, and the shape's reasons: ``MissingServiceUrl``, ``UntrustedServiceUrl``,
``NotPersonal``, ``OtherTenant``, ``MissingTenant``, ``Invalid``). A person's other records are never touched, an item
that fails never stops the rest, and importing the same data twice writes nothing the second time.
Microsoft 365 Copilot references are kept (they count for "last seen") and are never a send target
(``teams_proactive.bot.surfaces.is_proactive_target``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from teams_proactive.bot.imports.shapes import ParsedReference, Skip, parse_reference
from teams_proactive.bot.model import Reference, ReferenceStatus, now
from teams_proactive.bot.store.base import ConcurrencyConflict, Store

log = logging.getLogger(__name__)

IMPORTED, UPDATED, SKIPPED = "imported", "updated", "skipped"
# Fields an import sets; a record that already holds these values is left alone.
_COMPARED = ("conversation_id", "service_url", "channel_id", "user_id", "bot_id", "conversation_type")


@dataclass(frozen=True, slots=True)
class ImportItem:
    """One document to import: where it came from (a file, ``name.jsonl#12``, a blob, a list index),
    the parsed JSON (or the error that made it unreadable), and the source's modified time."""

    source: str
    document: Any = None
    error: str | None = None
    modified_at: float | None = None


@dataclass
class ImportReport:
    counts: dict[str, int] = field(default_factory=lambda: {IMPORTED: 0, UPDATED: 0, SKIPPED: 0})
    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, source: str, result: str, *, surface: str | None = None, reason: str | None = None,
            message: str | None = None) -> None:  # fmt: skip
        self.counts[result] += 1
        entry: dict[str, Any] = {"source": source, "result": result}
        if surface:
            entry["surface"] = surface
        if reason:
            entry["reason"] = reason
            entry["message"] = message or reason
        self.items.append(entry)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_json(self, *, items: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {**self.counts, "total": self.total}
        if items:
            body["items"] = self.items
        return body


class ReferenceImporter:
    """``await importer.run(items)``; ``tenant_id``: the default tenant, and with ``only_tenant`` the
    only one accepted (an API key limited to a tenant: any other is ``OtherTenant``)."""

    def __init__(
        self,
        store: Store,
        *,
        tenant_id: str | None = None,
        only_tenant: bool = False,
        local_mode: bool = False,
        concurrency: int = 16,
        progress: Callable[[ImportReport], None] | None = None,
        progress_every: int = 1000,
    ) -> None:
        self._store = store
        self._tenant = tenant_id
        self._only_tenant = only_tenant and tenant_id is not None
        # Without the bot's identity outbound calls carry no token: any service URL may be imported.
        self._local_mode = local_mode
        self._concurrency = concurrency
        self._progress = progress
        self._progress_every = progress_every

    async def run(self, items: AsyncIterable[ImportItem] | Iterable[ImportItem]) -> ImportReport:
        report = ImportReport()
        results: dict[int, tuple[str, str, dict[str, Any]]] = {}
        slots = asyncio.Semaphore(self._concurrency)
        tasks: set[asyncio.Task[None]] = set()
        running = ImportReport()  # counts so far, for the progress hook
        index = 0

        async def one(position: int, item: ImportItem) -> None:
            try:
                results[position] = (item.source, *await self._import(item))
            except Exception as exc:  # one item never stops the rest
                log.warning("import of one reference failed (%s)", type(exc).__name__)
                results[position] = (item.source, SKIPPED, {"reason": "StoreError", "message": "The store refused it."})
            finally:
                slots.release()
            running.counts[results[position][1]] += 1
            if self._progress is not None and len(results) % self._progress_every == 0:
                self._progress(running)

        async def each() -> Any:
            if isinstance(items, AsyncIterable):
                async for item in items:
                    yield item
            else:
                for item in items:
                    yield item

        async for item in each():
            await slots.acquire()
            task = asyncio.get_running_loop().create_task(one(index, item))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            index += 1
        if tasks:
            await asyncio.gather(*tasks)
        for position in range(index):
            source, result, extra = results[position]
            report.add(source, result, **extra)
        return report

    async def _import(self, item: ImportItem) -> tuple[str, dict[str, Any]]:
        if item.error is not None:
            return SKIPPED, {"reason": "Invalid", "message": item.error}
        try:
            parsed = parse_reference(item.document, default_tenant=self._tenant, local_mode=self._local_mode)
        except Skip as skip:
            return SKIPPED, {"reason": skip.reason, "message": skip.message}
        if self._only_tenant and parsed.tenant_id != self._tenant:
            return SKIPPED, {"reason": "OtherTenant", "message": "The reference belongs to another tenant.",
                             "surface": parsed.surface}  # fmt: skip
        seen = parsed.seen_at or item.modified_at or now()
        for _ in range(3):
            try:
                return await self._write(parsed, seen)
            except ConcurrencyConflict:
                continue  # someone wrote the record meanwhile (a bot turn): look again
        return SKIPPED, {"reason": "Conflict", "message": "The record kept changing; try again.", "surface": parsed.surface}

    async def _write(self, parsed: ParsedReference, seen: float) -> tuple[str, dict[str, Any]]:
        current = await self._store.references.get(parsed.tenant_id, parsed.user_key, parsed.surface)
        extra: dict[str, Any] = {"surface": parsed.surface}
        if current is not None:
            if all(getattr(current, name) == getattr(parsed, name) for name in _COMPARED):
                return SKIPPED, {**extra, "reason": "Unchanged", "message": "The store already holds this reference."}
            if current.last_seen >= seen:
                return SKIPPED, {**extra, "reason": "Older", "message": "The store holds a newer reference."}
            ref = current.copy()
            self._apply(ref, parsed, seen)
            await self._store.references.write(ref, current.etag)
            return UPDATED, extra
        # A new record borrows what the person's other records know, as a captured one does.
        siblings = await self._store.references.of_person(parsed.tenant_id, parsed.user_key)
        ref = Reference(
            tenant_id=parsed.tenant_id,
            user_key=parsed.user_key,
            surface=parsed.surface,
            conversation_id=parsed.conversation_id,
            service_url=parsed.service_url,
            channel_id=parsed.channel_id,
            user_id=parsed.user_id,
            bot_id=parsed.bot_id,
            upn=next((r.upn for r in siblings if r.upn), None),
            email=next((r.email for r in siblings if r.email), None),
            timezone=next((r.timezone for r in sorted(siblings, key=lambda r: -r.last_seen) if r.timezone), None),
            status=ReferenceStatus.ACTIVE,
            # Someone who typed "stop" on one surface stays opted out on a surface imported later.
            opted_out=any(r.opted_out for r in siblings),
            created_at=seen,
        )
        self._apply(ref, parsed, seen)
        await self._store.references.write(ref, None)
        return IMPORTED, extra

    def _apply(self, ref: Reference, parsed: ParsedReference, seen: float) -> None:
        for name in _COMPARED:
            setattr(ref, name, getattr(parsed, name))
        ref.aad_object_id = parsed.aad_object_id or ref.aad_object_id
        ref.name = parsed.name or ref.name
        ref.bot_name = parsed.bot_name or ref.bot_name
        ref.locale = parsed.locale or ref.locale
        ref.conversation_reference = parsed.document
        ref.last_seen = seen
        ref.updated_at = now()
        ref.expires_at = self._store.references.expiry(seen)
