"""Which surface an activity came from (DESIGN.md section 7): Teams chat, Copilot in Teams, M365 Copilot."""

from __future__ import annotations

from typing import Any

from teams_proactive.bot.model import Surface

TEAMS_CHANNEL = "msteams"
M365_CHANNEL = "m365extensions"


def classify(channel_id: str | None, conversation_type: str | None, channel_data: Any) -> Surface | None:
    """The surface of an activity, or None for a channel this product does not track."""
    channel = (channel_id or "").lower()
    if channel == M365_CHANNEL:
        return Surface.M365_COPILOT
    if channel != TEAMS_CHANNEL:
        # Other channels (webchat, emulator, directline) are treated as the chat surface so the
        # product is usable from local tools; they never mix with a real Teams record.
        return Surface.TEAMS if conversation_type in (None, "personal") else None
    kind = (conversation_type or "personal").lower()
    if kind == "groupchat":
        return Surface.GROUP
    if kind == "channel":
        return Surface.CHANNEL
    product = channel_data.get("productContext") if isinstance(channel_data, dict) else None
    if isinstance(product, str) and product.upper() == "COPILOT":
        return Surface.TEAMS_COPILOT
    return Surface.TEAMS


def is_proactive_target(surface: str) -> bool:
    """Only the personal Teams chat (and, when asked for, Copilot in Teams) accepts proactive sends."""
    return surface in (Surface.TEAMS, Surface.TEAMS_COPILOT)
