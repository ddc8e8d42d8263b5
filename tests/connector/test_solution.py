"""The importable solution: every part Power Platform's import reads, unpacked from the zip and checked
(content types, solution manifest, customizations, connector files, connection references, workflows),
and the committed zip kept equal to what ``teams-proactive export-solution`` builds."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from teams_proactive.connector.cli import main as cli_main
from teams_proactive.connector.export import api_properties, connector_files
from teams_proactive.connector.solution import COMMITTED_ZIP, CONNECTOR_API, SAMPLE_CONNECTOR_API, solution_zip

from tests.connector.support import SAMPLES_DIR, operations, resolve
from tests.connector.test_samples import steps

GUID = re.compile(r"\{?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}?", re.IGNORECASE)
CONTENT_TYPES = "{http://schemas.openxmlformats.org/package/2006/content-types}"


def unpack(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def xml(data: bytes) -> ET.Element:
    return ET.fromstring(data.decode("utf-8-sig"))


@pytest.fixture(scope="module")
def parts() -> dict[str, bytes]:
    return unpack(solution_zip())


@pytest.fixture(scope="module")
def customizations(parts: dict[str, bytes]) -> ET.Element:
    return xml(parts["customizations.xml"])


def test_content_types_cover_every_part(parts: dict[str, bytes]) -> None:
    types = xml(parts["[Content_Types].xml"])
    assert types.tag == f"{CONTENT_TYPES}Types"
    defaults = {d.get("Extension"): d.get("ContentType") for d in types.findall(f"{CONTENT_TYPES}Default")}
    overrides = {o.get("PartName") for o in types.findall(f"{CONTENT_TYPES}Override")}
    assert defaults["xml"] == "text/xml"
    for name in parts:
        if name != "[Content_Types].xml":
            assert name.rsplit(".", 1)[-1] in defaults or f"/{name}" in overrides, name


def test_solution_manifest(parts: dict[str, bytes], customizations: ET.Element) -> None:
    root = xml(parts["solution.xml"])
    assert root.tag == "ImportExportXml" and root.get("SolutionPackageVersion")
    manifest = root.find("SolutionManifest")
    assert manifest is not None
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", manifest.findtext("UniqueName") or "")
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", manifest.findtext("Version") or "")
    assert manifest.findtext("Managed") == "0"  # unmanaged: makers can change the flows
    assert manifest.find("LocalizedNames/LocalizedName").get("description")  # type: ignore[union-attr]
    publisher = manifest.find("Publisher")
    assert publisher is not None
    assert re.fullmatch(r"[a-z][a-z0-9]*", publisher.findtext("UniqueName") or "")
    prefix = publisher.findtext("CustomizationPrefix") or ""
    assert re.fullmatch(r"[a-z][a-z0-9]{1,7}", prefix) and prefix != "mscrm"
    assert re.fullmatch(r"\d{5}", publisher.findtext("CustomizationOptionValuePrefix") or "")
    # Root components: each workflow and the connector of customizations.xml, nothing else.
    roots = {(c.get("type"), (c.get("id") or "").strip("{}")) for c in manifest.findall("RootComponents/RootComponent")}
    workflows = {("29", w.get("WorkflowId", "").strip("{}")) for w in customizations.findall("Workflows/Workflow")}
    connectors = {("372", c.findtext("connectorid")) for c in customizations.findall("Connectors/Connector")}
    assert roots == workflows | connectors
    for element in customizations.findall("Connectors/Connector"):
        assert element.findtext("name", "").startswith(f"{prefix}_")


def test_connector_and_its_files(parts: dict[str, bytes], customizations: ET.Element) -> None:
    (connector,) = customizations.findall("Connectors/Connector")
    assert GUID.fullmatch(connector.findtext("connectorid", ""))
    assert connector.findtext("connectortype") == "1"  # a custom connector
    generated = connector_files()
    definition = json.loads(parts[connector.findtext("openapidefinition", "").lstrip("/")])
    assert definition == json.loads(generated["apiDefinition.swagger.json"])
    assert connector.findtext("displayname") == definition["info"]["title"]
    properties = api_properties()["properties"]
    assert connector.findtext("iconbrandcolor") == properties["iconBrandColor"]
    parameters = json.loads(parts[connector.findtext("connectionparameters", "").lstrip("/")])
    assert parameters == properties["connectionParameters"] and "host" in parameters
    policies = json.loads(parts[connector.findtext("policytemplateinstances", "").lstrip("/")])
    assert [p["templateId"] for p in policies] == ["dynamichosturl"]
    assert parts[connector.findtext("iconblob", "").lstrip("/")] == generated["icon.png"]


def workflows(parts: dict[str, bytes], customizations: ET.Element) -> dict[str, dict[str, Any]]:
    found = {}
    for element in customizations.findall("Workflows/Workflow"):
        assert element.findtext("Category") == "5" and element.findtext("Type") == "1"  # modern flows
        path = element.findtext("JsonFileName", "").lstrip("/")
        assert path.startswith("Workflows/") and path.upper().endswith(
            f"{element.get('WorkflowId', '').strip('{}').upper()}.JSON"
        )
        found[element.get("Name", "")] = json.loads(parts[path])
    return found


def test_every_sample_flow_is_a_workflow(parts: dict[str, bytes], customizations: ET.Element) -> None:
    flows = workflows(parts, customizations)
    samples = {
        json.loads(p.read_text(encoding="utf-8"))["properties"]["description"] for p in SAMPLES_DIR.glob("*/flow.json")
    }
    assert {flow["properties"]["description"] for flow in flows.values()} == samples
    assert all(SAMPLE_CONNECTOR_API not in json.dumps(flow) for flow in flows.values())


def test_connection_references_one_per_connector_and_every_flow_uses_them(
    parts: dict[str, bytes], customizations: ET.Element
) -> None:
    (connector,) = customizations.findall("Connectors/Connector")
    references = {
        r.get("connectionreferencelogicalname"): r
        for r in customizations.findall("connectionreferences/connectionreference")
    }
    apis = [r.findtext("connectorid", "").rsplit("/", 1)[-1] for r in references.values()]
    assert len(apis) == len(set(apis)), "one connection reference per connector"
    ours = [r for r in references.values() if r.find("customconnectorid") is not None]
    assert len(ours) == 1 and ours[0].findtext("customconnectorid/connectorid") == connector.findtext("connectorid")
    assert ours[0].findtext("connectorid") == f"/providers/Microsoft.PowerApps/apis/{CONNECTOR_API}"
    used = set()
    for name, flow in workflows(parts, customizations).items():
        declared = flow["properties"]["connectionReferences"]
        for api, reference in declared.items():
            logical = reference["connection"]["connectionReferenceLogicalName"]
            assert logical in references, f"{name}: unknown connection reference {logical}"
            assert (
                references[logical].findtext("connectorid", "").endswith(f"/{api}") and reference["api"]["name"] == api
            )
            if api == CONNECTOR_API:
                assert reference["api"]["logicalName"] == connector.findtext("name")
            used.add(logical)
        for action_name, action, _ in steps(flow["properties"]["definition"]["actions"]):
            if "host" in action.get("inputs", {}) and isinstance(action["inputs"]["host"], dict):
                assert action["inputs"]["host"]["connectionName"] in declared, f"{name}: {action_name}"
    assert used == set(references), "every connection reference is used by a flow"


def test_workflows_name_only_operations_and_fields_of_the_definition(
    parts: dict[str, bytes], customizations: ET.Element
) -> None:
    (connector,) = customizations.findall("Connectors/Connector")
    definition = json.loads(parts[connector.findtext("openapidefinition", "").lstrip("/")])
    by_id = {op["operationId"]: op for _, _, op in operations(definition)}
    checked = 0
    for name, flow in workflows(parts, customizations).items():
        body = flow["properties"]["definition"]
        calls = [t for t in body["triggers"].values()] + [a for _, a, _ in steps(body["actions"])]
        for call in calls:
            host = call.get("inputs", {}).get("host") if isinstance(call.get("inputs"), dict) else None
            if not isinstance(host, dict) or not host.get("apiId", "").endswith(f"/{CONNECTOR_API}"):
                continue
            operation = by_id.get(host["operationId"])
            assert operation is not None, f"{name}: no operation {host['operationId']}"
            declared = {p["name"]: p for p in operation.get("parameters", [])}
            fields: dict[str, Any] = {}
            if "body" in declared:
                fields = resolve(definition, declared["body"]["schema"])["properties"]
            # A trigger is a webhook; an action is one only when its body takes the engine's callback URL.
            webhook = bool(operation.get("x-ms-trigger")) or any(
                f.get("x-ms-notification-url") for f in fields.values()
            )
            assert (call["type"] == "OpenApiConnectionWebhook") == webhook, f"{name}: {host['operationId']}"
            if call["type"] == "OpenApiConnectionWebhook" and not operation.get("x-ms-trigger"):
                assert call in [a for _, a, _ in steps(body["actions"])], f"{name}: a webhook action used as trigger"
            for parameter in call["inputs"].get("parameters", {}):
                if parameter.startswith("body/"):
                    field = parameter.removeprefix("body/")
                    assert field in fields and fields[field].get("x-ms-visibility") != "internal", (
                        f"{name}: {parameter}"
                    )
                else:
                    assert parameter in declared, f"{name}: {host['operationId']} has no {parameter}"
            checked += 1
    assert checked >= 8


def test_same_input_same_zip_and_the_cli_writes_it(tmp_path: Path) -> None:
    assert solution_zip() == solution_zip()
    out = tmp_path / "solution.zip"
    assert cli_main(["export-solution", "--out", str(out), "--host", "notify.contoso.com"]) == 0
    written = unpack(out.read_bytes())
    definition = next(json.loads(v) for k, v in written.items() if k.endswith("_openapidefinition.json"))
    assert definition["host"] == "notify.contoso.com"
    assert cli_main(["export-solution", "--out", str(out), "--host", "https://notify.contoso.com/"]) == 2
    assert cli_main(["export-solution", "--out", str(tmp_path / "entra.zip"), "--auth", "entra"]) == 0
    entra = unpack((tmp_path / "entra.zip").read_bytes())
    parameters = next(json.loads(v) for k, v in entra.items() if k.endswith("_connectionparameters.json"))
    assert parameters["token"]["oAuthSettings"]["identityProvider"] == "aad"


def test_committed_zip_is_in_sync(parts: dict[str, bytes]) -> None:
    committed = unpack(COMMITTED_ZIP.read_bytes())
    stale = sorted(name for name in set(parts) | set(committed) if parts.get(name) != committed.get(name))
    assert stale == [], f"run: teams-proactive export-solution --out {COMMITTED_ZIP.relative_to(SAMPLES_DIR.parent)}"
