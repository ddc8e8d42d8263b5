"""Reading an activity of either SDK (botbuilder's msrest models, the Agents SDK's pydantic ones) the same way.

Both SDKs name the fields alike in Python (``from_property``, ``channel_data``, ``conversation.tenant_id``);
the differences are small and kept here: entity extras (``additional_properties`` vs pydantic extras),
``channel_data`` that may be a model, and the Agents SDK's ``ChannelId`` (a ``str`` subclass).
"""

from __future__ import annotations

import re
from typing import Any

from teams_proactive.bot.model import ReferenceStatus

INSTALLATION_UPDATE = "installationUpdate"
CONVERSATION_UPDATE = "conversationUpdate"
MESSAGE = "message"
INVOKE = "invoke"
EVENT = "event"
CARD_ACTION_INVOKE = "adaptiveCard/action"

INSTALL_ACTIONS = {"add", "add-upgrade"}
UNINSTALL_ACTIONS = {"remove", "remove-upgrade"}
# conversationUpdate event types that take a team's conversations away or give them back.
# Compared without case: Microsoft's "Conversation events" page writes "teamRestored" in its table
# and "teamrestored" in its JSON example.
TEAM_GONE_EVENTS = {"teamdeleted", "teamarchived", "teamharddeleted"}
TEAM_BACK_EVENTS = {"teamunarchived", "teamrestored"}

_MENTION = re.compile(r"<at>[^<]*</at>", re.IGNORECASE)


def as_dict(value: Any) -> dict[str, Any]:
    """A JSON object as a dict, whichever SDK model holds it (None for anything else: {})."""
    if isinstance(value, dict):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        dumped = dump(by_alias=True, exclude_none=True)
        return dumped if isinstance(dumped, dict) else {}
    serialize = getattr(value, "serialize", None)
    if callable(serialize):
        serialized = serialize()
        return serialized if isinstance(serialized, dict) else {}
    return {}


def channel_data_of(activity: Any) -> dict[str, Any]:
    return as_dict(activity.channel_data)


def channel_of(activity: Any) -> str | None:
    """The channel id as a plain string (the Agents SDK's ChannelId may carry a sub-channel)."""
    channel = activity.channel_id
    if channel is None:
        return None
    main = getattr(channel, "channel", None)
    return str(main if isinstance(main, str) and main else channel)


def entity_value(entity: Any, key: str) -> Any:
    """A property of an entity: botbuilder keeps unknown ones in ``additional_properties``, the
    Agents SDK as pydantic extras; a plain dict holds them itself."""
    if isinstance(entity, dict):
        return entity.get(key)
    extra = getattr(entity, "additional_properties", None) or getattr(entity, "model_extra", None) or {}
    if isinstance(extra, dict) and key in extra:
        return extra[key]
    return getattr(entity, key, None)


def entity_type(entity: Any) -> str | None:
    return entity.get("type") if isinstance(entity, dict) else getattr(entity, "type", None)


def tenant_of(activity: Any) -> str | None:
    tenant = channel_data_of(activity).get("tenant") or {}
    return (
        (tenant.get("id") if isinstance(tenant, dict) else None)
        or (activity.conversation.tenant_id if activity.conversation else None)
        or None
    )


def _client_info(activity: Any, key: str) -> str | None:
    for entity in activity.entities or []:
        if entity_type(entity) == "clientInfo":
            value = entity_value(entity, key)
            if value:
                return str(value)
    return None


def timezone_of(activity: Any) -> str | None:
    return activity.local_timezone or _client_info(activity, "timezone")


def locale_of(activity: Any) -> str | None:
    return activity.locale or _client_info(activity, "locale")


def text_without_mentions(activity: Any) -> str:
    """The text the person typed, without the ``<at>Bot</at>`` of a mention."""
    text = activity.text or ""
    return _MENTION.sub("", text) if "<at>" in text.lower() else text


def lifecycle_status(activity: Any) -> str:
    """The status this activity leaves the sender's reference in (any activity revives it)."""
    if activity.type == INSTALLATION_UPDATE and (activity.action or "") in UNINSTALL_ACTIONS:
        return ReferenceStatus.UNINSTALLED
    if activity.type == CONVERSATION_UPDATE:
        bot_id = activity.recipient.id if activity.recipient else None
        if any(m.id == bot_id for m in activity.members_removed or []):
            return ReferenceStatus.UNINSTALLED
        if str(channel_data_of(activity).get("eventType") or "").lower() in TEAM_GONE_EVENTS:
            return ReferenceStatus.UNINSTALLED
    return ReferenceStatus.ACTIVE


def is_uninstall(activity: Any) -> bool:
    return lifecycle_status(activity) == ReferenceStatus.UNINSTALLED


def conversation_reference(activity: Any, tenant_id: str) -> dict[str, Any]:
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
        "channelId": channel_of(activity),
        "locale": activity.locale,
        "serviceUrl": activity.service_url,
    }
    return without_none(doc)


def without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_none(v) for k, v in value.items() if v is not None}
    return value
