"""The Power Automate samples use the connector exactly as generated: every operationId and parameter
name they name exists in apiDefinition.swagger.json, required inputs are given, internal ones are not."""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from teams_proactive.bot.delivery.service import next_local_time
from teams_proactive.connector.errors import STATUS_BY_CODE
from teams_proactive.connector.schemas.messages import SendMessageSchema

from tests.connector.expressions import Context, interpolate, interpolations
from tests.connector.support import OPENAPI_DIR, SAMPLES_DIR, load, operations, resolve

SPEC = load(OPENAPI_DIR / "apiDefinition.swagger.json")
OPERATIONS = {op["operationId"]: op for _, _, op in operations(SPEC)}
CONNECTOR_API = "shared_teams-proactive-messages"
FLOWS = sorted(SAMPLES_DIR.glob("*/flow.json"))
ASKED_FOR = {
    "notify-assignee", "daily-reminder", "approval-card", "broadcast-report", "read-reminder", "card-submitted",
    "delivery-failed", "installation-changed",
}  # fmt: skip


def steps(actions: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Every action with its siblings, nested ones (conditions, loops, scopes) included."""
    for name, action in actions.items():
        yield name, action, actions
        yield from steps(action.get("actions") or {})
        yield from steps((action.get("else") or {}).get("actions") or {})


def ours(node: dict[str, Any]) -> bool:
    return node.get("type", "").startswith("OpenApiConnection") and node["inputs"]["host"]["apiId"].endswith(
        f"/{CONNECTOR_API}"
    )


def check_parameters(operation_id: str, parameters: dict[str, Any]) -> None:
    operation = OPERATIONS[operation_id]
    declared = {p["name"]: p for p in operation.get("parameters", [])}
    body_fields: dict[str, Any] = {}
    required_fields: set[str] = set()
    if "body" in declared:
        schema = resolve(SPEC, declared["body"]["schema"])
        body_fields = schema["properties"]
        # Power Automate fills the notification URL itself.
        required_fields = {f for f in schema.get("required", []) if not body_fields[f].get("x-ms-notification-url")}
    given_fields = set()
    for name in parameters:
        if name.startswith("body/"):
            field = name.removeprefix("body/")
            assert field in body_fields, f"{operation_id}: no body field {field!r}"
            assert body_fields[field].get("x-ms-visibility") != "internal", f"{operation_id}: {field} is internal"
            given_fields.add(field)
        else:
            assert name in declared and declared[name]["in"] in ("path", "query"), f"{operation_id}: no {name!r}"
    assert required_fields <= given_fields, f"{operation_id}: missing {required_fields - given_fields}"
    for name, parameter in declared.items():
        if parameter["in"] in ("path", "query") and parameter.get("required"):
            assert name in parameters, f"{operation_id}: missing {name}"


def test_the_four_asked_for_flows_are_there() -> None:
    assert ASKED_FOR <= {path.parent.name for path in FLOWS}


@pytest.mark.parametrize("path", FLOWS, ids=lambda p: p.parent.name)
def test_sample_uses_the_generated_definition(path: Path) -> None:
    document = load(path)
    definition = document["properties"]["definition"]
    assert definition["$schema"].endswith("/workflowdefinition.json#")
    assert CONNECTOR_API in document["properties"]["connectionReferences"]
    used = []
    for name, trigger in definition["triggers"].items():
        if ours(trigger):
            operation_id = trigger["inputs"]["host"]["operationId"]
            assert OPERATIONS[operation_id].get("x-ms-trigger"), f"{name}: {operation_id} is not a trigger"
            assert trigger["type"] == "OpenApiConnectionWebhook"
            check_parameters(operation_id, trigger["inputs"]["parameters"])
            used.append(operation_id)
    for name, action, siblings in steps(definition["actions"]):
        for before in action.get("runAfter", {}):
            assert before in siblings, f"{name} runs after unknown {before}"
        if ours(action):
            operation_id = action["inputs"]["host"]["operationId"]
            assert operation_id in OPERATIONS, f"{name}: unknown operation {operation_id}"
            assert not OPERATIONS[operation_id].get("x-ms-trigger"), f"{name}: a trigger used as an action"
            check_parameters(operation_id, action["inputs"]["parameters"])
            used.append(operation_id)
    assert used, "the sample does not use the connector"
    # The README is a business user's checklist: it names what the designer shows, never an operationId
    # or a JSON path.
    readme = (path.parent / "README.md").read_text(encoding="utf-8")
    for operation_id in used:
        assert OPERATIONS[operation_id]["summary"] in readme, f"{path.parent.name}: README does not name {operation_id}"
    named = set(re.findall(r"\b[A-Z][a-z]+(?:[A-Z][a-z]+)+\b", readme)) & set(OPERATIONS)
    assert not named, f"{path.parent.name}: README names operationIds {named}"
    assert not re.search(r"body/|\?\[|triggerBody|outputs\(", readme), f"{path.parent.name}: README shows JSON paths"
    for heading in ("## After import", "## Try it", "## What the person sees"):
        assert heading in readme, f"{path.parent.name}: README has no {heading}"


def test_copilot_studio_page_names_existing_operations() -> None:
    page = (SAMPLES_DIR / "copilot-studio" / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([A-Z][A-Za-z]+)`", page))
    assert {"SendMessage", "GetRecipient"} <= named
    assert named - set(STATUS_BY_CODE) <= set(OPERATIONS), named - set(STATUS_BY_CODE) - set(OPERATIONS)


# ---- the samples' own logic ---------------------------------------------------------------------
ZONES = (
    "Pacific/Kiritimati",  # UTC+14
    "Pacific/Auckland",
    "Australia/Sydney",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Europe/Amsterdam",
    "UTC",
    "America/New_York",
    "America/Los_Angeles",
    "Pacific/Honolulu",
    "Pacific/Pago_Pago",  # UTC-11
)
# Ordinary days and the days clocks change (Europe, the US, Australia and New Zealand).
RUN_DAYS = ("2026-01-14", "2026-03-28", "2026-04-04", "2026-09-26", "2026-10-03", "2026-10-24", "2026-10-31")


def reminder_times(document: dict[str, Any], run_day: str) -> dict[str, dt.datetime]:
    """Where and when each person gets the daily reminder when the flow runs on ``run_day``.

    The recurrence's time (a minute late, as runs are), the flow's Compose actions and the SendMessage
    inputs are evaluated as the engine would; the service's own scheduling does the rest."""
    definition = document["properties"]["definition"]
    (trigger,) = definition["triggers"].values()
    recurrence = trigger["recurrence"]
    assert recurrence["frequency"] == "Day" and recurrence["interval"] == 1
    hour, minute = int(recurrence["schedule"]["hours"][0]), int(recurrence["schedule"]["minutes"][0])
    zone = ZoneInfo({"UTC": "UTC"}.get(recurrence.get("timeZone", "UTC"), "UTC"))
    run = dt.datetime.fromisoformat(run_day).replace(hour=hour, minute=minute, tzinfo=zone) + dt.timedelta(minutes=1)
    context = Context(now=run.astimezone(dt.UTC))
    for name, action in definition["actions"].items():
        if action["type"] == "Compose":
            context.outputs[name] = interpolate(action["inputs"], context)
    send = next(
        a for _, a, _ in steps(definition["actions"]) if ours(a) and a["inputs"]["host"]["operationId"] == "SendMessage"
    )
    times = {}
    for timezone in ZONES:
        context.items["For_each_person"] = {"aadObjectId": "00000000-0000-0000-0000-000000000001", "timezone": timezone}
        parameters = {
            k: interpolate(v, context) if isinstance(v, str) else v for k, v in send["inputs"]["parameters"].items()
        }
        local = parameters["body/deliverAtLocalTime"]
        assert (
            SendMessageSchema().validate({"recipient": "x@contoso.com", "text": "x", "deliverAtLocalTime": local}) == {}
        )
        when = next_local_time(local, timezone, context.now)
        assert when > context.now, f"{timezone}: scheduled in the past"
        times[timezone] = when.astimezone(ZoneInfo(timezone))
    return times


@pytest.mark.parametrize("run_day", RUN_DAYS)
def test_daily_reminder_reaches_everyone_at_nine_on_the_same_local_day(run_day: str) -> None:
    times = reminder_times(load(SAMPLES_DIR / "daily-reminder" / "flow.json"), run_day)
    target = dt.date.fromisoformat(run_day) + dt.timedelta(days=1)
    assert {zone: (t.date(), t.hour, t.minute) for zone, t in times.items()} == {zone: (target, 9, 0) for zone in ZONES}


def test_the_old_daily_reminder_reached_the_east_a_day_late() -> None:
    """The check above can fail: "next 09:00" from a run at 00:05 UTC is tomorrow in Sydney and Tokyo."""
    document = copy.deepcopy(load(SAMPLES_DIR / "daily-reminder" / "flow.json"))
    definition = document["properties"]["definition"]
    (trigger,) = definition["triggers"].values()
    trigger["recurrence"]["schedule"] = {"hours": ["0"], "minutes": [5]}
    send = next(
        a
        for _, a, _ in steps(definition["actions"])
        if ours(a) and "body/deliverAtLocalTime" in a["inputs"]["parameters"]
    )
    send["inputs"]["parameters"]["body/deliverAtLocalTime"] = "09:00"
    times = reminder_times(document, "2026-01-14")
    assert times["Australia/Sydney"].date() == dt.date(2026, 1, 15)  # the run's own day there is the 14th
    assert times["Europe/Amsterdam"].date() == dt.date(2026, 1, 14)


def test_deliver_at_local_time_takes_a_local_date() -> None:
    schema = SendMessageSchema()
    assert schema.validate({"recipient": "a@contoso.com", "text": "x", "deliverAtLocalTime": "2026-12-01T09:00"}) == {}
    assert "deliverAtLocalTime" in schema.validate(
        {"recipient": "a@contoso.com", "text": "x", "deliverAtLocalTime": "2026-13-01T09:00"}
    )
    assert "deliverAtLocalTime" in schema.validate(
        {"recipient": "a@contoso.com", "text": "x", "deliverAtLocalTime": "9:00"}
    )
    when = next_local_time("2026-12-01T09:00", "Australia/Sydney", dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC))
    assert when == dt.datetime(2026, 11, 30, 22, 0, tzinfo=dt.UTC)  # 09:00 AEDT (UTC+11) on 1 December


