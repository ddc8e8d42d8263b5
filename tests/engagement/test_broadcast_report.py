"""GetBroadcast's engagement, ListBroadcastRecipients, the CLI CSV and the dashboard page: reads are "at least",
and a person without a receipt is never reported as unseen."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from teams_proactive.connector.cli import main

from tests.conftest import API_KEY
from tests.delivery.conftest import eventually, install
from tests.engagement.conftest import read_receipt
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp

CARD = {
    "type": "AdaptiveCard",
    "version": "1.5",
    "body": [{"type": "TextBlock", "text": "Coming to the all-hands?"}],
    "actions": [{"type": "Action.Submit", "title": "Yes", "data": {"answer": "yes"}}],
}


def _finished(live: LiveApp, broadcast_id: str) -> dict[str, Any]:
    def report() -> dict[str, Any] | None:
        answer = live.api("GET", f"/api/v1/broadcasts/{broadcast_id}", API_KEY)
        assert answer.status_code in (200, 202), answer.text
        body = answer.json()
        return body if body["status"] == "completed" else None

    return eventually(report, timeout=30)


@pytest.fixture
def engaged(engage_live: LiveApp, connector: FakeConnector, make_user) -> dict[str, Any]:
    """Ana read it, Ben answered the card (no receipt), Cho has no receipt, nobody@ was never known."""
    cast = {n: make_user(n.title(), f"{n}@contoso.example") for n in ("ana", "ben", "cho")}
    for user in cast.values():
        install(engage_live, connector, user)
    recipients = [u.upn for u in cast.values()] + ["nobody@contoso.example"]
    started = engage_live.api(
        "POST", "/api/v1/broadcasts", API_KEY, json={"recipients": recipients, "text": "All-hands", "card": CARD}
    )
    assert started.status_code in (200, 202), started.text
    broadcast_id = started.json()["id"]
    _finished(engage_live, broadcast_id)

    def message_id(user: act.TeamsUser) -> str:
        (sent,) = [r for r in connector.sent(user.conversation_id) if r.activity.get("text") == "All-hands"]
        return str(sent.activity_id)

    url = connector.service_url()
    assert engage_live.activity(read_receipt(cast["ana"], url, message_id(cast["ana"]))).status_code == 200
    answer = act.card_submit(cast["ben"], url, {"answer": "yes"})
    answer["replyToId"] = message_id(cast["ben"])  # Teams points a submit at the card's message
    assert engage_live.activity(answer).status_code == 200
    return {"id": broadcast_id, "cast": cast}


def test_get_broadcast_counts_reads_and_answers_as_a_lower_bound(engage_live: LiveApp, engaged: dict[str, Any]) -> None:
    body = _finished(engage_live, engaged["id"])
    assert body["counts"] == {
        "queued": 0, "sending": 0, "delivered": 3, "failed": 0, "skipped": 1, "recalled": 0, "read": 2, "answered": 1,
    }  # fmt: skip
    engagement = body["engagement"]
    assert engagement["read"] == 2 and engagement["answered"] == 1
    assert engagement["firstReadAt"] and engagement["lastReadAt"] >= engagement["firstReadAt"]
    assert sum(point["reads"] for point in engagement["readTimeline"]) == 2
    assert body["update"] is None and body["recall"] is None


def test_list_broadcast_recipients_by_read_state(engage_live: LiveApp, engaged: dict[str, Any]) -> None:
    cast = engaged["cast"]

    def people(query: str) -> dict[str, dict[str, Any]]:
        answer = engage_live.api("GET", f"/api/v1/broadcasts/{engaged['id']}/recipients{query}", API_KEY)
        assert answer.status_code == 200, answer.text
        return {row["recipient"]: row for row in answer.json()["value"]}

    everyone = people("")
    assert {r: row["readState"] for r, row in everyone.items()} == {
        cast["ana"].upn: "read",
        cast["ben"].upn: "answered",
        cast["cho"].upn: "noReceipt",  # no receipt: maybe read, never "unread"
    }
    assert everyone[cast["ben"].upn]["answeredAt"] and everyone[cast["ben"].upn]["readAt"] is None
    assert set(people("?readState=noReceipt")) == {cast["cho"].upn}
    assert set(people("?readState=read")) == {cast["ana"].upn}
    one = engage_live.api("GET", f"/api/v1/broadcasts/{engaged['id']}/recipients?pageSize=1", API_KEY).json()
    assert len(one["value"]) == 1 and one["nextLink"]
    bad = engage_live.api("GET", f"/api/v1/broadcasts/{engaged['id']}/recipients?readState=unread", API_KEY)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "ValidationError"
    missing = engage_live.api("GET", "/api/v1/broadcasts/0000/recipients", API_KEY)
    assert missing.status_code == 404


def test_cli_writes_the_per_person_csv(
    engage_live: LiveApp,
    engaged: dict[str, Any],
    app_env: dict[str, str],
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STORE_URL", app_env["STORE_URL"])
    out = tmp_path / "report.csv"
    assert main(["broadcast-report", engaged["id"], "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "at least 2 read" in err and "may have read it" in err
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    cast = engaged["cast"]
    by_person = {row["recipient"]: row for row in rows}
    assert by_person[cast["ana"].upn]["readState"] == "read" and by_person[cast["ana"].upn]["readAt"]
    assert by_person[cast["ben"].upn]["readState"] == "answered"
    assert by_person[cast["cho"].upn]["readState"] == "noReceipt" and not by_person[cast["cho"].upn]["readAt"]
    assert by_person["nobody@contoso.example"]["status"] == "skipped"
    assert by_person["nobody@contoso.example"]["errorCode"] == "RecipientNotFound"

    assert main(["broadcast-report", "no-such-broadcast", "--out", str(tmp_path / "x.csv")]) == 1
    assert "no broadcast" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_dashboard_page_and_download(engage_live: LiveApp, engaged: dict[str, Any]) -> None:
    page = engage_live.api("GET", f"/dashboard/broadcasts/{engaged['id']}", API_KEY)
    assert page.status_code == 200, page.text
    assert "read at least" in page.text and 'id="reads-chart"' in page.text and 'data-reads="2"' in page.text
    assert "not seen" in page.text  # the page says a missing receipt is not "not seen"
    download = engage_live.api("GET", f"/dashboard/broadcasts/{engaged['id']}/report.csv", API_KEY)
    assert download.status_code == 200 and download.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert len(rows) == 4 and {r["readState"] for r in rows} == {"read", "answered", "noReceipt", "notDelivered"}
    assert engage_live.api("GET", "/dashboard/broadcasts/nope", API_KEY).status_code == 404
