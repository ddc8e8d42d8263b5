"""The Teams activity a delivery becomes, and the size rule Teams enforces on it."""

from __future__ import annotations

import json
import re
from typing import Any

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
# Microsoft Learn, "Format your bot messages": the bot message size limit is 100 KB, counted over
# the whole payload encoded as UTF-16 and not counting Base64-encoded images; above it Teams answers
# 413 MessageSizeTooBig. We refuse above 80 KB by default (MAX_MESSAGE_KB), leaving room below it.
DEFAULT_MAX_MESSAGE_KB = 80
TEAMS_LIMIT_KB = 100
# Room for the envelope (ids, service URL, conversation) Teams adds to what we send, as UTF-16.
ENVELOPE_BYTES = 2048
# A base64 image inlined as a data URI (in a card's Image url or in HTML text): not counted.
_BASE64_IMAGE = re.compile(r"data:image/[A-Za-z0-9.+-]+;base64,[A-Za-z0-9+/=\s]*")


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
    """The message's size as Teams counts it: the activity as UTF-16 (2 bytes per ASCII character,
    4 per emoji), base64 images left out, plus the envelope Teams adds."""
    text = json.dumps(build_activity(content), ensure_ascii=False, separators=(",", ":"))
    if "base64," in text:
        text = _BASE64_IMAGE.sub("", text)
    return len(text.encode("utf-16-le")) + ENVELOPE_BYTES


def too_large(content: dict[str, Any], max_kb: float = DEFAULT_MAX_MESSAGE_KB) -> bool:
    return activity_size(content) > max_kb * 1024