HOSTILE = '<img src=x onerror="alert(1)">Tom & Jerry\'s <b>'


def html_mail_bodies(document: dict[str, Any]) -> list[tuple[str, str]]:
    definition = document["properties"]["definition"]
    return [
        (name, action["inputs"]["parameters"]["emailMessage/Body"])
        for name, action, _ in steps(definition["actions"])
        if action.get("type") == "OpenApiConnection" and "emailMessage/Body" in action["inputs"].get("parameters", {})
    ]


def rendered_mail(document: dict[str, Any], trigger_body: dict[str, Any]) -> list[str]:
    """The HTML mail bodies the flow writes for this trigger body (Compose actions evaluated first)."""
    definition = document["properties"]["definition"]
    context = Context(trigger_body=trigger_body)
    for name, action, _ in steps(definition["actions"]):
        if action.get("type") == "Compose":
            context.outputs[name] = interpolate(action["inputs"], context)
    return [interpolate(body, context) for _, body in html_mail_bodies(document)]


def test_helpdesk_escapes_what_the_person_wrote_before_mailing_it() -> None:
    document = load(SAMPLES_DIR / "helpdesk-trigger" / "flow.json")
    person = {"text": HOSTILE, "user": {"name": HOSTILE, "upn": "tom@contoso.com"}, "eventId": "e1"}
    (body,) = rendered_mail(document, person)
    assert "<img" not in body and "<b>" not in body and "Jerry's" not in body
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;Tom &amp; Jerry&#39;s &lt;b&gt;" in body
    assert body.startswith("<p>") and "<blockquote" in body  # the mail's own markup stays HTML


