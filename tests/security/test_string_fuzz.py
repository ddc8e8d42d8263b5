"""Every string field fuzzed with hostile text: each REST operation, each MCP tool, and activities.

``test_openapi_fuzz.py`` (schemathesis) checks the API against its own definition with the data a
schema describes; it never sends what a schema cannot say: a lone surrogate (``"\\ud800"`` is valid
JSON), a NUL, right-to-left overrides, a 1 MB string, input nested thousands of levels deep, or a
number, list or object where a string belongs. This module does, with Hypothesis strategies of its
own. The fields come from the served definition (``/openapi.json``) and from the MCP server's
``tools/list``, so a new operation or tool is fuzzed without touching this file; each generated
request puts one hostile value into one string field of an otherwise valid request.

What must hold: never a 5xx (nor an MCP ``InternalError``); afterwards every record reads back
through the store's public read methods; the dispatcher and the broadcast coordinator still deliver
(a message and a broadcast to another person go out, which they could not if one stored record
stopped their claim). The count of generated inputs per operation is printed in the terminal summary.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from teams_proactive.bot.events import NoEvents

from tests.conftest import API_KEY
from tests.security.conftest import FUZZ_COUNTS, all_deliveries, all_references, final_delivery, finished_broadcast
from tests.support import activities as act
from tests.support.fake_connector import FakeConnector, Member
from tests.support.live_app import LiveApp

EXAMPLES_PER_OPERATION = 20
EXAMPLES_PER_TOOL = 20
ACTIVITY_EXAMPLES = 120
CARD = {
    "type": "AdaptiveCard",
    "version": "1.5",
    "body": [{"type": "Input.Text", "id": "answer", "label": "Answer"}],
    "actions": [{"type": "Action.Submit", "title": "Send"}],
}
USER = act.TeamsUser(name="String Fuzz", upn="stringfuzz@contoso.example")
CANARY = act.TeamsUser(name="Canary", upn="canary@contoso.example")
CALLBACK = "https://flow.invalid/workflows/fuzz/run"
ONE_MB = "x" * (1024 * 1024)
DEEP_MARK = "__deep_nesting_{}__"


# ---- hostile values -----------------------------------------------------------------------------
class Deep:
    """A value nested ``depth`` levels deep: written into the JSON text directly (json.dumps would
    give up long before the service's decoder does)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth


def _around(middle: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.builds(lambda a, m, b: a + m + b, st.text(max_size=8), middle, st.text(max_size=8))


SURROGATE = st.integers(0xD800, 0xDFFF).map(chr)
BIDI = st.sampled_from(["\u202e", "\u202d", "\u2066", "\u2067", "\u2068", "\u200f", "\u061c"])
HOSTILE_TEXT = st.one_of(
    _around(SURROGATE),
    _around(st.just("\x00")),
    _around(BIDI).map(lambda s: s + "@contoso.example"),
    st.just(ONE_MB),
    st.builds(lambda s: ONE_MB[: len(ONE_MB) - 8] + s, SURROGATE.map(lambda c: c * 2)),
    st.text(alphabet=st.characters(exclude_categories=()), max_size=40),  # any code point, surrogates too
)
WRONG_TYPE = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
)
HOSTILE = st.one_of(HOSTILE_TEXT, WRONG_TYPE, st.integers(1_000, 20_000).map(Deep))


def encode(value: Any) -> bytes:
    """JSON text with lone surrogates as ``\\udXXX`` escapes (ensure_ascii) and Deep values spelled out."""
    deep: list[Deep] = []

    def mark(node: Any) -> Any:
        if isinstance(node, Deep):
            deep.append(node)
            return DEEP_MARK.format(len(deep) - 1)
        if isinstance(node, dict):
            return {k: mark(v) for k, v in node.items()}
        if isinstance(node, list):
            return [mark(v) for v in node]
        return node

    text = json.dumps(mark(value), ensure_ascii=True)
    for index, nested in enumerate(deep):
        text = text.replace(json.dumps(DEEP_MARK.format(index)), "[" * nested.depth + "]" * nested.depth)
    return text.encode("ascii")


def url_part(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value if not isinstance(value, Deep) else "deep")
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


# ---- the fields, from the definitions -----------------------------------------------------------
def _resolve(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = definitions[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def string_paths(schema: dict[str, Any], definitions: dict[str, Any], prefix: tuple[Any, ...] = ()) -> list[tuple]:
    """Every place a string goes in a body schema: plain fields, items of string lists, nested objects;
    a free-form object (a card) gets a string put inside it."""
    schema = _resolve(schema, definitions)
    kind = schema.get("type")
    if kind == "string":
        return [prefix]
    if kind == "array":
        return string_paths(schema.get("items", {}), definitions, (*prefix, 0))
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties")
        if not properties:
            return [(*prefix, "body", 0, "label"), (*prefix, "fuzz")] if prefix else []
        found: list[tuple] = []
        for name, sub in properties.items():
            found += string_paths(sub, definitions, (*prefix, name))
        return found
    return []


def base_value(schema: dict[str, Any], definitions: dict[str, Any], name: str = "") -> Any:
    """A valid value for a required field (the repairs below make it one the service takes)."""
    schema = _resolve(schema, definitions)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "string":
        return "fuzz"
    if kind == "boolean":
        return False
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "array":
        return [base_value(schema.get("items", {}), definitions)]
    return {}


def repaired(body: dict[str, Any], schema_properties: dict[str, Any]) -> dict[str, Any]:
    """Aimed at the seeded person, with a real card and no waiting: the hostile value is then the one
    thing wrong with the request, so it reaches as deep into the service as it can."""
    names = set(schema_properties)
    for name, value in {
        "recipient": USER.upn,
        "recipients": [USER.upn],
        "card": CARD,
        "text": "fuzz",
        "notificationUrl": CALLBACK,
        "wait": 0,
    }.items():
        if name in names:
            body[name] = value
    if "event" in names:
        body["event"] = "any"
    body.pop("deliverAtLocalTime", None)
    body.pop("deliverAt", None)
    return body


def put(body: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        node = body if isinstance(body, list) and body else [None]
        node = list(node)
        node[0] = put(node[0], rest, value)
        return node
    node = dict(body) if isinstance(body, dict) else {}
    node[head] = put(node.get(head), rest, value)
    return node


# ---- the app ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fake() -> Iterator[FakeConnector]:
    with FakeConnector() as connector:
        for user in (USER, CANARY):
            connector.add_member(
                Member(user.user_id, user.name, user.aad_object_id, user.upn, user.upn, user.tenant_id)
            )
        yield connector


@pytest.fixture(scope="module")
def fuzzed(fake: FakeConnector, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    path = tmp_path_factory.mktemp("string-fuzz")
    env = {
        "STORE_URL": f"sqlite:///{path / 'store.db'}",
        "CONNECTOR_API_KEY": API_KEY,
        "SEND_RATE_PER_TENANT": "500",
        "RATE_LIMIT_PER_MINUTE": "0",
        "MicrosoftAppTenantId": USER.tenant_id,
    }
    with LiveApp(env, runtime_kwargs={"events": NoEvents()}) as live:
        for user in (USER, CANARY):
            assert live.activity(act.install(user, fake.service_url("a"))).status_code == 200
        sent = live.api("POST", "/api/v1/messages", API_KEY, json={"recipient": USER.upn, "text": "seed"}).json()
        broadcast = live.api("POST", "/api/v1/broadcasts", API_KEY, json={"recipients": [USER.upn], "text": "b"}).json()
        card = live.api(
            "POST",
            "/api/v1/cards/wait",
            API_KEY,
            json={"recipient": USER.upn, "card": CARD, "notificationUrl": CALLBACK},
        ).json()
        subscription = live.api(
            "POST", "/api/v1/subscriptions", API_KEY, json={"event": "any", "notificationUrl": CALLBACK}
        ).json()
        known = {
            "recipient": [USER.upn],
            "message_id": [sent["id"]],
            "card_id": [card["id"]],
            "subscription_id": [subscription["id"]],
            "broadcast_id": [broadcast["id"]],
        }
        yield {"live": live, "known": known, "message_id": sent.get("teamsMessageId")}


def _count(label: str) -> None:
    FUZZ_COUNTS[label] = FUZZ_COUNTS.get(label, 0) + 1


def _run(examples: int, strategy: st.SearchStrategy[Any], check: Callable[[Any], None]) -> None:
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(drawn=strategy)
    def run(drawn: Any) -> None:
        check(drawn)

    run()


# ---- REST -------------------------------------------------------------------------------------
def _rest_operations(definition: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in definition["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "put", "delete")
    ]


def _fuzz_operation(
    fuzzed: dict[str, Any], method: str, path: str, operation: dict[str, Any], definitions: dict[str, Any]
) -> list[str]:
    live: LiveApp = fuzzed["live"]
    label = f"{method} {path}"
    failures: list[str] = []
    parameters = operation.get("parameters", [])
    body_schema = next((p["schema"] for p in parameters if p["in"] == "body"), None)
    body_schema = _resolve(body_schema, definitions) if body_schema else None
    properties = (body_schema or {}).get("properties", {})
    required = (body_schema or {}).get("required", [])
    # (where, name-or-path): a body path, a query parameter or a path parameter.
    targets: list[tuple[str, Any]] = [("body", p) for p in string_paths(body_schema or {}, definitions)]
    targets += [(p["in"], p["name"]) for p in parameters if p["in"] in ("query", "path")]
    if not targets:
        return []
    forgetting = method == "DELETE" and "{recipient}" in path  # never ForgetRecipient on the seeded person

    def check(drawn: tuple[tuple[str, Any], Any, bool, bool]) -> None:
        (where, name), value, aim, repair = drawn
        _count(label)
        params: dict[str, Any] = {}
        for p in parameters:
            if p["in"] == "path":
                known = fuzzed["known"].get(p["name"]) if aim and not forgetting else None
                params[p["name"]] = known[0] if known else "unknown-id"
        if where == "path":
            params[name] = value
        url = path
        for key, part in params.items():
            url = url.replace("{" + key + "}", url_part(part))
        query = f"?{quote(name)}={url_part(value)}" if where == "query" else ""
        data = None
        if body_schema is not None:
            body = {n: base_value(s, definitions, n) for n, s in properties.items() if n in required}
            if repair:
                body = repaired(body, properties)
            if where == "body":
                body = put(body, name, value)
            data = encode(body)
        headers = {"X-API-Key": API_KEY, "Content-Type": "application/json"}
        response = live.http.request(method, live.url + url + query, data=data, headers=headers, timeout=60)
        if response.status_code >= 500:
            failures.append(f"{label} {where} {name}: {response.status_code} {response.text[:200]}")

    _run(EXAMPLES_PER_OPERATION, st.tuples(st.sampled_from(targets), HOSTILE, st.booleans(), st.booleans()), check)
    return failures


def test_every_string_of_every_operation(fuzzed: dict[str, Any]) -> None:
    live: LiveApp = fuzzed["live"]
    definition = live.http.get(live.url + "/openapi.json", timeout=30).json()
    definitions = definition.get("definitions", {})
    operations = _rest_operations(definition)
    assert len(operations) >= 20, "the definition lost operations"
    failures: list[str] = []
    for method, path, operation in operations:
        failures += _fuzz_operation(fuzzed, method, path, operation, definitions)
    assert not failures, "\n".join(failures[:20])
    _still_working(fuzzed)


# ---- MCP --------------------------------------------------------------------------------------
def _rpc(live: LiveApp, body: bytes) -> Any:
    headers = {
        "X-API-Key": API_KEY,
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }
    return live.http.post(live.url + "/mcp", data=body, headers=headers, timeout=60)


def _fuzz_tool(fuzzed: dict[str, Any], tool: dict[str, Any]) -> list[str]:
    live: LiveApp = fuzzed["live"]
    label = f"MCP {tool['name']}"
    failures: list[str] = []
    schema = tool["inputSchema"]
    properties = schema.get("properties", {})
    required = schema.get("required", [])
    targets = string_paths(schema, {})
    if not targets:
        return []

    def check(drawn: tuple[tuple, Any, bool]) -> None:
        target, value, repair = drawn
        _count(label)
        arguments = {n: base_value(s, {}, n) for n, s in properties.items() if n in required}
        if repair:
            arguments = repaired(arguments, properties)
            if "id" in properties:
                arguments["id"] = fuzzed["known"]["message_id"][0]
        arguments = put(arguments, target, value)
        params = {"name": tool["name"], "arguments": arguments}
        response = _rpc(live, encode({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params}))
        problem = response.status_code >= 500
        if response.status_code == 200:
            result = response.json().get("result") or {}
            error = (result.get("structuredContent") or {}).get("error") or {}
            problem = error.get("code") == "InternalError"
        if problem:
            failures.append(f"{label} {target}: {response.status_code} {response.text[:200]}")

    _run(EXAMPLES_PER_TOOL, st.tuples(st.sampled_from(targets), HOSTILE, st.booleans()), check)
    return failures


def test_every_string_of_every_mcp_tool(fuzzed: dict[str, Any]) -> None:
    live: LiveApp = fuzzed["live"]
    listing = _rpc(live, encode({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).json()
    tools = listing["result"]["tools"]
    assert tools, listing
    failures: list[str] = []
    for tool in tools:
        failures += _fuzz_tool(fuzzed, tool)
    assert not failures, "\n".join(failures[:20])
    _still_working(fuzzed)


# ---- activities -------------------------------------------------------------------------------
ACTIVITY_FIELDS: list[tuple[str, ...]] = [
    ("text",), ("id",), ("replyToId",), ("locale",), ("localTimezone",), ("from", "id"), ("from", "name"),
    ("from", "aadObjectId"), ("conversation", "id"), ("recipient", "id"), ("channelData", "tenant", "id"),
    ("value",), ("value", "answer"), ("value", "cardWaitId"), ("value", "lastReadMessageId"),
]  # fmt: skip


def test_every_string_of_an_activity(fuzzed: dict[str, Any], fake: FakeConnector) -> None:
    live: LiveApp = fuzzed["live"]
    failures: list[str] = []
    builders = {
        "message": lambda: act.message(USER, fake.service_url("a"), "hello"),
        "card submit": lambda: act.card_submit(USER, fake.service_url("a"), {"answer": "yes"}),
    }

    def check(drawn: tuple[str, tuple[str, ...], Any]) -> None:
        kind, field, value = drawn
        _count(f"POST /api/messages ({kind})")
        activity = put(builders[kind](), field, value)
        response = live.http.post(
            live.url + "/api/messages", data=encode(activity), headers={"Content-Type": "application/json"}, timeout=60
        )
        if response.status_code >= 500:
            failures.append(f"{kind} {'.'.join(field)}: {response.status_code} {response.text[:200]}")

    strategy = st.tuples(st.sampled_from(sorted(builders)), st.sampled_from(ACTIVITY_FIELDS), HOSTILE)
    _run(ACTIVITY_EXAMPLES, strategy, check)
    assert not failures, "\n".join(failures[:20])
    _still_working(fuzzed)


# ---- afterwards -------------------------------------------------------------------------------
def _still_working(fuzzed: dict[str, Any]) -> None:
    """Every record reads back, and the loops that read many of them still deliver."""
    live: LiveApp = fuzzed["live"]
    store = live.runtime.store
    deliveries = all_deliveries(live)
    references = all_references(live)
    for broadcast_id in live.runtime.call(store.broadcasts.ids()):
        assert live.runtime.call(store.broadcasts.get(broadcast_id)) is not None
    live.runtime.call(store.subscriptions.list_all())
    assert deliveries and references
    for item in [*deliveries, *references]:
        # Everything stored is text the store can write again (and so read back).
        assert not re.search("[\ud800-\udfff\x00]", json.dumps(item.to_doc(), ensure_ascii=False)), item
    # The dispatcher's claim reads every due record: a poison one would stop this send.
    canary = live.api(
        "POST", "/api/v1/messages", API_KEY, json={"recipient": CANARY.upn, "text": "still here", "wait": 0}
    )
    assert canary.status_code == 200, canary.text
    assert final_delivery(live, canary.json()["id"])["status"] == "delivered"
    started = live.api("POST", "/api/v1/broadcasts", API_KEY, json={"recipients": [CANARY.upn], "text": "all well"})
    assert started.status_code in (200, 202), started.text
    finished_broadcast(live, started.json()["id"])
