"""The importable Power Platform solution: the custom connector, its connection references and every
sample flow, in the layout and XML Power Platform writes when it exports an unmanaged solution.

Layout learnt from solutions exported by Power Platform and kept in github.com/pnp/powerplatform-samples
(samples/varify-bot/solution/varify-bot.zip: a custom connector, connection references with a
``customconnectorid`` and workflows together; samples/prompt-wagon/solution/prompt-wagon.zip and
samples/ai-time-management-flow/solution/ai-time-management-flow.zip for the same parts alone):

- ``[Content_Types].xml``: Default content types by extension (xml, json, Png).
- ``solution.xml``: ``ImportExportXml/SolutionManifest`` with UniqueName, LocalizedNames, Version,
  Managed 0, the Publisher (UniqueName, CustomizationPrefix, CustomizationOptionValuePrefix, two
  Addresses) and RootComponents: type 29 per workflow (by id), type 372 for the connector (id and
  schemaName).
- ``customizations.xml``: ``Workflows/Workflow`` (JsonFileName, Type 1, Category 5 = modern flow, ...),
  ``Connectors/Connector`` (connectorid, displayname, iconbrandcolor, name, connectortype 1 and the paths
  of its four files), ``connectionreferences/connectionreference`` (logical and display name, connectorid
  ``/providers/Microsoft.PowerApps/apis/<api>``, for a custom connector also ``customconnectorid``).
- ``Connector/<name>_openapidefinition.json``, ``_connectionparameters.json``,
  ``_policytemplateinstances.json``, ``_iconblob.Png``.
- ``Workflows/<Name>-<GUID>.json``: the flow, its ``connectionReferences`` naming each connection
  reference by ``connectionReferenceLogicalName``; for the custom connector the ``api`` also carries
  the connector's ``logicalName`` (its ``name`` in customizations.xml), which is how the importer ties
  the flows to the connector it creates, whatever API name the new environment gives it.

Every id is a UUID derived from a name, so the same input gives the same zip byte for byte.
"""

from __future__ import annotations

import copy
import io
import json
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from teams_proactive.connector.export import api_properties, connector_files, entra_api_properties

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "power-automate-samples"
COMMITTED_ZIP = SAMPLES_DIR / "solution" / "ProactiveMessagesSamples.zip"
# The connector's API name in the sample flow.json files (what Power Automate shows in Peek code).
SAMPLE_CONNECTOR_API = "shared_teams-proactive-messages"

UNIQUE_NAME = "ProactiveMessagesSamples"
DISPLAY_NAME = "Proactive Messages samples"
DESCRIPTION = "The Proactive Messages custom connector and the sample flows that use it."
VERSION = "1.0.0.0"
PUBLISHER_UNIQUE_NAME = "teamsproactive"
PUBLISHER_DISPLAY_NAME = "teams-proactive"
PREFIX = "tp"
OPTION_VALUE_PREFIX = "27451"
CONNECTOR_NAME = f"{PREFIX}_5Fproactivemessages"  # the export's escaping: "_" becomes "5F"
CONNECTOR_API = "shared_tp-5fproactivemessages"
NAMESPACE = uuid.UUID("6f1c7f4e-1d2b-4b8e-9a53-5e0f3c2b7a10")
COMPONENT_WORKFLOW = 29
COMPONENT_CONNECTOR = 372
LANGUAGE = "1033"
FLOWS_ORDER = ("notify-assignee", "daily-reminder", "approval-card", "broadcast-report", "helpdesk-trigger")

# Display names of the Microsoft connectors the samples use, for their connection references.
KNOWN_APIS = {
    "shared_office365": "Office 365 Outlook",
    "shared_office365groups": "Office 365 Groups",
    "shared_sharepointonline": "SharePoint",
}


@dataclass(frozen=True)
class Flow:
    folder: str
    name: str
    description: str
    workflow_id: str
    document: dict[str, Any]

    @property
    def json_file(self) -> str:
        # As exports name them: the display name's letters and digits, then the workflow id.
        base = "".join(c for c in self.name if c.isalnum())
        return f"/Workflows/{base}-{self.workflow_id.upper()}.json"


def _id(name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, name))


def connector_id() -> str:
    return _id(f"connector:{CONNECTOR_NAME}")


def reference_name(api: str) -> str:
    """The connection reference's logical name for an API (prefix, then the API's letters)."""
    if api == CONNECTOR_API:
        return f"{PREFIX}_proactivemessages"
    return f"{PREFIX}_{''.join(c for c in api.removeprefix('shared_') if c.isalnum())}"


def sample_flows(samples_dir: Path = SAMPLES_DIR) -> list[Flow]:
    found = sorted(samples_dir.glob("*/flow.json"), key=lambda p: _order(p.parent.name))
    flows = []
    for path in found:
        document = json.loads(path.read_text(encoding="utf-8"))
        name = "Proactive Messages - " + path.parent.name.replace("-", " ").capitalize()
        flows.append(
            Flow(
                folder=path.parent.name,
                name=name,
                description=document["properties"].get("description", ""),
                workflow_id=_id(f"workflow:{path.parent.name}"),
                document=document,
            )
        )
    return flows


