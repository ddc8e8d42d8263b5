"""Every operation's name, designer visibility and trigger hint (DESIGN.md section 6), and the pass that applies them.

flask-smorest names nothing for Power Platform: this table gives each path and method its
``operationId`` and ``x-ms-visibility``, and the pass below adds the path parameters' labels, the
paging marker, the agent guidance, and the responses (``responses.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from teams_proactive.connector.agent_guidance import AGENT_GUIDANCE
from teams_proactive.connector.definition.responses import fix_responses
from teams_proactive.connector.definition.shape import OPERATION_ORDER, ordered


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

PATH_PARAMETER_TEXT = {
    "message_id": ("Message ID", "The ID returned by Send a message."),
    "card_id": ("Card ID", "The ID returned by Send a card and wait for a response."),
    "broadcast_id": ("Broadcast ID", "The ID returned by Send one message to many people."),
    "recipient": ("Recipient", "The person's user principal name, email address or Microsoft Entra object ID."),
    "subscription_id": ("Subscription ID", "The ID returned when the trigger was set up."),
}
# The list operations Power Automate pages through, following the answer's nextLink.
PAGEABLE = ("ListRecipients", "ListBroadcastRecipients")


def power_platform_operation(path: str, method: str, operation: dict[str, Any]) -> dict[str, Any]:
    """The operation named, labelled and ordered as the connector file has it."""
    known = OPERATIONS.get((path, method))
    if known is None:
        raise LookupError(f"{method.upper()} {path} has no operationId in connector.definition.operations.OPERATIONS")
    operation["operationId"] = known.operation_id
    operation["x-ms-visibility"] = known.visibility
    if known.trigger_hint and operation.get("x-ms-trigger"):
        operation["x-ms-trigger-hint"] = known.trigger_hint
    # Docstrings wrap at 100 columns; the designer shows one paragraph.
    operation["description"] = " ".join((operation.get("description") or operation.get("summary", "")).split())
    if known.operation_id in AGENT_GUIDANCE:
        operation["description"] += " " + AGENT_GUIDANCE[known.operation_id]
    if known.operation_id in PAGEABLE:
        operation["x-ms-pageable"] = {"nextLinkName": "nextLink"}
    _fix_parameters(operation)
    fix_responses(operation)
    return ordered(operation, OPERATION_ORDER)


def _fix_parameters(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "path":
            summary, description = PATH_PARAMETER_TEXT[parameter["name"]]
            parameter.update(
                {"required": True, "x-ms-url-encoding": "single", "x-ms-summary": summary, "description": description}
            )
            parameter.setdefault("x-ms-visibility", "important")
        elif parameter.get("in") == "body":
            parameter["x-ms-summary"] = "Request"
            parameter["description"] = "The request's fields."
