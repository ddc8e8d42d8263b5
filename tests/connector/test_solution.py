"""The importable solutions: every part Power Platform's import reads, unpacked from the two zips and
checked (content types, solution manifests, customizations, connector files, connection references,
environment variables, the samples' dependency on the connector, workflows), and the committed zips kept
equal to what ``teams-proactive export-solution`` builds."""

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
from teams_proactive.connector.solution import (
    CONNECTOR_API,
    CONNECTOR_SOLUTION,
    SAMPLE_CONNECTOR_API,
    SAMPLES_SOLUTION,
    SolutionError,
    sample_flows,
    solution_zips,
    zip_name,
)

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


COMMITTED_DIR = SAMPLES_DIR / "solution"
# What no flow may carry: a maker's own values come from environment variables.
ORGANISATION_LITERALS = (
    re.compile(r"contoso|fabrikam|sharepoint\.com|\.onmicrosoft\.com", re.IGNORECASE),
    re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z0-9.-]+"),  # a mail address
    GUID,
)


@pytest.fixture(scope="module")
def zips() -> dict[str, bytes]:
    return solution_zips()


@pytest.fixture(scope="module")
def connector_parts(zips: dict[str, bytes]) -> dict[str, bytes]:
    return unpack(zips[zip_name(CONNECTOR_SOLUTION)])


@pytest.fixture(scope="module")
def parts(zips: dict[str, bytes]) -> dict[str, bytes]:
    """The samples solution."""
    return unpack(zips[zip_name(SAMPLES_SOLUTION)])


@pytest.fixture(scope="module")
def customizations(parts: dict[str, bytes]) -> ET.Element:
    return xml(parts["customizations.xml"])


@pytest.fixture(scope="module")
def connector_customizations(connector_parts: dict[str, bytes]) -> ET.Element:
    return xml(connector_parts["customizations.xml"])


def definition_of(connector_parts: dict[str, bytes], connector_customizations: ET.Element) -> dict[str, Any]:
    (connector,) = connector_customizations.findall("Connectors/Connector")
    return json.loads(connector_parts[connector.findtext("openapidefinition", "").lstrip("/")])


@pytest.mark.parametrize("which", ["connector_parts", "parts"])
def test_content_types_cover_every_part(which: str, request: pytest.FixtureRequest) -> None:
    parts = request.getfixturevalue(which)
    types = xml(parts["[Content_Types].xml"])
    assert types.tag == f"{CONTENT_TYPES}Types"
    defaults = {d.get("Extension"): d.get("ContentType") for d in types.findall(f"{CONTENT_TYPES}Default")}
    overrides = {o.get("PartName") for o in types.findall(f"{CONTENT_TYPES}Override")}
    assert defaults["xml"] == "text/xml"
    for name in parts:
        if name != "[Content_Types].xml":
            assert name.rsplit(".", 1)[-1] in defaults or f"/{name}" in overrides, name


def _manifest(parts: dict[str, bytes]) -> ET.Element:
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
    return manifest


def _roots(manifest: ET.Element) -> set[tuple[str | None, str]]:
    return {
        (c.get("type"), (c.get("id") or c.get("schemaName") or "").strip("{}"))
        for c in manifest.findall("RootComponents/RootComponent")
    }


def test_connector_solution_holds_the_connector_alone(
    connector_parts: dict[str, bytes], connector_customizations: ET.Element
) -> None:
    manifest = _manifest(connector_parts)
    assert manifest.findtext("UniqueName") == CONNECTOR_SOLUTION
    (connector,) = connector_customizations.findall("Connectors/Connector")
    assert _roots(manifest) == {("372", connector.findtext("connectorid"))}
    assert connector.findtext("name", "").startswith(f"{manifest.findtext('Publisher/CustomizationPrefix')}_")
    assert connector_customizations.findall("Workflows/Workflow") == []
    assert connector_customizations.findall("connectionreferences/connectionreference") == []
    assert not [name for name in connector_parts if name.startswith(("Workflows/", "environmentvariable"))]
    assert manifest.findall("MissingDependencies/MissingDependency") == []


