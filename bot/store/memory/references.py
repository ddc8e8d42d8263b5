"""In-memory references: one per person and surface."""

from __future__ import annotations

from teams_proactive.bot.model import Reference, reference_id
from teams_proactive.bot.store.base import Page, PersonKey
from teams_proactive.bot.store.base.references import References
from teams_proactive.bot.store.memory.database import MemoryDatabase


class MemoryReferences(References):
    def __init__(self, db: MemoryDatabase) -> None:
        self.db = db
        self.reference_ttl_seconds = db.reference_ttl_seconds

    async def get(self, tenant_id: str, user_key: str, surface: str) -> Reference | None:
        return self.db.visible(self.db.refs.get(reference_id(tenant_id, user_key, surface)))

    async def of_person(self, tenant_id: str, user_key: str) -> list[Reference]:
        found = [
            self.db.visible(r) for r in self.db.refs.values() if r.tenant_id == tenant_id and r.user_key == user_key
        ]
        return sorted((r for r in found if r is not None), key=lambda r: r.surface)

    async def write(self, ref: Reference, etag: str | None) -> Reference:
        if etag is None:
            return self.db.create(self.db.refs, ref.doc_id, ref)
        return self.db.replace(self.db.refs, ref.doc_id, ref, etag)

    async def resolve(self, recipient: str, tenant_id: str | None) -> list[PersonKey]:
        value = recipient.strip().lower()
        found: dict[PersonKey, None] = {}
        for ref in self.db.refs.values():
            if self.db.visible(ref) is None or (tenant_id and ref.tenant_id != tenant_id):
                continue
            if value in {(v or "").lower() for v in (ref.aad_object_id, ref.upn, ref.email)}:
                found[PersonKey(ref.tenant_id, ref.user_key)] = None
        return list(found)

    async def page(
        self,
        *,
        tenant_id: str | None,
        status: str | None,
        surface: str | None,
        limit: int,
        token: str | None,
    ) -> Page[Reference]:
        matching = sorted(
            (
                (rid, ref)
                for rid, ref in self.db.refs.items()
                if self.db.visible(ref) is not None
                and (not tenant_id or ref.tenant_id == tenant_id)
                and (not status or ref.status == status)
                and (not surface or ref.surface == surface)
                and (not token or rid > token)
            ),
            key=lambda pair: pair[0],
        )
        page = matching[:limit]
        next_token = page[-1][0] if len(matching) > limit else None
        return Page([ref.copy() for _, ref in page], next_token)

    async def tenant_service_url(self, tenant_id: str, channel_id: str) -> str | None:
        refs = [
            r
            for r in self.db.refs.values()
            if r.tenant_id == tenant_id and r.channel_id == channel_id and self.db.visible(r) is not None
        ]
        return max(refs, key=lambda r: r.last_seen).service_url if refs else None

    async def delete_person(self, tenant_id: str, user_key: str) -> int:
        doomed = [rid for rid, r in self.db.refs.items() if r.tenant_id == tenant_id and r.user_key == user_key]
        for rid in doomed:
            del self.db.refs[rid]
        return len(doomed)
