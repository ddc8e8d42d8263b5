"""Reference capture as a botbuilder Middleware: every activity refreshes the person's reference.

It is separate from the turn logic so that an organisation's existing bot or custom engine agent can
add it (``adapter.use(ReferenceCaptureMiddleware(store))``), share the store, and let the connector
send as that bot.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from botbuilder.core import Middleware, TurnContext
from botbuilder.core.teams import TeamsInfo
from botbuilder.schema import Activity, ActivityTypes
from teams_proactive.bot.model import Reference, ReferenceStatus, Surface, now
from teams_proactive.bot.store.base import ConcurrencyConflict, Store
from teams_proactive.bot.surfaces import TEAMS_CHANNEL, classify

log = logging.getLogger(__name__)

INSTALL_ACTIONS = {"add", "add-upgrade"}
UNINSTALL_ACTIONS = {"remove", "remove-upgrade"}
# conversationUpdate event types that take a team's conversations away or give them back.
# Compared without case: Microsoft's "Conversation events" page writes "teamRestored" in its table
# and "teamrestored" in its JSON example.
TEAM_GONE_EVENTS = {"teamdeleted", "teamarchived", "teamharddeleted"}
TEAM_BACK_EVENTS = {"teamunarchived", "teamrestored"}

# Where turn logic finds the captured reference: ``turn_context.turn_state[CAPTURED_REFERENCE]``.
CAPTURED_REFERENCE = "teams_proactive.reference"


def tenant_of(activity: Activity) -> str | None:
    channel_data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    tenant = channel_data.get("tenant") or {}
    return (
        (tenant.get("id") if isinstance(tenant, dict) else None)
        or (activity.conversation.tenant_id if activity.conversation else None)
        or None
    )


def timezone_of(activity: Activity) -> str | None:
    if activity.local_timezone:
        return activity.local_timezone
    for entity in activity.entities or []:
        props = entity.additional_properties if hasattr(entity, "additional_properties") else {}
        if getattr(entity, "type", None) == "clientInfo" and isinstance(props, dict) and props.get("timezone"):
            return str(props["timezone"])
    return None


def locale_of(activity: Activity) -> str | None:
    if activity.locale:
        return activity.locale
    for entity in activity.entities or []:
        props = entity.additional_properties if hasattr(entity, "additional_properties") else {}
        if getattr(entity, "type", None) == "clientInfo" and isinstance(props, dict) and props.get("locale"):
            return str(props["locale"])
    return None


def lifecycle_status(activity: Activity) -> str:
    """The status this activity leaves the sender's reference in (any activity revives it)."""
    if activity.type == ActivityTypes.installation_update and (activity.action or "") in UNINSTALL_ACTIONS:
        return ReferenceStatus.UNINSTALLED
    if activity.type == ActivityTypes.conversation_update:
        bot_id = activity.recipient.id if activity.recipient else None
        if any(m.id == bot_id for m in activity.members_removed or []):
            return ReferenceStatus.UNINSTALLED
        channel_data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
        if str(channel_data.get("eventType") or "").lower() in TEAM_GONE_EVENTS:
            return ReferenceStatus.UNINSTALLED
    return ReferenceStatus.ACTIVE


def _conversation_reference(activity: Activity, tenant_id: str) -> dict[str, Any]:
    """The conversation reference as Bot Framework serialises it, built directly (msrest's
    serializer costs more CPU than the rest of the capture)."""
    user, bot, conversation = activity.from_property, activity.recipient, activity.conversation
    doc: dict[str, Any] = {
        "activityId": activity.id,
        "user": {"id": user.id, "name": user.name, "aadObjectId": user.aad_object_id} if user else None,
        "bot": {"id": bot.id, "name": bot.name} if bot else None,
        "conversation": {
            "id": conversation.id,
            "conversationType": conversation.conversation_type,
            "isGroup": conversation.is_group,
            "tenantId": tenant_id,
        },
        "channelId": activity.channel_id,
        "locale": activity.locale,
        "serviceUrl": activity.service_url,
    }
    return _without_none(doc)


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value


def is_uninstall(activity: Activity) -> bool:
    return lifecycle_status(activity) == ReferenceStatus.UNINSTALLED


