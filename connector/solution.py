"""The importable Power Platform solutions, in the layout and XML Power Platform writes when it exports an
unmanaged solution: ``ProactiveMessagesConnector`` holds the custom connector alone, ``ProactiveMessagesSamples``
every sample flow, their connection references and environment variables, and names the connector as a
dependency. Microsoft's guidance keeps a custom connector in its own solution, imported first, and the
flows that use it in another (importing both in one solution is a documented limitation).

Layout learnt from solutions exported by Power Platform and kept in github.com/pnp/powerplatform-samples
(samples/varify-bot/solution/varify-bot.zip: a custom connector, connection references with a
``customconnectorid`` and workflows together; samples/prompt-wagon/solution/prompt-wagon.zip and
samples/ai-time-management-flow/solution/ai-time-management-flow.zip for the same parts alone):

- ``[Content_Types].xml``: Default content types by extension (xml, json, Png).
- ``solution.xml``: ``ImportExportXml/SolutionManifest`` with UniqueName, LocalizedNames, Version,
  Managed 0, the Publisher (UniqueName, CustomizationPrefix, CustomizationOptionValuePrefix, two
  Addresses), RootComponents (type 29 per workflow by id, 372 for the connector with its schemaName,
  380 per environment variable definition by schemaName) and MissingDependencies (what another solution
  must bring: here the connector, Required type 372, each flow that uses it the Dependent type 29).
- ``customizations.xml``: ``Workflows/Workflow`` (JsonFileName, Type 1, Category 5 = modern flow, ...),
  ``Connectors/Connector`` (connectorid, displayname, iconbrandcolor, name, connectortype 1 and the paths
  of its four files), ``connectionreferences/connectionreference`` (logical and display name, connectorid
  ``/providers/Microsoft.PowerApps/apis/<api>``, for a custom connector also ``customconnectorid``).
- ``environmentvariabledefinitions/<schemaname>/environmentvariabledefinition.xml``: display name,
  description, type 100000000 (text), no value, so the import wizard asks for one.
- ``Connector/<name>_openapidefinition.json``, ``_connectionparameters.json``,
  ``_policytemplateinstances.json``, ``_iconblob.Png``.
- ``Workflows/<Name>-<GUID>.json``: the flow, its ``connectionReferences`` naming each connection
  reference by ``connectionReferenceLogicalName``; for the custom connector the ``api`` also carries
  the connector's ``logicalName`` (its ``name`` in customizations.xml), which is how the importer ties
  the flows to the connector, whatever API name the new environment gives it. An environment variable is
  a definition parameter named ``Display name (schemaname)`` with ``metadata.schemaName``, read as
  ``@parameters('Display name (schemaname)')``: the sample flow.json files declare them so.

The samples are package data (``teams_proactive.samples``, the repository's power-automate-samples/),
found with importlib.resources, so a wheel exports what the source tree does. Every id is a UUID derived
from a name, so the same input gives the same zips byte for byte.
"""

from __future__ import annotations

import copy
import io
import json
import os
import tempfile
import uuid
import zipfile
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from teams_proactive.connector.export import (
    ENTRA_CLIENT_ID_PLACEHOLDER,
    ENTRA_RESOURCE_PLACEHOLDER,
    api_properties,
    connector_files,
    entra_api_properties,
)
from teams_proactive.connector.keys import SCOPES

SAMPLES_PACKAGE = "teams_proactive.samples"
# The connector's API name in the sample flow.json files (what Power Automate shows in Peek code).
SAMPLE_CONNECTOR_API = "shared_teams-proactive-messages"

