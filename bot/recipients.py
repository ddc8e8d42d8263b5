"""Where a recipient is resolved: UPN, email or Entra object ID to a person, and whether they can be reached."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from teams_proactive.bot import errors
from teams_proactive.bot.model import Broadcast, Delivery, Reference, ReferenceStatus, Surface
from teams_proactive.bot.store.base import PersonKey, Store


@dataclass(slots=True)
class Person:
    key: PersonKey
    references: list[Reference]

    @property
    def chat(self) -> Reference | None:
        """The personal Teams chat reference: the proactive target."""
        return next((r for r in self.references if r.surface == Surface.TEAMS), None)

    @property
    def opted_out(self) -> bool:
        return any(r.opted_out for r in self.references)

    @property
    def timezone(self) -> str | None:
        newest = sorted(self.references, key=lambda r: -r.last_seen)
        return next((r.timezone for r in newest if r.timezone), None)

    @property
    def display(self) -> Reference:
        return self.chat or max(self.references, key=lambda r: r.last_seen)

    def reachability(self) -> str:
        """``active`` when a message can be sent, else the status that prevents it."""
        chat = self.chat
        if chat is not None:
            return chat.status
        # No Teams chat yet: the 1:1 chat can be created while any Teams-side record is active.
        teams_side = [r for r in self.references if r.surface in (Surface.TEAMS_COPILOT, Surface.M365_COPILOT)]
        if any(r.status == ReferenceStatus.ACTIVE for r in teams_side):
            return ReferenceStatus.ACTIVE
        return teams_side[0].status if teams_side else ReferenceStatus.NOT_FOUND


async def find_person(store: Store, recipient: str, tenant_id: str | None) -> Person:
    """Resolve a recipient; raises Rejected(RecipientNotFound) for someone the bot has never seen."""
    value = recipient.strip()
    keys = await store.references.resolve(value, tenant_id)
    if not keys:
        raise errors.not_found(value)
    if len(keys) > 1:
        tenants = sorted({k.tenant_id for k in keys})
        raise errors.Rejected(
            "ValidationError",
            f"'{value}' matches people in {len(tenants)} tenants ({', '.join(tenants)}); pass tenantId to say which.",
            "tenantId",
        )
    refs = await store.references.of_person(keys[0].tenant_id, keys[0].user_key)
    if not refs:
        raise errors.not_found(value)
    return Person(keys[0], refs)


def require_reachable(person: Person, recipient: str) -> None:
    """Raise the error a maker should see when this person cannot get a message now."""
    if person.opted_out:
        raise errors.opted_out(recipient)
    status = person.reachability()
    if status != ReferenceStatus.ACTIVE:
        raise errors.unreachable(recipient, status)


def index_keys(tenant_id: str | None, names: Iterable[str]) -> list[str]:
    """The person-index keys of addresses (UPN, email, object id, user id) within one tenant.

    A broadcast limited to a tenant is indexed under that tenant; one sent by an unrestricted key
    under ``*`` (its list may name people of any tenant). Hashed, so the index holds no address in
    clear; an erase deletes its entries all the same."""
    scope = tenant_id or "*"
    return [
        "pi:" + hashlib.sha256(f"{scope}|{name.strip().lower()}".encode()).hexdigest()
        for name in sorted({n.strip().lower() for n in names if n and n.strip()})
    ]


async def forget(store: Store, person: PersonKey) -> dict[str, int]:
    """Erase what is kept about a person: references, their deliveries' content, and their addresses.

    Deliveries stay (the caller may still ask for their status) with content, responses, the chat
    and any text naming the person removed; every broadcast that names them loses their addresses
    from its recipient list and skip report; events about them still waiting for a flow's callback
    are dropped. Subscriptions belong to flows, not to people, and hold nothing about a person.

    Everything is found through per-person indexes, never by reading all of a kind: the person's
    deliveries by (tenant, person), the broadcasts naming them by the person index (plus the few
    still being prepared, not indexed yet). Nothing outside the person's tenant is read or changed:
    only broadcasts of that tenant, or of an unrestricted key, are touched.
    """
    references = await store.references.of_person(person.tenant_id, person.user_key)
    names = {n.lower() for r in references for n in (r.upn, r.email, r.aad_object_id, r.user_id) if n}
    names.add(person.user_key.lower())
    broadcast_ids: set[str] = set()
    erased = 0
    token: str | None = None
    while True:
        page = await store.outbox.page(person=person, limit=500, token=token)
        for item in page.items:
            if item.tenant_id != person.tenant_id:
                continue  # the store filters on it already; an erase never reaches past its tenant
            names.add(item.recipient.strip().lower())
            if item.broadcast_id:
                broadcast_ids.add(item.broadcast_id)

            def scrub(current: Delivery) -> Delivery | None:
                if not current.content and current.recipient == FORGOTTEN and not current.request_hash:
                    return None
                current.content = {}
                current.recipient = FORGOTTEN
                # The chat and the person's key point back at them; without them a pending send fails
                # as RecipientNotFound instead of going out empty.
                current.user_key = FORGOTTEN
                current.conversation_id = None
                current.service_url = None
                current.response = None
                current.responded_by = None
                # A hash of a body that named the person is still about them.
                current.request_hash = None
                if current.error and isinstance(current.error.get("message"), str):
                    current.error = {**current.error, "message": _redact(current.error["message"], names)}
                return current

            if await store.outbox.update(item.id, scrub) is not None:
                erased += 1
        token = page.next_token
        if not token:
            break
    names -= {FORGOTTEN, ""}
    keys = index_keys(person.tenant_id, names) + index_keys(None, names)
    broadcast_ids.update(await store.broadcasts.indexed(keys))
    # Broadcasts not expanded yet are not indexed yet: they are few (only those being prepared).
    broadcast_ids.update(b.id for b in await store.broadcasts.unfinished() if b.status == "preparing")

    changed = False

    def strip_person(current: Broadcast) -> Broadcast | None:
        nonlocal changed
        changed = False
        if current.tenant_id not in (None, person.tenant_id):
            return None  # another tenant's broadcast: never changed by this tenant's erase
        recipients = current.recipients
        if recipients is not None:
            recipients = [FORGOTTEN if r.strip().lower() in names else r for r in recipients]
        skipped = [
            {**s, "recipient": FORGOTTEN, "message": _redact(str(s.get("message", "")), names)}
            if str(s.get("recipient", "")).strip().lower() in names
            else s
            for s in current.skipped
        ]
        if recipients == current.recipients and skipped == current.skipped:
            return None
        current.recipients = recipients
        current.skipped = skipped
        current.request_hash = None
        changed = True
        return current

    scrubbed = 0
    for broadcast_id in sorted(broadcast_ids):
        await store.broadcasts.update(broadcast_id, strip_person)
        chunks_changed = await _strip_chunks(store, broadcast_id, names, person.tenant_id)
        scrubbed += changed or chunks_changed
    await store.broadcasts.forget_index(keys)
    # Events about the person still waiting for a flow's callback quote what they wrote.
    await store.subscriptions.forget_notifications(person.tenant_id, person.user_key)
    # Records about them moved aside because they could not be read or processed (issue 24).
    await store.quarantine.forget(person)
    deleted = await store.references.delete_person(person.tenant_id, person.user_key)
    await store.compact()
    return {"references": deleted, "deliveries": erased, "broadcasts": scrubbed}


async def _strip_chunks(store: Store, broadcast_id: str, names: set[str], tenant_id: str) -> bool:
    """A long recipient list lives in chunk records (see Broadcast.recipient_chunks): scrub them too,
    in the erasing tenant's broadcasts only (as strip_person). True when a chunk changed."""
    broadcast = await store.broadcasts.get(broadcast_id)
    if broadcast is None or not broadcast.recipient_chunks or broadcast.tenant_id not in (None, tenant_id):
        return False
    changed = False
    for index in range(broadcast.recipient_chunks):
        chunk = await store.broadcasts.read_chunk(broadcast_id, index)
        if chunk is None:
            continue
        stripped = [FORGOTTEN if r.strip().lower() in names else r for r in chunk]
        if stripped != chunk:
            await store.broadcasts.write_chunk(broadcast_id, index, stripped, broadcast.expires_at)
            changed = True
    return changed


FORGOTTEN = "(forgotten)"


def _redact(text: str, names: set[str]) -> str:
    lowered = text.lower()
    for name in sorted(names, key=len, reverse=True):
        start = lowered.find(name)
        while name and start >= 0:
            text = text[:start] + FORGOTTEN + text[start + len(name) :]
            lowered = text.lower()
            start = lowered.find(name, start + len(FORGOTTEN))
    return text
