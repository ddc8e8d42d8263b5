"""What a failed send means: retry later, or give up and change the person's reference status."""

from __future__ import annotations

import random
from dataclasses import dataclass

from bot.model import ReferenceStatus
from bot.outbound import ConnectorError

RETRYABLE_STATUSES = frozenset({0, 412, 429, 502, 503, 504})  # 0: timeout or network error

# Documented Bot Connector error codes and what they say about the person's chat.
REFERENCE_STATUS_BY_CODE = {
    "ConversationBlockedByUser": ReferenceStatus.BLOCKED,
    "MessageWritesBlocked": ReferenceStatus.BLOCKED,
    "BotNotInConversationRoster": ReferenceStatus.UNINSTALLED,
    "ForbiddenOperationException": ReferenceStatus.UNINSTALLED,
    "ConversationNotFound": ReferenceStatus.NOT_FOUND,
}

MAKER_MESSAGES = {
    ReferenceStatus.BLOCKED: "Teams refused the message: the person blocked the bot's chat.",
    ReferenceStatus.UNINSTALLED: "Teams refused the message: the bot is not installed for this person any more.",
    ReferenceStatus.NOT_FOUND: "Teams no longer has this chat (the person or the chat was removed).",
}


@dataclass(frozen=True, slots=True)
class Verdict:
    retry: bool
    error_code: str  # our API error code for the delivery report
    message: str
    reference_status: str | None = None


def judge(error: ConnectorError) -> Verdict:
    """Classify a Bot Connector failure (DESIGN.md section 8)."""
    if error.status in RETRYABLE_STATUSES:
        what = "did not answer in time" if error.status == 0 else f"answered {error.status} ({error.code})"
        return Verdict(True, "TeamsUnavailable", f"Teams {what}; the message will be retried.")
    if error.status in (403, 404):
        status = REFERENCE_STATUS_BY_CODE.get(error.code)
        if status is None and error.status == 404:
            status = ReferenceStatus.NOT_FOUND
        if status is not None:
            return Verdict(False, "RecipientUnreachable", MAKER_MESSAGES[status], status)
        return Verdict(False, "Forbidden", f"Teams refused the message (403 {error.code}): {error.message}")
    if error.status == 413:
        return Verdict(False, "MessageTooLarge", "Teams refused the message as too large (about 28 KB at most).")
    if error.status == 401:
        return Verdict(
            False, "BotUnauthorized", "Teams refused the bot's credentials: check MicrosoftAppId and its secret."
        )
    if error.status == 400:
        return Verdict(False, "InvalidMessage", f"Teams refused the message as invalid: {error.message or error.code}")
    return Verdict(False, "TeamsError", f"Teams answered {error.status} ({error.code}): {error.message}")


def backoff_seconds(attempt: int, retry_after: float | None, *, base: float = 1.0, cap: float = 300.0) -> float:
    """Exponential backoff with full jitter, never sooner than Teams' Retry-After."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    delay = random.uniform(ceiling / 2, ceiling)
    return max(delay, retry_after or 0.0)