def test_samples_solution_declares_flows_variables_and_the_connector_it_needs(
    parts: dict[str, bytes], customizations: ET.Element, connector_customizations: ET.Element
) -> None:
    manifest = _manifest(parts)
    assert manifest.findtext("UniqueName") == SAMPLES_SOLUTION
    assert customizations.findall("Connectors/Connector") == []  # the connector comes from its own solution
    assert not [name for name in parts if name.startswith("Connector/")]
    workflows = {("29", w.get("WorkflowId", "").strip("{}")) for w in customizations.findall("Workflows/Workflow")}
    found = {("380", name.split("/")[1]) for name in parts if name.endswith("/environmentvariabledefinition.xml")}
    assert _roots(manifest) == workflows | found
    # Every flow that uses the connector names it as a missing dependency from the connector solution.
    (connector,) = connector_customizations.findall("Connectors/Connector")
    dependents = set()
    for dependency in manifest.findall("MissingDependencies/MissingDependency"):
        required, dependent = dependency.find("Required"), dependency.find("Dependent")
        assert required is not None and dependent is not None
        assert required.get("type") == "372" and required.get("schemaName") == connector.findtext("name")
        assert (required.get("id") or "").strip("{}") == connector.findtext("connectorid")
        assert (required.get("solution") or "").startswith(f"{CONNECTOR_SOLUTION} (")
        dependents.add(("29", (dependent.get("id") or "").strip("{}")))
    assert dependents == workflows


def test_environment_variables_are_text_without_a_value_and_every_flow_uses_its_own(
    parts: dict[str, bytes], customizations: ET.Element
) -> None:
    definitions = {}
    for name, data in parts.items():
        if name.endswith("/environmentvariabledefinition.xml"):
            element = xml(data)
            schema = element.get("schemaname")
            assert name == f"environmentvariabledefinitions/{schema}/environmentvariabledefinition.xml"
            assert element.findtext("type") == "100000000" and element.find("defaultvalue") is None
            assert element.find("displayname/label").get("description")  # type: ignore[union-attr]
            assert element.find("description/label").get("description")  # type: ignore[union-attr]
            definitions[schema] = element.find("displayname/label").get("description")  # type: ignore[union-attr]
    # What a maker chooses: the SharePoint site and lists, the group, the help-desk address, the service host.
    assert {"tp_SharePointSite", "tp_TicketsList", "tp_GroupId", "tp_HelpDeskAddress", "tp_ServiceHost"} <= set(
        definitions
    )
    used = set()
    for name, flow in workflows(parts, customizations).items():
        declared = {
            key: p["metadata"]["schemaName"]
            for key, p in flow["properties"]["definition"]["parameters"].items()
            if "schemaName" in (p.get("metadata") or {})
        }
        text = json.dumps(flow["properties"]["definition"]["triggers"]) + json.dumps(
            flow["properties"]["definition"]["actions"]
        )
        for key, schema in declared.items():
            assert schema in definitions and key == f"{definitions[schema]} ({schema})", f"{name}: {key}"
            assert f"parameters('{key}')" in text, f"{name}: declares {key} and never reads it"
        for read in re.findall(r"parameters\('([^']+)'\)", text):
            assert read.startswith("$") or read in declared, f"{name}: reads undeclared {read}"
        used |= set(declared.values())
    assert used == set(definitions), "every environment variable is used by a flow"


def test_no_flow_carries_an_organisation_literal(parts: dict[str, bytes], customizations: ET.Element) -> None:
    flows = workflows(parts, customizations)
    assert len(flows) >= 10
    for name, flow in flows.items():
        body = flow["properties"]["definition"]
        for value in _strings({"triggers": body["triggers"], "actions": body["actions"]}):
            for pattern in ORGANISATION_LITERALS:
                assert not pattern.search(value), f"{name}: {value!r}"


def test_the_literal_scan_can_fail() -> None:
    assert any(p.search("https://contoso.sharepoint.com/sites/helpdesk") for p in ORGANISATION_LITERALS)
    assert any(p.search("helpdesk@yourcompany.com") for p in ORGANISATION_LITERALS)
    assert any(p.search("00000000-0000-0000-0000-000000000001") for p in ORGANISATION_LITERALS)


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for key, value in node.items() if key != "$schema" for s in _strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return [node] if isinstance(node, str) else []


