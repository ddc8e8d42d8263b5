"""The Agents SDK example (with ReferenceCapture) driven by Microsoft 365 Agents Playground, headless.

The agent runs in its own process; ``teams-proactive serve`` in another on the same SQLite store. The
playground installs the app and the person talks to the agent (which answers with its own handler);
the service then sends by UPN and the message arrives in the playground's chat.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.example_bot import ExampleBot
from tests.support.playground import Playground
from tests.support.server_process import ServerProcess

pytestmark = [pytest.mark.playground, pytest.mark.slow]

API_KEY = "agents-playground-key-0123456789"


def test_agents_sdk_example_in_playground_then_send_by_upn(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'shared.db'}"
    env = {"STORE_URL": store, "CONNECTOR_API_KEY": API_KEY, "SERVER_CWD": str(tmp_path)}
    with (
        ExampleBot("agents", {"STORE_URL": store}, log_path=tmp_path / "agent.log", cwd=tmp_path) as agent,
        ServerProcess(env, log_path=tmp_path / "service.log") as service,
        Playground(f"{agent.url}/api/messages") as playground,
    ):
        playground.install()
        playground.send_user_message("hello agent")
        playground.wait_for_bot_message(lambda m: (m.text or "") == "You said: hello agent", timeout=30)
        # No welcome or help of ours: the agent's own answer is all it says.
        assert all("notifications" not in (m.text or "") for m in playground.messages())

        deadline = time.monotonic() + 30
        while True:  # the member lookup (UPN) happens in the agent's turn; poll the service until it knows
            person = service.api("GET", f"/api/v1/recipients/{playground.user.upn}", API_KEY)
            if person.status_code == 200 and person.json().get("reachable"):
                break
            assert time.monotonic() < deadline, (person.text, agent.log_tail())
            time.sleep(0.05)  # polling interval of a deadline-bounded wait

        mark = playground.mark()
        sent = service.api("POST", "/api/v1/messages", API_KEY,
                           json={"recipient": playground.user.upn, "text": "Your expense was approved"})  # fmt: skip
        assert sent.status_code == 200, (sent.text, service.log_tail())
        arrived = playground.wait_for_bot_message(lambda m: "expense" in (m.text or ""), since=mark, timeout=30)
        assert arrived.conversation_id == playground.conversation_id
