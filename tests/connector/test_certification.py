"""Certification, offline: every rule of Microsoft's swagger validator and of the connector
certification checklist that can be checked without Microsoft's service, applied to the generated
files (both variants); 0 errors and 0 warnings. Each rule is also shown to catch a seeded fault.

Where the rules come from (named per rule in RULES):
- VALIDATOR: the messages Microsoft's swagger validator (``paconn validate``, the PowerPlatformConnectors
  CI) prints, as quoted in reviews on github.com/microsoft/PowerPlatformConnectors, e.g. "The 'title'
  value goes over the character limit '30'", "contains at least one of the restricted words: 'api,
  connector'", "... 'power apps, power automate, logic apps'", "Summary string contains any of the
  restricted characters [/\\<>*%&?]", "The 'contact' property is required", "The
  'x-ms-connector-metadata' property is required", "The 'x-ms-summary' property is required",
  "DefaultResponseHasSchema", "ExtensionNameNotValid", "OperationHasManyResponsesWithSchema".
- STANDARDS: learn.microsoft.com/connectors/custom-connectors/coding-standards (PascalCase operationId,
  summary and description on every operation, different, the description a sentence ending with a
  period, x-ms-summary in Title Case, 2xx success responses, no empty schema, trigger names).
- CHECKLIST: the certification submission pages and PR template (contact, Website / Privacy policy /
  Categories metadata, brand colour not #007ee5 or #ffffff, icon 230x230 on a solid non-white
  background with a white one-colour logo, readme.md sections of templates/certified-connectors).
- DESIGNER: what the flow designer shows (nested labels composed "Parent Child"; date-time fields get a
  date picker; enums a drop-down), the issue's list of findings for this connector.
- WARNINGS: the certification warnings issue 23 listed and this suite once missed (it said 0 while 10
  were there, because no rule looked at them and the MCP variant was never checked): x-ms-summary
  characters, publisher and stack owner, x-ms-dynamic-values parameters, free-form output objects, intro.md,
  the MCP variant's description and contact. Every rule is shown to catch a broken copy below.
The rules are generic: they check whatever operations and schemas the definition has.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from teams_proactive.connector.connector_readme import INTRO_SECTIONS, README_SECTIONS
from teams_proactive.connector.export import connector_files, mcp_connector_files
from teams_proactive.connector.icon import read_png

METHODS = ("get", "put", "post", "delete", "patch")
OPERATION_KEYS = {
    "tags", "summary", "description", "operationId", "consumes", "produces", "parameters", "responses",
    "schemes", "deprecated", "security", "externalDocs",
}  # fmt: skip
RESTRICTED_TITLE_WORDS = ("api", "connector")
# The validator's list for descriptions, plus the product names Microsoft's brand rules keep out of a
# third-party connector's texts.
PRODUCT_NAMES = ("power apps", "power automate", "logic apps", "copilot studio", "power platform", "microsoft flow")
TITLE_PRODUCT_NAMES = (*PRODUCT_NAMES, "microsoft", "teams", "office", "outlook", "sharepoint")
SUMMARY_RESTRICTED = re.compile(r"[/\\<>*%&?]")
CATEGORIES = {
    "AI", "Business Management", "Business Intelligence", "Collaboration", "Commerce", "Communication",
    "Content and Files", "Finance", "Data", "Human Resources", "Internet of Things", "IT Operations",
    "Lifestyle and Entertainment", "Marketing", "Productivity", "Sales and CRM", "Security", "Social Media",
    "Website",
}  # fmt: skip
FORMATS = {
    "date-time",
    "date",
    "uri",
    "email",
    "int32",
    "int64",
    "float",
    "double",
    "byte",
    "binary",
    "uuid",
    "password",
}
MINOR_WORDS = {"a", "an", "and", "as", "at", "but", "by", "for", "from", "in", "into", "of", "on", "or", "per", "the",
               "to", "via", "with"}  # fmt: skip
FORBIDDEN_COLOURS = {"#007EE5", "#FFFFFF", "#4B53BC", "#5059C9", "#6264A7", "#7B83EB"}  # Microsoft's, Teams' purples
TIMESTAMP_NAME = re.compile(r"(At|^timestamp|^lastSeen)$")
LABEL_CHARACTERS = re.compile(r"[A-Za-z0-9 ()]+")


@dataclass(frozen=True)
class Finding:
    rule: str
    where: str
    message: str


@dataclass(frozen=True)
class Files:
    definition: dict[str, Any]
    properties: dict[str, Any]
    icon: bytes
    readme: str
    intro: str = ""


# ---- walking the definition -----------------------------------------------------------------------
def operations(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield f"{method} {path}", item[method]


def schemas(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its place: definitions, body parameters, responses, headers, nested ones."""

    def walk(node: dict[str, Any], where: str) -> Iterator[tuple[str, dict[str, Any]]]:
        yield where, node
        for name, prop in (node.get("properties") or {}).items():
            yield from walk(prop, f"{where}.{name}")
        if isinstance(node.get("items"), dict):
            yield from walk(node["items"], f"{where}[]")

    for name, schema in spec.get("definitions", {}).items():
        yield from walk(schema, name)
    for where, op in operations(spec):
        for parameter in op.get("parameters", []):
            if isinstance(parameter.get("schema"), dict):
                yield from walk(parameter["schema"], f"{where} body")
        for status, response in op.get("responses", {}).items():
            if isinstance(response.get("schema"), dict):
                yield from walk(response["schema"], f"{where} {status}")


