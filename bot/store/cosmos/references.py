"""Cosmos DB references (one partition per person) and the aliases container that resolves a recipient by point reads."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from azure.core import MatchConditions
from azure.cosmos.exceptions import CosmosAccessConditionFailedError, CosmosResourceNotFoundError
from teams_proactive.bot.model import Reference, Surface, now, person_id
from teams_proactive.bot.store.base import MAX_CONFLICT_RETRIES, ConcurrencyConflict, Page, PersonKey
from teams_proactive.bot.store.base.references import References
from teams_proactive.bot.store.cosmos.database import (
    ALIAS_CACHE_LIMIT,
    LIVE_FILTER,
    CosmosDatabase,
    alias_doc_id,
    alias_values,
    is_expired_doc,
    ledger_doc_id,
    query_params,
)
from teams_proactive.bot.unreadable import decode_each


class CosmosReferences(References):
    def __init__(self, db: CosmosDatabase) -> None:
        self.db = db
        self.reference_ttl_seconds = db.reference_ttl_seconds

    def _ref_doc(self, ref: Reference) -> dict[str, Any]:
        doc = ref.to_doc()
        doc.update(id=ref.surface, pk=person_id(ref.tenant_id, ref.user_key), rid=ref.doc_id)
        return self.db.with_ttl(doc, ref.expires_at)

    @staticmethod
    def _ref(doc: dict[str, Any]) -> Reference:
        return Reference.from_doc(doc, etag=doc["_etag"])

    async def get(self, tenant_id: str, user_key: str, surface: str) -> Reference | None:
        doc = await self.db.read_live("references", surface, person_id(tenant_id, user_key))
        return self._ref(doc) if doc is not None else None

    async def _person_docs(self, pk: str) -> list[dict[str, Any]]:
        return await self.db.query("references", "SELECT * FROM c WHERE c.pk = @pk", query_params(pk=pk), pk=pk)

    async def of_person(self, tenant_id: str, user_key: str) -> list[Reference]:
        docs = await self._person_docs(person_id(tenant_id, user_key))
        at = now()
        return sorted((self._ref(d) for d in docs if not is_expired_doc(d, at)), key=lambda r: r.surface)

    async def write(self, ref: Reference, etag: str | None) -> Reference:
        doc = self._ref_doc(ref)
        if etag is None:
            stored = await self.db.create("references", doc, doc["pk"])
        else:
            stored = await self.db.replace("references", doc, etag)
        # A new record never trusts the cache: the person may have been erased by another process.
        await self._register_aliases(ref, trust_cache=etag is not None)
        result = ref.copy()
        result.etag = stored["_etag"]
        return result

    def _alias_until(self, ref: Reference) -> float | None:
        """How long the alias entry should live: past the reference's expiry, with headroom so that
        it needs rewriting only about once per half TTL of activity, not on every activity."""
        if ref.expires_at is None:
            return None
        return ref.expires_at + (self.db.reference_ttl_seconds or 0) / 2

    @staticmethod
    def _covers(known: float | None, expires_at: float | None) -> bool:
        if known is None or expires_at is None:
            return known is None and expires_at is None
        return known >= expires_at

    async def _register_aliases(self, ref: Reference, *, trust_cache: bool) -> None:
        person = person_id(ref.tenant_id, ref.user_key)
        todo = []
        for value in alias_values(ref):
            key = (alias_doc_id(value), person, ref.surface)
            if trust_cache and key in self.db.alias_known and self._covers(self.db.alias_known[key], ref.expires_at):
                continue
            todo.append(key[0])
        if todo:
            # The person's ledger first: whatever alias names them is on it, so erasing the person
            # finds every alias even after a UPN or email changed.
            await self._note_aliases(person, todo, self._alias_until(ref))
            await asyncio.gather(*(self._ensure_alias(aid, ref) for aid in todo))

    async def _note_aliases(self, person: str, alias_ids: list[str], until: float | None) -> None:
        ledger_id = ledger_doc_id(person)
        for _ in range(MAX_CONFLICT_RETRIES):
            doc = await self.db.read("aliases", ledger_id, ledger_id)
            known = set(doc["alias_ids"]) if doc else set()
            kept_until = doc.get("until") if doc else until
            if doc is not None and known.issuperset(alias_ids) and self._covers(kept_until, until):
                return
            if kept_until is not None and until is not None:
                until = max(kept_until, until)
            body = self.db.with_ttl(
                {"id": ledger_id, "kind": "ledger", "alias_ids": sorted(known | set(alias_ids)), "until": until}, until
            )
            try:
                if doc is None:
                    await self.db.create("aliases", body, ledger_id)
                else:
                    await self.db.replace("aliases", body, doc["_etag"])
                return
            except ConcurrencyConflict:
                continue
        raise ConcurrencyConflict(f"alias ledger {ledger_id} kept changing")

    async def _ensure_alias(self, alias_id: str, ref: Reference) -> None:
        """Add the person and this surface to the alias document (or extend its expiry),
        conditionally, retrying when another writer got there first."""
        person = person_id(ref.tenant_id, ref.user_key)
        until = self._alias_until(ref)
        for _ in range(MAX_CONFLICT_RETRIES):
            doc = await self.db.read("aliases", alias_id, alias_id)
            at = now()
            people = [p for p in (doc or {}).get("people", []) if p.get("until") is None or p["until"] > at]
            entry = next((p for p in people if p["person"] == person), None)
            if (
                entry is not None
                and ref.surface in entry["surfaces"]
                and self._covers(entry.get("until"), ref.expires_at)
            ):
                self._remember_alias(alias_id, person, ref.surface, entry.get("until"))
                return
            if entry is None:
                entry = {"person": person, "tenant_id": ref.tenant_id, "user_key": ref.user_key, "surfaces": []}
                people.append(entry)
            if ref.surface not in entry["surfaces"]:
                # Teams first: resolve confirms a person by reading the first surface listed.
                entry["surfaces"] = sorted({*entry["surfaces"], ref.surface}, key=lambda s: (s != Surface.TEAMS, s))
            known = entry.get("until", until)
            if known is not None and until is not None:
                until = max(known, until)
            entry["until"] = until
            body = self._alias_doc(alias_id, people)
            try:
                if doc is None:
                    await self.db.create("aliases", body, alias_id)
                else:
                    await self.db.replace("aliases", body, doc["_etag"])
            except ConcurrencyConflict:
                continue
            self._remember_alias(alias_id, person, ref.surface, until)
            return
        raise ConcurrencyConflict(f"alias {alias_id} kept changing")

    def _alias_doc(self, alias_id: str, people: list[dict[str, Any]]) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": alias_id, "people": people}
        untils = [p.get("until") for p in people]
        if untils and None not in untils:
            # The document goes when the last of its people would; pruned entries go on the next write.
            return self.db.with_ttl(doc, max(u for u in untils if u is not None))
        return doc

    def _remember_alias(self, alias_id: str, person: str, surface: str, until: float | None) -> None:
        if len(self.db.alias_known) >= ALIAS_CACHE_LIMIT:
            self.db.alias_known.clear()
        self.db.alias_known[(alias_id, person, surface)] = until

    async def _forget_alias(self, alias_id: str, person: str) -> None:
        for key in [k for k in self.db.alias_known if k[:2] == (alias_id, person)]:
            self.db.alias_known.pop(key, None)
        for _ in range(MAX_CONFLICT_RETRIES):
            doc = await self.db.read("aliases", alias_id, alias_id)
            if doc is None or all(p["person"] != person for p in doc.get("people", [])):
                return
            people = [p for p in doc["people"] if p["person"] != person]
            try:
                if people:
                    await self.db.replace("aliases", self._alias_doc(alias_id, people), doc["_etag"])
                else:
                    await self.db.containers["aliases"].delete_item(
                        alias_id,
                        partition_key=alias_id,
                        etag=doc["_etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
                return
            except (ConcurrencyConflict, CosmosAccessConditionFailedError, CosmosResourceNotFoundError):
                continue
        raise ConcurrencyConflict(f"alias {alias_id} kept changing")

    async def resolve(self, recipient: str, tenant_id: str | None) -> list[PersonKey]:
        value = recipient.strip().lower()
        if not value:
            return []
        alias_id = alias_doc_id(value)
        doc = await self.db.read("aliases", alias_id, alias_id)
        if doc is None or doc.get("kind") == "ledger":
            return []
        entries = [p for p in doc.get("people", []) if not tenant_id or p["tenant_id"] == tenant_id]

        # The alias is an index, the references are the truth: the person must still have a live
        # reference carrying this value (it may have expired, changed UPN or been erased). Point
        # reads of the surfaces the alias lists, usually just the first.
        async def confirmed(entry: dict[str, Any]) -> bool:
            for surface in entry["surfaces"]:
                ref = await self.get(entry["tenant_id"], entry["user_key"], surface)
                if ref is not None and value in alias_values(ref):
                    return True
            return False

        checks = await asyncio.gather(*(confirmed(e) for e in entries))
        found = (PersonKey(e["tenant_id"], e["user_key"]) for e, ok in zip(entries, checks, strict=True) if ok)
        return list(dict.fromkeys(found))

    async def page(
        self,
        *,
        tenant_id: str | None,
        status: str | None,
        surface: str | None,
        limit: int,
        token: str | None,
    ) -> Page[Reference]:
        sql = f"SELECT TOP @n * FROM c WHERE {LIVE_FILTER}"
        params: dict[str, Any] = {"n": limit + 1, "now": now()}
        for field, value in (("tenant_id", tenant_id), ("status", status), ("surface", surface)):
            if value:
                sql += f" AND c.{field} = @{field}"
                params[field] = value
        if token:
            sql += " AND c.rid > @token"
            params["token"] = token
        docs = await self.db.query("references", sql + " ORDER BY c.rid", query_params(**params))
        try:
            items = [self._ref(d) for d in docs[:limit]]
        except Exception:  # one that cannot be read goes to quarantine; the page holds the rest
            rows = [(str(d.get("rid") or d.get("id")), d) for d in docs[:limit]]
            items, unreadable = decode_each(rows, self._ref, "reference")
            await self.db.set_aside(unreadable, dict(rows))
        return Page(items, docs[limit - 1]["rid"] if len(docs) > limit else None)

    async def tenant_service_url(self, tenant_id: str, channel_id: str) -> str | None:
        rows = await self.db.query(
            "references",
            f"SELECT TOP 1 c.service_url FROM c WHERE c.tenant_id = @t AND c.channel_id = @ch AND {LIVE_FILTER}"
            " ORDER BY c.last_seen DESC",
            query_params(t=tenant_id, ch=channel_id, now=now()),
        )
        return rows[0]["service_url"] if rows else None

    async def delete_person(self, tenant_id: str, user_key: str) -> int:
        pk = person_id(tenant_id, user_key)
        docs = await self._person_docs(pk)
        ledger = await self.db.read("aliases", ledger_doc_id(pk), ledger_doc_id(pk))
        alias_ids = set(ledger["alias_ids"]) if ledger else set()
        for doc in docs:
            alias_ids |= {alias_doc_id(v) for v in alias_values(self._ref(doc))}
        # Aliases first: a concurrent capture that re-creates a reference after this then re-adds
        # its alias, so a reference never ends up without one.
        await asyncio.gather(*(self._forget_alias(aid, pk) for aid in alias_ids))
        if ledger is not None:
            with contextlib.suppress(CosmosResourceNotFoundError):
                await self.db.containers["aliases"].delete_item(ledger["id"], partition_key=ledger["id"])
        deleted = 0
        for doc in docs:
            try:
                await self.db.containers["references"].delete_item(doc["id"], partition_key=pk)
                deleted += 1
            except CosmosResourceNotFoundError:
                pass
        return deleted
