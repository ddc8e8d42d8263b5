"""What a failed send means: retry later, or give up and change the person's reference status."""

from __future__ import annotations

import random
from dataclasses import dataclass

from teams_proactive.bot.model import Delivery, Reference, ReferenceStatus
from teams_proactive.bot.outbound import ConnectorError
from teams_proactive.bot.store.base import Store

RETRYABLE_STATUSES = frozenset({0, 412, 429, 502, 503, 504})  # 0: timeout or network error

# Documented Bot Connector error codes and what they say about the person's chat (DESIGN.md sections 7
# and 8). Sources: Teams "Status codes from bot conversational APIs" (BotDisabledByAdmin,
# BotNotInConversationRoster, ConversationBlockedByUser, ForbiddenOperationException,
# ConversationNotFound) and "Send proactive messages" (403 subCode MessageWritesBlocked: "blocked or
# uninstalled"; read as blocked, the person's own doing). The fixtures under tests/fixtures/teams
# hold each documented body.
REFERENCE_STATUS_BY_CODE = {
    "MessageWritesBlocked": ReferenceStatus.BLOCKED,
    "ConversationBlockedByUser": ReferenceStatus.BLOCKED,
    # The tenant admin disabled the bot: "stop posting until the user interacts again", as for a block.
    "BotDisabledByAdmin": ReferenceStatus.BLOCKED,
    "BotNotInConversationRoster": ReferenceStatus.UNINSTALLED,
    "ForbiddenOperationException": ReferenceStatus.UNINSTALLED,
    "ConversationNotFound": ReferenceStatus.NOT_FOUND,
}

MAKER_MESSAGES = {
    "MessageWritesBlocked": "Teams refused the message: the person blocked (or removed) the bot's chat.",
    "ConversationBlockedByUser": "Teams refused the message: the person blocked the bot's chat.",
    "BotDisabledByAdmin": "Teams refused the message: the tenant's admin disabled this bot for the person.",
    "BotNotInConversationRoster": "Teams refused the message: the bot is not installed for this person any more.",
    "ForbiddenOperationException": "Teams refused the message: the bot is not installed in the person's personal scope.",
    "ConversationNotFound": "Teams no longer has this chat (the person or the chat was removed).",
}

# Documented refusals that say nothing about the person: our error code and the maker's message.
OTHER_REFUSALS = {
    "InvalidBotApiHost": (
        "WrongCloud",
        "Teams says this tenant lives in a government cloud (GCC): set TEAMS_CLOUD to the tenant's cloud.",
    ),
    "NotEnoughPermissions": ("Forbidden", "Teams refused: the bot lacks a permission this call needs"),
    "ActivityNotFoundInConversation": ("MessageNotFound", "Teams no longer has this message in the chat."),
    "MessageSizeTooBig": (
        "MessageTooLarge",
        "Teams refused the message as too large (about 100 KB as Teams counts it, base64 images"
        " excluded): shorten the text or the card.",
    ),
    "BotNotRegistered": ("BotUnauthorized", "Teams has no registration for this bot: check MicrosoftAppId."),
}


@dataclass(frozen=True, slots=True)
class Verdict:
    retry: bool
    error_code: str  # our API error code for the delivery report
    message: str
    reference_status: str | None = None
    teams_code: str | None = None  # Teams' own code, verbatim, for the report

    def error(self) -> dict[str, str]:
        """The delivery's ``error`` object."""
        body = {"code": self.error_code, "message": self.message}
        if self.teams_code:
            body["teamsCode"] = self.teams_code
        return body


def judge(error: ConnectorError) -> Verdict:
    """Classify a Bot Connector failure (DESIGN.md section 8); an unknown code is reported verbatim."""
    code = error.code
    teams_code = code if error.status else None
    detail = f": {error.message}" if error.message else ""
    if error.status in RETRYABLE_STATUSES:
        what = "did not answer in time" if error.status == 0 else f"answered {error.status} ({code})"
        return Verdict(True, "TeamsUnavailable", f"Teams {what}; the message will be retried.", None, teams_code)
    status = REFERENCE_STATUS_BY_CODE.get(code)
    if status is not None and error.status in (403, 404):
        return Verdict(False, "RecipientUnreachable", MAKER_MESSAGES[code], status, teams_code)
    if code in OTHER_REFUSALS:
        ours, message = OTHER_REFUSALS[code]
        if not message.endswith("."):  # a scenario-specific refusal: Teams' own words say which
            message = f"{message}{detail}."
        return Verdict(False, ours, message, None, teams_code)
    if error.status == 404:
        # A 404 with a code Microsoft does not document: the chat is gone all the same.
        return Verdict(
            False,
            "RecipientUnreachable",
            f"Teams no longer has this chat (404 {code}{detail}).",
            ReferenceStatus.NOT_FOUND,
            teams_code,
        )
    if error.status == 403:
        return Verdict(False, "Forbidden", f"Teams refused the message (403 {code}{detail}).", None, teams_code)
    if error.status == 413:
        ours, message = OTHER_REFUSALS["MessageSizeTooBig"]
        return Verdict(False, ours, message, None, teams_code)
    if error.status == 401:
        return Verdict(
            False,
            "BotUnauthorized",
            "Teams refused the bot's credentials: check MicrosoftAppId and its secret.",
            None,
            teams_code,
        )
    if error.status == 400:
        return Verdict(
            False, "InvalidMessage", f"Teams refused the message as invalid (400 {code}{detail}).", None, teams_code
        )
    return Verdict(False, "TeamsError", f"Teams answered {error.status} ({code}{detail}).", None, teams_code)


def backoff_seconds(attempt: int, retry_after: float | None, *, base: float = 1.0, cap: float = 300.0) -> float:
    """Exponential backoff with full jitter, never sooner than Teams' Retry-After."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    delay = random.uniform(ceiling / 2, ceiling)
    return max(delay, retry_after or 0.0)


async def mark_reference(store: Store, delivery: Delivery, verdict: Verdict) -> None:
    """Teams' refusal says the person's chat is blocked, gone or uninstalled: record it on their reference
    (for a send, an update, a delete or a recall alike: DESIGN.md section 7)."""
    if verdict.reference_status is None:
        return

    def mark(current: Reference | None) -> Reference | None:
        if current is None:
            return None
        current.status = verdict.reference_status or current.status
        current.failures += 1
        current.last_error = verdict.message
        return current

    await store.references.update(delivery.tenant_id, delivery.user_key, delivery.surface, mark)
