"""The MCP connector variant (export-connector --mcp): Microsoft's documented shape, Microsoft's JSON schemas,
the REST connector's security, and the committed files under openapi/mcp/ kept in sync."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV2SpecValidator
from teams_proactive.connector.cli import main as cli_main
from teams_proactive.connector.export import connector_files, mcp_connector_files

from tests.connector.support import OPENAPI_DIR, REFERENCE_DIR, load

VARIANTS = {"mcp/apiDefinition.swagger.json": "apiDefinition.swagger.json",
            "mcp/entra/apiDefinition.swagger.json": "entra/apiDefinition.swagger.json"}  # fmt: skip


@pytest.fixture(scope="module")
def generated() -> dict[str, bytes]:
    return mcp_connector_files()


@pytest.fixture(scope="module", params=list(VARIANTS))
def spec(request: pytest.FixtureRequest, generated: dict[str, bytes]) -> dict[str, Any]:
    return json.loads(generated[request.param])


def reference(name: str) -> dict[str, Any]:
    path = REFERENCE_DIR / name
    if not path.exists():
        pytest.skip(f"Microsoft's schema {name} is not in {REFERENCE_DIR}")
    return load(path)


def test_one_post_mcp_operation_marked_for_copilot_studio(spec: dict[str, Any]) -> None:
    # Microsoft's documented example (Copilot Studio, "Connect your agent to an existing MCP server").
    assert spec["swagger"] == "2.0" and spec["basePath"] == "/" and spec["schemes"] == ["https"]
    assert list(spec["paths"]) == ["/mcp"]
    assert list(spec["paths"]["/mcp"]) == ["post"]
    operation = spec["paths"]["/mcp"]["post"]
    assert operation["x-ms-agentic-protocol"] == "mcp-streamable-1.0"
    assert operation["operationId"] == "InvokeMCP"
    assert 0 < len(operation["summary"]) < 120 and operation["description"]
    assert "200" in operation["responses"]
    assert len(spec["info"]["title"]) <= 30  # Power Platform's limit for a connector's name


def test_is_valid_swagger_2(spec: dict[str, Any]) -> None:
    validate(spec, cls=OpenAPIV2SpecValidator)


def test_passes_microsofts_api_definition_schema(spec: dict[str, Any]) -> None:
    schema = copy.deepcopy(reference("powerplatform-apiDefinition.swagger.schema.json"))
    # The reference predates MCP connectors: Copilot Studio's documented x-ms-agentic-protocol (a string) is the
    # one operation extension added; everything else is checked as Microsoft wrote it.
    schema["definitions"]["operation"]["properties"]["x-ms-agentic-protocol"] = {
        "type": "string",
        "enum": ["mcp-streamable-1.0"],
    }
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in jsonschema.Draft4Validator(schema).iter_errors(spec)]
    assert errors == []


@pytest.mark.parametrize("name", ["mcp/apiProperties.json", "mcp/entra/apiProperties.json"])
def test_api_properties_pass_microsofts_schema(generated: dict[str, bytes], name: str) -> None:
    schema = copy.deepcopy(reference("powerplatform-apiProperties.schema.json"))
    # As in test_definition.py: the reference predates "GlobalPerConnector" redirect URIs.
    schema["definitions"]["oAuthSettings"]["properties"]["redirectMode"]["enum"].append("GlobalPerConnector")
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(json.loads(generated[name]))]  # fmt: skip
    assert errors == []


def test_signs_in_like_the_rest_connector(generated: dict[str, bytes]) -> None:
    rest = connector_files()
    for mcp_name, rest_name in VARIANTS.items():
        mcp, same = json.loads(generated[mcp_name]), json.loads(rest[rest_name])
        assert mcp["securityDefinitions"] == same["securityDefinitions"]
        assert mcp["security"] == same["security"]
    assert generated["mcp/apiProperties.json"] == rest["apiProperties.json"]
    assert generated["mcp/entra/apiProperties.json"] == rest["entra/apiProperties.json"]


def test_cli_writes_the_mcp_variant_under_mcp(tmp_path: Path, generated: dict[str, bytes]) -> None:
    assert cli_main(["export-connector", "--mcp", "--out", str(tmp_path)]) == 0
    written = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    assert written == set(generated)
    assert cli_main(["export-connector", "--mcp", "--out", str(tmp_path), "--host", "notify.contoso.com"]) == 0
    spec = json.loads((tmp_path / "mcp/apiDefinition.swagger.json").read_text())
    assert spec["host"] == "notify.contoso.com"


def test_committed_files_are_in_sync(generated: dict[str, bytes]) -> None:
    stale = [name for name, data in generated.items() if (OPENAPI_DIR / name).read_bytes() != data]
    assert stale == [], "run: teams-proactive export-connector --mcp --out openapi/"
