"""The Teams app package (manifest.json + two icons in a zip) that installs the bot, and an offline check
of a package against the app manifest rules Teams applies on upload."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from teams_proactive.connector.icon import (
    BRAND,
    COLOR_ICON_SIZE,
    OUTLINE_ICON_SIZE,
    PngError,
    color_icon_png,
    outline_icon_png,
    png_size,
    read_png,
)

MANIFEST_VERSION = "1.22"
SCHEMA_URL = f"https://developer.microsoft.com/json-schemas/teams/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json"
# Versions the checker accepts: Teams takes every published one (1.18 was never published); the name
# "full" became required in 1.17, which the builder always fills.
KNOWN_MANIFEST_VERSIONS = {f"1.{n}" for n in range(17, 25) if n != 18}
COLOR_ICON = "color.png"
OUTLINE_ICON = "outline.png"
ACCENT_COLOR = "#{:02X}{:02X}{:02X}".format(*BRAND)
FIRST_VERSION = "1.0.0"

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
SEMVER = re.compile(r"^(0|[1-9]\d{0,4})\.(0|[1-9]\d{0,4})\.(0|[1-9]\d{0,4})$")
HEX_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
# A host name, optionally with one leading "*." wildcard label and a port; no scheme, no path.
DOMAIN = re.compile(
    r"^(\*\.)?([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)*[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(:\d{1,5})?$"
)

# What the bot answers in its 1:1 chat (bot/activity_handler.py); Teams shows these as the command menu.
COMMANDS = [
    {"title": "help", "description": "What this bot does and how to turn its notifications off."},
    {"title": "stop", "description": "Turn notifications from this bot off."},
    {"title": "start", "description": "Turn notifications from this bot back on."},
]

TOP_LEVEL_KEYS = {
    "$schema", "manifestVersion", "version", "id", "packageName", "localizationInfo", "developer", "name",
    "description", "icons", "accentColor", "configurableTabs", "staticTabs", "bots", "connectors",
    "composeExtensions", "permissions", "devicePermissions", "validDomains", "webApplicationInfo",
    "authorization", "showLoadingIndicator", "isFullScreen", "activities", "defaultBlockUntilAdminAction",
    "publisherDocsUrl", "defaultInstallScope", "defaultGroupCapability", "configurableProperties",
    "subscriptionOffer", "meetingExtensionDefinition", "copilotAgents", "elementRelationshipSet",
    "backgroundLoadConfiguration", "extensions", "dashboardCards", "graphConnector", "scopeConstraints",
    "supportedChannelTypes", "nestedAppAuthInfo", "agenticUserTemplates", "intuneInfo",
}  # fmt: skip
BOT_SCOPES = {"personal", "team", "groupChat", "copilot"}

# Read receipts (bot/receipts.py) reach a bot only with this resource-specific consent permission
# (Microsoft Learn, Teams platform, "Messages in bot conversations", receive a read receipt). RSC in
# manifest 1.12 and later: ``authorization.permissions.resourceSpecific`` entries of type Application,
# plus ``webApplicationInfo`` with the app's Entra ID ("resource" is unused by RSC but must be
# present: Learn, "Test resource-specific consent permissions in Teams").
READ_RECEIPT_PERMISSION = "ChatMessageReadReceipt.Read.Chat"
RSC_TYPES = {"Application", "Delegated"}


class AppPackageError(ValueError):
    """The package cannot be built as asked (the message says what to change)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AppPackageOptions:
    bot_id: str  # MicrosoftAppId: the Azure Bot's app (client) ID
    version: str
    website_url: str
    privacy_url: str
    terms_url: str
    name: str = "Notifications"
    full_name: str | None = None
    developer_name: str = "Your organisation"
    app_id: str | None = None  # the Teams app ID; Teams recommends the bot's ID for a bot-only app
    valid_domains: list[str] = field(default_factory=list)
    accent_color: str = ACCENT_COLOR
    color_icon: bytes | None = None
    outline_icon: bytes | None = None


