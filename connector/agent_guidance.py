"""When an agent (or a maker) should use each operation: one sentence appended to its description.

Copilot Studio's orchestrator picks a tool by its summary and description alone, so each description
ends by saying when to use the operation, or that it is not meant for an agent and why
(power-automate-samples/copilot-studio/agent-guide.md explains the choice to makers).
"""

from __future__ import annotations

# Keyed by operationId; an operation missing here keeps its description as the view wrote it.
AGENT_GUIDANCE: dict[str, str] = {
    "SendMessage": (
        "Use it when someone asks to tell, notify or remind a person, now or at a later time;"
        " the person is named by email address, sign-in name or object ID."
    ),
    "GetMessage": "Use it to check whether a message sent earlier arrived, or why it failed.",
    "UpdateMessage": "Use it to correct or complete a message already sent, for example to mark a task done.",
    "DeleteMessage": "Use it when asked to withdraw a message, or to cancel one scheduled for later.",
    "SendCardAndWait": (
        "Use it in a flow that must stop until a person answers (approvals, questions); an agent should"
        " send the card and let a flow act on the answer, since the wait may last days."
    ),
    "GetCardResponse": "Use it to look up later whether a card was answered, and the answer.",
    "GetRecipient": (
        "Use it before promising to message someone, to find out whether they can be reached and why not."
    ),
    "ListRecipients": (
        "Use it in a flow that needs everyone who can be reached; not for agents, the list can be long."
    ),
    "ForgetRecipient": (
        "Only for an administrator handling a data-deletion request; keep it out of agents, it erases a"
        " person's history and cannot be undone."
    ),
    "StartBroadcast": (
        "Use it in a flow a person starts on purpose to reach many people at once; keep it out of agents,"
        " a broadcast should never be sent on an agent's judgement."
    ),
    "GetBroadcast": "Use it to report how far a broadcast has got, who read it and who did not get it.",
    "UpdateBroadcast": (
        "Use it in a flow a person starts on purpose to correct a broadcast already sent; keep it out of"
        " agents, it changes what many people see."
    ),
    "RecallBroadcast": (
        "Use it in a flow a person starts on purpose to withdraw a broadcast sent by mistake; keep it out"
        " of agents, it deletes the message from everyone and cannot be undone."
    ),
    "ListBroadcastRecipients": (
        "Use it in a flow that follows up on a broadcast person by person (for example a reminder to those"
        " with no read receipt); not for agents, the list can be long."
    ),
}
