"""Why a request about a person or a message cannot be done, in words a flow maker understands."""

from __future__ import annotations


class Rejected(Exception):
    """A request the service refuses; ``code`` is one of the API's error codes (DESIGN.md section 6)."""

    def __init__(self, code: str, message: str, target: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.target = target
        self.retry_after = retry_after


def not_found(recipient: str) -> Rejected:
    return Rejected(
        "RecipientNotFound",
        f"The bot has never talked with '{recipient}'. They need to install or open the bot in Teams once"
        " before it can message them.",
        "recipient",
    )


def opted_out(recipient: str) -> Rejected:
    return Rejected(
        "RecipientOptedOut",
        f"'{recipient}' turned notifications off by typing 'stop' in the bot's chat. They can type 'start'"
        " to turn them back on.",
        "recipient",
    )


UNREACHABLE_REASONS = {
    "uninstalled": "the bot is no longer installed for them in Teams (they or an admin removed it)."
    " It works again once the app is installed again.",
    "blocked": "they blocked the bot in Teams. It works again once they unblock the chat.",
    "notFound": "Teams no longer has the chat with them (the account or chat was removed).",
    "expired": "the bot has not heard from them for longer than the configured retention.",
}


def unreachable(recipient: str, status: str) -> Rejected:
    reason = UNREACHABLE_REASONS.get(status, f"their chat with the bot is {status}.")
    return Rejected("RecipientUnreachable", f"Cannot message '{recipient}': {reason}", "recipient")
