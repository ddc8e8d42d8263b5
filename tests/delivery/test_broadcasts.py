"""StartBroadcast / GetBroadcast: a list or every active person; who was skipped and why; GetBroadcast
answers 200 with progress while it runs; waitForCompletion gives 202 + the internal status link until done."""

from __future__ import annotations

from typing import Any

from tests.conftest import API_KEY
from tests.delivery.conftest import eventually, install, texts_in
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector, Scripted
from tests.support.live_app import LiveApp
from tests.support.people import people, seed


def _finished(live: LiveApp, location: str) -> dict[str, Any]:
    def report() -> dict[str, Any] | None:
        answer = live.http.get(location, headers={"X-API-Key": API_KEY}, timeout=30)
        assert answer.status_code in (200, 202), answer.text
        if answer.status_code == 202:
            assert answer.headers["Location"] == location and "Retry-After" in answer.headers
            return None
        return answer.json()

    return eventually(report, timeout=60)


def _cast(live: LiveApp, connector: FakeConnector, make_user) -> dict[str, act.TeamsUser]:
    cast = {
        "ana": make_user("Ana", "ana@contoso.example"),
        "ben": make_user("Ben", "ben@contoso.example"),
        "cho": make_user("Cho", "cho@contoso.example"),
        "stopped": make_user("Stopped", "stopped@contoso.example"),
        "gone": make_user("Gone", "gone@contoso.example"),
    }
    for user in cast.values():
        install(live, connector, user)
    live.activity(act.message(cast["stopped"], connector.service_url(), "stop"))
    live.activity(act.uninstall(cast["gone"], connector.service_url()))
    return cast


def test_broadcast_to_a_list_reports_who_was_skipped_and_why(
    fast_live: LiveApp, connector: FakeConnector, make_user
) -> None:
    cast = _cast(fast_live, connector, make_user)
    recipients = [
        cast["ana"].upn,
        cast["ben"].aad_object_id,
        cast["cho"].upn,
        cast["stopped"].upn,
        cast["gone"].upn,
        "nobody@contoso.example",
        cast["ana"].aad_object_id,  # Ana again, by another address
    ]
    response = fast_live.api(
        "POST",
        "/api/v1/broadcasts",
        API_KEY,
        json={"recipients": recipients, "text": "news", "waitForCompletion": True},
    )
    assert response.status_code == 202, response.text
    started = response.json()
    assert started["total"] == 7 and started["status"] in ("preparing", "running", "completed")
    location = response.headers["Location"]
    assert location == f"{fast_live.url}/api/v1/broadcasts/{started['id']}/status"

    done = _finished(fast_live, location)
    assert done["status"] == "completed" and done["completedAt"]
    assert done["total"] == 7
    assert done["progress"] == 100.0
    assert done["counts"] == {
        "queued": 0,
        "sending": 0,
        "delivered": 3,
        "failed": 0,
        "skipped": 4,
        "recalled": 0,
        "read": 0,
        "answered": 0,
    }
    reasons = {f["recipient"]: (f["code"], f["message"]) for f in done["failures"]}
    assert set(reasons) == {cast["stopped"].upn, cast["gone"].upn, "nobody@contoso.example", cast["ana"].aad_object_id}
    assert reasons[cast["stopped"].upn][0] == "RecipientOptedOut"
    assert reasons[cast["gone"].upn][0] == "RecipientUnreachable"
    assert "installed" in reasons[cast["gone"].upn][1]
    assert reasons["nobody@contoso.example"][0] == "RecipientNotFound"
    assert reasons[cast["ana"].aad_object_id][0] == "Duplicate"
    for name in ("ana", "ben", "cho"):
        assert texts_in(connector, cast[name].conversation_id, "news") == 1
    for name in ("stopped", "gone"):
        assert texts_in(connector, cast[name].conversation_id, "news") == 0


def test_broadcast_to_every_active_person_of_the_tenant(
    fast_live: LiveApp, connector: FakeConnector, make_user
) -> None:
    cast = _cast(fast_live, connector, make_user)
    outsider = make_user("Other tenant", "x@fabrikam.example", tenant_id="tenant-fabrikam")
    install(fast_live, connector, outsider)
    response = fast_live.api(
        "POST",
        "/api/v1/broadcasts",
        API_KEY,
        json={"allActiveUsers": True, "tenantId": "tenant-contoso", "text": "everyone", "waitForCompletion": True},
    )
    assert response.status_code == 202, response.text
    done = _finished(fast_live, response.headers["Location"])
    assert done["counts"]["delivered"] == 3
    assert done["counts"]["failed"] == 0 and done["counts"]["queued"] == 0
    codes = sorted(f["code"] for f in done["failures"])
    assert codes == ["RecipientOptedOut", "RecipientUnreachable"]
    assert done["counts"]["skipped"] == 2 and done["total"] == 5
    for name in ("ana", "ben", "cho"):
        assert texts_in(connector, cast[name].conversation_id, "everyone") == 1
    assert texts_in(connector, outsider.conversation_id, "everyone") == 0


