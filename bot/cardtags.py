"""Which message a card submission answers: ids written into the data of every submit button of a card.

Teams posts a button's ``data`` back (merged with the card's inputs) whether the button is an
Action.Submit (a message activity with ``value``) or an Action.Execute (an ``adaptiveCard/action``
invoke), so an id written there finds its way back to the message that carried the card.
"""

from __future__ import annotations

import copy
from typing import Any

from teams_proactive.bot.errors import Rejected

# One key per way a card can be sent; their values are our ids, never the maker's data.
CARD_WAIT_KEY = "cardWaitId"  # Send a card and wait for a response: the card's (= message's) id
MESSAGE_KEY = "cardMessageId"  # Send a message: the message's id
BROADCAST_KEY = "cardBroadcastId"  # a broadcast: the broadcast's id (the message id follows from the person)
TAG_KEYS = (CARD_WAIT_KEY, MESSAGE_KEY, BROADCAST_KEY)
SUBMIT_ACTIONS = ("Action.Submit", "Action.Execute")
# Set in the turn state when a press named one of our cards but was not its recipient's, on the message
# that carries it: the bot answers it neutrally instead of saying the answer was recorded.
PRESS_REFUSED = "teams_proactive.card_press_refused"


def reserved_input(card: Any) -> str | None:
    """The id of an input that would post one of our tag names back (Teams merges the inputs into the
    button's data, so such an input could name another card's id); None when the card has none."""
    for element in input_ids(card):
        if element["id"] in TAG_KEYS:
            return str(element["id"])
    return None


def tagged(card: dict[str, Any], key: str, value: str) -> dict[str, Any]:
    """A copy of ``card`` whose submit buttons all carry ``key: value`` in their data, and no other of
    our keys: a maker's card that names another card's id (ids can be predictable) must not answer it.

    An input named like one of our keys is refused (``Rejected``, 400): Teams merges the inputs into the
    button's data, so its value would arrive as ours."""
    reserved = reserved_input(card)
    if reserved is not None:
        raise Rejected(
            "ValidationError",
            f"The card has an input with the id '{reserved}', which this service uses to recognise answers:"
            " give the input another id.",
            "card",
        )
    copied = copy.deepcopy(card)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in SUBMIT_ACTIONS:
                data = node.get("data")
                if data is None:
                    data = {}
                elif not isinstance(data, dict):
                    # A string payload stays available to the flow under "value".
                    data = {"value": data}
                for other in TAG_KEYS:
                    data.pop(other, None)
                data[key] = value
                msteams = data.get("msteams")
                if isinstance(msteams, dict) and isinstance(msteams.get("value"), dict):
                    for other in TAG_KEYS:
                        msteams["value"].pop(other, None)
                    msteams["value"][key] = value  # messageBack posts msteams.value
                node["data"] = data
            for inner in node.values():
                visit(inner)
        elif isinstance(node, list):
            for inner in node:
                visit(inner)

    visit(copied)
    return copied


def submitted_values(data: dict[str, Any]) -> dict[str, Any]:
    """The answer as the flow sees it: inputs and button data, without our bookkeeping."""
    return {k: v for k, v in data.items() if k not in (*TAG_KEYS, "msteams")}


def input_ids(card: Any) -> list[dict[str, Any]]:
    """Every ``Input.*`` element of a card (with an id), in card order."""
    found: list[dict[str, Any]] = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if str(node.get("type", "")).startswith("Input.") and isinstance(node.get("id"), str) and node["id"]:
                found.append(node)
            for inner in node.values():
                visit(inner)
        elif isinstance(node, list):
            for inner in node:
                visit(inner)

    visit(card)
    return found


def retagged(content: dict[str, Any], *, kind: str, delivery_id: str, broadcast_id: str | None) -> dict[str, Any]:
    """``content`` with its card tagged as the message it replaces was (UpdateMessage): the same ids, so a
    press on the new card answers the same message, waiting card or broadcast."""
    card = content.get("card")
    if not isinstance(card, dict):
        return content
    if kind == "cardWait":  # bot.cardwait.KIND (that module depends on the delivery service)
        key, value = CARD_WAIT_KEY, delivery_id
    elif broadcast_id:
        key, value = BROADCAST_KEY, broadcast_id
    else:
        key, value = MESSAGE_KEY, delivery_id
    return {**content, "card": tagged(card, key, value)}
