"""Copilot Studio picks tools by their descriptions: every action a maker can add tells when to use it,
or that it is not for agents, and the risky ones say so."""

from __future__ import annotations

import json
import re

from teams_proactive.connector.agent_guidance import AGENT_GUIDANCE
from teams_proactive.connector.export import connector_files

from tests.connector.support import operations

SPEC = json.loads(connector_files()["apiDefinition.swagger.json"])
ACTIONS = {
    op["operationId"]: op
    for _, _, op in operations(SPEC)
    if not op.get("x-ms-trigger") and op.get("x-ms-visibility") != "internal"
}


def test_every_action_says_when_an_agent_should_use_it() -> None:
    missing = [
        operation_id
        for operation_id, op in ACTIONS.items()
        if not re.search(r"\bUse it\b|\bkeep it out of agents\b|\bnot for agents\b", op["description"])
    ]
    assert missing == []


def test_guidance_is_only_for_operations_that_exist_and_ends_the_description() -> None:
    assert set(AGENT_GUIDANCE) <= set(ACTIONS)
    for operation_id, sentence in AGENT_GUIDANCE.items():
        assert ACTIONS[operation_id]["description"].endswith(sentence) and sentence.endswith(".")


def test_erasure_and_broadcasts_are_marked_not_for_agents() -> None:
    for operation_id in ("ForgetRecipient", "StartBroadcast"):
        assert "keep it out of agents" in ACTIONS[operation_id]["description"]