@pytest.mark.parametrize("path", FLOWS, ids=lambda p: p.parent.name)
def test_no_flow_puts_trigger_text_straight_into_html(path: Path) -> None:
    """Whatever a person typed reaches an HTML mail only through an escaping Compose."""
    for name, body in html_mail_bodies(load(path)):
        for expression in interpolations(body):
            assert "triggerBody()" not in expression and "triggerOutputs()" not in expression, f"{name}: {expression}"


def test_agent_guide_names_existing_operations_and_keeps_the_risky_ones_out() -> None:
    page = (SAMPLES_DIR / "copilot-studio" / "agent-guide.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`([A-Z][A-Za-z]+)`", page)) - set(STATUS_BY_CODE)
    assert {"SendMessage", "GetRecipient", "OnCardSubmitted", "ForgetRecipient", "StartBroadcast"} <= named
    assert named <= set(OPERATIONS), named - set(OPERATIONS)
    keep_out = page[page.index("## 3. Operations to keep out") : page.index("## 4.")]
    for operation_id in ("ForgetRecipient", "StartBroadcast", "SendCardAndWait"):
        assert f"| `{operation_id}` |" in keep_out
        assert "keep it out of agents" in OPERATIONS[operation_id]["description"] or operation_id == "SendCardAndWait"