def labelled(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Everything the designer labels: parameters, headers, schema properties."""
    for where, op in operations(spec):
        for parameter in op.get("parameters", []):
            yield f"{where} parameter {parameter['name']}", parameter
        for status, response in op.get("responses", {}).items():
            for name, header in (response.get("headers") or {}).items():
                yield f"{where} {status} header {name}", header
    for where, schema in schemas(spec):
        for name, prop in (schema.get("properties") or {}).items():
            yield f"{where}.{name}", prop


def texts(spec: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """Every string a maker or an agent reads: summaries, descriptions, labels, titles."""

    def walk(node: Any, where: str) -> Iterator[tuple[str, str]]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("summary", "description", "x-ms-summary", "title") and isinstance(value, str):
                    yield f"{where}.{key}", value
                elif key not in ("enum", "default", "x-ms-connector-metadata", "contact"):
                    yield from walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, f"{where}[{index}]")

    yield from walk(spec, "$")


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    return spec["definitions"][ref.rsplit("/", 1)[-1]] if ref else node


def title_case(label: str) -> bool:
    for index, word in enumerate(label.split()):
        letters = word.lstrip("(\"'")
        if not letters or not letters[0].isalpha():
            continue
        if index > 0 and word in MINOR_WORDS:
            continue
        if not letters[0].isupper():
            return False
    return True


# ---- the rules ------------------------------------------------------------------------------------
Rule = Callable[[Files], Iterator[Finding]]
RULES: dict[str, tuple[str, Rule]] = {}


def rule(name: str, source: str) -> Callable[[Rule], Rule]:
    def register(check: Rule) -> Rule:
        RULES[name] = (source, check)
        return check

    return register


@rule("TitleLength", "VALIDATOR: The 'title' value goes over the character limit '30'")
def _title_length(f: Files) -> Iterator[Finding]:
    title = f.definition["info"].get("title", "")
    if not 0 < len(title) <= 30:
        yield Finding("TitleLength", "/info/title", title)


@rule("TitleRestrictedWords", "VALIDATOR: title without 'api', 'connector' or a product name (CHECKLIST)")
def _title_words(f: Files) -> Iterator[Finding]:
    title = f.definition["info"]["title"].lower()
    for word in (*RESTRICTED_TITLE_WORDS, *TITLE_PRODUCT_NAMES):
        if re.search(rf"\b{re.escape(word)}\b", title):
            yield Finding("TitleRestrictedWords", "/info/title", word)


@rule("InfoDescription", "VALIDATOR: The 'description' property is required (/info); template: 30 to 500 characters")
def _info_description(f: Files) -> Iterator[Finding]:
    description = f.definition["info"].get("description", "")
    if not 30 <= len(description) <= 500:
        yield Finding("InfoDescription", "/info/description", f"{len(description)} characters")


@rule("ProductNames", "VALIDATOR: restricted words 'power apps, power automate, logic apps' (and the other products)")
def _product_names(f: Files) -> Iterator[Finding]:
    for where, text in texts(f.definition):
        if where == "$.info.title":
            continue
        for name in PRODUCT_NAMES:
            if name in text.lower():
                yield Finding("ProductNames", where, name)


@rule("ContactRequired", "VALIDATOR: The 'contact' property is required (/info), with name, url and email")
def _contact(f: Files) -> Iterator[Finding]:
    contact = f.definition["info"].get("contact") or {}
    for key in ("name", "url", "email"):
        if not contact.get(key):
            yield Finding("ContactRequired", f"/info/contact/{key}", "missing")
    if contact.get("email") and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", contact["email"]):
        yield Finding("ContactRequired", "/info/contact/email", contact["email"])


@rule(
    "ConnectorMetadata",
    "VALIDATOR: The 'x-ms-connector-metadata' property is required: Website, Privacy policy, Categories",
)
def _metadata(f: Files) -> Iterator[Finding]:
    metadata = {m["propertyName"]: m["propertyValue"] for m in f.definition.get("x-ms-connector-metadata", [])}
    for name in ("Website", "Privacy policy"):
        if not re.match(r"https://[^/\s]+/?", metadata.get(name, "")):
            yield Finding("ConnectorMetadata", name, metadata.get(name, "missing"))
    categories = [c for c in metadata.get("Categories", "").split(";") if c]
    if not categories or set(categories) - CATEGORIES:
        yield Finding("ConnectorMetadata", "Categories", metadata.get("Categories", "missing"))


@rule("OperationIdPascalCase", "STANDARDS: operationId in PascalCase, unique, no '-' or '_'")
def _operation_ids(f: Files) -> Iterator[Finding]:
    seen: set[str] = set()
    for where, op in operations(f.definition):
        operation_id = op.get("operationId", "")
        if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", operation_id) or operation_id in seen:
            yield Finding("OperationIdPascalCase", where, operation_id)
        seen.add(operation_id)


@rule(
    "SummaryAndDescription", "VALIDATOR/STANDARDS: summary and description required, differ, description ends with '.'"
)
def _summary_description(f: Files) -> Iterator[Finding]:
    for where, op in operations(f.definition):
        summary, description = op.get("summary", ""), op.get("description", "")
        if not summary or not description or summary == description:
            yield Finding("SummaryAndDescription", where, "missing or equal")
        elif summary.endswith(".") or not description.endswith("."):
            yield Finding("SummaryAndDescription", where, "summary ends with '.' or description does not")
        if len(summary) > 80:
            yield Finding("SummaryAndDescription", where, f"summary of {len(summary)} characters (80 at most)")


@rule("SummaryRestrictedCharacters", "VALIDATOR: Summary string contains any of the restricted characters [/\\<>*%&?]")
def _summary_characters(f: Files) -> Iterator[Finding]:
    for where, op in operations(f.definition):
        if SUMMARY_RESTRICTED.search(op.get("summary", "")):
            yield Finding("SummaryRestrictedCharacters", where, op["summary"])


@rule("NoApostropheInSummary", "DESIGNER/issue: no apostrophes in operation summaries and labels")
def _apostrophes(f: Files) -> Iterator[Finding]:
    for where, op in operations(f.definition):
        if re.search(r"['\u2019]", op.get("summary", "")):
            yield Finding("NoApostropheInSummary", where, op["summary"])
    for where, node in labelled(f.definition):
        if re.search(r"['\u2019]", node.get("x-ms-summary", "")):
            yield Finding("NoApostropheInSummary", where, node["x-ms-summary"])


@rule(
    "LabelAndDescriptionRequired",
    "VALIDATOR: The 'x-ms-summary' / 'description' property is required (parameters, properties, headers)",
)
def _labels(f: Files) -> Iterator[Finding]:
    for where, node in labelled(f.definition):
        if not node.get("x-ms-summary") or not node.get("description"):
            yield Finding("LabelAndDescriptionRequired", where, "x-ms-summary or description missing")


@rule("LabelTitleCase", "STANDARDS: x-ms-summary in Title Case")
def _title_case(f: Files) -> Iterator[Finding]:
    for where, node in labelled(f.definition):
        label = node.get("x-ms-summary", "")
        if label and not title_case(label):
            yield Finding("LabelTitleCase", where, label)


@rule("NoDoubledLabels", "DESIGNER: a nested field shows as 'Parent Child'; the child must not repeat the parent")
def _doubled(f: Files) -> Iterator[Finding]:
    def stem(word: str) -> str:
        return word.lower().rstrip("s")

    for where, schema in schemas(f.definition):
        for name, prop in (schema.get("properties") or {}).items():
            parent = prop.get("x-ms-summary", "")
            inner = prop.get("items") if isinstance(prop.get("items"), dict) else prop
            for child_name, child in (inner.get("properties") or {}).items():
                label = child.get("x-ms-summary", "")
                if parent and label and stem(label.split()[0]) == stem(parent.split()[0]):
                    yield Finding("NoDoubledLabels", f"{where}.{name}.{child_name}", f"{parent} {label}")


@rule(
    "ExtensionNameNotValid",
    "VALIDATOR: ExtensionNameNotValid: an operation property that is not Swagger must begin with 'x-'",
)
def _extensions(f: Files) -> Iterator[Finding]:
    for where, op in operations(f.definition):
        for key in op:
            if key not in OPERATION_KEYS and not key.startswith("x-"):
                yield Finding("ExtensionNameNotValid", where, key)


@rule("ParameterRules", "STANDARDS: path parameters required and single-encoded; internal required ones have a default")
def _parameters(f: Files) -> Iterator[Finding]:
    for where, op in operations(f.definition):
        names = re.findall(r"{([^}]+)}", where)
        declared = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "path"}
        if sorted(declared) != sorted(names):
            yield Finding("ParameterRules", where, "path parameters do not match the path")
        for parameter in op.get("parameters", []):
            if parameter["in"] == "path" and (
                parameter.get("required") is not True or "x-ms-url-encoding" not in parameter
            ):
                yield Finding("ParameterRules", f"{where} {parameter['name']}", "path parameter")
            internal = parameter.get("x-ms-visibility") == "internal"
            if internal and parameter.get("required") and parameter["in"] != "body" and "default" not in parameter:
                yield Finding("ParameterRules", f"{where} {parameter['name']}", "internal, required, no default")
        if sum(p["in"] == "body" for p in op.get("parameters", [])) > 1:
            yield Finding("ParameterRules", where, "more than one body parameter")


@rule("DefaultResponseHasSchema", "VALIDATOR: The 'default' response should not have schema definition")
def _default_response(f: Files) -> Iterator[Finding]:
    for where, op in operations(f.definition):
        if "schema" in op.get("responses", {}).get("default", {}):
            yield Finding("DefaultResponseHasSchema", where, "default has a schema")


@rule("OperationHasManyResponsesWithSchema", "VALIDATOR: one response with a schema, the success one")
def _many_schemas(f: Files) -> Iterator[Finding]:
    for where, op in operations(f.definition):
        with_schema = [status for status, response in op.get("responses", {}).items() if "schema" in response]
        if len(with_schema) > 1 or any(not status.startswith("2") for status in with_schema):
            yield Finding("OperationHasManyResponsesWithSchema", where, ", ".join(with_schema))


@rule("SuccessResponse", "STANDARDS: a 2xx response, every response described, no empty schema")
def _success(f: Files) -> Iterator[Finding]:
    for where, op in operations(f.definition):
        responses = op.get("responses", {})
        if not any(status.startswith("2") for status in responses):
            yield Finding("SuccessResponse", where, "no 2xx response")
        for status, response in responses.items():
            if not response.get("description") or response["description"].lower() in ("default", "ok", "success"):
                yield Finding("SuccessResponse", f"{where} {status}", "no real description")
            if "schema" in response and not resolve(f.definition, response["schema"]).get("properties"):
                yield Finding("SuccessResponse", f"{where} {status}", "empty schema")


@rule(
    "RefTargets",
    "VALIDATOR: $ref only to #/definitions, #/parameters, #/responses, and it exists; no unused definitions",
)
def _refs(f: Files) -> Iterator[Finding]:
    spec = f.definition
    used: set[str] = set()

    def walk(node: Any, where: str) -> Iterator[Finding]:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                kind, _, name = ref.removeprefix("#/").partition("/")
                if kind not in ("definitions", "parameters", "responses") or name not in spec.get(kind, {}):
                    yield Finding("RefTargets", where, ref)
                if kind == "definitions":
                    used.add(name)
            for key, value in node.items():
                yield from walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, f"{where}/{index}")

    yield from walk(spec, "")
    for name in set(spec.get("definitions", {})) - used:
        yield Finding("RefTargets", f"/definitions/{name}", "not used")


@rule("Formats", "STANDARDS/DESIGNER: known formats; timestamps are date-time; status strings have an enum")
def _formats(f: Files) -> Iterator[Finding]:
    for where, schema in schemas(f.definition):
        if "format" in schema and schema["format"] not in FORMATS:
            yield Finding("Formats", where, schema["format"])
        for name, prop in (schema.get("properties") or {}).items():
            if prop.get("type") == "string" and TIMESTAMP_NAME.search(name) and prop.get("format") != "date-time":
                yield Finding("Formats", f"{where}.{name}", "a timestamp without format date-time")
            if prop.get("type") == "string" and name == "status" and not prop.get("enum"):
                yield Finding("Formats", f"{where}.{name}", "a status without enum")
    for where, op in operations(f.definition):
        for parameter in op.get("parameters", []):
            if parameter.get("name") == "status" and parameter["in"] != "body" and not parameter.get("enum"):
                yield Finding("Formats", f"{where} status", "a status without enum")


@rule("Triggers", "STANDARDS: triggers are x-ms-trigger single/batch, named 'When ...', with notification content")
def _triggers(f: Files) -> Iterator[Finding]:
    for path, item in f.definition["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if not op or "x-ms-trigger" not in op:
                continue
            where = f"{method} {path}"
            if op["x-ms-trigger"] not in ("single", "batch") or not op.get("summary", "").startswith("When "):
                yield Finding("Triggers", where, op.get("summary", ""))
            if "x-ms-notification-content" not in item:
                yield Finding("Triggers", where, "no x-ms-notification-content")


@rule("BrandColour", "CHECKLIST: iconBrandColor valid, not #007ee5 or #ffffff, our own (not Microsoft Teams')")
def _brand(f: Files) -> Iterator[Finding]:
    colour = f.properties["properties"].get("iconBrandColor", "")
    if not re.fullmatch(r"#[0-9A-Fa-f]{6}", colour) or colour.upper() in FORBIDDEN_COLOURS:
        yield Finding("BrandColour", "iconBrandColor", colour)


@rule("Icon", "CHECKLIST: icon 230x230 PNG, solid background in the brand colour, a one-colour white logo")
def _icon(f: Files) -> Iterator[Finding]:
    image = read_png(f.icon)
    if (image.width, image.height) != (230, 230):
        yield Finding("Icon", "icon.png", f"{image.width}x{image.height}")
        return
    brand = f.properties["properties"]["iconBrandColor"]
    background = (*(int(brand[i : i + 2], 16) for i in (1, 3, 5)), 255)
    colours = {image.rgba(x, y) for y in range(image.height) for x in range(image.width)}
    if image.rgba(0, 0) != background or colours != {background, (255, 255, 255, 255)}:
        yield Finding("Icon", "icon.png", f"{len(colours)} colours, corner {image.rgba(0, 0)}")
    white = sum(image.rgba(x, y)[0] == 255 for y in range(image.height) for x in range(image.width))
    if not 0.1 < white / (230 * 230) < 0.5:
        yield Finding("Icon", "icon.png", f"logo covers {white / (230 * 230):.0%}")


@rule(
    "HostPerConnection",
    "CHECKLIST: the host comes from the connection (dynamichosturl policy), not from editing the file",
)
def _host(f: Files) -> Iterator[Finding]:
    properties = f.properties["properties"]
    policies = [p for p in properties.get("policyTemplateInstances", []) if p["templateId"].lower() == "dynamichosturl"]
    if len(policies) != 1:
        yield Finding("HostPerConnection", "policyTemplateInstances", "no dynamichosturl policy")
        return
    template = policies[0]["parameters"]["x-ms-apimTemplateParameter.urlTemplate"]
    names = re.findall(r"@connectionParameters\('([^']+)'\)", template)
    if not template.startswith("https://") or not names or set(names) - set(properties["connectionParameters"]):
        yield Finding("HostPerConnection", "urlTemplate", template)


@rule(
    "Readme",
    "CHECKLIST: readme.md with the sections of templates/certified-connectors/readme.md, naming every operation",
)
def _readme(f: Files) -> Iterator[Finding]:
    if not f.readme.startswith(f"# {f.definition['info']['title']}\n"):
        yield Finding("Readme", "readme.md", "does not start with the title")
    positions = [f.readme.find(section) for section in README_SECTIONS]
    for section, at in zip(README_SECTIONS, positions, strict=True):
        if at < 0:
            yield Finding("Readme", "readme.md", f"no {section}")
    if positions != sorted(positions):
        yield Finding("Readme", "readme.md", "sections out of order")
    for _, op in operations(f.definition):
        if op.get("x-ms-visibility") != "internal" and f"`{op['operationId']}`" not in f.readme:
            yield Finding("Readme", "readme.md", f"does not name {op['operationId']}")


@rule("LabelCharacters", "WARNINGS: x-ms-summary only letters, digits, spaces and parentheses")
def _label_characters(f: Files) -> Iterator[Finding]:
    for where, node in labelled(f.definition):
        label = node.get("x-ms-summary", "")
        if label and not LABEL_CHARACTERS.fullmatch(label):
            yield Finding("LabelCharacters", where, label)


@rule("PublisherAlphanumeric", "WARNINGS: apiProperties publisher and stackOwner are letters and digits")
def _publisher(f: Files) -> Iterator[Finding]:
    for key in ("publisher", "stackOwner"):
        value = f.properties["properties"].get(key, "")
        if not re.fullmatch(r"[A-Za-z0-9]+", value):
            yield Finding("PublisherAlphanumeric", key, value)


@rule("DynamicValuesParameters", "WARNINGS: x-ms-dynamic-values and x-ms-dynamic-schema name their parameters")
def _dynamic(f: Files) -> Iterator[Finding]:
    def walk(node: Any, where: str) -> Iterator[Finding]:
        if isinstance(node, dict):
            for key in ("x-ms-dynamic-values", "x-ms-dynamic-schema"):
                if isinstance(node.get(key), dict) and "parameters" not in node[key]:
                    yield Finding("DynamicValuesParameters", f"{where}/{key}", "no parameters")
            for key, value in node.items():
                yield from walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, f"{where}/{index}")

    yield from walk(f.definition, "")


def output_definitions(spec: dict[str, Any]) -> set[str]:
    """Definitions a flow reads: success responses and trigger notification content."""
    refs = []
    for item in spec["paths"].values():
        refs.append((item.get("x-ms-notification-content") or {}).get("schema", {}).get("$ref", ""))
        for method in METHODS:
            for status, response in item.get(method, {}).get("responses", {}).items():
                if status.startswith("2"):
                    refs.append((response.get("schema") or {}).get("$ref", ""))
    return {ref.rsplit("/", 1)[-1] for ref in refs if ref}


@rule("FreeFormOutput", "WARNINGS: an output object without properties has a dynamic or a described schema")
def _free_form(f: Files) -> Iterator[Finding]:
    def walk(node: dict[str, Any], where: str) -> Iterator[Finding]:
        if node.get("type") == "object" and not node.get("properties") and "$ref" not in node:
            dynamic = "x-ms-dynamic-schema" in node or "x-ms-dynamic-properties" in node
            values = node.get("additionalProperties")
            if not dynamic and not (isinstance(values, dict) and values.get("description")):
                yield Finding("FreeFormOutput", where, "free-form object")
        for name, prop in (node.get("properties") or {}).items():
            yield from walk(prop, f"{where}.{name}")
        if isinstance(node.get("items"), dict):
            yield from walk(node["items"], f"{where}[]")

    for name in sorted(output_definitions(f.definition)):
        yield from walk(f.definition["definitions"][name], name)


@rule("IntroFile", "WARNINGS: intro.md beside readme.md, starting with the title, with its three sections")
def _intro(f: Files) -> Iterator[Finding]:
    if not f.intro.startswith(f"# {f.definition['info']['title']}\n"):
        yield Finding("IntroFile", "intro.md", "missing or does not start with the title")
    for section in INTRO_SECTIONS:
        if section not in f.intro:
            yield Finding("IntroFile", "intro.md", f"no {section}")


def findings(files: Files) -> list[Finding]:
    return [found for _, check in RULES.values() for found in check(files)]


# ---- the tests ------------------------------------------------------------------------------------
VARIANTS = {"apikey": "", "entra": "entra/"}


@pytest.fixture(scope="module")
def generated() -> dict[str, bytes]:
    return connector_files()


def files_of(generated: dict[str, bytes], variant: str) -> Files:
    prefix = VARIANTS[variant]
    return Files(
        definition=json.loads(generated[f"{prefix}apiDefinition.swagger.json"]),
        properties=json.loads(generated[f"{prefix}apiProperties.json"]),
        icon=generated["icon.png"],
        readme=generated["readme.md"].decode("utf-8"),
        intro=generated["intro.md"].decode("utf-8"),
    )


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_no_errors_and_no_warnings(generated: dict[str, bytes], variant: str) -> None:
    assert findings(files_of(generated, variant)) == []


def test_the_rules_cover_the_issue_list() -> None:
    assert len(RULES) >= 24 and all(source for source, _ in RULES.values())


def _first_operation(spec: dict[str, Any]) -> dict[str, Any]:
    return next(op for _, op in operations(spec) if not op.get("x-ms-trigger"))


def _first_nested(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    for _, schema in schemas(spec):
        for prop in (schema.get("properties") or {}).values():
            if prop.get("properties"):
                return prop, next(iter(prop["properties"].values()))
    raise AssertionError("no nested object")


def _break_label(spec: dict[str, Any]) -> None:
    _, op = next(operations(spec))
    op["parameters"][0]["x-ms-summary"] = ""


def _lower_label(spec: dict[str, Any]) -> None:
    next(iter(spec["definitions"].values()))["properties"]["status"] = {
        "type": "string", "x-ms-summary": "current status", "description": "x.", "enum": ["a"],
    }  # fmt: skip


def _double_label(spec: dict[str, Any]) -> None:
    parent, child = _first_nested(spec)
    child["x-ms-summary"] = f"{parent['x-ms-summary']} Code"


def _error_schema(spec: dict[str, Any]) -> None:
    op = _first_operation(spec)
    success = next(r for s, r in op["responses"].items() if "schema" in r)
    op["responses"]["404"]["schema"] = success["schema"]


def _timestamp(spec: dict[str, Any]) -> None:
    for _, schema in schemas(spec):
        for name, prop in (schema.get("properties") or {}).items():
            if name == "createdAt":
                prop.pop("format")
                return


def _status(spec: dict[str, Any]) -> None:
    for _, schema in schemas(spec):
        if "status" in (schema.get("properties") or {}):
            schema["properties"]["status"].pop("enum")
            return


SEEDED: dict[str, Callable[[dict[str, Any]], None]] = {
    "TitleLength": lambda s: s["info"].update(title="A Title That Is Much Longer Than Thirty"),
    "TitleRestrictedWords": lambda s: s["info"].update(title="Teams Proactive Connector"),
    "InfoDescription": lambda s: s["info"].update(description="Short."),
    "ProductNames": lambda s: _first_operation(s).update(description="Use it in Power Automate."),
    "ContactRequired": lambda s: s["info"].pop("contact"),
    "ConnectorMetadata": lambda s: s.update({"x-ms-connector-metadata": s["x-ms-connector-metadata"][:1]}),
    "OperationIdPascalCase": lambda s: _first_operation(s).update(operationId="send_message"),
    "SummaryAndDescription": lambda s: _first_operation(s).update(description="No period"),
    "SummaryRestrictedCharacters": lambda s: _first_operation(s).update(summary="Send and/or update"),
    "NoApostropheInSummary": lambda s: _first_operation(s).update(summary="Send a message to a person's chat"),
    "LabelAndDescriptionRequired": _break_label,
    "LabelTitleCase": _lower_label,
    "NoDoubledLabels": _double_label,
    "ExtensionNameNotValid": lambda s: _first_operation(s).update(scriptOperations=[]),
    "ParameterRules": lambda s: next(
        p for _, op in operations(s) for p in op.get("parameters", []) if p["in"] == "path"
    ).update(required=False),
    "DefaultResponseHasSchema": lambda s: _first_operation(s)["responses"]["default"].update(schema={"type": "object"}),
    "OperationHasManyResponsesWithSchema": _error_schema,
    "SuccessResponse": lambda s: _first_operation(s)["responses"]["default"].update(description="default"),
    "RefTargets": lambda s: s["definitions"].update(Unused={"type": "object", "properties": {}}),
    "Formats": _timestamp,
    "Triggers": lambda s: next(op for _, op in operations(s) if op.get("x-ms-trigger")).update(summary="On event"),
    "LabelCharacters": lambda s: s["definitions"]["Broadcast"]["properties"]["progress"].update(
        {"x-ms-summary": "Progress (%)"}
    ),
    "DynamicValuesParameters": lambda s: s["definitions"]["SendMessage"]["properties"]["recipient"][
        "x-ms-dynamic-values"
    ].pop("parameters"),
    "FreeFormOutput": lambda s: s["definitions"]["CardSubmittedEvent"]["properties"]["values"].pop(
        "additionalProperties"
    ),
}
SEEDED_FILES: dict[str, Callable[[Files], Files]] = {
    "BrandColour": lambda f: Files(
        f.definition, _with(f.properties, iconBrandColor="#4B53BC"), f.icon, f.readme, f.intro
    ),
    "Icon": lambda f: Files(f.definition, f.properties, _other_icon(), f.readme, f.intro),
    "HostPerConnection": lambda f: Files(
        f.definition, _with(f.properties, policyTemplateInstances=[]), f.icon, f.readme, f.intro
    ),
    "Readme": lambda f: Files(
        f.definition, f.properties, f.icon, f.readme.replace("## Known Issues", "## Issues"), f.intro
    ),
    "PublisherAlphanumeric": lambda f: Files(
        f.definition, _with(f.properties, publisher="teams-proactive"), f.icon, f.readme, f.intro
    ),
    "IntroFile": lambda f: Files(f.definition, f.properties, f.icon, f.readme, ""),
}


def _with(properties: dict[str, Any], **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(properties)
    changed["properties"].update(changes)
    return changed


def _other_icon() -> bytes:
    from teams_proactive.connector.icon import encode_png

    return encode_png(160, 160, lambda x, y: (0x4B, 0x53, 0xBC))


def test_every_rule_is_seeded() -> None:
    assert set(SEEDED) | set(SEEDED_FILES) == set(RULES)


@pytest.mark.parametrize("name", sorted(RULES))
def test_each_rule_catches_a_seeded_fault(generated: dict[str, bytes], name: str) -> None:
    files = files_of(generated, "apikey")
    if name in SEEDED_FILES:
        broken = SEEDED_FILES[name](files)
    else:
        definition = copy.deepcopy(files.definition)
        SEEDED[name](definition)
        broken = Files(definition, files.properties, files.icon, files.readme, files.intro)
    assert name in {found.rule for found in findings(broken)}


def test_status_rule_sees_a_status_without_enum(generated: dict[str, bytes]) -> None:
    files = files_of(generated, "apikey")
    definition = copy.deepcopy(files.definition)
    _status(definition)
    assert "Formats" in {
        found.rule for found in findings(Files(definition, files.properties, files.icon, files.readme))
    }


# The MCP variant: one operation for Copilot Studio, so the rules about the definition's own texts apply.
MCP_RULES = ("TitleLength", "InfoDescription", "ProductNames", "ContactRequired", "ConnectorMetadata",
             "PublisherAlphanumeric", "BrandColour")  # fmt: skip


@pytest.mark.parametrize("variant", ["mcp/", "mcp/entra/"])
def test_the_mcp_variant_has_no_findings(variant: str) -> None:
    generated = mcp_connector_files()
    files = Files(
        definition=json.loads(generated[f"{variant}apiDefinition.swagger.json"]),
        properties=json.loads(generated[f"{variant}apiProperties.json"]),
        icon=generated["mcp/icon.png"],
        readme="",
    )
    assert [f for name in MCP_RULES for f in RULES[name][1](files)] == []
    broken = copy.deepcopy(files.definition)
    broken["info"].pop("contact")
    broken["info"]["description"] += " For Copilot Studio."
    found = {f.rule for name in MCP_RULES for f in RULES[name][1](Files(broken, files.properties, files.icon, ""))}
    assert {"ContactRequired", "ProductNames"} <= found