class ReferenceCaptureMiddleware(Middleware):
    """Upserts the (tenant, user, surface) reference for every activity, then runs the turn."""

    def __init__(
        self, store: Store, *, delete_on_uninstall: bool = False, on_forget: Any = None, budget: Any = None
    ) -> None:
        self._store = store
        self._delete_on_uninstall = delete_on_uninstall
        # Called as ``await on_forget(tenant_id, user_key)`` to erase a person's data on uninstall.
        self._on_forget = on_forget
        # A TeamsBudget (bot.delivery.budget): the member lookup spends from the tenant's budget too.
        self._budget = budget

    async def on_turn(self, context: TurnContext, logic: Callable[[], Awaitable[None]]) -> None:
        try:
            await self._capture(context)
        except Exception:  # capture must never stop the bot from answering the user
            log.exception("reference capture failed for a %s activity", context.activity.type)
        await logic()

    async def _capture(self, context: TurnContext) -> None:
        activity = context.activity
        user = activity.from_property
        if activity.conversation is None or user is None or not user.id or not activity.service_url:
            return
        # Activities the bot sees about other members (a user removed from a team) concern them,
        # not the sender; the sender is still recorded as seen.
        tenant_id = tenant_of(activity)
        channel_data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
        surface = classify(activity.channel_id, activity.conversation.conversation_type, channel_data)
        if not tenant_id or surface is None:
            return
        await self._record_removed_members(context, tenant_id, surface)
        user_key = (user.aad_object_id or user.id).lower()
        status = lifecycle_status(activity)
        if status == ReferenceStatus.UNINSTALLED and self._delete_on_uninstall and surface == Surface.TEAMS:
            if self._on_forget is not None:
                await self._on_forget(tenant_id, user_key)
            else:
                await self._store.references.delete_person(tenant_id, user_key)
            return

        seen = now()
        conversation_reference = _conversation_reference(activity, tenant_id)
        current = await self._store.references.get(tenant_id, user_key, surface)
        known_upn = known_email = known_tz = None
        if current is None or not (current.upn and current.email and current.timezone):
            # Only a new or incomplete record borrows what the person's other surfaces know.
            siblings = await self._store.references.of_person(tenant_id, user_key)
            known_upn = next((r.upn for r in siblings if r.upn), None)
            known_email = next((r.email for r in siblings if r.email), None)
            newest_first = sorted(siblings, key=lambda r: -r.last_seen)
            known_tz = next((r.timezone for r in newest_first if r.timezone), None)

        def refresh(current: Reference | None) -> Reference:
            ref = current or Reference(
                tenant_id=tenant_id,
                user_key=user_key,
                surface=surface,
                conversation_id=activity.conversation.id,
                service_url=activity.service_url,
                channel_id=activity.channel_id,
                user_id=user.id,
                bot_id=activity.recipient.id if activity.recipient else "",
                created_at=seen,
            )
            ref.conversation_id = activity.conversation.id
            ref.service_url = activity.service_url  # it can change: the newest wins
            ref.channel_id = activity.channel_id
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
            ref.conversation_reference = conversation_reference
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
            ref = await self._look_up_member(context, ref)
        context.turn_state[CAPTURED_REFERENCE] = ref

    async def _look_up_member(self, context: TurnContext, ref: Reference) -> Reference | None:
        """Ask Teams once for the member's UPN and email, then keep them on every record of the person."""
        if ref.channel_id != TEAMS_CHANNEL:
            return ref
        try:
            if self._budget is not None:
                await self._budget.spend(ref.tenant_id)
            member = await TeamsInfo.get_member(context, ref.user_id)
        except Exception as exc:  # the lookup is a nicety: the reference is already stored
            log.info("member lookup failed (%s); UPN stays unknown for now", type(exc).__name__)
            return ref
        upn = getattr(member, "user_principal_name", None)
        email = getattr(member, "email", None)
        aad = getattr(member, "aad_object_id", None)

        def enrich(current: Reference) -> Reference:
            current.upn = upn or current.upn
            current.email = email or current.email
            current.aad_object_id = current.aad_object_id or aad
            current.member_looked_up = True
            return current

        updated = await self._store.references.update_person(ref.tenant_id, ref.user_key, enrich)
        return next((r for r in updated if r.surface == ref.surface), ref)

    async def _record_removed_members(self, context: TurnContext, tenant_id: str, surface: str) -> None:
        """A user removed from a group chat or team: their record for that surface stops being active."""
        activity = context.activity
        if activity.type != ActivityTypes.conversation_update or surface == Surface.TEAMS:
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
