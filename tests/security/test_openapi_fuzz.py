"""Schema-driven fuzzing: schemathesis against the live app's own /openapi.json, with a valid key.

Every operation gets a bounded number of generated requests (positive and negative data); the
checks are: never a 5xx, status codes and content types as documented, and every response body
conforming to its documented schema. Operations that need existing data are sometimes pointed at a
person installed beforehand and at a message and broadcast already sent to them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode, checks
from teams_proactive.bot.events import NoEvents

from tests.conftest import API_KEY
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector, Member
from tests.support.fake_graph import FakeGraph
from tests.support.live_app import LiveApp

EXAMPLES_PER_OPERATION = 25
CARD = {
    "type": "AdaptiveCard",
    "version": "1.5",
    "body": [{"type": "Input.Text", "id": "answer"}],
    "actions": [{"type": "Action.Submit", "title": "Send"}],
}
USER = act.TeamsUser(name="Schema Thesis", upn="schemathesis@contoso.example")
# Operations whose success path the run must reach at least once (ForgetRecipient is kept away from
# the seeded person, so it only ever answers 404).
MUST_SUCCEED = [
    "POST /api/v1/messages",
    "GET /api/v1/messages/{message_id}",
    "PUT /api/v1/messages/{message_id}",
    "DELETE /api/v1/messages/{message_id}",
    "GET /api/v1/recipients",
    "GET /api/v1/recipients/{recipient}",
    "POST /api/v1/broadcasts",
    "GET /api/v1/broadcasts/{broadcast_id}",
]
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeConnector]:
    with FakeConnector() as connector:
        connector.add_member(Member(USER.user_id, USER.name, USER.aad_object_id, USER.upn, USER.upn, USER.tenant_id))
        yield connector


@pytest.fixture(scope="module")
def fuzzed_app(fake: FakeConnector, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    path = tmp_path_factory.mktemp("schemathesis")
    env = {
        "STORE_URL": f"sqlite:///{path / 'store.db'}",
        "CONNECTOR_API_KEY": API_KEY,
        "SEND_RATE_PER_TENANT": "500",
        "RATE_LIMIT_PER_MINUTE": "0",  # the fuzzer is one key sending hundreds of requests a minute
        # Graph (a local fake) and a home tenant: generated installIfMissing, groups and teams are
        # accepted, so StartBroadcast's success path is reached with them too.
        "MicrosoftAppTenantId": USER.tenant_id,
    }
    # No webhook sink: generated subscriptions carry made-up callback URLs that must not be called.
    with FakeGraph(path) as graph, LiveApp({**env, **graph.env()}, runtime_kwargs={"events": NoEvents()}) as live:
        assert live.activity(act.install(USER, fake.service_url("a"))).status_code == 200
        sent = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": USER.upn, "text": "seed"}).json()
        broadcast = live.api("POST", "/api/v1/broadcasts", API_KEY, json={"recipients": [USER.upn], "text": "b"}).json()
        card = live.api(
            "POST",
            "/api/v1/cards/wait",
            API_KEY,
            json={"recipient": USER.upn, "card": CARD, "notificationUrl": "https://flow.invalid/run"},
        ).json()
        subscription = live.api(
            "POST", "/api/v1/subscriptions", API_KEY, json={"event": "any", "notificationUrl": "https://flow.invalid/x"}
        ).json()
        yield {
            "live": live,
            "ids": {
                "recipient": [USER.upn, USER.aad_object_id],
                "message_id": [sent["id"]],
                "card_id": [card["id"]],
                "subscription_id": [subscription["id"]],
                "broadcast_id": [broadcast["id"]],
            },
        }


def _aim(case: Any, data: st.DataObject, known: dict[str, list[str]]) -> None:
    """Now and then point a generated request at things that exist, so the 200 paths run too."""
    forgetting = case.operation.method.upper() == "DELETE" and "{recipient}" in case.operation.path
    for name in list(case.path_parameters or {}):
        # Never ForgetRecipient on the seeded person: the other operations need them.
        if name in known and not forgetting and data.draw(st.booleans(), label=f"known {name}"):
            case.path_parameters[name] = data.draw(st.sampled_from(known[name]), label=name)
    body = case.body
    if not isinstance(body, dict):
        return
    if isinstance(body.get("wait"), int | float) and not isinstance(body["wait"], bool):
        body["wait"] = min(body["wait"], 1)  # bounded run time; waiting is tested elsewhere
    if case.operation.method.upper() not in ("POST", "PUT") or not data.draw(st.booleans(), label="repair"):
        return
    # The definition cannot say everything the service checks (at least one of text and card, a card
    # that is an Adaptive Card, one kind of schedule), so half the bodies are made to pass those rules.
    if "recipient" in body:
        body["recipient"] = USER.upn
        body.pop("tenantId", None)
    if "recipients" in body or "allActiveUsers" in body:
        body["recipients"], body["allActiveUsers"] = [USER.upn], False
        body.pop("tenantId", None)
    if "card" in body or "/cards/" in case.operation.path:
        body["card"] = CARD
    if "text" in body or "card" not in body:
        body["text"] = "fuzz"
    body.pop("deliverAtLocalTime", None)


def _fuzz(operation: Any, mode: GenerationMode, live: LiveApp, known: dict[str, list[str]]) -> Counter[int]:
    statuses: Counter[int] = Counter()

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        _aim(case, data, known)
        response = case.call_and_validate(base_url=live.url, headers={"X-API-Key": API_KEY}, checks=CHECKS, timeout=60)
        statuses[response.status_code] += 1

    run()
    return statuses


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_api_conforms_to_its_own_definition(fuzzed_app: dict[str, Any], mode: GenerationMode) -> None:
    live: LiveApp = fuzzed_app["live"]
    schema = schemathesis.openapi.from_url(live.url + "/openapi.json")
    failures: dict[str, str] = {}
    statuses: dict[str, Counter[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        try:
            statuses[operation.label] = _fuzz(operation, mode, live, fuzzed_app["ids"])
        # Schemathesis raises its findings as a BaseExceptionGroup; every operation's are reported at once.
        except (Exception, BaseExceptionGroup) as exc:
            failures[operation.label] = f"{type(exc).__name__}: {exc}"
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    assert set(MUST_SUCCEED) <= set(statuses), "the definition lost operations"
    if mode == GenerationMode.POSITIVE:
        # The success paths ran too, so success bodies were checked against their schemas.
        missed = [label for label in MUST_SUCCEED if not any(200 <= code < 300 for code in statuses[label])]
        assert not missed, {label: dict(statuses[label]) for label in missed}
