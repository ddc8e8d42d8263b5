"""UpdateBroadcast and RecallBroadcast over real HTTP, 300 people, against a fake connector that answers 429
above a per-second cap: what was waiting never leaves (or leaves changed), what was delivered is deleted or
changed exactly once, nothing is throttled, and GetBroadcast's counts add up."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from teams_proactive.bot.delivery.dispatcher import DispatcherSettings

from tests.conftest import API_KEY
from tests.delivery.conftest import eventually
from tests.engagement.conftest import read_receipt
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector
from tests.support.live_app import LiveApp
from tests.support.people import SeededPerson, people, seed_sqlite

PEOPLE = 300
# Teams' own cap is the fake's; the dispatcher's budget is below it, as in production (DESIGN.md section 8).
# Half the cap: the fake stamps arrivals in a thread of this same process, so on a loaded machine the
# GIL can bunch calls that left evenly spaced; the margin keeps that from looking like a burst.
CAP_PER_SECOND = 50
PACED = DispatcherSettings(
    rate_per_tenant=25.0,
    concurrency=16,
    max_attempts=6,
    lease_seconds=10.0,
    leader_lease_seconds=3.0,
    send_timeout_seconds=2.0,
    poll_seconds=0.1,
    backoff_base_seconds=0.05,
    backoff_cap_seconds=0.5,
)
TOTAL_KEYS = ("queued", "sending", "delivered", "failed", "skipped", "recalled")


@pytest.fixture
def capped() -> Iterator[FakeConnector]:
    with FakeConnector(rate_cap_per_second=CAP_PER_SECOND, latency=(0.005, 0.02)) as fake:
        yield fake


@pytest.fixture
def crowd(tmp_path: Path, capped: FakeConnector) -> list[SeededPerson]:
    seeded = people(PEOPLE, tenant_id="tenant-campaign")
    seed_sqlite(str(tmp_path / "store.db"), seeded, capped.service_url())
    return seeded


@pytest.fixture
def paced_live(app_env: dict[str, str], capped: FakeConnector, crowd: list[SeededPerson]) -> Iterator[LiveApp]:
    with LiveApp(app_env, runtime_kwargs={"dispatcher_settings": PACED}) as app:
        yield app


def _start(live: LiveApp, crowd: list[SeededPerson], text: str) -> str:
    response = live.api("POST", "/api/v1/broadcasts", API_KEY, json={"recipients": [p.upn for p in crowd], "text": text})
    assert response.status_code in (200, 202), response.text
    return str(response.json()["id"])


def _report(live: LiveApp, broadcast_id: str) -> dict[str, Any]:
    answer = live.api("GET", f"/api/v1/broadcasts/{broadcast_id}", API_KEY)
    assert answer.status_code in (200, 202), answer.text
    return dict(answer.json())


def _posts(connector: FakeConnector, text: str) -> list[Any]:
    return [r for r in connector.sent() if r.activity.get("text") == text]


def _all_rows(live: LiveApp, broadcast_id: str, query: str = "") -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    url = f"/api/v1/broadcasts/{broadcast_id}/recipients?pageSize=70{query}"
    while url:
        answer = live.api("GET", url, API_KEY)
        assert answer.status_code == 200, answer.text
        rows += answer.json()["value"]
        next_link = answer.json()["nextLink"]
        url = next_link.removeprefix(live.url) if next_link else ""
    return rows


def _as_user(person: SeededPerson) -> act.TeamsUser:
    return act.TeamsUser(
        name=person.upn,
        upn=person.upn,
        tenant_id=person.tenant_id,
        aad_object_id=person.user_key,
        user_id=person.user_id,
        conversation_id=person.conversation_id,
    )


def _counts_add_up(report: dict[str, Any]) -> None:
    assert sum(report["counts"][k] for k in TOTAL_KEYS) == report["total"] == PEOPLE, report["counts"]


def test_a_300_person_broadcast_recalled_midway(
    paced_live: LiveApp, capped: FakeConnector, crowd: list[SeededPerson]
) -> None:
    broadcast_id = _start(paced_live, crowd, "wrong numbers")
    eventually(lambda: len(_posts(capped, "wrong numbers")) >= 80, timeout=60)
    # Someone reads it before the recall.
    early = next(p for p in crowd if any(r.conversation_id == p.conversation_id for r in _posts(capped, "wrong numbers")))
    early_id = next(r.activity_id for r in _posts(capped, "wrong numbers") if r.conversation_id == early.conversation_id)
    assert paced_live.activity(read_receipt(_as_user(early), capped.service_url(), early_id)).status_code == 200

    answer = paced_live.api("DELETE", f"/api/v1/broadcasts/{broadcast_id}", API_KEY)
    assert answer.status_code == 200, answer.text  # an answer at once, with the broadcast
    assert answer.json()["recall"]["status"] == "running"
    sent_at_recall = len(_posts(capped, "wrong numbers"))
    assert sent_at_recall < PEOPLE

    done = eventually(
        lambda: (r := _report(paced_live, broadcast_id))["status"] == "completed" and r["recall"]["status"] == "completed"
        and r,
        timeout=120,
    )
    posts = _posts(capped, "wrong numbers")
    deletes = capped.changes("DELETE")
    # What was waiting never left: at most the sends already under way when the recall came.
    assert len(posts) <= sent_at_recall + PACED.concurrency
    # Every message that reached a chat was deleted there, exactly once.
    posted = collections.Counter((r.conversation_id, r.activity_id) for r in posts)
    deleted = collections.Counter((r.conversation_id, r.activity_id) for r in deletes)
    assert set(posted.values()) == {1} and deleted == posted
    assert capped.throttled == 0

    assert done["counts"]["recalled"] == PEOPLE and done["counts"]["delivered"] == 0
    assert done["counts"]["failed"] == 0
    _counts_add_up(done)
    assert done["recall"]["changed"] == len(posts) and done["recall"]["failed"] == 0
    assert done["counts"]["read"] == 1 and done["engagement"]["firstReadAt"]

    rows = {row["recipient"]: row for row in _all_rows(paced_live, broadcast_id)}
    assert len(rows) == PEOPLE and {row["status"] for row in rows.values()} == {"recalled"}
    # The person who read it shows both: read, and recalled.
    assert rows[early.upn]["readAt"] and rows[early.upn]["recalledAt"] and rows[early.upn]["readState"] == "read"
    # GetMessage shows the same, and the text is not kept.
    message = paced_live.api("GET", f"/api/v1/messages/{rows[early.upn]['messageId']}", API_KEY).json()
    assert message["status"] == "recalled" and message["readAt"] and message["recalledAt"]
    never_sent = [row for row in rows.values() if row["deliveredAt"] is None]
    assert len(never_sent) == PEOPLE - len(posts)

    page = paced_live.api("GET", f"/dashboard/broadcasts/{broadcast_id}", API_KEY)
    assert page.status_code == 200 and 'id="campaign-changes"' in page.text and "Recall" in page.text

    # Asking again changes nothing; an update after a recall is refused.
    again = paced_live.api("DELETE", f"/api/v1/broadcasts/{broadcast_id}", API_KEY)
    assert again.status_code == 200 and again.json()["recall"]["status"] == "completed"
    refused = paced_live.api("PUT", f"/api/v1/broadcasts/{broadcast_id}", API_KEY, json={"text": "fixed"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "BroadcastRecalled"
    assert len(capped.changes("DELETE")) == len(deletes) and not capped.changes("PUT")


def test_a_300_person_broadcast_updated_midway(
    paced_live: LiveApp, capped: FakeConnector, crowd: list[SeededPerson]
) -> None:
    broadcast_id = _start(paced_live, crowd, "meet at 10")
    eventually(lambda: len(_posts(capped, "meet at 10")) >= 80, timeout=60)
    answer = paced_live.api("PUT", f"/api/v1/broadcasts/{broadcast_id}", API_KEY, json={"text": "meet at 11"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["update"]["revision"] == 1 and answer.json()["update"]["status"] == "running"

    done = eventually(
        lambda: (r := _report(paced_live, broadcast_id))["status"] == "completed" and r["update"]["status"] == "completed"
        and r,
        timeout=120,
    )
    old, new, puts = _posts(capped, "meet at 10"), _posts(capped, "meet at 11"), capped.changes("PUT")
    assert len(old) + len(new) == PEOPLE  # one message per person
    assert {r.conversation_id for r in old} | {r.conversation_id for r in new} == {p.conversation_id for p in crowd}
    # Each message sent with the old text was changed exactly once, to the new text; the others left changed.
    changed = collections.Counter((r.conversation_id, r.activity_id) for r in puts)
    assert changed == collections.Counter((r.conversation_id, r.activity_id) for r in old)
    assert {r.activity.get("text") for r in puts} == {"meet at 11"}
    assert new, "the update came after every message had left"
    assert capped.throttled == 0

    assert done["counts"]["delivered"] == PEOPLE
    _counts_add_up(done)
    assert done["update"]["changed"] == len(old) and done["update"]["pending"] == 0 and done["update"]["failed"] == 0
    rows = _all_rows(paced_live, broadcast_id)
    assert {row["revision"] for row in rows} == {1} and {row["readState"] for row in rows} == {"noReceipt"}
    assert len(_all_rows(paced_live, broadcast_id, "&readState=noReceipt")) == PEOPLE
    assert _all_rows(paced_live, broadcast_id, "&readState=read") == []


def test_update_and_recall_of_unknown_or_other_tenants_broadcasts(
    paced_live: LiveApp, capped: FakeConnector, crowd: list[SeededPerson]
) -> None:
    for method, body in (("PUT", {"text": "x"}), ("DELETE", None)):
        answer = paced_live.api(method, "/api/v1/broadcasts/0123456789abcdef", API_KEY, json=body)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "NotFound"
    broadcast_id = _start(paced_live, crowd[:2], "hello")
    empty = paced_live.api("PUT", f"/api/v1/broadcasts/{broadcast_id}", API_KEY, json={})
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "ValidationError"
    unknown = paced_live.api("PUT", f"/api/v1/broadcasts/{broadcast_id}", API_KEY, json={"text": "a", "colour": "red"})
    assert unknown.status_code == 400
    assert _report(paced_live, broadcast_id).get("update") is None  # bad input changed nothing


def test_a_recall_right_after_an_update_supersedes_it(
    app_env: dict[str, str], connector: FakeConnector, tmp_path: Path
) -> None:
    crowd = people(40, tenant_id="tenant-change")
    seed_sqlite(str(tmp_path / "store.db"), crowd, connector.service_url())
    with LiveApp(app_env, runtime_kwargs={"dispatcher_settings": PACED}) as live:
        broadcast_id = _start(live, crowd, "v1")
        eventually(lambda: _report(live, broadcast_id)["status"] == "completed", timeout=60)
        assert live.api("PUT", f"/api/v1/broadcasts/{broadcast_id}", API_KEY, json={"text": "v2"}).status_code == 200
        assert live.api("DELETE", f"/api/v1/broadcasts/{broadcast_id}", API_KEY).status_code == 200
        done = eventually(
            lambda: (r := _report(live, broadcast_id))["status"] == "completed" and r["recall"]["status"] == "completed"
            and r,
            timeout=60,
        )
    posted = collections.Counter((r.conversation_id, r.activity_id) for r in _posts(connector, "v1"))
    deleted = collections.Counter((r.conversation_id, r.activity_id) for r in connector.changes("DELETE"))
    assert len(posted) == 40 and deleted == posted  # every message deleted once
    assert len(connector.changes("PUT")) <= 40  # the update may have changed some before the recall
    assert done["update"]["status"] == "completed" and done["counts"]["recalled"] == 40
    assert sum(done["counts"][k] for k in TOTAL_KEYS) == done["total"] == 40
