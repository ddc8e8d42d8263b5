"""Teams-shaped activities, as the Bot Connector posts them to /api/messages."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any

_ids = itertools.count(1)

BOT_ID = "28:00000000-0000-0000-0000-00000000b07"


@dataclass
class TeamsUser:
    name: str
    upn: str
    tenant_id: str = "tenant-contoso"
    aad_object_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    user_id: str = field(default_factory=lambda: f"29:{uuid.uuid4().hex}")
    conversation_id: str = field(default_factory=lambda: f"a:{uuid.uuid4().hex}")
    copilot_conversation_id: str = field(default_factory=lambda: f"a:copilot-{uuid.uuid4().hex}")
    m365_conversation_id: str = field(default_factory=lambda: f"m365:{uuid.uuid4().hex}")
    timezone: str | None = "Europe/Amsterdam"

    @property
    def email(self) -> str:
        return self.upn


def _base(user: TeamsUser, service_url: str, kind: str, **extra: Any) -> dict[str, Any]:
    activity: dict[str, Any] = {
        "type": kind,
        "id": f"f:{next(_ids)}",
        "timestamp": dt.datetime.now(dt.UTC).isoformat(),
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": {"id": user.user_id, "name": user.name, "aadObjectId": user.aad_object_id},
        "conversation": {"id": user.conversation_id, "conversationType": "personal", "tenantId": user.tenant_id},
        "recipient": {"id": BOT_ID, "name": "Notifications"},
        "channelData": {"tenant": {"id": user.tenant_id}},
        "locale": "en-US",
    }
    if user.timezone:
        activity["localTimezone"] = user.timezone
        activity["entities"] = [{"type": "clientInfo", "locale": "en-US", "timezone": user.timezone}]
    activity.update(extra)
    return activity


def install(user: TeamsUser, service_url: str) -> dict[str, Any]:
    return _base(user, service_url, "installationUpdate", action="add")


def uninstall(user: TeamsUser, service_url: str) -> dict[str, Any]:
    return _base(user, service_url, "installationUpdate", action="remove")


def message(user: TeamsUser, service_url: str, text: str) -> dict[str, Any]:
    return _base(user, service_url, "message", text=text)


def card_submit(user: TeamsUser, service_url: str, value: dict[str, Any]) -> dict[str, Any]:
    return _base(user, service_url, "message", value=value, replyToId="act-1")


def teams_copilot_message(user: TeamsUser, service_url: str, text: str) -> dict[str, Any]:
    activity = message(user, service_url, text)
    activity["conversation"]["id"] = user.copilot_conversation_id
    activity["channelData"]["productContext"] = "COPILOT"
    return activity


def m365_copilot_message(user: TeamsUser, service_url: str, text: str) -> dict[str, Any]:
    activity = message(user, service_url, text)
    activity["channelId"] = "m365extensions"
    activity["conversation"] = {
        "id": user.m365_conversation_id,
        "conversationType": "personal",
        "tenantId": user.tenant_id,
    }
    return activity
