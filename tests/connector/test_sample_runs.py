"""Every sample flow run with its own inputs: its expressions evaluated as the engine would
(tests/connector/flowrun.py), each branch reached by one scenario or another, the environment variables
read, and what it sends to the service valid for the service's own request schemas."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from teams_proactive.connector.schemas.broadcasts import BroadcastRecipientQuerySchema, StartBroadcastSchema
from teams_proactive.connector.schemas.cards import SendCardAndWaitSchema
from teams_proactive.connector.schemas.messages import SendMessageSchema
from teams_proactive.connector.schemas.recipients import RecipientQuerySchema
from teams_proactive.connector.schemas.subscriptions import CardTriggerSubscriptionSchema, TriggerSubscriptionSchema

from tests.connector.expressions import Context
from tests.connector.flowrun import Call, run_flow
from tests.connector.support import SAMPLES_DIR, load
from tests.connector.test_samples import CONNECTOR_API, ours, steps

NOW = dt.datetime(2026, 3, 2, 12, 1, tzinfo=dt.UTC)
CALLBACK = "https://prod-00.westeurope.logic.azure.com/workflows/x/triggers/y/run"
ENVIRONMENT = {
    "tp_ServiceHost": "notify.fabrikam.com",
    "tp_SharePointSite": "https://fabrikam.sharepoint.com/sites/desk",
    "tp_TicketsList": "Tickets",
    "tp_ReadsList": "Campaign reads",
    "tp_GroupId": "group-7",
    "tp_HelpDeskAddress": "desk@fabrikam.com",
    "tp_OwnerAddress": "owner@fabrikam.com",
}
ANA = {"name": "Ana Silva", "upn": "ana@fabrikam.com", "aadObjectId": "a1", "id": "29:a1"}
REQUESTER = {"headers": {"x-ms-user-email": "requester@fabrikam.com"}}


@dataclass
class Scenario:
    name: str
    trigger_body: Any = None
    trigger_outputs: Any = None
    responses: dict[str, Any] = field(default_factory=dict)
    check: Callable[[list[Call]], None] = lambda calls: None


def ours_called(calls: list[Call], operation_id: str) -> list[dict[str, Any]]:
    return [c.parameters for c in calls if c.api == CONNECTOR_API and c.operation_id == operation_id]


def called(calls: list[Call], operation_id: str) -> list[dict[str, Any]]:
    return [c.parameters for c in calls if c.operation_id == operation_id]


def _assigned(calls: list[Call]) -> None:
    (changes,) = called(calls, "GetItemChanges")
    assert changes["dataset"] == ENVIRONMENT["tp_SharePointSite"] and changes["table"] == "Tickets"
    (sent,) = ours_called(calls, "SendMessage")
    assert sent["body/recipient"] == "megan@fabrikam.com"
    assert "**Printer jam** was assigned to you by Adele" in sent["body/text"]
    assert "(https://fabrikam.sharepoint.com/sites/desk/7)" in sent["body/text"]


def _daily(calls: list[Call]) -> None:
    sent = ours_called(calls, "SendMessage")
    assert [s["body/recipient"] for s in sent] == ["a1", "b2@fabrikam.com"]
    assert sent[0]["body/text"].startswith("Good morning Ana!") and sent[1]["body/text"].startswith("Good morning !")
    assert {s["body/deliverAtLocalTime"] for s in sent} == {"2026-03-03T09:00"}


def _answered(decision: str, word: str) -> Callable[[list[Call]], None]:
    def check(calls: list[Call]) -> None:
        (card,) = ours_called(calls, "SendCardAndWait")
        assert card["body/recipient"] == "boss@fabrikam.com"
        (told,) = ours_called(calls, "SendMessage")
        assert told["body/recipient"] == "requester@fabrikam.com"
        assert f"**Bo** {word} *Laptop*" in told["body/text"] and "fine by me" in told["body/text"]

    return check


def _nobody(calls: list[Call]) -> None:
    (told,) = ours_called(calls, "SendMessage")
    assert "Nobody answered your request *Laptop*" in told["body/text"] and "(expired)" in told["body/text"]


def _announced(calls: list[Call]) -> None:
    (members,) = called(calls, "ListGroupMembers")
    assert members["groupId"] == "group-7"
    (broadcast,) = ours_called(calls, "StartBroadcast")
    assert broadcast["body/recipients"] == ["u1", "u2", "u3"] and broadcast["body/text"] == "Office closed Friday"
    (mail,) = called(calls, "SendEmailV2")
    assert mail["emailMessage/To"] == "requester@fabrikam.com"
    assert mail["emailMessage/Subject"] == "Announcement report: 2 of 3 delivered"
    assert 'href="https://notify.fabrikam.com/dashboard/broadcasts/b-42"' in mail["emailMessage/Body"]
    assert "<td>u3</td>" in mail["emailMessage/Body"]


def _reminded(calls: list[Call]) -> None:
    (listed,) = ours_called(calls, "ListBroadcastRecipients")
    assert listed["broadcast_id"] == "b-42" and listed["readState"] == "noReceipt"
    (broadcast,) = ours_called(calls, "StartBroadcast")
    assert broadcast["body/recipients"] == ["x@fabrikam.com", "y@fabrikam.com"]
    assert broadcast["body/text"] == "In case you missed it: Office closed Friday"


def _logged(calls: list[Call]) -> None:
    (row,) = called(calls, "PostItem")
    assert row["dataset"] == ENVIRONMENT["tp_SharePointSite"] and row["table"] == "Campaign reads"
    assert (row["item/Title"], row["item/BroadcastId"]) == ("ana@fabrikam.com", "b-42")


def _forwarded(calls: list[Call]) -> None:
    (mail,) = called(calls, "SendEmailV2")
    assert mail["emailMessage/To"] == "desk@fabrikam.com" and "Ana Silva" in mail["emailMessage/Subject"]
    (ack,) = ours_called(calls, "SendMessage")
    assert ack["body/recipient"] == "a1" and ack["body/idempotencyKey"] == "ack-e1"


def _thanked(calls: list[Call]) -> None:
    (subscription,) = ours_called(calls, "OnCardSubmitted")
    assert subscription["body/cardType"] == "feedback"
    (sent,) = ours_called(calls, "SendMessage")
    assert "you rated it **5**" in sent["body/text"]


def _mailed_owner(calls: list[Call]) -> None:
    (mail,) = called(calls, "SendEmailV2")
    assert mail["emailMessage/To"] == "owner@fabrikam.com"
    assert "gone@fabrikam.com" in mail["emailMessage/Body"] and "2026-03-02 11:58 UTC" in mail["emailMessage/Body"]


def _welcomed(calls: list[Call]) -> None:
    (sent,) = ours_called(calls, "SendMessage")
    assert sent["body/card"]["body"][0]["text"] == "Welcome, Ana Silva!"


def _none_sent(calls: list[Call]) -> None:
    assert [c for c in calls if c.operation_id in ("SendMessage", "StartBroadcast", "PostItem")] == []


TICKET = {
    "body/ID": 7, "body/{TriggerWindowStartToken}": "t0", "body/AssignedTo/Email": "megan@fabrikam.com",
    "body/Title": "Printer jam", "body/Editor/DisplayName": "Adele", "body/{Link}": "https://fabrikam.sharepoint.com/sites/desk/7",
    "body/Modified": "2026-03-02T11:59:00Z",
}  # fmt: skip
APPROVAL = {"text": "boss@fabrikam.com", "text_1": "Laptop", "number": 1200}
ANSWER = {"respondedBy": {"name": "Bo"}, "response": {"comment": "fine by me"}}
REPORT = {
    "id": "b-42", "total": 3, "completedAt": "2026-03-02T12:30:00Z",
    "counts": {"delivered": 2, "failed": 1, "skipped": 0},
    "failures": [{"recipient": "u3", "code": "RecipientUnreachable", "message": "removed the bot"}],
}  # fmt: skip
SCENARIOS: dict[str, list[Scenario]] = {
    "notify-assignee": [
        Scenario("assigned", trigger_outputs=TICKET,
                 responses={"Get_changes_since_the_trigger": {"ColumnHasChanged": {"AssignedTo": True}}}, check=_assigned),
        Scenario("other column", trigger_outputs=TICKET,
                 responses={"Get_changes_since_the_trigger": {"ColumnHasChanged": {"AssignedTo": False}}}, check=_none_sent),
    ],
    "daily-reminder": [
        Scenario("two people", responses={"List_people_who_can_be_reached": {"value": [
            {"aadObjectId": "a1", "upn": "ana@fabrikam.com", "name": "Ana Silva"}, {"upn": "b2@fabrikam.com"}]}},
                 check=_daily),
    ],
    "approval-card": [
        Scenario("approved", APPROVAL, REQUESTER,
                 {"Ask_for_approval_in_Teams": {**ANSWER, "status": "responded", "response": {"decision": "approve", "comment": "fine by me"}}},
                 _answered("approve", "approved")),
        Scenario("rejected", APPROVAL, REQUESTER,
                 {"Ask_for_approval_in_Teams": {**ANSWER, "status": "responded", "response": {"decision": "reject", "comment": "fine by me"}}},
                 _answered("reject", "rejected")),
        Scenario("expired", APPROVAL, REQUESTER, {"Ask_for_approval_in_Teams": {"status": "expired"}}, _nobody),
    ],
    "broadcast-report": [
        Scenario("announced", {"text": "Office closed Friday"}, REQUESTER,
                 {"List_group_members": {"value": [{"id": "u1"}, {"id": "u2"}, {"id": "u3"}]},
                  "Send_the_announcement_to_everyone": REPORT}, _announced),
    ],
    "read-reminder": [
        Scenario("two without receipt", {"text": "b-42", "text_1": "Office closed Friday"}, None,
                 {"Who_has_no_read_receipt": {"value": [{"recipient": "x@fabrikam.com"}, {"recipient": "y@fabrikam.com"}]}},
                 _reminded),
        Scenario("everyone read it", {"text": "b-42", "text_1": "x"}, None, {"Who_has_no_read_receipt": {"value": []}},
                 _none_sent),
    ],
    "read-log": [
        Scenario("a broadcast read", {"recipient": "ana@fabrikam.com", "broadcastId": "b-42",
                                      "readAt": "2026-03-02T12:00:00Z"}, check=_logged),
        Scenario("a single message read", {"recipient": "ana@fabrikam.com", "broadcastId": None}, check=_none_sent),
    ],
    "helpdesk-trigger": [
        Scenario("a question", {"text": "My laptop will not start", "user": ANA, "tenantId": "t1", "eventId": "e1"},
                 check=_forwarded),
    ],
    "card-submitted": [
        Scenario("rated", {"user": ANA, "tenantId": "t1", "eventId": "e2", "values": {"rating": "5"}}, check=_thanked),
    ],
    "delivery-failed": [
        Scenario("blocked", {"recipient": "gone@fabrikam.com", "error": {"code": "RecipientBlocked", "message": "blocked"},
                             "occurredAt": "2026-03-02T11:58:12Z"}, check=_mailed_owner),
    ],
    "installation-changed": [
        Scenario("installed", {"action": "installed", "user": ANA, "tenantId": "t1", "eventId": "e3"}, check=_welcomed),
        Scenario("removed", {"action": "uninstalled", "user": ANA, "tenantId": "t1", "eventId": "e4"}, check=_none_sent),
    ],
}  # fmt: skip


def environment(document: dict[str, Any]) -> dict[str, Any]:
    found = {}
    for key, parameter in document["properties"]["definition"]["parameters"].items():
        schema = (parameter.get("metadata") or {}).get("schemaName")
        if schema:
            found[key] = ENVIRONMENT[schema]
    return found


def valid_for_the_service(call: Call) -> None:
    """What a call sends our service passes the request schema the service validates it with."""
    body = {k.removeprefix("body/"): v for k, v in call.parameters.items() if k.startswith("body/")}
    query = {k: v for k, v in call.parameters.items() if not k.startswith("body/")}
    schemas = {
        "SendMessage": lambda: SendMessageSchema().validate(body),
        "StartBroadcast": lambda: StartBroadcastSchema().validate(body),
        "SendCardAndWait": lambda: SendCardAndWaitSchema().validate({**body, "notificationUrl": CALLBACK}),
        "ListRecipients": lambda: RecipientQuerySchema().validate(query),
        "ListBroadcastRecipients": lambda: BroadcastRecipientQuerySchema().validate(
            {k: v for k, v in query.items() if k != "broadcast_id"}
        ),
        "OnCardSubmitted": lambda: CardTriggerSubscriptionSchema().validate({**body, "notificationUrl": CALLBACK}),
    }
    check = schemas.get(
        call.operation_id, lambda: TriggerSubscriptionSchema().validate({**body, "notificationUrl": CALLBACK})
    )
    assert check() == {}, f"{call.action}: {call.operation_id} {call.parameters}"


def test_every_sample_has_scenarios() -> None:
    assert set(SCENARIOS) == {path.parent.name for path in SAMPLES_DIR.glob("*/flow.json")}


@pytest.mark.parametrize("folder", sorted(SCENARIOS))
def test_sample_runs_with_its_own_inputs(folder: str) -> None:
    document = load(SAMPLES_DIR / folder / "flow.json")
    definition = document["properties"]["definition"]
    reached: set[str] = set()
    for scenario in SCENARIOS[folder]:
        context = Context(
            now=NOW,
            trigger_body=scenario.trigger_body,
            trigger_outputs=scenario.trigger_outputs,
            parameters=environment(document),
        )
        calls = run_flow(document, context=context, responses=scenario.responses)
        for call in calls:
            if call.api == CONNECTOR_API:
                valid_for_the_service(call)
        scenario.check(calls)
        reached |= {call.action for call in calls}
    # Between them the scenarios reach every call the flow can make.
    every = {name for name, node in definition["triggers"].items() if node["type"].startswith("OpenApi")}
    every |= {name for name, action, _ in steps(definition["actions"]) if action["type"].startswith("OpenApi")}
    assert reached == every, every - reached
    assert any(ours(node) for _, node, _ in steps(definition["actions"])) or any(
        ours(t) for t in definition["triggers"].values()
    )
