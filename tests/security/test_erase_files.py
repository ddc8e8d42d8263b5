"""After ForgetRecipient, no byte of the person's messages or addresses is left in any file of the SQLite store.

The real ``teams-proactive serve`` in a child process, over real HTTP: the person installs the bot,
gets messages, a card to answer, a broadcast and a scheduled message, then is forgotten. The raw
bytes of every file in the store's folder (database, WAL, shared memory) are searched, while the
server still runs and again after it stopped.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from tests.conftest import API_KEY
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.server_process import ServerProcess

CARD = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "CARD-SECRET-31c9"}]}
WAIT_CARD = {
    "type": "AdaptiveCard",
    "version": "1.5",
    "body": [{"type": "TextBlock", "text": "APPROVAL-SECRET-8d02"}],
    "actions": [{"type": "Action.Submit", "title": "OK", "data": {"ok": True}}],
}


def _files_holding(folder: Path, needle: str) -> list[str]:
    wanted = needle.lower().encode()
    # UTF-16 too: SQLite stores text as UTF-8 here, but a search that could miss is no search.
    wanted16 = needle.lower().encode("utf-16-le")
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.is_file() and (wanted in p.read_bytes().lower() or wanted16 in p.read_bytes().lower())
    )


def _until(check: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_forget_recipient_leaves_no_byte_of_the_person_in_the_store_files(
    tmp_path: Path, connector: FakeConnector, make_user
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    env = {
        "STORE_URL": f"sqlite:///{data / 'store.db'}",
        "CONNECTOR_API_KEY": API_KEY,
        "SEND_RATE_PER_TENANT": "200",
        "RATE_LIMIT_PER_MINUTE": "0",
        "SERVER_CWD": str(tmp_path),
        # The waiting card's run callback (a webhook action) goes to loopback, where nothing listens.
        "CALLBACK_ALLOWED_NETWORKS": "127.0.0.1/32",
    }
    adele = make_user()
    other = make_user("Other Person", "other@contoso.example")
    secrets = {
        "message text": "TEXT-ERASE-5b7e21",
        "idempotent text": "TEXT-IDEM-9f3a0c",
        "scheduled text": "TEXT-LATER-1d6e44",
        "card text": "CARD-SECRET-31c9",
        "waiting card text": "APPROVAL-SECRET-8d02",
        "upn and email": adele.upn,
        "object id": adele.aad_object_id,
        "Teams user id": adele.user_id,
        "name": adele.name,
    }
    with ServerProcess(env, log_path=tmp_path / "server.log") as server:
        for user in (adele, other):
            assert server.activity(act.install(user, connector.service_url("a"))).status_code == 200

        def send(body: dict[str, Any]) -> dict[str, Any]:
            response = server.api("POST", "/api/v1/messages", API_KEY, json=body)
            assert response.status_code in (200, 202), response.text
            return response.json()

        sent = [
            send({"recipient": adele.upn, "text": secrets["message text"]}),
            send({"recipient": adele.aad_object_id, "card": CARD}),
            send({"recipient": adele.upn, "text": secrets["idempotent text"], "idempotencyKey": "run-1"}),
            send({"recipient": other.upn, "text": "TEXT-KEEP-OTHER"}),
        ]
        later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
        send({"recipient": adele.upn, "text": secrets["scheduled text"], "deliverAt": later})
        wait = server.api(
            "POST",
            "/api/v1/cards/wait",
            API_KEY,
            json={"recipient": adele.upn, "card": WAIT_CARD, "notificationUrl": "http://127.0.0.1:9/run?sig=x"},
        )
        assert wait.status_code == 201, wait.text
        broadcast = server.api(
            "POST", "/api/v1/broadcasts", API_KEY, json={"recipients": [adele.upn, other.upn], "text": "TEXT-ALL"}
        ).json()
        for delivery in sent:
            _until(
                lambda d=delivery: (
                    server.api("GET", f"/api/v1/messages/{d['id']}", API_KEY).json()["status"] == "delivered"
                ),
                "a delivery",
            )
        _until(
            lambda: server.api("GET", f"/api/v1/broadcasts/{broadcast['id']}", API_KEY).json()["status"] == "completed",
            "the broadcast",
        )
        for name, secret in secrets.items():
            assert _files_holding(data, secret), f"{name} never reached the store files: the test proves nothing"

        response = server.api("DELETE", f"/api/v1/recipients/{adele.upn}", API_KEY)
        assert response.status_code == 204, response.text

        running = {name: _files_holding(data, s) for name, s in secrets.items() if _files_holding(data, s)}
        assert running == {}, f"left in the store's files while it runs: {running}"
        assert server.stop() is not None
    stopped = {name: _files_holding(data, s) for name, s in secrets.items() if _files_holding(data, s)}
    assert stopped == {}, f"left in the store's files after a stop: {stopped}"
    # The other person's message is still there: the search does find what is kept.
    assert _files_holding(data, "TEXT-KEEP-OTHER")
