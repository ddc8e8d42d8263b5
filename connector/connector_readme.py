"""openapi/readme.md, in the shape certified connectors use, written from the generated definition.

The sections are those of the certified-connector template in Microsoft's PowerPlatformConnectors
repository (templates/certified-connectors/readme.md): title and summary, Publisher, Prerequisites,
Supported Operations, Obtaining Credentials, Getting Started, Known Issues and Limitations, Frequently
Asked Questions, Deployment Instructions. Operations are listed from the definition itself, so the page
names exactly the actions and triggers that exist.
"""

from __future__ import annotations

from typing import Any

METHODS = ("get", "put", "post", "delete", "patch")
README_SECTIONS = (
    "## Publisher:",
    "## Prerequisites",
    "## Supported Operations",
    "## Obtaining Credentials",
    "## Getting Started",
    "## Known Issues and Limitations",
    "## Frequently Asked Questions",
    "## Deployment Instructions",
)


def _operations(definition: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for item in definition["paths"].values():
        for method in METHODS:
            operation = item.get(method)
            if operation and operation.get("x-ms-visibility") != "internal":
                found.append(operation)
    return found


def readme_text(definition: dict[str, Any]) -> str:
    info = definition["info"]
    operations = _operations(definition)
    actions = [op for op in operations if not op.get("x-ms-trigger")]
    triggers = [op for op in operations if op.get("x-ms-trigger")]
    lines = [
        f"# {info['title']}",
        "",
        info["description"],
        "",
        f"## Publisher: {info['contact']['name']}",
        "",
        "The connector belongs to the teams-proactive service your organisation runs itself; your",
        "organisation's administrator of that service is the publisher you deal with.",
        "",
        "## Prerequisites",
        "",
        "- A running teams-proactive service reachable over HTTPS (see deploy/README.md).",
        "- The service's bot app installed in Microsoft Teams for the people who should get messages",
        "  (an administrator can pre-install it with an app setup policy).",
        "- An API key from the service's administrator, or, with the Microsoft Entra ID variant",
        "  (`entra/`), a work account the service accepts.",
        "- A Power Platform environment where custom connectors may be used (a premium licence).",
        "",
        "## Supported Operations",
        "",
        "### Actions",
        "",
    ]
    for operation in actions:
        lines += [f"#### {operation['summary']}", "", f"`{operation['operationId']}`: {operation['description']}", ""]
    lines += ["### Triggers", ""]
    for operation in triggers:
        lines += [f"#### {operation['summary']}", "", f"`{operation['operationId']}`: {operation['description']}", ""]
    lines += [
        "## Obtaining Credentials",
        "",
        "API-key connector: the administrator of the service creates a key with",
        "`teams-proactive keys create --name <who> --scopes send` and gives it to you once; paste it into",
        "the connection with the service's host name. Entra ID connector: sign in with your work account;",
        "the administrator grants the permission the service asks for.",
        "",
        "## Getting Started",
        "",
        "1. Import the connector (or the solution from `teams-proactive export-solution`).",
        "2. Create a connection: the service's host name (for example notify.contoso.com) and your key.",
        "3. Add **Check whether a person can be reached**, then **Send a message to a person**.",
        "",
        "## Known Issues and Limitations",
        "",
        "- A person can be messaged only after the bot's app is installed for them; until then the",
        "  service answers RecipientNotFound.",
        "- Power Platform meters a custom connector at about 500 requests per minute per connection; to",
        "  reach many people use **Send one message to many people**, not a loop.",
        "- Answers are capped in size (lists are paged, broadcast failure lists are capped) so that an",
        "  agent can use them.",
        "",
        "## Frequently Asked Questions",
        "",
        "### Where do the messages come from?",
        "",
        "From your organisation's own bot, in each person's personal chat with it.",
        "",
        "### Does the service keep message contents?",
        "",
        "Only until delivery and the retention period your administrator set; see the privacy statement",
        "the connector links to.",
        "",
        "## Deployment Instructions",
        "",
        "Run `teams-proactive export-connector --out openapi/ --host <your host>` and import the folder",
        "with `paconn create --api-def openapi/apiDefinition.swagger.json --api-prop openapi/apiProperties.json",
        "--icon openapi/icon.png`, or import the solution written by `teams-proactive export-solution`",
        "(Solutions, Import). The host name is asked for when a connection is made.",
        "",
    ]
    return "\n".join(lines)


INTRO_SECTIONS = ("## Prerequisites", "## How to get credentials", "## Get started with your connector")


def intro_text(definition: dict[str, Any]) -> str:
    """openapi/intro.md: the short page certification asks for beside readme.md (what the connector is,
    what you need, how to get credentials, a first action)."""
    info = definition["info"]
    lines = [
        f"# {info['title']}",
        "",
        info["description"],
        "",
        INTRO_SECTIONS[0],
        "",
        "- A teams-proactive service your organisation runs, reachable over HTTPS, and its bot app",
        "  installed in Teams for the people who should get messages.",
        "- A Power Platform environment where custom connectors may be used (a premium licence).",
        "",
        INTRO_SECTIONS[1],
        "",
        "Ask the administrator who runs the service for its host name and an API key",
        "(`teams-proactive keys create`; `--for-samples` makes one that runs every sample flow). With the",
        "Microsoft Entra ID variant you sign in with your work account instead.",
        "",
        INTRO_SECTIONS[2],
        "",
        "Create a connection with the host name and the key, add *Send a message to a person* to a flow,",
        "give it a colleague's email address and a text, and run the flow: the message arrives in their",
        "Teams chat with the bot. The sample solutions in power-automate-samples/ show ten complete flows.",
        "",
    ]
    return "\n".join(lines)