def _order(folder: str) -> tuple[int, str]:
    return (FLOWS_ORDER.index(folder) if folder in FLOWS_ORDER else len(FLOWS_ORDER), folder)


def _apis(document: dict[str, Any]) -> list[str]:
    return list(document["properties"]["connectionReferences"])


def solution_workflow(document: dict[str, Any]) -> dict[str, Any]:
    """A sample flow as the solution's workflow: our connector's real API name, connection references."""
    text = json.dumps(document, ensure_ascii=False).replace(SAMPLE_CONNECTOR_API, CONNECTOR_API)
    workflow = json.loads(text)
    references: dict[str, Any] = {}
    for api in _apis(workflow):
        reference: dict[str, Any] = {
            "runtimeSource": "embedded",
            "connection": {"connectionReferenceLogicalName": reference_name(api)},
            "api": {"name": api},
        }
        if api == CONNECTOR_API:
            reference["api"]["logicalName"] = CONNECTOR_NAME
        references[api] = reference
    workflow["properties"]["connectionReferences"] = references
    return workflow


# ---- XML ------------------------------------------------------------------------------------------
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = text
    return element


def _xml(root: ET.Element) -> bytes:
    ET.indent(root, space="  ")
    # Power Platform writes UTF-8 with a byte order mark and an XML declaration.
    return b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode").encode()


def content_types_xml() -> bytes:
    root = ET.Element("Types", xmlns="http://schemas.openxmlformats.org/package/2006/content-types")
    _sub(root, "Default", Extension="xml", ContentType="text/xml")
    _sub(root, "Default", Extension="json", ContentType="application/octet-stream")
    _sub(root, "Default", Extension="Png", ContentType="application/octet-stream")
    return _xml(root)


def solution_xml(flows: list[Flow]) -> bytes:
    root = ET.Element(
        "ImportExportXml",
        {"version": "9.2.24015.196", "SolutionPackageVersion": "9.2", "languagecode": LANGUAGE,
         "generatedBy": "CrmLive", "xmlns:xsi": XSI},
    )  # fmt: skip
    manifest = _sub(root, "SolutionManifest")
    _sub(manifest, "UniqueName", UNIQUE_NAME)
    names = _sub(manifest, "LocalizedNames")
    _sub(names, "LocalizedName", description=DISPLAY_NAME, languagecode=LANGUAGE)
    descriptions = _sub(manifest, "Descriptions")
    _sub(descriptions, "Description", description=DESCRIPTION, languagecode=LANGUAGE)
    _sub(manifest, "Version", VERSION)
    _sub(manifest, "Managed", "0")
    publisher = _sub(manifest, "Publisher")
    _sub(publisher, "UniqueName", PUBLISHER_UNIQUE_NAME)
    publisher_names = _sub(publisher, "LocalizedNames")
    _sub(publisher_names, "LocalizedName", description=PUBLISHER_DISPLAY_NAME, languagecode=LANGUAGE)
    _sub(publisher, "Descriptions")
    _sub(publisher, "CustomizationPrefix", PREFIX)
    _sub(publisher, "CustomizationOptionValuePrefix", OPTION_VALUE_PREFIX)
    addresses = _sub(publisher, "Addresses")
    for number in ("1", "2"):
        address = _sub(addresses, "Address")
        _sub(address, "AddressNumber", number)
        _sub(address, "AddressTypeCode", "1")
        _sub(address, "ShippingMethodCode", "1")
    components = _sub(manifest, "RootComponents")
    for flow in flows:
        _sub(components, "RootComponent", type=str(COMPONENT_WORKFLOW), id=f"{{{flow.workflow_id}}}", behavior="0")
    _sub(
        components,
        "RootComponent",
        type=str(COMPONENT_CONNECTOR),
        id=f"{{{connector_id()}}}",
        schemaName=CONNECTOR_NAME,
        behavior="0",
    )
    _sub(manifest, "MissingDependencies")
    return _xml(root)


def connector_paths() -> dict[str, str]:
    return {
        "openapidefinition": f"/Connector/{CONNECTOR_NAME}_openapidefinition.json",
        "connectionparameters": f"/Connector/{CONNECTOR_NAME}_connectionparameters.json",
        "policytemplateinstances": f"/Connector/{CONNECTOR_NAME}_policytemplateinstances.json",
        "iconblob": f"/Connector/{CONNECTOR_NAME}_iconblob.Png",
    }


