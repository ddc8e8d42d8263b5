"""Teams' activities as the Bot Connector posts them to /api/messages, built from Microsoft's documented examples.

Each builder starts from a fixture in tests/fixtures/teams/activities (which names its Microsoft
Learn page) and puts in the test person's ids, the test's service URL and the current time.
"""

from __future__ import annotations

import datetime as dt
import html
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


def _documented(name: str, user: TeamsUser, service_url: str, **extra: Any) -> dict[str, Any]:
    """Microsoft's documented activity (tests/fixtures/teams/activities) from ``user``, sent now.

    Only what makes each activity this person's and this moment's changes: ids, tenant, service URL,
    timestamp, and the person's own locale and time zone (clientInfo, as Teams sends them)."""
    from tests.fixtures import teams as documented  # here, not at the top: the fixtures import this module

    activity = documented.activity(name, user, service_url)
    activity["id"] = f"f:{next(_ids)}"
    activity["timestamp"] = dt.datetime.now(dt.UTC).isoformat()
    activity.pop("localTimestamp", None)
    activity["recipient"] = {"id": BOT_ID, "name": "Notifications"}
    activity["locale"] = "en-US"
    client_info: dict[str, Any] = {"type": "clientInfo", "locale": "en-US"}
    activity.pop("localTimezone", None)
    if user.timezone:
        activity["localTimezone"] = user.timezone
        client_info["timezone"] = user.timezone
    activity["entities"] = [client_info]
    activity.update(extra)
    return activity


def install(user: TeamsUser, service_url: str) -> dict[str, Any]:
    return _documented("installation-add-personal", user, service_url)


def uninstall(user: TeamsUser, service_url: str) -> dict[str, Any]:
    return _documented("installation-remove-personal", user, service_url)


def message(user: TeamsUser, service_url: str, text: str) -> dict[str, Any]:
    # Teams sends the text twice: plain in ``text`` and as HTML in a text/html attachment.
    html_copy = [{"contentType": "text/html", "content": f"<p>{html.escape(text)}</p>"}]
    return _documented("message-personal", user, service_url, text=text, attachments=html_copy)


def card_submit(user: TeamsUser, service_url: str, value: dict[str, Any]) -> dict[str, Any]:
    return _documented("message-card-submit", user, service_url, value=value, replyToId="act-1")


def teams_copilot_message(user: TeamsUser, service_url: str, text: str) -> dict[str, Any]:
    html_copy = [{"contentType": "text/html", "content": f"<p>{html.escape(text)}</p>"}]
    return _documented("message-copilot-in-teams", user, service_url, text=text, attachments=html_copy)


def m365_copilot_message(user: TeamsUser, service_url: str, text: str) -> dict[str, Any]:
    activity = message(user, service_url, text)
    activity["channelId"] = "m365extensions"
    activity["conversation"] = {
        "id": user.m365_conversation_id,
        "conversationType": "personal",
        "tenantId": user.tenant_id,
    }
    return activity