VERSION = "1.0.0.0"
CONNECTOR_SOLUTION = "ProactiveMessagesConnector"
SAMPLES_SOLUTION = "ProactiveMessagesSamples"
DISPLAY_NAMES = {CONNECTOR_SOLUTION: "Proactive Messages connector", SAMPLES_SOLUTION: "Proactive Messages samples"}
DESCRIPTIONS = {
    CONNECTOR_SOLUTION: "The Proactive Messages custom connector. Import it before the samples.",
    SAMPLES_SOLUTION: "Sample flows that use the Proactive Messages connector; import the connector solution first.",
}
PUBLISHER_UNIQUE_NAME = "teamsproactive"
PUBLISHER_DISPLAY_NAME = "teams-proactive"
PREFIX = "tp"
OPTION_VALUE_PREFIX = "27451"
CONNECTOR_NAME = f"{PREFIX}_5Fproactivemessages"  # the export's escaping: "_" becomes "5F"
CONNECTOR_API = "shared_tp-5fproactivemessages"
NAMESPACE = uuid.UUID("6f1c7f4e-1d2b-4b8e-9a53-5e0f3c2b7a10")
COMPONENT_WORKFLOW = 29
COMPONENT_CONNECTOR = 372
COMPONENT_VARIABLE = 380
VARIABLE_TYPE_TEXT = "100000000"
LANGUAGE = "1033"
# Every sample folder, in the order the solution lists them; a folder missing from an installation fails
# the export instead of leaving a flow out.
FLOWS_ORDER = (
    "notify-assignee", "daily-reminder", "approval-card", "broadcast-report", "read-reminder", "read-log",
    "helpdesk-trigger", "card-submitted", "delivery-failed", "installation-changed",
)  # fmt: skip

# Display names of the Microsoft connectors the samples use, for their connection references.
KNOWN_APIS = {
    "shared_office365": "Office 365 Outlook",
    "shared_office365groups": "Office 365 Groups",
    "shared_sharepointonline": "SharePoint",
}


class SolutionError(Exception):
    """Something the solutions need is missing or wrong; nothing was written."""


@dataclass(frozen=True)
class Flow:
    folder: str
    name: str
    description: str
    scopes: tuple[str, ...]
    workflow_id: str
    document: dict[str, Any]

    @property
    def json_file(self) -> str:
        # As exports name them: the display name's letters and digits, then the workflow id.
        base = "".join(c for c in self.name if c.isalnum())
        return f"/Workflows/{base}-{self.workflow_id.upper()}.json"


@dataclass(frozen=True)
class Variable:
    """An environment variable definition, as a flow declares it among its definition's parameters."""

    schema_name: str
    display_name: str
    description: str

    @property
    def parameter(self) -> str:
        return f"{self.display_name} ({self.schema_name})"


def _id(name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, name))


def connector_id() -> str:
    return _id(f"connector:{CONNECTOR_NAME}")


def reference_name(api: str) -> str:
    """The connection reference's logical name for an API (prefix, then the API's letters)."""
    if api == CONNECTOR_API:
        return f"{PREFIX}_proactivemessages"
    return f"{PREFIX}_{''.join(c for c in api.removeprefix('shared_') if c.isalnum())}"


def zip_name(unique_name: str) -> str:
    """The file name Power Platform gives an unmanaged export: ``Name_1_0_0_0.zip``."""
    return f"{unique_name}_{VERSION.replace('.', '_')}.zip"


# ---- the samples (package data) -------------------------------------------------------------------
def samples_root() -> Traversable:
    try:
        return resources.files(SAMPLES_PACKAGE)
    except ModuleNotFoundError as exc:
        raise SolutionError(
            f"The sample flows are not installed ({SAMPLES_PACKAGE} is missing): reinstall teams-proactive."
        ) from exc


