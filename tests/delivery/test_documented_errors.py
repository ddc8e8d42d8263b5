"""Microsoft's documented Bot Connector answers, replayed over HTTP: what each one does to a delivery and a person.

Every case comes from tests/fixtures/teams/errors (each file names its Microsoft Learn page); a
broadcast mixes the documented 403 MessageWritesBlocked body, 404 ConversationNotFound and 5xx.
"""

from __future__ import annotations

import asyncio
import json
import random

import aiohttp
import pytest
from teams_proactive.bot.delivery.policy import judge
from teams_proactive.bot.outbound import BotConnectorClient, ConnectorError

from tests.conftest import API_KEY
from tests.delivery.conftest import eventually, final_delivery, install, send, texts_in
from tests.fixtures import teams as documented
from tests.support.fake_connector import FakeConnector, Scripted
from tests.support.live_app import LiveApp
from tests.support.people import people, seed

ERRORS = documented.errors()
REFUSALS = [f for f in ERRORS if not f.expect["retry"]]
TRANSIENT = [f for f in ERRORS if f.expect["retry"]]


def _no_token() -> asyncio.Future[str | None]:
    future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


def answer_of(connector: FakeConnector, scripted: Scripted) -> ConnectorError:
    """Send one activity to the fake, scripted to answer ``scripted``; the client's error."""
    connector.fail_next(1, scripted)

    async def call() -> ConnectorError:
        async with aiohttp.ClientSession() as session:
            client = BotConnectorClient(session, _no_token, timeout_seconds=5)
            try:
                await client.send(connector.service_url(), "a:chat", {"type": "message", "text": "hi"})
            except ConnectorError as exc:
                return exc
        raise AssertionError("the documented error was not raised")

    return asyncio.run(call())


@pytest.mark.parametrize("fixture", ERRORS, ids=str)
def test_every_documented_error_names_its_microsoft_page(fixture: documented.ErrorFixture) -> None:
    assert fixture.sources
    for source in fixture.sources:
        assert source["title"]
        assert source["url"].startswith("https://learn.microsoft.com/")


@pytest.mark.parametrize("fixture", ERRORS, ids=str)
def test_each_documented_answer_is_read_and_judged_as_documented(
    connector: FakeConnector, fixture: documented.ErrorFixture
) -> None:
    error = answer_of(connector, Scripted.documented(fixture.name))
    assert error.status == fixture.status
    assert error.code == fixture.teams_code
    if "retryAfter" in fixture.expect:
        assert error.retry_after == fixture.expect["retryAfter"]
    verdict = judge(error)
    assert verdict.retry is fixture.expect["retry"]
    assert verdict.error_code == fixture.expect["code"]
    assert verdict.reference_status == fixture.expect["referenceStatus"]
    assert verdict.error()["teamsCode"] == fixture.teams_code
    assert verdict.message and "None" not in verdict.message


def test_the_message_writes_blocked_body_is_byte_for_byte_the_documented_one(connector: FakeConnector) -> None:
    fixture = documented.error("403-message-writes-blocked")
    # The page's example says Content-Length: 196: the fixture is that body, not a re-serialisation.
    assert len(fixture.body.encode("utf-8")) == documented.raw(fixture.name)["documentedContentLength"] == 196
    outer = json.loads(fixture.body)
    assert outer["errorCode"] == 209 and isinstance(outer["message"], str) and "\r\n" in outer["message"]
    error = answer_of(connector, Scripted(403, "MessageWritesBlocked"))  # a bare script answers the same body
    assert (error.code, error.message) == ("MessageWritesBlocked", "Thread is blocked from message writes.")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        # The documented errorCode + JSON-string form with a subCode Microsoft has not documented yet.
        (
            '{"errorCode":210,"message":"{\\r\\n  \\"subCode\\": \\"ChatWritesPaused\\",\\r\\n  \\"details\\": '
            '\\"Something new.\\"\\r\\n}"}',
            403,
            "ChatWritesPaused",
        ),
        ('{"error":{"code":"BrandNewRefusal","message":"Something new."}}', 403, "BrandNewRefusal"),
        ('{"errorCode":211,"message":"Something new."}', 403, "ErrorCode211"),
        ('{"error":{"code":"BrandNewMissing","message":"Something new."}}', 404, "BrandNewMissing"),
    ],
)
def test_an_unknown_code_is_reported_verbatim(body: str, status: int, code: str) -> None:
    from teams_proactive.bot.jsonhttp import error_of as _error_of

    parsed_code, message = _error_of(body.encode(), status)
    assert parsed_code == code
    verdict = judge(ConnectorError(status, parsed_code, message))
    assert verdict.retry is False
    assert verdict.error()["teamsCode"] == code
    assert code in verdict.message
    assert verdict.reference_status == ("notFound" if status == 404 else None)


def test_each_documented_refusal_fails_the_delivery_and_sets_the_person_once(
    fast_live: LiveApp, connector: FakeConnector, make_user
) -> None:
    for fixture in REFUSALS:
        user = make_user(name=fixture.name, upn=f"{fixture.name}@contoso.example")
        install(fast_live, connector, user)
        connector.fail_next(1, Scripted.documented(fixture.name), user.conversation_id)
        body = send(fast_live, {"recipient": user.upn, "text": "refused", "wait": 30}).json()
        assert body["status"] == "failed", fixture.name
        assert body["attempts"] == 1, fixture.name
        assert body["error"]["code"] == fixture.expect["code"], fixture.name
        assert body["error"]["teamsCode"] == fixture.teams_code, fixture.name
        assert len(connector.calls_to(user.conversation_id)) == 2, fixture.name  # the welcome and one try
        recipient = fast_live.api("GET", f"/api/v1/recipients/{user.upn}", API_KEY).json()
        assert recipient["status"] == (fixture.expect["referenceStatus"] or "active"), fixture.name