def test_connector_and_its_files(connector_parts: dict[str, bytes], connector_customizations: ET.Element) -> None:
    (connector,) = connector_customizations.findall("Connectors/Connector")
    assert GUID.fullmatch(connector.findtext("connectorid", ""))
    assert connector.findtext("connectortype") == "1"  # a custom connector
    generated = connector_files()
    definition = definition_of(connector_parts, connector_customizations)
    assert definition == json.loads(generated["apiDefinition.swagger.json"])
    assert connector.findtext("displayname") == definition["info"]["title"]
    properties = api_properties()["properties"]
    assert connector.findtext("iconbrandcolor") == properties["iconBrandColor"]
    parameters = json.loads(connector_parts[connector.findtext("connectionparameters", "").lstrip("/")])
    assert parameters == properties["connectionParameters"] and "host" in parameters
    policies = json.loads(connector_parts[connector.findtext("policytemplateinstances", "").lstrip("/")])
    assert [p["templateId"] for p in policies] == ["dynamichosturl"]
    assert connector_parts[connector.findtext("iconblob", "").lstrip("/")] == generated["icon.png"]


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
    assert len(flows) == len(list(SAMPLES_DIR.glob("*/flow.json"))) >= 10
    samples = {
        json.loads(p.read_text(encoding="utf-8"))["properties"]["description"] for p in SAMPLES_DIR.glob("*/flow.json")
    }
    assert {flow["properties"]["description"] for flow in flows.values()} == samples
    assert all(SAMPLE_CONNECTOR_API not in json.dumps(flow) for flow in flows.values())


def test_connection_references_one_per_connector_and_every_flow_uses_them(
    parts: dict[str, bytes], customizations: ET.Element, connector_customizations: ET.Element
) -> None:
    (connector,) = connector_customizations.findall("Connectors/Connector")
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
    parts: dict[str, bytes],
    customizations: ET.Element,
    connector_parts: dict[str, bytes],
    connector_customizations: ET.Element,
) -> None:
    definition = definition_of(connector_parts, connector_customizations)
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


def test_same_input_same_zips_and_the_cli_writes_them(tmp_path: Path) -> None:
    assert solution_zips() == solution_zips()
    out = tmp_path / "out"
    assert cli_main(["export-solution", "--out", str(out), "--host", "notify.contoso.com"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([zip_name(CONNECTOR_SOLUTION), zip_name(SAMPLES_SOLUTION)])
    written = unpack((out / zip_name(CONNECTOR_SOLUTION)).read_bytes())
    definition = next(json.loads(v) for k, v in written.items() if k.endswith("_openapidefinition.json"))
    assert definition["host"] == "notify.contoso.com"
    assert cli_main(["export-solution", "--out", str(out), "--host", "https://notify.contoso.com/"]) == 2
    assert cli_main(["export-solution", "--out", str(tmp_path / "one.zip")]) == 2  # a folder, not a zip
    assert cli_main(["export-solution", "--out", str(out), "--entra-client-id", "x"]) == 2  # needs --auth entra
    client = "11111111-2222-3333-4444-555555555555"
    entra_out = tmp_path / "entra"
    entra_args = ["--auth", "entra", "--entra-client-id", client, "--entra-resource", "api://notify.contoso.com"]
    assert cli_main(["export-solution", "--out", str(entra_out), *entra_args]) == 0
    entra = unpack((entra_out / zip_name(CONNECTOR_SOLUTION)).read_bytes())
    parameters = next(json.loads(v) for k, v in entra.items() if k.endswith("_connectionparameters.json"))
    settings = parameters["token"]["oAuthSettings"]
    assert settings["identityProvider"] == "aad" and settings["clientId"] == client
    assert settings["customParameters"]["resourceUri"]["value"] == "api://notify.contoso.com"
    assert "clientSecret" not in json.dumps(parameters)  # entered by the maker after import


def test_a_missing_sample_fails_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from teams_proactive.connector import solution

    copy_root = tmp_path / "samples"
    shutil.copytree(SAMPLES_DIR, copy_root, ignore=shutil.ignore_patterns("solution", "__pycache__"))
    assert len(sample_flows(copy_root)) >= 10  # the copy is complete
    (copy_root / "read-log" / "flow.json").unlink()
    monkeypatch.setattr(solution, "samples_root", lambda: copy_root)
    with pytest.raises(SolutionError, match=r"read-log/flow\.json"):
        solution.solution_zips()
    out = tmp_path / "out"
    assert cli_main(["export-solution", "--out", str(out)]) == 1
    assert not out.exists() or list(out.iterdir()) == []


def test_committed_zips_are_in_sync(zips: dict[str, bytes]) -> None:
    committed = sorted(p.name for p in COMMITTED_DIR.glob("*.zip"))
    assert committed == sorted(zips), "run: teams-proactive export-solution --out power-automate-samples/solution"
    for name, data in zips.items():
        built, kept = unpack(data), unpack((COMMITTED_DIR / name).read_bytes())
        stale = sorted(part for part in set(built) | set(kept) if built.get(part) != kept.get(part))
        assert stale == [], f"{name}: run teams-proactive export-solution --out power-automate-samples/solution"