def _read_json(node: Traversable, what: str) -> Any:
    if not node.is_file():
        raise SolutionError(
            f"{what} is missing from the installed samples ({SAMPLES_PACKAGE}): reinstall teams-proactive."
        )
    try:
        return json.loads(node.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise SolutionError(f"{what} is not valid JSON: {exc}") from exc


def sample_flows(root: Traversable | None = None) -> list[Flow]:
    """Every sample flow with its metadata (sample.json: title and the key scopes it needs)."""
    root = root or samples_root()
    present = {entry.name for entry in root.iterdir() if entry.is_dir() and entry.joinpath("flow.json").is_file()}
    unknown = sorted(present - set(FLOWS_ORDER))
    if unknown:
        raise SolutionError(f"Sample folders {unknown} are not in connector/solution.py's FLOWS_ORDER.")
    flows = []
    for folder in FLOWS_ORDER:
        document = _read_json(root.joinpath(folder, "flow.json"), f"{folder}/flow.json")
        meta = _read_json(root.joinpath(folder, "sample.json"), f"{folder}/sample.json")
        if not meta.get("title") or not meta.get("scopes"):
            raise SolutionError(f"{folder}/sample.json needs a title and the scopes the flow needs.")
        flows.append(
            Flow(
                folder=folder,
                name=f"Proactive Messages - {meta['title']}",
                description=document["properties"].get("description", ""),
                scopes=tuple(meta["scopes"]),
                workflow_id=_id(f"workflow:{folder}"),
                document=document,
            )
        )
    return flows


def sample_scopes(flows: list[Flow] | None = None) -> list[str]:
    """The key scopes that let one connection run every sample, in the order keys list them."""
    needed = {scope for flow in (flows if flows is not None else sample_flows()) for scope in flow.scopes}
    return [scope for scope in SCOPES if scope in needed]


def flow_variables(document: dict[str, Any]) -> list[Variable]:
    """The environment variables a flow declares (parameters with ``metadata.schemaName``)."""
    found = []
    for key, parameter in document["properties"]["definition"].get("parameters", {}).items():
        schema_name = (parameter.get("metadata") or {}).get("schemaName")
        if not schema_name:
            continue
        display = key.removesuffix(f" ({schema_name})")
        if display == key or not schema_name.startswith(f"{PREFIX}_"):
            raise SolutionError(f"Flow parameter {key!r}: name it 'Display name ({PREFIX}_Name)'.")
        found.append(Variable(schema_name, display, parameter["metadata"].get("description", "")))
    return found


def variables(flows: list[Flow]) -> list[Variable]:
    """Every environment variable of the samples, once, sorted by schema name."""
    by_name: dict[str, Variable] = {}
    for flow in flows:
        for variable in flow_variables(flow.document):
            if by_name.setdefault(variable.schema_name, variable) != variable:
                raise SolutionError(f"{flow.folder}: {variable.schema_name} is declared differently in another flow.")
    return [by_name[name] for name in sorted(by_name)]


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


def solution_xml(unique_name: str, flows: list[Flow], found: list[Variable], connector_title: str) -> bytes:
    root = ET.Element(
        "ImportExportXml",
        {"version": "9.2.24015.196", "SolutionPackageVersion": "9.2", "languagecode": LANGUAGE,
         "generatedBy": "CrmLive", "xmlns:xsi": XSI},
    )  # fmt: skip
    manifest = _sub(root, "SolutionManifest")
    _sub(manifest, "UniqueName", unique_name)
    names = _sub(manifest, "LocalizedNames")
    _sub(names, "LocalizedName", description=DISPLAY_NAMES[unique_name], languagecode=LANGUAGE)
    descriptions = _sub(manifest, "Descriptions")
    _sub(descriptions, "Description", description=DESCRIPTIONS[unique_name], languagecode=LANGUAGE)
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
    for variable in found:
        _sub(components, "RootComponent", type=str(COMPONENT_VARIABLE), schemaName=variable.schema_name, behavior="0")
    if unique_name == CONNECTOR_SOLUTION:
        _sub(
            components,
            "RootComponent",
            type=str(COMPONENT_CONNECTOR),
            id=f"{{{connector_id()}}}",
            schemaName=CONNECTOR_NAME,
            behavior="0",
        )
    missing = _sub(manifest, "MissingDependencies")
    for flow in flows:
        if CONNECTOR_API not in _apis(solution_workflow(flow.document)):
            continue
        dependency = _sub(missing, "MissingDependency")
        _sub(
            dependency,
            "Required",
            type=str(COMPONENT_CONNECTOR),
            schemaName=CONNECTOR_NAME,
            displayName=connector_title,
            solution=f"{CONNECTOR_SOLUTION} ({VERSION})",
            id=f"{{{connector_id()}}}",
        )
        _sub(dependency, "Dependent", type=str(COMPONENT_WORKFLOW), displayName=flow.name, id=f"{{{flow.workflow_id}}}")
    return _xml(root)


def connector_paths() -> dict[str, str]:
    return {
        "openapidefinition": f"/Connector/{CONNECTOR_NAME}_openapidefinition.json",
        "connectionparameters": f"/Connector/{CONNECTOR_NAME}_connectionparameters.json",
        "policytemplateinstances": f"/Connector/{CONNECTOR_NAME}_policytemplateinstances.json",
        "iconblob": f"/Connector/{CONNECTOR_NAME}_iconblob.Png",
    }


def _customizations_root() -> ET.Element:
    return ET.Element("ImportExportXml", {"xmlns:xsi": XSI})


def _empty(root: ET.Element, *tags: str) -> None:
    for tag in tags:
        _sub(root, tag)


def connector_customizations_xml(definition: dict[str, Any], brand_color: str) -> bytes:
    root = _customizations_root()
    _empty(root, "Entities", "Roles", "Workflows", "FieldSecurityProfiles", "Templates", "EntityMaps",
           "EntityRelationships", "OrganizationSettings", "optionsets", "CustomControls", "EntityDataProviders")  # fmt: skip
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
    languages = _sub(root, "Languages")
    _sub(languages, "Language", LANGUAGE)
    return _xml(root)


def samples_customizations_xml(flows: list[Flow], connector_title: str) -> bytes:
    root = _customizations_root()
    _empty(root, "Entities", "Roles")
    workflows = _sub(root, "Workflows")
    for flow in flows:
        workflow = _sub(workflows, "Workflow", WorkflowId=f"{{{flow.workflow_id}}}", Name=flow.name)
        _sub(workflow, "JsonFileName", flow.json_file)
        # A modern (cloud) flow, saved off: it is turned on after import, once its connections exist.
        for tag, value in (
            ("Type", "1"), ("Subprocess", "0"), ("Category", "5"), ("Mode", "0"), ("Scope", "4"),
            ("OnDemand", "0"), ("TriggerOnCreate", "0"), ("TriggerOnDelete", "0"), ("AsyncAutodelete", "0"),
            ("SyncWorkflowLogOnFailure", "0"), ("StateCode", "0"), ("StatusCode", "1"), ("RunAs", "1"),
            ("IsTransacted", "1"), ("IntroducedVersion", VERSION), ("IsCustomizable", "1"),
            ("BusinessProcessType", "0"), ("IsCustomProcessingStepAllowedForOtherPublishers", "1"),
            ("ModernFlowType", "0"), ("PrimaryEntity", "none"),
        ):  # fmt: skip
            _sub(workflow, tag, value)
        names = _sub(workflow, "LocalizedNames")
        _sub(names, "LocalizedName", languagecode=LANGUAGE, description=flow.name)
        descriptions = _sub(workflow, "Descriptions")
        _sub(descriptions, "Description", languagecode=LANGUAGE, description=flow.description)
    _empty(root, "FieldSecurityProfiles", "Templates", "EntityMaps", "EntityRelationships", "OrganizationSettings",
           "optionsets", "CustomControls", "EntityDataProviders")  # fmt: skip
    references = _sub(root, "connectionreferences")
    for api in sorted({api for flow in flows for api in _apis(solution_workflow(flow.document))}):
        reference = _sub(references, "connectionreference", connectionreferencelogicalname=reference_name(api))
        shown = connector_title if api == CONNECTOR_API else KNOWN_APIS.get(api, api)
        _sub(reference, "connectionreferencedisplayname", f"{shown} ({DISPLAY_NAMES[SAMPLES_SOLUTION]})")
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


def variable_xml(variable: Variable) -> bytes:
    root = ET.Element("environmentvariabledefinition", schemaname=variable.schema_name)
    description = _sub(root, "description", default=variable.description)
    _sub(description, "label", description=variable.description, languagecode=LANGUAGE)
    display = _sub(root, "displayname", default=variable.display_name)
    _sub(display, "label", description=variable.display_name, languagecode=LANGUAGE)
    _sub(root, "introducedversion", VERSION)
    _sub(root, "iscustomizable", "1")
    # Required and without a value: the import wizard asks for it.
    _sub(root, "isrequired", "1")
    _sub(root, "secretstore", "0")
    _sub(root, "type", VARIABLE_TYPE_TEXT)
    return _xml(root)


# ---- the zips -------------------------------------------------------------------------------------
def _connector_parts(
    host: str | None, auth: str, entra_client_id: str, entra_resource: str
) -> tuple[bytes, dict[str, Any], bytes]:
    files = connector_files(host, entra_client_id=entra_client_id, entra_resource=entra_resource)
    prefix = "entra/" if auth == "entra" else ""
    if auth == "entra":
        properties = entra_api_properties(entra_client_id, entra_resource, host)["properties"]
    else:
        properties = api_properties(host)["properties"]
    return files[f"{prefix}apiDefinition.swagger.json"], properties, files["icon.png"]


def connector_solution_files(
    host: str | None = None,
    *,
    auth: str = "apikey",
    entra_client_id: str = ENTRA_CLIENT_ID_PLACEHOLDER,
    entra_resource: str = ENTRA_RESOURCE_PLACEHOLDER,
) -> dict[str, bytes]:
    """Every part of the connector solution by its path in the zip."""
    text, properties, icon = _connector_parts(host, auth, entra_client_id, entra_resource)
    definition = json.loads(text)
    paths = connector_paths()
    parts = {
        "[Content_Types].xml": content_types_xml(),
        "solution.xml": solution_xml(CONNECTOR_SOLUTION, [], [], definition["info"]["title"]),
        "customizations.xml": connector_customizations_xml(definition, properties["iconBrandColor"]),
        paths["openapidefinition"]: text,
        paths["connectionparameters"]: _json(properties["connectionParameters"]),
        paths["policytemplateinstances"]: _json(properties.get("policyTemplateInstances", [])),
        paths["iconblob"]: icon,
    }
    return {path.lstrip("/"): data for path, data in parts.items()}


def samples_solution_files(flows: list[Flow] | None = None) -> dict[str, bytes]:
    """Every part of the samples solution by its path in the zip."""
    flows = sample_flows() if flows is None else flows
    found = variables(flows)
    title = json.loads(connector_files()["apiDefinition.swagger.json"])["info"]["title"]
    parts = {
        "[Content_Types].xml": content_types_xml(),
        "solution.xml": solution_xml(SAMPLES_SOLUTION, flows, found, title),
        "customizations.xml": samples_customizations_xml(flows, title),
    }
    for variable in found:
        parts[f"environmentvariabledefinitions/{variable.schema_name}/environmentvariabledefinition.xml"] = (
            variable_xml(variable)
        )
    for flow in flows:
        parts[flow.json_file] = _json(solution_workflow(copy.deepcopy(flow.document)))
    return {path.lstrip("/"): data for path, data in parts.items()}


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def pack(parts: dict[str, bytes]) -> bytes:
    """A zip, the same bytes for the same parts (fixed order and timestamps)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def solution_zips(
    host: str | None = None,
    *,
    auth: str = "apikey",
    entra_client_id: str = ENTRA_CLIENT_ID_PLACEHOLDER,
    entra_resource: str = ENTRA_RESOURCE_PLACEHOLDER,
) -> dict[str, bytes]:
    """Both solutions by file name, the connector's first (the order Power Platform imports them)."""
    connector = connector_solution_files(
        host, auth=auth, entra_client_id=entra_client_id, entra_resource=entra_resource
    )
    return {
        zip_name(CONNECTOR_SOLUTION): pack(connector),
        zip_name(SAMPLES_SOLUTION): pack(samples_solution_files()),
    }


def export_solution(
    out: Path,
    host: str | None = None,
    *,
    auth: str = "apikey",
    entra_client_id: str = ENTRA_CLIENT_ID_PLACEHOLDER,
    entra_resource: str = ENTRA_RESOURCE_PLACEHOLDER,
) -> list[Path]:
    """Write both zips into the folder ``out``; built whole in memory first, each written by rename, so a
    failure leaves no partial zip behind."""
    zips = solution_zips(host, auth=auth, entra_client_id=entra_client_id, entra_resource=entra_resource)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in zips.items():
        target = out / name
        handle, temporary = tempfile.mkstemp(dir=out, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        written.append(target)
    return written
