"""The generated connector definition: valid Swagger 2.0, Power Platform's import rules one by one
(DESIGN.md section 10), Microsoft's own JSON schemas, and the committed files kept in sync."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV2SpecValidator
from teams_proactive.connector.cli import main as cli_main
from teams_proactive.connector.export import connector_files
from teams_proactive.connector.icon import png_size
from teams_proactive.connector.openapi import PLACEHOLDER_HOST

from tests.connector.support import OPENAPI_DIR, REFERENCE_DIR, load, operations, properties, resolve

# DESIGN.md section 6: operationId -> (method, path).
DESIGN_OPERATIONS = {
    "SendMessage": ("post", "/api/v1/messages"),
    "GetMessage": ("get", "/api/v1/messages/{message_id}"),
    "UpdateMessage": ("put", "/api/v1/messages/{message_id}"),
    "DeleteMessage": ("delete", "/api/v1/messages/{message_id}"),
    "SendCardAndWait": ("post", "/api/v1/cards/wait"),
    "GetRecipient": ("get", "/api/v1/recipients/{recipient}"),
    "ListRecipients": ("get", "/api/v1/recipients"),
    "ForgetRecipient": ("delete", "/api/v1/recipients/{recipient}"),
    "StartBroadcast": ("post", "/api/v1/broadcasts"),
    "GetBroadcast": ("get", "/api/v1/broadcasts/{broadcast_id}"),
    "UpdateBroadcast": ("put", "/api/v1/broadcasts/{broadcast_id}"),
    "RecallBroadcast": ("delete", "/api/v1/broadcasts/{broadcast_id}"),
    "Subscribe": ("post", "/api/v1/subscriptions"),
    "Unsubscribe": ("delete", "/api/v1/subscriptions/{subscription_id}"),
}
TRIGGERS = {
    "OnUserMessage": "When a user sends the bot a message",
    "OnCardSubmitted": "When a user submits a card",
    "OnInstallationChanged": "When the app is installed or removed",
    "OnDeliveryFailed": "When a delivery fails",
    "OnMessageRead": "When a person reads a message",
}
VARIANTS = ("apiDefinition.swagger.json", "entra/apiDefinition.swagger.json")


@pytest.fixture(scope="module")
def generated() -> dict[str, bytes]:
    return connector_files()


@pytest.fixture(scope="module", params=VARIANTS)
def spec(request: pytest.FixtureRequest, generated: dict[str, bytes]) -> dict[str, Any]:
    return json.loads(generated[request.param])


def by_id(spec: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {op["operationId"]: (path, method, op) for path, method, op in operations(spec)}


# ---- Swagger 2.0 and Microsoft's schemas --------------------------------------------------------
def test_is_valid_swagger_2(spec: dict[str, Any]) -> None:
    assert spec["swagger"] == "2.0"
    validate(spec, cls=OpenAPIV2SpecValidator)


def reference(name: str) -> dict[str, Any]:
    path = REFERENCE_DIR / name
    if not path.exists():
        pytest.skip(f"Microsoft's schema {name} is not in {REFERENCE_DIR}")
    return load(path)


def test_passes_microsofts_api_definition_schema(spec: dict[str, Any]) -> None:
    schema = reference("powerplatform-apiDefinition.swagger.schema.json")
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in jsonschema.Draft4Validator(schema).iter_errors(spec)]
    assert errors == []


@pytest.mark.parametrize("name", ["apiProperties.json", "entra/apiProperties.json"])
def test_api_properties_pass_microsofts_schema(generated: dict[str, bytes], name: str) -> None:
    schema = copy.deepcopy(reference("powerplatform-apiProperties.schema.json"))
    # The reference predates per-connector redirect URIs, which Microsoft has required for new OAuth
    # connectors since 2024 ("GlobalPerConnector"); it is the one value added to its enum.
    schema["definitions"]["oAuthSettings"]["properties"]["redirectMode"]["enum"].append("GlobalPerConnector")
    document = json.loads(generated[name])
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(document)]
    assert errors == []


# ---- DESIGN.md section 10, rule by rule ---------------------------------------------------------
def test_size_and_operation_count(generated: dict[str, bytes]) -> None:
    for name in VARIANTS:
        assert len(generated[name]) < 1_000_000
        assert len(list(operations(json.loads(generated[name])))) <= 256


def test_host_is_bare_and_base_path_absolute(spec: dict[str, Any]) -> None:
    assert re.fullmatch(r"[A-Za-z0-9.-]+(:\d+)?", spec["host"]), spec["host"]
    assert spec["basePath"].startswith("/")
    assert spec["schemes"] == ["https"]


def test_operation_ids_unique_alphanumeric_pascal_case(spec: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in operations(spec)]
    assert len(ids) == len(set(ids))
    for operation_id in ids:
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]*", operation_id), operation_id


def test_every_design_operation_exists_with_its_id(spec: dict[str, Any]) -> None:
    found = {op_id: (method, path) for op_id, (path, method, _) in by_id(spec).items()}
    for operation_id, where in DESIGN_OPERATIONS.items():
        assert found.get(operation_id) == where, operation_id


def test_summaries_and_descriptions(spec: dict[str, Any]) -> None:
    for path, method, op in operations(spec):
        where = f"{method} {path}"
        assert 0 < len(op["summary"]) < 120, where
        assert not op["summary"].endswith("."), where
        # A sentence for makers and for Copilot Studio's orchestration, not a repeat of the summary.
        assert op["description"].endswith("."), where
        assert len(op["description"]) > len(op["summary"]) and op["description"] != op["summary"], where
        assert "\n" not in op["description"], where


def test_every_parameter_and_property_has_summary_and_description(spec: dict[str, Any]) -> None:
    missing = []
    for path, method, op in operations(spec):
        for parameter in op.get("parameters", []):
            where = f"{method} {path} {parameter['name']}"
            if not parameter.get("x-ms-summary") or not parameter.get("description"):
                missing.append(where)
        for status, response in op["responses"].items():
            for name, header in (response.get("headers") or {}).items():
                if not header.get("x-ms-summary") or not header.get("description"):
                    missing.append(f"{method} {path} {status} header {name}")
    for name, schema in spec["definitions"].items():
        for where, prop in properties(schema, name):
            if not prop.get("x-ms-summary") or not prop.get("description"):
                missing.append(where)
    assert missing == []


def test_at_most_one_body_parameter(spec: dict[str, Any]) -> None:
    for path, method, op in operations(spec):
        assert sum(p["in"] == "body" for p in op.get("parameters", [])) <= 1, f"{method} {path}"
    for item in spec["paths"].values():
        assert "parameters" not in item  # path-level parameters are moved into each operation


def test_path_parameters_required_and_single_encoded(spec: dict[str, Any]) -> None:
    for path, method, op in operations(spec):
        names = re.findall(r"{([^}]+)}", path)
        declared = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "path"}
        assert sorted(declared) == sorted(names), f"{method} {path}"
        for parameter in declared.values():
            assert parameter["required"] is True
            assert parameter["x-ms-url-encoding"] == "single"
            assert parameter["type"] == "string"


def test_response_schema_on_200_and_201_and_none_on_default(spec: dict[str, Any]) -> None:
    for path, method, op in operations(spec):
        responses = op["responses"]
        assert any(s in responses for s in ("200", "201", "204")), f"{method} {path}"
        for status in ("200", "201"):
            if status in responses:
                schema = resolve(spec, responses[status]["schema"])
                assert schema.get("properties"), f"{method} {path} {status}: a concrete schema"
        assert "schema" not in responses["default"]
        for status, response in responses.items():
            assert response["description"], f"{method} {path} {status}"


def test_no_one_of_any_of_or_not(spec: dict[str, Any]) -> None:
    found = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("oneOf", "anyOf", "not") and where.split(".")[-1] != "properties":
                    found.append(f"{where}.{key}")
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}[{index}]")

    walk(spec, "$")
    assert found == []


def test_visibility_values_and_internal_required_parameters_have_defaults(spec: dict[str, Any]) -> None:
    allowed = {"important", "advanced", "internal"}
    for path, method, op in operations(spec):
        assert op["x-ms-visibility"] in allowed
        for parameter in op.get("parameters", []):
            visibility = parameter.get("x-ms-visibility")
            assert visibility is None or visibility in allowed
            if visibility == "internal" and parameter.get("required") and parameter["in"] != "body":
                assert "default" in parameter, f"{method} {path} {parameter['name']}"
    for name, schema in spec["definitions"].items():
        for where, prop in properties(schema, name):
            assert prop.get("x-ms-visibility", "important") in allowed, where
        for prop_name in schema.get("required", []):
            prop = schema["properties"][prop_name]
            if prop.get("x-ms-visibility") == "internal":
                # Power Automate fills the notification URL itself; anything else internal needs a default.
                assert prop.get("x-ms-notification-url") or "default" in prop, f"{name}.{prop_name}"


def test_webhook_triggers(spec: dict[str, Any]) -> None:
    ops = by_id(spec)
    triggers = {op_id: entry for op_id, entry in ops.items() if entry[2].get("x-ms-trigger")}
    assert set(triggers) == {*TRIGGERS, "Subscribe"}
    for op_id, (path, method, op) in triggers.items():
        assert op["x-ms-trigger"] == "single"
        assert method == "post"
        if op_id in TRIGGERS:
            assert op["summary"] == TRIGGERS[op_id]
        bodies = [p for p in op["parameters"] if p["in"] == "body"]
        assert len(bodies) == 1 and bodies[0]["required"] is True
        body = resolve(spec, bodies[0]["schema"])
        urls = [n for n, p in body["properties"].items() if p.get("x-ms-notification-url") is True]
        assert urls == ["notificationUrl"]
        url = body["properties"]["notificationUrl"]
        assert url["type"] == "string" and url["x-ms-visibility"] == "internal"
        assert "notificationUrl" in body["required"]
        content = spec["paths"][path]["x-ms-notification-content"]
        payload = resolve(spec, content["schema"])
        assert {"event", "eventId", "subscriptionId", "tenantId"} <= set(payload["properties"])
        created = op["responses"]["201"]
        assert "Location" in created["headers"] and resolve(spec, created["schema"])["properties"]["id"]
    # Power Automate unsubscribes by deleting the Location: that path is an operation.
    path, method, _ = ops["Unsubscribe"]
    assert method == "delete" and path == "/api/v1/subscriptions/{subscription_id}"


def test_async_rules_reads_never_202_and_status_links_are_internal(spec: dict[str, Any]) -> None:
    """DESIGN.md section 6: reads answer 200 with a status; only work the caller chose to wait for
    answers 202, and its Location is an internal status operation that answers 202, then 200."""
    ops = by_id(spec)
    polled = {op_id for op_id, (_, _, op) in ops.items() if "202" in op["responses"]}
    assert polled == {"SendMessage", "StartBroadcast", "GetMessageStatus", "GetBroadcastStatus"}
    for read in ("GetMessage", "GetBroadcast", "GetRecipient", "GetCardResponse"):
        responses = ops[read][2]["responses"]
        assert "202" not in responses, read
        assert "status" in resolve(spec, responses["200"]["schema"])["properties"], read
    for op_id in polled:
        op = ops[op_id][2]
        accepted = op["responses"]["202"]
        assert set(accepted["headers"]) == {"Location", "Retry-After"}
        assert "schema" not in accepted  # the outputs are the final 200's
        assert resolve(spec, op["responses"]["200"]["schema"])["properties"]
    # A status link returns the same object as the read it stands for, and makers never see it.
    for status_op, read in (("GetMessageStatus", "GetMessage"), ("GetBroadcastStatus", "GetBroadcast")):
        path, method, op = ops[status_op]
        assert op["x-ms-visibility"] == "internal" and method == "get"
        assert path == ops[read][0] + "/status"
        assert op["responses"]["200"]["schema"] == ops[read][2]["responses"]["200"]["schema"]


def test_send_card_and_wait_is_a_webhook_action(spec: dict[str, Any]) -> None:
    """The shape of Microsoft's certified webhook actions (CompanyConnect, CyberProof): not a trigger,
    an internal required x-ms-notification-url body property, 201 + Location whose DELETE unsubscribes,
    and the callback's payload in the path item's x-ms-notification-content."""
    ops = by_id(spec)
    path, method, op = ops["SendCardAndWait"]
    assert method == "post" and "x-ms-trigger" not in op
    assert set(op["responses"]) - {"400", "401", "403", "404", "409", "429", "default"} == {"201"}
    (body,) = [p for p in op["parameters"] if p["in"] == "body"]
    schema = resolve(spec, body["schema"])
    urls = [n for n, p in schema["properties"].items() if p.get("x-ms-notification-url") is True]
    assert urls == ["notificationUrl"] and "notificationUrl" in schema["required"]
    url = schema["properties"]["notificationUrl"]
    assert url["type"] == "string" and url["x-ms-visibility"] == "internal"
    assert "Location" in op["responses"]["201"]["headers"]
    cancel_path, cancel_method, cancel = ops["CancelCardWait"]
    assert (cancel_method, cancel["x-ms-visibility"]) == ("delete", "internal")
    assert cancel_path == ops["GetCardResponse"][0] == path + "/{card_id}"
    payload = resolve(spec, spec["paths"][path]["x-ms-notification-content"]["schema"])
    assert {"id", "status", "response", "action", "respondedBy"} <= set(payload["properties"])
    assert set(payload["properties"]["status"]["enum"]) >= {"responded", "expired", "cancelled"}
    # Typed answers: the response's fields come from the card the maker passed.
    for key, where in (("x-ms-dynamic-schema", "parameter"), ("x-ms-dynamic-properties", "parameterReference")):
        dynamic = payload["properties"]["response"][key]
        assert dynamic["operationId"] == "GetCardAnswerSchema"
        assert dynamic["parameters"]["card"][where] in ("card", "body/card")
    assert ops["GetCardAnswerSchema"][2]["x-ms-visibility"] == "internal"


def test_recipient_picker(spec: dict[str, Any]) -> None:
    ops = by_id(spec)
    for op_id in ("SendMessage", "SendCardAndWait"):
        (body,) = [p for p in ops[op_id][2]["parameters"] if p["in"] == "body"]
        recipient = resolve(spec, body["schema"])["properties"]["recipient"]
        picker = recipient["x-ms-dynamic-values"]
        assert picker["operationId"] == "ListReachablePeople", op_id
        assert recipient["type"] == "string"  # free text stays allowed
    _, method, op = ops["ListReachablePeople"]
    assert method == "get" and op["x-ms-visibility"] == "internal"
    page = resolve(spec, op["responses"]["200"]["schema"])
    assert {"upn", "label"} <= set(page["properties"]["value"]["items"]["properties"])


def test_one_message_id_field_in_outputs(spec: dict[str, Any]) -> None:
    for name in ("Delivery", "CardResponse", "CardWaitResult"):
        fields = spec["definitions"][name]["properties"]
        assert "id" in fields and "messageId" not in fields and "teamsMessageId" in fields, name


@pytest.mark.parametrize("op_id", ["ListRecipients", "ListBroadcastRecipients"])
def test_lists_are_pageable(spec: dict[str, Any], op_id: str) -> None:
    _, _, op = by_id(spec)[op_id]
    next_link = op["x-ms-pageable"]["nextLinkName"]
    page = resolve(spec, op["responses"]["200"]["schema"])
    assert next_link in page["properties"] and page["properties"]["value"]["type"] == "array"


def test_connector_metadata(spec: dict[str, Any]) -> None:
    names = {m["propertyName"] for m in spec["x-ms-connector-metadata"]}
    assert {"Website", "Categories"} <= names


def test_security_of_each_variant(generated: dict[str, bytes]) -> None:
    apikey = json.loads(generated["apiDefinition.swagger.json"])
    assert apikey["securityDefinitions"] == {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
    entra = json.loads(generated["entra/apiDefinition.swagger.json"])
    (scheme,) = entra["securityDefinitions"].values()
    assert scheme["type"] == "oauth2" and scheme["flow"] == "accessCode"
    assert "login.microsoftonline.com" in scheme["authorizationUrl"]
    # Apart from sign-in, both variants are the same connector.
    for document in (apikey, entra):
        document.pop("securityDefinitions")
        document.pop("security")
    assert apikey == entra


def test_api_properties_connection_parameters(generated: dict[str, bytes]) -> None:
    apikey = json.loads(generated["apiProperties.json"])["properties"]
    assert apikey["connectionParameters"]["api_key"]["type"] == "securestring"
    assert re.fullmatch(r"#[0-9A-Fa-f]{6}", apikey["iconBrandColor"])
    entra = json.loads(generated["entra/apiProperties.json"])["properties"]
    settings = entra["connectionParameters"]["token"]["oAuthSettings"]
    assert settings["identityProvider"] == "aad"
    assert settings["customParameters"]["resourceUri"]["value"]
    assert entra["iconBrandColor"] == apikey["iconBrandColor"]


def test_icon_is_a_square_png_within_power_platform_limits(generated: dict[str, bytes]) -> None:
    icon = generated["icon.png"]
    assert icon.startswith(b"\x89PNG\r\n\x1a\n") and len(icon) < 1_000_000
    width, height = png_size(icon)
    assert width == height and 100 <= width <= 230


# ---- stable output and the committed files ------------------------------------------------------
def test_export_writes_identical_files_on_every_run(tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert cli_main(["export-connector", "--out", str(tmp_path / name)]) == 0
    first = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in (tmp_path / "a").rglob("*") if p.is_file()}
    second = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in (tmp_path / "b").rglob("*") if p.is_file()}
    assert first == second and len(first) == 7  # intro.md beside readme.md


def test_export_with_host_only_changes_the_host(tmp_path: Path, generated: dict[str, bytes]) -> None:
    assert cli_main(["export-connector", "--out", str(tmp_path), "--host", "notify.contoso.com"]) == 0
    written = load(tmp_path / "apiDefinition.swagger.json")
    assert written["host"] == "notify.contoso.com"
    committed = json.loads(generated["apiDefinition.swagger.json"])
    for document in (written, committed):
        document.pop("host")
        document.pop("x-ms-connector-metadata")  # its Website and Privacy policy are on the host
        document["info"].pop("contact")  # so is the contact
    assert written == committed
    assert cli_main(["export-connector", "--out", str(tmp_path), "--host", "https://notify.contoso.com"]) == 2


def test_committed_files_are_in_sync(generated: dict[str, bytes]) -> None:
    stale = [name for name, data in generated.items() if (OPENAPI_DIR / name).read_bytes() != data]
    assert stale == [], "run: teams-proactive export-connector --out openapi/"
    assert json.loads(generated["apiDefinition.swagger.json"])["host"] == PLACEHOLDER_HOST
