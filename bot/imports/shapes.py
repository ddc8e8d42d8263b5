"""One ``ConversationReference`` JSON document, as any Bot Framework or Agents SDK writes it, read into one shape.

botbuilder (C#, JavaScript, Python ``serialize()``) and the Agents SDK (``model_dump(by_alias=True)``)
write camelCase; Python's ``as_dict()``/``model_dump()`` write snake_case; System.Text.Json
PascalCase. Keys are therefore compared without case and underscores. The bot is ``bot`` (Bot
Framework) or ``agent`` (Agents SDK); the tenant is ``conversation.tenantId``, or ``channelData.tenant.id``
when the writer kept it, or the importer's default. ``user.aadObjectId`` is used when present.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass
from typing import Any

from teams_proactive.bot import text
from teams_proactive.bot.model import Surface
from teams_proactive.bot.service_urls import untrusted_service_url
from teams_proactive.bot.surfaces import TEAMS_CHANNEL, classify

MAX_CLOCK_SKEW_SECONDS = 86_400  # a writer's clock may run ahead by a day, not more
MAX_ID = 1024  # longer than any id Teams gives (chat ids are about 130 characters)


class Skip(Exception):
    """An item that is not imported: ``reason`` is the report's code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class ParsedReference:
    tenant_id: str
    user_key: str
    surface: str
    conversation_id: str
    conversation_type: str | None
    service_url: str
    channel_id: str
    user_id: str
    aad_object_id: str | None
    name: str | None
    bot_id: str
    bot_name: str | None
    locale: str | None
    seen_at: float | None  # the document's own time, when it carries one
    document: dict[str, Any]  # the reference as Bot Framework serialises it (camelCase)


def _folded(value: Any) -> Any:
    """A JSON object whose keys are lower case without underscores, nested objects too."""
    if isinstance(value, dict):
        return {str(k).replace("_", "").lower(): _folded(v) for k, v in value.items()}
    return value


def _text(obj: dict[str, Any], key: str, *, required: str | None = None) -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise Skip("Invalid", f"The reference has no {required}.")
        return None
    if not isinstance(value, str):
        raise Skip("Invalid", f"{required or key} must be a string.")
    why = text.problem(value)  # a lone surrogate or NUL: the store could not read it back
    if why:
        raise Skip("Invalid", f"{required or key} {why}.")
    if len(value) > MAX_ID:
        raise Skip("Invalid", f"{required or key} is too long.")
    return value


def _timestamp(doc: dict[str, Any]) -> float | None:
    """A time the writer put beside the reference (several bots keep one), as epoch seconds."""
    for key in ("lastseen", "lastinteraction", "updatedat", "timestamp"):
        value = doc.get(key)
        seconds: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value) / (1000.0 if value > 1e11 else 1.0)  # milliseconds or seconds
        elif isinstance(value, str) and value:
            try:
                parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            seconds = (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).timestamp()
        # NaN and Infinity (Python's json reads them) and times in the future are not times a writer
        # saw the person: a far-future one would win over every newer activity for ever.
        if seconds is not None and math.isfinite(seconds) and 0 < seconds <= time.time() + MAX_CLOCK_SKEW_SECONDS:
            return seconds
    return None


def parse_reference(raw: Any, *, default_tenant: str | None = None, local_mode: bool = False) -> ParsedReference:
    """The reference in ``raw``, or ``Skip`` with the reason it cannot be imported."""
    if not isinstance(raw, dict):
        raise Skip("Invalid", "A reference must be a JSON object.")
    doc = _folded(raw)
    # Some bots store {"reference": {...}, "lastSeen": ...}: the reference inside, the time beside it.
    inner = doc.get("reference") or doc.get("conversationreference")
    reference = inner if isinstance(inner, dict) else doc
    conversation = reference.get("conversation")
    user = reference.get("user")
    bot = reference.get("bot") or reference.get("agent") or {}
    if not isinstance(conversation, dict) or not isinstance(user, dict) or not isinstance(bot, dict):
        raise Skip("Invalid", "A reference needs conversation and user objects.")
    conversation_id = _text(conversation, "id", required="conversation.id") or ""
    user_id = _text(user, "id", required="user.id") or ""
    service_url = _text(reference, "serviceurl")
    if not service_url:
        raise Skip("MissingServiceUrl", "The reference has no serviceUrl: it cannot be sent to.")
    untrusted = untrusted_service_url(service_url, local_mode=local_mode)
    if untrusted:
        raise Skip("UntrustedServiceUrl", untrusted)
    channel_id = (_text(reference, "channelid") or TEAMS_CHANNEL).lower()
    # The Agents SDK writes a sub-channel after a colon ("msteams:COPILOT").
    channel_id, _, sub_channel = channel_id.partition(":")
    conversation_type = _text(conversation, "conversationtype")
    is_group = conversation.get("isgroup") is True
    channel_data = reference.get("channeldata") if isinstance(reference.get("channeldata"), dict) else {}
    tenant = channel_data.get("tenant") if isinstance(channel_data.get("tenant"), dict) else {}
    tenant_id = _text(conversation, "tenantid") or _text(tenant, "id") or default_tenant
    if not tenant_id:
        raise Skip("MissingTenant", "The reference names no tenant (conversation.tenantId); give one with --tenant.")
    if is_group or (conversation_type or "personal").lower() != "personal":
        raise Skip("NotPersonal", "Only personal chats are imported (this one is a group chat or a channel).")
    # Channel data names Copilot in Teams ("productContext"); the folded keys are read back as Teams writes them.
    product = channel_data.get("productcontext") or (sub_channel.upper() if sub_channel else None)
    surface = classify(channel_id, conversation_type, {"productContext": product} if product else {})
    if surface is None or surface not in (Surface.TEAMS, Surface.TEAMS_COPILOT, Surface.M365_COPILOT):
        raise Skip("NotPersonal", "Only personal chats are imported.")
    aad = _text(user, "aadobjectid")
    name = _text(user, "name")
    bot_id = _text(bot, "id") or ""
    bot_name = _text(bot, "name")
    locale = _text(reference, "locale")
    document: dict[str, Any] = {
        "activityId": _text(reference, "activityid"),
        "user": {"id": user_id, "name": name, "aadObjectId": aad},
        "bot": {"id": bot_id, "name": bot_name},
        "conversation": {
            "id": conversation_id,
            "conversationType": conversation_type or "personal",
            "isGroup": False,
            "tenantId": tenant_id,
        },
        "channelId": channel_id,
        "locale": locale,
        "serviceUrl": service_url,
    }
    return ParsedReference(
        tenant_id=tenant_id,
        user_key=(aad or user_id).lower(),
        surface=str(surface),
        conversation_id=conversation_id,
        conversation_type=conversation_type or "personal",
        service_url=service_url,
        channel_id=channel_id,
        user_id=user_id,
        aad_object_id=aad,
        name=name,
        bot_id=bot_id,
        bot_name=bot_name,
        locale=locale,
        seen_at=_timestamp(doc),
        document=_without_none(document),
    )


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value