def customizations_xml(flows: list[Flow], definition: dict[str, Any], brand_color: str) -> bytes:
    root = ET.Element("ImportExportXml", {"xmlns:xsi": XSI})
    for empty in ("Entities", "Roles"):
        _sub(root, empty)
    workflows = _sub(root, "Workflows")
    for flow in flows:
        workflow = _sub(workflows, "Workflow", WorkflowId=f"{{{flow.workflow_id}}}", Name=flow.name)
        _sub(workflow, "JsonFileName", flow.json_file)
        # A modern (cloud) flow, saved off: it is turned on after import, once its connections exist.
        for tag, value in (
            ("Type", "1"), ("Subprocess", "0"), ("Category", "5"), ("Mode", "0"), ("Scope", "4"),
            ("OnDemand", "0"), ("TriggerOnCreate", "0"), ("TriggerOnDelete", "0"), ("AsyncAutodelete", "0"),
            ("SyncWorkflowLogOnFailure", "0"), ("StateCode", "0"), ("StatusCode", "1"), ("RunAs", "1"),
            ("IsTransacted", "1"), ("IntroducedVersion", "1.0.0.0"), ("IsCustomizable", "1"),
            ("BusinessProcessType", "0"), ("IsCustomProcessingStepAllowedForOtherPublishers", "1"),
            ("ModernFlowType", "0"), ("PrimaryEntity", "none"),
        ):  # fmt: skip
            _sub(workflow, tag, value)
        names = _sub(workflow, "LocalizedNames")
        _sub(names, "LocalizedName", languagecode=LANGUAGE, description=flow.name)
        descriptions = _sub(workflow, "Descriptions")
        _sub(descriptions, "Description", languagecode=LANGUAGE, description=flow.description)
    for empty in ("FieldSecurityProfiles", "Templates", "EntityMaps", "EntityRelationships", "OrganizationSettings",
                  "optionsets", "CustomControls", "EntityDataProviders"):  # fmt: skip
        _sub(root, empty)
    connectors = _sub(root, "Connectors")
    connector = _sub(connectors, "Connector")
    _sub(connector, "connectorid", connector_id())
    _sub(connector, "description", definition["info"]["description"])
    _sub(connector, "displayname", definition["info"]["title"])
    _sub(connector, "iconbrandcolor", brand_color)
    _sub(connector, "name", CONNECTOR_NAME)
    _sub(connector, "connectortype", "1")
    for tag, path in connector_paths().items():
        _sub(connector, tag, path)
    references = _sub(root, "connectionreferences")
    for api in sorted({api for flow in flows for api in _apis(solution_workflow(flow.document))}):
        reference = _sub(references, "connectionreference", connectionreferencelogicalname=reference_name(api))
        shown = definition["info"]["title"] if api == CONNECTOR_API else KNOWN_APIS.get(api, api)
        _sub(reference, "connectionreferencedisplayname", f"{shown} ({DISPLAY_NAME})")
        _sub(reference, "connectorid", f"/providers/Microsoft.PowerApps/apis/{api}")
        if api == CONNECTOR_API:
            custom = _sub(reference, "customconnectorid")
            _sub(custom, "connectorid", connector_id())
        for tag, value in (
            ("iscustomizable", "1"),
            ("promptingbehavior", "0"),
            ("statecode", "0"),
            ("statuscode", "1"),
        ):
            _sub(reference, tag, value)
    languages = _sub(root, "Languages")
    _sub(languages, "Language", LANGUAGE)
    return _xml(root)


# ---- the zip --------------------------------------------------------------------------------------
def solution_files(
    host: str | None = None, *, auth: str = "apikey", samples_dir: Path = SAMPLES_DIR
) -> dict[str, bytes]:
    """Every part of the solution by its path in the zip."""
    files = connector_files(host)
    prefix = "entra/" if auth == "entra" else ""
    definition = json.loads(files[f"{prefix}apiDefinition.swagger.json"])
    properties = (entra_api_properties(host=host) if auth == "entra" else api_properties(host))["properties"]
    flows = sample_flows(samples_dir)
    paths = connector_paths()
    parts = {
        "[Content_Types].xml": content_types_xml(),
        "solution.xml": solution_xml(flows),
        "customizations.xml": customizations_xml(flows, definition, properties["iconBrandColor"]),
        paths["openapidefinition"]: files[f"{prefix}apiDefinition.swagger.json"],
        paths["connectionparameters"]: _json(properties["connectionParameters"]),
        paths["policytemplateinstances"]: _json(properties.get("policyTemplateInstances", [])),
        paths["iconblob"]: files["icon.png"],
    }
    for flow in flows:
        parts[flow.json_file] = _json(solution_workflow(copy.deepcopy(flow.document)))
    return {path.lstrip("/"): data for path, data in parts.items()}


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def solution_zip(host: str | None = None, *, auth: str = "apikey", samples_dir: Path = SAMPLES_DIR) -> bytes:
    """The solution as a zip, the same bytes for the same input (fixed order and timestamps)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in solution_files(host, auth=auth, samples_dir=samples_dir).items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def export_solution(out: Path, host: str | None = None, *, auth: str = "apikey") -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(solution_zip(host, auth=auth))
    return out