def build_manifest(options: AppPackageOptions) -> dict[str, Any]:
    """The app manifest: one bot, personal scope only, no files, the stop/start/help command menu."""
    full_name = options.full_name or f"{options.name} from your organisation's flows and agents"
    return {
        "$schema": SCHEMA_URL,
        "manifestVersion": MANIFEST_VERSION,
        "version": options.version,
        "id": options.app_id or options.bot_id,
        "developer": {
            "name": options.developer_name,
            "websiteUrl": options.website_url,
            "privacyUrl": options.privacy_url,
            "termsOfUseUrl": options.terms_url,
        },
        "name": {"short": options.name, "full": full_name[:100]},
        "description": {
            "short": "Notifications from your organisation's flows and agents.",
            "full": (
                "This bot sends you messages from your organisation's Power Automate flows and Copilot Studio"
                " agents: alerts, approvals and reminders, in this chat. Type 'stop' to turn its notifications"
                " off, 'start' to turn them back on, and 'help' to see what it does."
            ),
        },
        "icons": {"color": COLOR_ICON, "outline": OUTLINE_ICON},
        "accentColor": options.accent_color,
        "bots": [
            {
                "botId": options.bot_id,
                # Personal scope only: proactive messages go to each person's 1:1 chat with the bot.
                # "team" and "groupChat" would install it in channels and group chats, which the
                # connector does not message (DESIGN.md section 7), so they are left out on purpose.
                "scopes": ["personal"],
                "supportsFiles": False,
                "isNotificationOnly": False,  # people type stop/start/help to it
                "commandLists": [{"scopes": ["personal"], "commands": COMMANDS}],
            }
        ],
        "validDomains": list(options.valid_domains),
        "webApplicationInfo": {"id": options.bot_id, "resource": f"api://botid-{options.bot_id}"},
        "authorization": {
            "permissions": {"resourceSpecific": [{"name": READ_RECEIPT_PERMISSION, "type": "Application"}]}
        },
    }


