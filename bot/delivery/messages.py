"""The Teams activity a delivery becomes, and the size rule Teams enforces on it."""

from __future__ import annotations

import json
from typing import Any

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
# Teams refuses a message whose activity is larger than about 28 KB.
MAX_ACTIVITY_BYTES = 28 * 1024
# Room for the envelope (ids, service fields) Teams adds to what we send.
ENVELOPE_BYTES = 1024


def build_activity(
    content: dict[str, Any],
    *,
    bot_id: str | None = None,
    user_id: str | None = None,
    conversation_id: str | None = None,
    tenant_id: str | None = None,
) -> dict[str, Any]:
    """A message activity carrying text (markdown) and/or an Adaptive Card."""
    activity: dict[str, Any] = {"type": "message"}
    if content.get("text"):
        activity["text"] = content["text"]
        activity["textFormat"] = "markdown"
    if content.get("summary"):
        activity["summary"] = content["summary"]
    if content.get("card") is not None:
        activity["attachments"] = [{"contentType": ADAPTIVE_CARD, "content": content["card"]}]
    # Proactive messages should raise a notification in the person's activity feed.
    channel_data: dict[str, Any] = {"notification": {"alert": True}}
    if tenant_id:
        channel_data["tenant"] = {"id": tenant_id}
    activity["channelData"] = channel_data
    if bot_id:
        activity["from"] = {"id": bot_id}
    if user_id:
        activity["recipient"] = {"id": user_id}
    if conversation_id:
        activity["conversation"] = {"id": conversation_id}
    return activity


def activity_size(content: dict[str, Any]) -> int:
    """Bytes the message will take on the wire, envelope included."""
    return len(json.dumps(build_activity(content), ensure_ascii=False).encode("utf-8")) + ENVELOPE_BYTES


def too_large(content: dict[str, Any]) -> bool:
    return activity_size(content) > MAX_ACTIVITY_BYTES
