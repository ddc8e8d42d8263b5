"""What an operator sees of the quarantine: `teams-proactive quarantine list/clear`, the doctor's warning
and the dashboard's tile, after the running app moved a planted record aside."""

from __future__ import annotations

import json

import pytest
from teams_proactive.connector.cli import main

from tests.conftest import API_KEY
from tests.delivery.conftest import eventually
from tests.operator.test_dashboard import new_key, sign_in, text_of
from tests.support.live_app import LiveApp
from tests.support.plant import SECRET, delivery_doc, sqlite_plant, undecodable_sqlite_body


def listed(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    assert main(["quarantine", "list", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_an_operator_lists_sees_and_clears_the_quarantine(
    cli_env: dict[str, str], live: LiveApp, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["quarantine", "list"]) == 0
    assert "Nothing in quarantine." in capsys.readouterr().out

    path = cli_env["STORE_URL"].removeprefix("sqlite:///")
    sqlite_plant(path, "delivery", "planted-delivery", undecodable_sqlite_body(delivery_doc("planted-delivery")))
    # The running dispatcher meets it on its next claim and moves it aside.
    rows = eventually(lambda: listed(capsys))
    assert [(r["kind"], r["id"]) for r in rows] == [("delivery", "planted-delivery")]
    assert str(rows[0]["reason"]).startswith("JSONDecodeError") and rows[0]["expiresAt"]

    assert main(["quarantine", "list"]) == 0
    out = capsys.readouterr().out
    assert "planted-delivery" in out and SECRET not in out

    assert main(["doctor", "--json"]) in (0, 1)
    findings = {f["topic"]: f for f in json.loads(capsys.readouterr().out)}
    assert findings["Quarantine"]["level"] == "warn" and "1 delivery" in findings["Quarantine"]["text"]

    page = sign_in(live, API_KEY).get(live.url + "/dashboard/").text
    assert text_of(page, "quarantined-total") == "1"
    scoped = new_key(capsys, "fabrikam-ops", "admin", "--tenant", "tenant-fabrikam")
    assert 'id="quarantined-total"' not in sign_in(live, scoped).get(live.url + "/dashboard/").text

    assert main(["quarantine", "clear"]) == 2  # neither a record nor --all
    capsys.readouterr()
    assert main(["quarantine", "clear", "delivery", "planted-delivery"]) == 0
    assert "Removed 1 record(s)" in capsys.readouterr().out
    assert listed(capsys) == []
    assert main(["quarantine", "clear", "delivery", "planted-delivery"]) == 2
    assert main(["quarantine", "clear", "--all"]) == 0
