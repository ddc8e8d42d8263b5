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
from teams_proactive.connector.schemas import SendMessageSchema

from tests.connector.expressions import Context, interpolate, interpolations
from tests.connector.support import OPENAPI_DIR, SAMPLES_DIR, load, operations, resolve

SPEC = load(OPENAPI_DIR / "apiDefinition.swagger.json")
OPERATIONS = {op["operationId"]: op for _, _, op in operations(SPEC)}
CONNECTOR_API = "shared_teams-proactive-messages"
FLOWS = sorted(SAMPLES_DIR.glob("*/flow.json"))
ASKED_FOR = {"notify-assignee", "daily-reminder", "approval-card", "broadcast-report", "read-reminder"}


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
    readme = (path.parent / "README.md").read_text(encoding="utf-8")
    for operation_id in used:
        assert operation_id in readme, f"README.md of {path.parent.name} does not explain {operation_id}"


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