def test_each_documented_transient_answer_is_retried_to_exactly_one_copy(
    fast_live: LiveApp, connector: FakeConnector, make_user
) -> None:
    for fixture in TRANSIENT:
        user = make_user(name=fixture.name, upn=f"{fixture.name}@contoso.example")
        install(fast_live, connector, user)
        # A documented Retry-After (2 s) is honoured; the others back off in tens of milliseconds.
        connector.fail_next(1, Scripted.documented(fixture.name), user.conversation_id)
        body = send(fast_live, {"recipient": user.upn, "text": "eventually", "wait": 30}).json()
        assert body["status"] == "delivered", fixture.name
        assert body["attempts"] == 2, fixture.name
        assert texts_in(connector, user.conversation_id, "eventually") == 1, fixture.name


def test_broadcast_with_documented_refusals_marks_everyone_and_loses_nobody(
    fast_live: LiveApp, connector: FakeConnector
) -> None:
    crowd = people(200, tenant_id="tenant-contoso", prefix="wire")
    fast_live.runtime.call(seed(fast_live.runtime.store, crowd, connector.service_url("a")))
    rng = random.Random(12)
    order = list(range(len(crowd)))
    rng.shuffle(order)
    blocked = {crowd[i].upn for i in order[:10]}  # 5%: the documented 403 errorCode 209 body
    gone = {crowd[i].upn for i in order[10:16]}  # 3%: 404 ConversationNotFound
    flaky = {crowd[i].upn for i in order[16:26]}  # 5%: 502 / 503 (empty) / 504 (plain text), then fine
    transient = ["502-service-error", "503-empty-body", "504-plain-text"]
    for n, person in enumerate(crowd):
        if person.upn in blocked:
            connector.fail_next(1, Scripted.documented("403-message-writes-blocked"), person.conversation_id)
        elif person.upn in gone:
            connector.fail_next(1, Scripted.documented("404-conversation-not-found"), person.conversation_id)
        elif person.upn in flaky:
            connector.fail_next(1 + n % 2, Scripted.documented(transient[n % 3]), person.conversation_id)

    response = fast_live.api(
        "POST",
        "/api/v1/broadcasts",
        API_KEY,
        json={"recipients": [p.upn for p in crowd], "text": "all hands"},
    )
    assert response.status_code in (200, 202), response.text
    broadcast_id = response.json()["id"]

    def report() -> dict | None:
        answer = fast_live.api("GET", f"/api/v1/broadcasts/{broadcast_id}", API_KEY).json()
        return answer if answer.get("progress") == 100.0 else None

    done = eventually(report, timeout=90)
    assert done["counts"] == {"queued": 0, "sending": 0, "delivered": 184, "failed": 16, "skipped": 0, "recalled": 0, "read": 0, "answered": 0}
    failures = {f["recipient"]: f["code"] for f in done["failures"]}
    assert failures == {upn: "RecipientUnreachable" for upn in blocked | gone}

    # Nobody lost, nobody twice: one copy for each deliverable person, none for the others.
    for person in crowd:
        expected = 0 if person.upn in blocked | gone else 1
        assert texts_in(connector, person.conversation_id, "all hands") == expected, person.upn

    for person in crowd:
        status = fast_live.api("GET", f"/api/v1/recipients/{person.upn}", API_KEY).json()["status"]
        wanted = "blocked" if person.upn in blocked else "notFound" if person.upn in gone else "active"
        assert status == wanted, person.upn

    def listed(status: str) -> set[str]:
        found: set[str] = set()
        url: str | None = f"/api/v1/recipients?status={status}&pageSize=7"
        while url:
            page = fast_live.api("GET", url.removeprefix(fast_live.url), API_KEY).json()
            found |= {p["recipient"] for p in page["value"]}
            url = page["nextLink"]
        return found

    assert listed("blocked") == blocked
    assert listed("notFound") == gone
    assert len(listed("active")) == 184


def test_a_message_writes_blocked_send_answers_the_waiting_caller_with_the_verbatim_code(
    fast_live: LiveApp, connector: FakeConnector, make_user
) -> None:
    user = make_user()
    install(fast_live, connector, user)
    connector.fail_next(1, Scripted(403, "ChatWritesPaused", "Something new."), user.conversation_id)
    body = send(fast_live, {"recipient": user.upn, "text": "x", "wait": 0}).json()
    done = final_delivery(fast_live, body["id"])
    assert done["error"]["code"] == "Forbidden"
    assert done["error"]["teamsCode"] == "ChatWritesPaused"
    assert "ChatWritesPaused" in done["error"]["message"]


def test_the_maker_doc_lists_every_documented_answer() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "teams-errors.md").read_text(encoding="utf-8")
    for fixture in ERRORS:
        code = fixture.teams_code if not fixture.teams_code.startswith("Http") else "(none)"
        assert f"| {fixture.status} | `{code}`" in doc or f"| {fixture.status} | {code}" in doc, fixture.name
        assert f"`{fixture.expect['code']}`" in doc, fixture.name
