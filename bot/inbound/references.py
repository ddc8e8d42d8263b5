"""Every activity refreshes the sender's reference for its surface; lifecycle events change its status.

References are kept per (tenant, person, surface) with the newest service URL; a new record borrows
what the person's other surfaces know (UPN, email, time zone); the Teams member lookup that gives the
UPN and email is made once per person.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from teams_proactive.bot import text
from teams_proactive.bot.inbound.activity import (
    CONVERSATION_UPDATE,
    channel_data_of,
    channel_of,
    conversation_reference,
    lifecycle_status,
    locale_of,
    tenant_of,
    timezone_of,
)
from teams_proactive.bot.inbound.host import HostTurn
from teams_proactive.bot.model import Reference, ReferenceStatus, Surface, now
from teams_proactive.bot.store.base import ConcurrencyConflict, Store
from teams_proactive.bot.surfaces import TEAMS_CHANNEL, classify

log = logging.getLogger(__name__)

# Called as ``await forget(tenant_id, user_key)`` to erase a person's data on uninstall.
Forget = Callable[[str, str], Awaitable[None]]


class ReferenceRecorder:
    """Upserts the (tenant, user, surface) reference of the activity's sender."""

    def __init__(
        self, store: Store, *, delete_on_uninstall: bool = False, on_forget: Forget | None = None, budget: Any = None
    ) -> None:
        self._store = store
        self._delete_on_uninstall = delete_on_uninstall
        self._on_forget = on_forget
        # A TeamsBudget (bot.delivery.budget): the member lookup spends from the tenant's budget too.
        self._budget = budget

    async def record(self, turn: HostTurn) -> Reference | None:
        """The sender's reference as stored now, or None for an activity this product does not track."""
        activity = turn.activity
        user = activity.from_property
        if activity.conversation is None or user is None or not user.id or not activity.service_url:
            return None
        tenant_id = tenant_of(activity)
        channel_data = channel_data_of(activity)
        channel_id = channel_of(activity)
        surface = classify(channel_id, activity.conversation.conversation_type, channel_data)
        if not tenant_id or surface is None:
            return None
        # Activities the bot sees about other members (a user removed from a team) concern them,
        # not the sender; the sender is still recorded as seen.
        await self._record_removed_members(turn, tenant_id, surface)
        user_key = (user.aad_object_id or user.id).lower()
        status = lifecycle_status(activity)
        if status == ReferenceStatus.UNINSTALLED and self._delete_on_uninstall and surface == Surface.TEAMS:
            if self._on_forget is not None:
                await self._on_forget(tenant_id, user_key)
            else:
                await self._store.references.delete_person(tenant_id, user_key)
            return None

        seen = now()
        document = conversation_reference(activity, tenant_id)
        # Our own endpoint refuses such an activity before the turn; inside someone else's bot the turn
        # runs, but nothing the store could not read back is written (bot/text.py).
        if text.find([document, timezone_of(activity)]) is not None:
            log.warning("reference capture skipped: a %s activity holds text that cannot be stored", activity.type)
            return None
        current = await self._store.references.get(tenant_id, user_key, surface)
        known_upn = known_email = known_tz = None
        known_opted_out = False
        if current is None or not (current.upn and current.email and current.timezone):
            # Only a new or incomplete record borrows what the person's other surfaces know.
            siblings = await self._store.references.of_person(tenant_id, user_key)
            known_upn = next((r.upn for r in siblings if r.upn), None)
            known_email = next((r.email for r in siblings if r.email), None)
            newest_first = sorted(siblings, key=lambda r: -r.last_seen)
            known_tz = next((r.timezone for r in newest_first if r.timezone), None)
            # Someone who typed "stop" on one surface stays opted out on a surface they reach us from later.
            known_opted_out = any(r.opted_out for r in siblings)

        def refresh(current: Reference | None) -> Reference:
            ref = current or Reference(
                tenant_id=tenant_id,
                user_key=user_key,
                surface=surface,
                conversation_id=activity.conversation.id,
                service_url=activity.service_url,
                channel_id=channel_id or "",
                user_id=user.id,
                bot_id=activity.recipient.id if activity.recipient else "",
                created_at=seen,
                opted_out=known_opted_out,
            )
            previous = ref.conversation_id
            ref.conversation_id = activity.conversation.id
            ref.remember_chat_id(previous)  # Graph's 19:…@unq.gbl.spaces and Teams' a:… are one chat
            ref.service_url = activity.service_url  # it can change: the newest wins
            ref.channel_id = channel_id or ref.channel_id
            ref.user_id = user.id
            ref.aad_object_id = user.aad_object_id or ref.aad_object_id
            if activity.recipient:
                ref.bot_id = activity.recipient.id or ref.bot_id
                ref.bot_name = activity.recipient.name or ref.bot_name
            ref.name = user.name or ref.name
            ref.upn = ref.upn or known_upn
            ref.email = ref.email or known_email
            ref.locale = locale_of(activity) or ref.locale
            ref.timezone = timezone_of(activity) or ref.timezone or known_tz
            ref.conversation_type = activity.conversation.conversation_type or ref.conversation_type
            ref.conversation_reference = document
            ref.status = status
            if status == ReferenceStatus.ACTIVE:
                ref.failures = 0
                ref.last_error = None
            ref.last_seen = seen
            ref.expires_at = self._store.references.expiry(seen)
            return ref

        try:
            # The common case: one read above, one conditional write here.
            ref: Reference | None = await self._store.references.write(
                refresh(current.copy() if current is not None else None), current.etag if current else None
            )
        except ConcurrencyConflict:
            ref = await self._store.references.update(tenant_id, user_key, surface, refresh)
        if ref is not None and not ref.upn and not ref.member_looked_up and status == ReferenceStatus.ACTIVE:
            ref = await self._look_up_member(turn, ref)
        return ref

    async def _look_up_member(self, turn: HostTurn, ref: Reference) -> Reference | None:
        """Ask Teams once for the member's UPN and email, then keep them on every record of the person."""
        if ref.channel_id != TEAMS_CHANNEL:
            return ref
        try:
            if self._budget is not None:
                await self._budget.spend(ref.tenant_id)
            member = await turn.member(ref.user_id)
        except Exception as exc:  # the lookup is a nicety: the reference is already stored
            log.info("member lookup failed (%s); UPN stays unknown for now", type(exc).__name__)
            return ref
        upn = member.get("userPrincipalName")
        email = member.get("email")
        aad = member.get("aadObjectId")

        def enrich(current: Reference) -> Reference:
            current.upn = upn or current.upn
            current.email = email or current.email
            current.aad_object_id = current.aad_object_id or aad
            current.member_looked_up = True
            return current

        updated = await self._store.references.update_person(ref.tenant_id, ref.user_key, enrich)
        return next((r for r in updated if r.surface == ref.surface), ref)

    async def _record_removed_members(self, turn: HostTurn, tenant_id: str, surface: str) -> None:
        """A user removed from a group chat or team: their record for that surface stops being active."""
        activity = turn.activity
        if activity.type != CONVERSATION_UPDATE or surface == Surface.TEAMS:
            return
        bot_id = activity.recipient.id if activity.recipient else None
        for member in activity.members_removed or []:
            if member.id == bot_id:
                continue
            user_key = (member.aad_object_id or member.id).lower()

            def removed(current: Reference | None) -> Reference | None:
                if current is None or current.conversation_id != activity.conversation.id:
                    return None
                current.status = ReferenceStatus.UNINSTALLED
                return current

            await self._store.references.update(tenant_id, user_key, surface, removed)
