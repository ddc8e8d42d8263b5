"""Card-and-wait survives the process: a real server killed with SIGKILL while a card waits, restarted
on the same SQLite store, takes the answer and posts it to the run's callback; killed again while that
callback is being retried, it posts it once the flow is back (exactly one accepted callback)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_KEY
from tests.connector.support import CallbackServer, pending_events, wait_until
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.server_process import ServerProcess

CARD = {
    "type": "AdaptiveCard",
    "version": "1.5",
    "body": [{"type": "Input.Text", "id": "comment", "label": "Comment"}],
    "actions": [{"type": "Action.Submit", "title": "Approve", "data": {"decision": "approve"}}],
}


def stored_delivery(db: Path, delivery_id: str) -> dict[str, Any] | None:
    """The card's record as the server left it (read from the SQLite file, not through the API)."""
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT body FROM deliveries WHERE id=?", (delivery_id,)).fetchone()
    return json.loads(row[0]) if row else None


@pytest.mark.slow
def test_a_waiting_card_survives_sigkill_twice(tmp_path: Path, connector: FakeConnector, make_user: Any) -> None:
    db = tmp_path / "store.db"
    user = make_user()
    with CallbackServer() as hooks:
        env = {"STORE_URL": f"sqlite:///{db}", "CONNECTOR_API_KEY": API_KEY, "MicrosoftAppId": "",
               "CALLBACK_ALLOWED_NETWORKS": "127.0.0.1/32"}
        with ServerProcess(env, log_path=tmp_path / "server.log") as server:
            assert server.activity(act.install(user, connector.service_url())).status_code == 200
            started = server.api(
                "POST",
                "/api/v1/cards/wait",
                API_KEY,
                json={"recipient": user.upn, "card": CARD, "notificationUrl": hooks.url("run")},
            )
            assert started.status_code == 201, started.text
            card_id = started.json()["id"]
            wait_until(
                lambda: (stored_delivery(db, card_id) or {}).get("status") == "delivered", what="the card in Teams"
            )
            sent = [r for r in connector.sent(user.conversation_id) if r.activity.get("attachments")]
            (card,) = sent
            assert server.kill() is not None  # killed while the card waits for its answer

            server.start()
            # The flow is down when the answer comes: it answers 503 and asks for a few seconds.
            hooks.answer_next(503, headers={"Retry-After": "3"})
            data = card.activity["attachments"][0]["content"]["actions"][0]["data"]
            press = act.card_submit(user, connector.service_url(), {**data, "comment": "fine"})
            press["replyToId"] = card.activity_id
            assert server.activity(press).status_code == 200
            wait_until(lambda: hooks.received, what="the first callback attempt")
            wait_until(
                lambda: [e for e in pending_events(db) if e["attempts"] == 1 and e["lease_owner"] is None],
                what="the callback to be rescheduled in the store",
            )
            assert server.kill() is not None  # killed while the answer waits for its retry

            server.start()
            (result,) = wait_until(lambda: hooks.bodies("run"), timeout=60, what="the answer after the restart")
            assert result["id"] == card_id and result["status"] == "responded"
            assert result["response"] == {"decision": "approve", "comment": "fine"}
            wait_until(
                lambda: not [e for e in pending_events(db) if e["id"].startswith("cardwait.")],
                what="the card's callbacks to be done",
            )
            assert [c.status for c in hooks.received] == [503, 202]
            # Nothing polled: the server saw no request for the card between the start and the answer.
            log = (tmp_path / "server.log").read_text(errors="replace")
            assert "/api/v1/cards/wait" in log  # the access log names paths (the start is there)
            assert f"/api/v1/cards/wait/{card_id}" not in log
