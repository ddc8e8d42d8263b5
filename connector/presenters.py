"""Records as the API shows them: camelCase fields, ISO 8601 UTC times, no internal bookkeeping."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from teams_proactive.bot import errors
from teams_proactive.bot.model import Delivery, Reference, ReferenceStatus
from teams_proactive.bot.recipients import Person


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def chat_url(bot_app_id: str | None, tenant_id: str | None) -> str | None:
    """Microsoft's deep link that opens a chat with the bot ("Deep link to start a new chat",
    learn.microsoft.com/microsoftteams/platform/concepts/build-and-test/deep-link-teams: users=28:<bot
    app id>): for the recipient, their chat with the bot. None in local mode (no app id)."""
    if not bot_app_id:
        return None
    query = {"users": f"28:{bot_app_id}", **({"tenantId": tenant_id} if tenant_id else {})}
    return "https://teams.microsoft.com/l/chat/0/0?" + urlencode(query, safe=":")


def delivery(d: Delivery, bot_app_id: str | None = None) -> dict[str, Any]:
    return {
        "id": d.id,
        "status": d.status,
        "recipient": d.recipient,
        "surface": d.surface,
        "conversationId": d.conversation_id,
        "teamsMessageId": d.message_id,
        "chatUrl": chat_url(bot_app_id, d.tenant_id) if d.message_id else None,
        "cardType": d.card_type,
        "attempts": d.attempts,
        "error": d.error,
        "createdAt": iso(d.created_at),
        "deliverAt": iso(d.deliver_at),
        "deliveredAt": iso(d.delivered_at),
        "broadcastId": d.broadcast_id,
        "readAt": iso(d.read_at),
        "recalledAt": iso(d.recalled_at),
        "reachedBy": d.reached_by,
        "installOutcome": d.install_outcome,
    }


def person(recipient: str, p: Person) -> dict[str, Any]:
    shown = p.display
    status = p.reachability()
    reason = None
    if p.opted_out:
        reason = errors.opted_out(recipient).message
    elif status != ReferenceStatus.ACTIVE:
        reason = errors.unreachable(recipient, status).message
    return {
        "recipient": recipient,
        "reachable": status == ReferenceStatus.ACTIVE and not p.opted_out,
        "status": status,
        "reason": reason,
        "optedOut": p.opted_out,
        "name": shown.name,
        "upn": shown.upn,
        "email": shown.email,
        "aadObjectId": shown.aad_object_id,
        "tenantId": shown.tenant_id,
        "timezone": p.timezone,
        "locale": shown.locale,
        "lastSeen": iso(max(r.last_seen for r in p.references)),
        "surfaces": [surface(r) for r in p.references],
    }


def surface(r: Reference) -> dict[str, Any]:
    return {"surface": r.surface, "status": r.status, "lastSeen": iso(r.last_seen)}