# ---- the three trigger samples, run with their own inputs ---------------------------------------
def environment(document: dict[str, Any], **values: str) -> dict[str, Any]:
    """The flow's environment variables by parameter name, with a value per schema name given."""
    found = {}
    for key, parameter in document["properties"]["definition"]["parameters"].items():
        schema = (parameter.get("metadata") or {}).get("schemaName")
        if schema:
            found[key] = values[schema]
    return found


def our_calls(document: dict[str, Any], operation_id: str) -> list[dict[str, Any]]:
    body = document["properties"]["definition"]
    nodes = [*body["triggers"].values(), *(a for _, a, _ in steps(body["actions"]))]
    return [n for n in nodes if ours(n) and n["inputs"]["host"]["operationId"] == operation_id]


def evaluated(value: Any, context: Context) -> Any:
    if isinstance(value, str):
        return interpolate(value, context)
    if isinstance(value, dict):
        return {k: evaluated(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [evaluated(v, context) for v in value]
    return value


SUBMITTER = {"name": "Ana Silva", "upn": "ana@contoso.com", "aadObjectId": "00000000-0000-0000-0000-0000000000a1"}


def test_card_submitted_listens_to_feedback_cards_and_thanks_with_the_rating() -> None:
    document = load(SAMPLES_DIR / "card-submitted" / "flow.json")
    (trigger,) = our_calls(document, "OnCardSubmitted")
    assert trigger["inputs"]["parameters"]["body/cardType"] == "feedback"  # the Card Type filter
    (send,) = our_calls(document, "SendMessage")
    event = {"eventId": "e7", "tenantId": "t1", "user": SUBMITTER, "cardType": "feedback", "values": {"rating": "4"}}
    sent = evaluated(send["inputs"]["parameters"], Context(trigger_body=event))
    assert sent["body/recipient"] == SUBMITTER["aadObjectId"] and sent["body/tenantId"] == "t1"
    assert "Ana Silva" in sent["body/text"] and "**4**" in sent["body/text"]
    assert sent["body/idempotencyKey"] == "feedback-thanks-e7"  # a retried event thanks once
    unrated = evaluated(send["inputs"]["parameters"], Context(trigger_body={**event, "values": {}}))
    assert "no rating" in unrated["body/text"]
    assert SendMessageSchema().validate({k.removeprefix("body/"): v for k, v in sent.items()}) == {}


def test_delivery_failed_mails_the_owner_with_escaped_details() -> None:
    document = load(SAMPLES_DIR / "delivery-failed" / "flow.json")
    assert our_calls(document, "OnDeliveryFailed")
    event = {
        "recipient": HOSTILE,
        "error": {"code": "RecipientBlocked", "message": HOSTILE},
        "occurredAt": "2026-01-02T10:30:00Z",
    }
    context = Context(trigger_body=event, parameters=environment(document, tp_OwnerAddress="owner@fabrikam.com"))
    definition = document["properties"]["definition"]
    for name, action, _ in steps(definition["actions"]):
        if action.get("type") == "Compose":
            context.outputs[name] = interpolate(action["inputs"], context)
    (mail,) = [a for _, a, _ in steps(definition["actions"]) if a.get("type") == "OpenApiConnection"]
    rendered = evaluated(mail["inputs"]["parameters"], context)
    assert rendered["emailMessage/To"] == "owner@fabrikam.com"
    assert "<img" not in rendered["emailMessage/Body"] and "&lt;img" in rendered["emailMessage/Body"]
    assert "2026-01-02 10:30 UTC" in rendered["emailMessage/Body"]


def test_installation_changed_welcomes_only_new_installations_with_a_card() -> None:
    document = load(SAMPLES_DIR / "installation-changed" / "flow.json")
    definition = document["properties"]["definition"]
    (condition,) = [a for a in definition["actions"].values() if a["type"] == "If"]
    left, right = condition["expression"]["equals"]
    for action, welcomed in (("installed", True), ("uninstalled", False)):
        context = Context(trigger_body={"action": action, "user": SUBMITTER, "tenantId": "t1", "eventId": "e9"})
        assert (interpolate(left, context) == right) is welcomed
    (send,) = our_calls(document, "SendMessage")
    assert send in condition["actions"].values()
    context = Context(trigger_body={"action": "installed", "user": SUBMITTER, "tenantId": "t1", "eventId": "e9"})
    sent = evaluated(send["inputs"]["parameters"], context)
    card = sent["body/card"]
    assert card["type"] == "AdaptiveCard" and card["body"][0]["text"] == "Welcome, Ana Silva!"
    assert sent["body/idempotencyKey"] == "welcome-e9"
    assert SendMessageSchema().validate({k.removeprefix("body/"): v for k, v in sent.items()}) == {}


def test_environment_variables_feed_the_flows() -> None:
    helpdesk = load(SAMPLES_DIR / "helpdesk-trigger" / "flow.json")
    context = Context(
        trigger_body={"text": "hi", "user": {"name": "A", "upn": "a@b.c"}, "eventId": "e"},
        parameters=environment(helpdesk, tp_HelpDeskAddress="desk@fabrikam.com"),
    )
    forward = helpdesk["properties"]["definition"]["actions"]["Forward_to_the_help_desk"]
    assert interpolate(forward["inputs"]["parameters"]["emailMessage/To"], context) == "desk@fabrikam.com"
    report = load(SAMPLES_DIR / "broadcast-report" / "flow.json")
    context = Context(parameters=environment(report, tp_GroupId="g-1", tp_ServiceHost="notify.fabrikam.com"))
    context.outputs["Send_the_announcement_to_everyone"] = {"id": "b-1", "counts": {}, "total": 3}
    context.outputs["Who_did_not_get_it"] = ""
    actions = report["properties"]["definition"]["actions"]
    assert interpolate(actions["List_group_members"]["inputs"]["parameters"]["groupId"], context) == "g-1"
    body = interpolate(actions["Mail_the_report_to_the_owner"]["inputs"]["parameters"]["emailMessage/Body"], context)
    assert 'href="https://notify.fabrikam.com/dashboard/broadcasts/b-1"' in body
