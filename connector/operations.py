"""Every operation of the API: its operationId and where the flow designer shows it (DESIGN.md section 6).

Read by the OpenAPI post-processor (connector.openapi) to name the operations in the definition, and by
the scope check (connector.auth) to name the refused operation in the maker's words.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Operation:
    operation_id: str
    visibility: str  # important | advanced | internal
    trigger_hint: str | None = None


# Every operation's name and designer visibility (DESIGN.md section 6 names the operationIds).
OPERATIONS: dict[tuple[str, str], Operation] = {
    ("/api/v1/messages", "post"): Operation("SendMessage", "important"),
    ("/api/v1/messages/{message_id}", "get"): Operation("GetMessage", "advanced"),
    ("/api/v1/messages/{message_id}", "put"): Operation("UpdateMessage", "advanced"),
    ("/api/v1/messages/{message_id}", "delete"): Operation("DeleteMessage", "advanced"),
    # Status links (DESIGN.md section 6): where a 202's Location points; never shown to makers.
    ("/api/v1/messages/{message_id}/status", "get"): Operation("GetMessageStatus", "internal"),
    ("/api/v1/broadcasts/{broadcast_id}/status", "get"): Operation("GetBroadcastStatus", "internal"),
    ("/api/v1/cards/wait", "post"): Operation("SendCardAndWait", "important"),
    ("/api/v1/cards/wait/{card_id}", "get"): Operation("GetCardResponse", "advanced"),
    # The webhook action's unsubscribe: Power Automate deletes the Location when the run is cancelled.
    ("/api/v1/cards/wait/{card_id}", "delete"): Operation("CancelCardWait", "internal"),
    ("/api/v1/cards/answer-schema", "post"): Operation("GetCardAnswerSchema", "internal"),
    ("/api/v1/people", "get"): Operation("ListReachablePeople", "internal"),
    ("/api/v1/recipients/{recipient}", "get"): Operation("GetRecipient", "important"),
    ("/api/v1/recipients", "get"): Operation("ListRecipients", "advanced"),
    ("/api/v1/recipients/{recipient}", "delete"): Operation("ForgetRecipient", "advanced"),
    ("/api/v1/broadcasts", "post"): Operation("StartBroadcast", "important"),
    ("/api/v1/broadcasts/{broadcast_id}", "get"): Operation("GetBroadcast", "advanced"),
    ("/api/v1/broadcasts/{broadcast_id}", "put"): Operation("UpdateBroadcast", "advanced"),
    ("/api/v1/broadcasts/{broadcast_id}", "delete"): Operation("RecallBroadcast", "advanced"),
    ("/api/v1/broadcasts/{broadcast_id}/recipients", "get"): Operation("ListBroadcastRecipients", "advanced"),
    ("/api/v1/subscriptions", "post"): Operation(
        "Subscribe", "advanced", "Send the bot a message, answer a card, or install the app in Teams."
    ),
    ("/api/v1/subscriptions/user-messages", "post"): Operation(
        "OnUserMessage", "important", "Send the bot a message in its Teams chat."
    ),
    ("/api/v1/subscriptions/card-submissions", "post"): Operation(
        "OnCardSubmitted", "important", "Press a submit button on a card the bot sent."
    ),
    ("/api/v1/subscriptions/installations", "post"): Operation(
        "OnInstallationChanged", "important", "Install or remove the bot's app in Teams."
    ),
    ("/api/v1/subscriptions/delivery-failures", "post"): Operation(
        "OnDeliveryFailed", "advanced", "Send a message to a person who blocked or removed the bot."
    ),
    ("/api/v1/subscriptions/message-reads", "post"): Operation(
        "OnMessageRead", "advanced", "Open the bot's chat in Teams and read a message it sent."
    ),
    ("/api/v1/subscriptions/{subscription_id}", "delete"): Operation("Unsubscribe", "internal"),
    # For administrators and other bots (docs/existing-bot.md), never in a maker's action list.
    ("/api/v1/references", "post"): Operation("ImportReferences", "internal"),
}
