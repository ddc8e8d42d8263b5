"""A recipient list longer than one chunk goes through the API, is expanded chunk by chunk, and is
scrubbed by ForgetRecipient like a short one."""

from __future__ import annotations

from typing import Any

from teams_proactive.bot.delivery.broadcasts import RECIPIENT_CHUNK
from teams_proactive.bot.recipients import FORGOTTEN

from tests.conftest import API_KEY
from tests.delivery.conftest import eventually, install, texts_in
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp


def test_a_long_list_is_chunked_expanded_and_forgotten(live: LiveApp, connector: FakeConnector, make_user) -> None:
    ana = make_user("Ana", "ana@contoso.example")
    ben = make_user("Ben", "ben@contoso.example")
    for user in (ana, ben):
        install(live, connector, user)
    strangers = [f"stranger{i}@contoso.example" for i in range(RECIPIENT_CHUNK + 200)]
    # Ana first, Ben in the second chunk, Ana again at the very end (a duplicate across chunks).
    recipients = [ana.upn, *strangers[:RECIPIENT_CHUNK], ben.upn, *strangers[RECIPIENT_CHUNK:], ana.upn]
    response = live.api("POST", "/api/v1/broadcasts", API_KEY, json={"recipients": recipients, "text": "Long list"})
    assert response.status_code == 200, response.text  # StartBroadcast answers at once
    broadcast_id = response.json()["id"]

    def done() -> dict[str, Any] | None:
        body = live.api("GET", f"/api/v1/broadcasts/{broadcast_id}", API_KEY).json()
        return body if body["status"] == "completed" else None

    report = eventually(done, timeout=60)
    assert report["total"] == len(recipients)
    assert report["counts"]["delivered"] == 2
    assert report["counts"]["skipped"] == len(strangers) + 1
    assert texts_in(connector, ana.conversation_id, "Long list") == 1
    assert texts_in(connector, ben.conversation_id, "Long list") == 1

    runtime = live.runtime
    stored = runtime.call(runtime.store.broadcasts.get(broadcast_id))
    assert stored is not None and stored.recipient_chunks == 2 and stored.recipients == []
    assert live.api("DELETE", f"/api/v1/recipients/{ben.upn}", API_KEY).status_code in (200, 204)
    second = runtime.call(runtime.store.broadcasts.read_chunk(broadcast_id, 1))
    assert second is not None and ben.upn not in second and second[1] == FORGOTTEN
