"""Which message a card submission answers: ids written into the data of every submit button of a card.

Teams posts a button's ``data`` back (merged with the card's inputs) whether the button is an
Action.Submit (a message activity with ``value``) or an Action.Execute (an ``adaptiveCard/action``
invoke), so an id written there finds its way back to the message that carried the card.
"""

from __future__ import annotations

import copy
from typing import Any

# One key per way a card can be sent; their values are our ids, never the maker's data.
CARD_WAIT_KEY = "cardWaitId"  # Send a card and wait for a response: the card's (= message's) id
MESSAGE_KEY = "cardMessageId"  # Send a message: the message's id
BROADCAST_KEY = "cardBroadcastId"  # a broadcast: the broadcast's id (the message id follows from the person)
TAG_KEYS = (CARD_WAIT_KEY, MESSAGE_KEY, BROADCAST_KEY)
SUBMIT_ACTIONS = ("Action.Submit", "Action.Execute")


def tagged(card: dict[str, Any], key: str, value: str) -> dict[str, Any]:
    """A copy of ``card`` whose submit buttons all carry ``key: value`` in their data."""
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
                data[key] = value
                msteams = data.get("msteams")
                if isinstance(msteams, dict) and isinstance(msteams.get("value"), dict):
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