def build_package(options: AppPackageOptions) -> bytes:
    """The zip Teams takes: manifest.json and the two icons at its root."""
    manifest = build_manifest(options)
    files = {
        "manifest.json": (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode(),
        COLOR_ICON: options.color_icon or color_icon_png(),
        OUTLINE_ICON: options.outline_icon or outline_icon_png(),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            # A fixed timestamp keeps the zip byte-identical for the same inputs.
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def read_manifest(package: bytes) -> dict[str, Any]:
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        return json.loads(archive.read("manifest.json"))


def next_version(out: Path, explicit: str | None = None) -> str:
    """``explicit`` if given, else one patch above the package already at ``out`` (Teams only takes an
    update whose version is higher than the installed one), else 1.0.0."""
    if explicit:
        if not SEMVER.match(explicit):
            raise AppPackageError(f"--version must look like 1.2.3 (numbers only, no 'v' prefix), not {explicit!r}")
        return explicit
    if not out.is_file():
        return FIRST_VERSION
    try:
        previous = str(read_manifest(out.read_bytes()).get("version", ""))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise AppPackageError(f"{out} exists but is not an app package; move it away or pass --version") from exc
    match = SEMVER.match(previous)
    if not match:
        raise AppPackageError(f"{out} has version {previous!r}, which is not MAJOR.MINOR.PATCH; pass --version")
    major, minor, patch = (int(p) for p in match.groups())
    return f"{major}.{minor}.{patch + 1}"


def domain_of(url: str) -> str:
    """The host (with a non-default port) of a public URL, as validDomains wants it."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise AppPackageError(f"{url!r} is not an absolute URL")
    default_port = {"https": 443, "http": 80}.get(parts.scheme)
    return parts.hostname if parts.port in (None, default_port) else f"{parts.hostname}:{parts.port}"


# ---- offline validation ---------------------------------------------------------------------------
def validate_package(package: bytes) -> list[str]:
    """Problems Teams would refuse the upload for (as far as they can be checked offline); [] = valid."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(package))
    except zipfile.BadZipFile:
        return ["the file is not a zip archive"]
    with archive:
        names = archive.namelist()
        if "manifest.json" not in names:
            nested = [n for n in names if n.endswith("/manifest.json")]
            hint = f" (it is at {nested[0]}: zip the files, not their folder)" if nested else ""
            return [f"manifest.json must be at the root of the zip{hint}"]
        try:
            manifest = json.loads(archive.read("manifest.json").decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return [f"manifest.json is not valid UTF-8 JSON: {exc}"]
        files = {n: archive.read(n) for n in names if not n.endswith("/")}
    return validate_manifest(manifest, files)


def validate_manifest(manifest: Any, files: dict[str, bytes]) -> list[str]:
    problems: list[str] = []
    if not isinstance(manifest, dict):
        return ["manifest.json must hold a JSON object"]

    def text(path: str, value: Any, max_length: int, *, required: bool = True) -> None:
        if value is None:
            if required:
                problems.append(f"{path} is required")
            return
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{path} must be a non-empty string")
        elif len(value) > max_length:
            problems.append(f"{path} is {len(value)} characters; at most {max_length}")

    def https_url(path: str, value: Any) -> None:
        text(path, value, 2048)
        if isinstance(value, str) and not (value.startswith("https://") and urlsplit(value).hostname):
            problems.append(f"{path} must be an absolute https:// URL")

    unknown = sorted(set(manifest) - TOP_LEVEL_KEYS)
    if unknown:
        problems.append(f"unknown top-level properties: {', '.join(unknown)}")
    version = manifest.get("manifestVersion")
    if version not in KNOWN_MANIFEST_VERSIONS:
        problems.append(f"manifestVersion {version!r} is not a published schema version this check knows")
    schema = manifest.get("$schema")
    if schema is not None and (not isinstance(schema, str) or f"/v{version}/" not in schema):
        problems.append("$schema must be the schema URL of the same manifestVersion")
    if not isinstance(manifest.get("version"), str) or not SEMVER.match(manifest["version"]):
        problems.append("version must be MAJOR.MINOR.PATCH with numbers only (for example 1.0.3)")
    if not isinstance(manifest.get("id"), str) or not GUID.match(manifest["id"]):
        problems.append("id must be a GUID")

    developer = _object(manifest, "developer", problems)
    text("developer.name", developer.get("name"), 32)
    for key in ("websiteUrl", "privacyUrl", "termsOfUseUrl"):
        https_url(f"developer.{key}", developer.get(key))

    name = _object(manifest, "name", problems)
    text("name.short", name.get("short"), 30)
    text("name.full", name.get("full"), 100)
    if name.get("short") and name.get("short") == name.get("full"):
        problems.append("name.short and name.full must differ")

    description = _object(manifest, "description", problems)
    text("description.short", description.get("short"), 80)
    text("description.full", description.get("full"), 4000)
    short, full = description.get("short"), description.get("full")
    if isinstance(short, str) and isinstance(full, str) and short and short in full:
        problems.append("description.short must not be repeated inside description.full")

    accent = manifest.get("accentColor")
    if not isinstance(accent, str) or not HEX_COLOR.match(accent):
        problems.append("accentColor must be an HTML colour such as #0B6E5F")

    icons = _object(manifest, "icons", problems)
    _check_icon(problems, files, "icons.color", icons.get("color"), COLOR_ICON_SIZE, outline=False)
    _check_icon(problems, files, "icons.outline", icons.get("outline"), OUTLINE_ICON_SIZE, outline=True)

    bots = manifest.get("bots", [])
    if not isinstance(bots, list) or len(bots) > 1:
        problems.append("bots must be a list with at most one bot")
        bots = []
    for index, bot in enumerate(bots):
        _check_bot(problems, f"bots[{index}]", bot)

    domains = manifest.get("validDomains", [])
    if not isinstance(domains, list) or len(domains) > 16:
        problems.append("validDomains must be a list of at most 16 host names")
    else:
        for domain in domains:
            if not isinstance(domain, str) or not DOMAIN.match(domain):
                problems.append(f"validDomains entry {domain!r} must be a host name (no https://, no path)")
        if len(set(domains)) != len(domains):
            problems.append("validDomains has duplicates")
    _check_rsc(problems, manifest)
    return problems


def _check_rsc(problems: list[str], manifest: dict[str, Any]) -> None:
    """Resource-specific permissions: named, typed, and with the webApplicationInfo RSC needs."""
    authorization = manifest.get("authorization")
    if authorization is None:
        return
    permissions = authorization.get("permissions") if isinstance(authorization, dict) else None
    rsc = permissions.get("resourceSpecific", []) if isinstance(permissions, dict) else None
    if not isinstance(rsc, list):
        problems.append("authorization.permissions.resourceSpecific must be a list")
        return
    for index, entry in enumerate(rsc):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry.get("name"):
            problems.append(f"authorization.permissions.resourceSpecific[{index}].name is required")
        elif entry.get("type") not in RSC_TYPES:
            problems.append(f"authorization.permissions.resourceSpecific[{index}].type must be Application or Delegated")
    info = manifest.get("webApplicationInfo")
    if rsc and not (isinstance(info, dict) and isinstance(info.get("id"), str) and GUID.match(info["id"])):
        problems.append("resource-specific permissions need webApplicationInfo.id (the app's Entra ID, a GUID)")
    elif rsc and not (isinstance(info.get("resource"), str) and info["resource"]):
        problems.append("webApplicationInfo.resource must be set (any string) for resource-specific permissions")


def _object(manifest: dict[str, Any], key: str, problems: list[str]) -> dict[str, Any]:
    value = manifest.get(key)
    if not isinstance(value, dict):
        problems.append(f"{key} is required and must be an object")
        return {}
    return value


def _check_bot(problems: list[str], path: str, bot: Any) -> None:
    if not isinstance(bot, dict):
        problems.append(f"{path} must be an object")
        return
    if not isinstance(bot.get("botId"), str) or not GUID.match(bot["botId"]):
        problems.append(f"{path}.botId must be the bot's Microsoft App ID (a GUID)")
    scopes = bot.get("scopes")
    if not _scope_list(scopes):
        problems.append(f"{path}.scopes must be a non-empty list of {', '.join(sorted(BOT_SCOPES))} without repeats")
        scopes = []
    for flag in ("supportsFiles", "isNotificationOnly", "needsChannelSelector", "supportsCalling", "supportsVideo"):
        if flag in bot and not isinstance(bot[flag], bool):
            problems.append(f"{path}.{flag} must be true or false")
    lists = bot.get("commandLists", [])
    if not isinstance(lists, list) or len(lists) > 3:
        problems.append(f"{path}.commandLists must be a list of at most 3")
        return
    for i, command_list in enumerate(lists):
        where = f"{path}.commandLists[{i}]"
        if not isinstance(command_list, dict) or not _scope_list(command_list.get("scopes")):
            problems.append(f"{where}.scopes must be a non-empty list of bot scopes")
            continue
        if not set(command_list["scopes"]) <= set(scopes):
            problems.append(f"{where}.scopes must be scopes the bot has")
        commands = command_list.get("commands")
        if not isinstance(commands, list) or not 1 <= len(commands) <= 10:
            problems.append(f"{where}.commands must hold 1 to 10 commands")
            continue
        for j, command in enumerate(commands):
            # The older, stricter limits (32/128): every schema version accepts them.
            title, description = (command or {}).get("title"), (command or {}).get("description")
            if not isinstance(title, str) or not 0 < len(title) <= 32:
                problems.append(f"{where}.commands[{j}].title must be 1 to 32 characters")
            if not isinstance(description, str) or not 0 < len(description) <= 128:
                problems.append(f"{where}.commands[{j}].description must be 1 to 128 characters")


def _scope_list(scopes: Any) -> bool:
    return (
        isinstance(scopes, list)
        and bool(scopes)
        and len(set(scopes)) == len(scopes)
        and all(s in BOT_SCOPES for s in scopes)
    )


def _check_icon(
    problems: list[str], files: dict[str, bytes], path: str, name: Any, size: int, *, outline: bool
) -> None:
    if not isinstance(name, str) or not name or name.startswith(("/", "http:", "https:")) or ".." in name:
        problems.append(f"{path} must be a relative file name inside the package")
        return
    data = files.get(name)
    if data is None:
        problems.append(f"{path} names {name}, which is not in the package")
        return
    try:
        width, height = png_size(data)
    except PngError:
        problems.append(f"{path} ({name}) is not a PNG file")
        return
    if (width, height) != (size, size):
        problems.append(f"{path} ({name}) is {width}x{height} pixels; Teams wants {size}x{size}")
        return
    if outline:
        problems.extend(f"{path} ({name}) {p}" for p in _outline_problems(data))


def _outline_problems(data: bytes) -> Iterable[str]:
    """Teams tints the outline icon: it must be white on a transparent background, nothing else."""
    try:
        image = read_png(data)
    except PngError as exc:
        yield f"cannot be read: {exc}"
        return
    if image.channels not in (2, 4):
        yield "has no transparency; it must be white on a transparent background"
        return
    pixels = [image.rgba(x, y) for y in range(image.height) for x in range(image.width)]
    coloured = sum(1 for r, g, b, a in pixels if a > 0 and (r, g, b) != (255, 255, 255))
    if coloured:
        yield f"has {coloured} pixels that are neither white nor transparent"
    if not any(a == 0 for *_, a in pixels):
        yield "has no transparent pixels; it must be white on a transparent background"
    if not any(a > 0 for *_, a in pixels):
        yield "is fully transparent"