def test_broadcast_idempotency_key_starts_it_once(fast_live: LiveApp, connector: FakeConnector, make_user) -> None:
    user = make_user()
    install(fast_live, connector, user)
    body = {"recipients": [user.upn], "text": "once", "idempotencyKey": "campaign-1", "waitForCompletion": True}
    first = fast_live.api("POST", "/api/v1/broadcasts", API_KEY, json=body)
    second = fast_live.api("POST", "/api/v1/broadcasts", API_KEY, json=body)
    assert first.json()["id"] == second.json()["id"]
    _finished(fast_live, first.headers["Location"])
    assert texts_in(connector, user.conversation_id, "once") == 1


def test_a_thousand_recipients_each_get_one_copy(fast_live: LiveApp, connector: FakeConnector) -> None:
    crowd = people(1000, tenant_id="tenant-contoso", prefix="many")
    fast_live.runtime.call(seed(fast_live.runtime.store, crowd, connector.service_url("a")), timeout=120)
    response = fast_live.api(
        "POST",
        "/api/v1/broadcasts",
        API_KEY,
        json={"recipients": [p.upn for p in crowd], "text": "to all", "waitForCompletion": True},
    )
    done = _finished(fast_live, response.headers["Location"])
    assert done["counts"]["delivered"] == 1000
    copies = {}
    for received in connector.sent():
        if received.activity.get("text") == "to all":
            copies[received.conversation_id] = copies.get(received.conversation_id, 0) + 1
    assert len(copies) == 1000 and set(copies.values()) == {1}


def test_get_broadcast_answers_200_with_progress_while_it_runs(
    fast_live: LiveApp, connector: FakeConnector, make_user
) -> None:
    """The async rules over real HTTP: StartBroadcast answers 200 at once; GetBroadcast in the middle
    of the broadcast answers 200 with its progress (a 202 would make Power Automate poll it to the end);
    the internal status link answers 202 until the broadcast completes, then 200 with the same report."""
    ana, ben = make_user("Ana", "ana@contoso.example"), make_user("Ben", "ben@contoso.example")
    for user in (ana, ben):
        install(fast_live, connector, user)
    # Teams holds Ben's message until we let it go: the broadcast is surely in its middle.
    connector.fail_next(1, Scripted(503, "ServiceUnavailable", "", hang=True), ben.conversation_id)
    response = fast_live.api(
        "POST", "/api/v1/broadcasts", API_KEY, json={"recipients": [ana.upn, ben.upn], "text": "mid"}
    )
    assert response.status_code == 200, response.text
    assert "Location" not in response.headers
    broadcast_id = response.json()["id"]
    assert response.json()["status"] in ("preparing", "running")

    def midway() -> dict[str, Any] | None:
        read = fast_live.api("GET", f"/api/v1/broadcasts/{broadcast_id}", API_KEY)
        assert read.status_code == 200 and "Location" not in read.headers, read.text
        body = read.json()
        # The first deliveries are written (and sent) before the expansion marks the broadcast
        # running; Ben's hanging send then keeps it in exactly this state until released.
        counts = body["counts"]
        return body if body["status"] == "running" and counts["delivered"] == 1 and counts["sending"] == 1 else None

    progress = eventually(midway)
    assert progress["status"] == "running" and progress["progress"] == 50.0 and progress["total"] == 2
    status_link = f"{fast_live.url}/api/v1/broadcasts/{broadcast_id}/status"
    pending = fast_live.http.get(status_link, headers={"X-API-Key": API_KEY}, timeout=30)
    assert pending.status_code == 202 and pending.headers["Location"] == status_link
    assert int(pending.headers["Retry-After"]) > 0 and pending.json()["status"] == "running"

    connector.release_hung()  # Ben's call answers 503: retried, then delivered
    done = _finished(fast_live, status_link)
    assert done["status"] == "completed" and done["counts"]["delivered"] == 2 and done["progress"] == 100.0
    assert fast_live.api("GET", f"/api/v1/broadcasts/{broadcast_id}", API_KEY).json() == done
