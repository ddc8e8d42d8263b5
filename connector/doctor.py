"""``teams-proactive doctor``: checks the configuration, the store, the bot's credentials and the public
URL, and says in plain words what is wrong and how to fix it."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from teams_proactive.bot.settings import BotSettings
from teams_proactive.bot.store import create_store
from teams_proactive.connector.settings import ConnectorSettings

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
OK, WARN, FAIL = "ok", "warn", "FAIL"
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


@dataclass(frozen=True, slots=True)
class Finding:
    level: str  # ok | warn | FAIL
    topic: str
    text: str


def diagnose(env: Mapping[str, str], *, online: bool = False, store_timeout: float = 15.0) -> list[Finding]:
    findings: list[Finding] = []
    try:
        bot = BotSettings.from_env(env)
        connector = ConnectorSettings.from_env(env)
    except ValueError as exc:
        return [Finding(FAIL, "Configuration", f"{exc}. Nothing else can be checked until this is fixed.")]
    findings.append(Finding(OK, "Configuration", "Every setting parses."))
    findings += _bot_identity(bot)
    findings.append(_cloud(bot))
    findings += _store(bot, store_timeout)
    findings += _public_url(env, bot, connector, online)
    findings += _api_access(env, connector)
    findings += _exposure(bot, connector)
    return findings


def _exposure(bot: BotSettings, connector: ConnectorSettings) -> list[Finding]:
    """Settings that open the service wider than their name suggests."""
    found: list[Finding] = []
    broad = [str(n) for n in bot.callback_policy.allowed_networks if n.prefixlen == 0]
    if broad:
        found.append(
            Finding(
                WARN,
                "Callbacks",
                f"CALLBACK_ALLOWED_NETWORKS contains {', '.join(broad)}: every address, internal ones included, may"
                " receive webhook callbacks, over plain http too. List only the internal networks flows really use.",
            )
        )
    host = urlsplit(connector.public_base_url).hostname or ""
    if connector.trusted_proxy_hops == 0 and host.endswith(".azurewebsites.net"):
        found.append(
            Finding(
                WARN,
                "Client addresses",
                "The service runs behind App Service's front end, but TRUSTED_PROXY_HOPS is 0: every caller shares"
                " the front end's address, so one key guesser locks everyone out for a minute. Set"
                " TRUSTED_PROXY_HOPS=1.",
            )
        )
    return found


def _bot_identity(bot: BotSettings) -> list[Finding]:
    topic = "Bot credentials"
    if bot.local_mode:
        if bot.local_mode_allowed:
            return [
                Finding(
                    WARN,
                    topic,
                    "MicrosoftAppId is not set and LOCAL_MODE=true: /api/messages accepts activities without any"
                    " token, wherever the service listens. Keep it behind your own access control, and set"
                    " MicrosoftAppId before Teams or anyone else can reach it.",
                )
            ]
        return [
            Finding(
                FAIL,
                topic,
                "MicrosoftAppId is not set (local mode: /api/messages checks no token). Only"
                " 'teams-proactive serve --host 127.0.0.1' starts like this; gunicorn, App Service and any other"
                " bind refuse to start. Set MicrosoftAppId (and its password or managed identity) from your Azure"
                " Bot resource, or LOCAL_MODE=true if an unauthenticated endpoint is really meant.",
            )
        ]
    found: list[Finding] = []
    kind = bot.app_type.lower()
    if not GUID.match(bot.app_id):
        found.append(
            Finding(
                FAIL,
                topic,
                f"MicrosoftAppId should be a GUID (the Azure Bot's 'Microsoft App ID'), but it is {len(bot.app_id)}"
                " characters that are not one. Copy it from the Azure Bot resource, Configuration page.",
            )
        )
    if kind in {"singletenant", "userassignedmsi"} and not GUID.match(bot.app_tenant_id):
        found.append(
            Finding(
                FAIL,
                topic,
                f"MicrosoftAppType is {bot.app_type}, which needs MicrosoftAppTenantId: your Entra tenant ID (a GUID).",
            )
        )
    if kind == "userassignedmsi":
        if bot.app_password:
            found.append(
                Finding(
                    WARN, topic, "MicrosoftAppPassword is set but a managed identity bot does not use it; remove it."
                )
            )
    elif not bot.app_password and bot.app_certificate_path:
        pass  # a certificate credential (BOT_CERTIFICATE_PATH, checked to be a file when settings load)
    elif not bot.app_password:
        found.append(
            Finding(
                FAIL,
                topic,
                "MicrosoftAppPassword is empty, so the bot cannot get the token it needs to send messages. Create a"
                " client secret on the bot's app registration and put its value here (or use a managed identity:"
                " MicrosoftAppType=UserAssignedMSI).",
            )
        )
    elif GUID.match(bot.app_password):
        found.append(
            Finding(
                WARN,
                topic,
                "MicrosoftAppPassword looks like a GUID: that is usually the secret's ID, not its value. Copy the"
                " 'Value' column shown once when the secret is created.",
            )
        )
    if not found:
        found.append(Finding(OK, topic, f"{bot.app_type} bot {bot.app_id} with its credentials in place (shape only)."))
    return found


def _cloud(bot: BotSettings) -> Finding:
    # Printed in full: a bot in the wrong cloud refuses every activity, and these are the names to compare
    # with the Azure Bot resource and the tenant's Teams environment.
    cloud = bot.cloud
    keys = bot.channel_openid_metadata_url
    overridden = " (BOT_OPENID_METADATA_URL)" if bot.open_id_metadata else ""
    sign_in = f"{bot.sign_in_host} (LOGIN_URL)" if bot.login_url else cloud.login_url
    return Finding(
        OK,
        "Cloud",
        f"TEAMS_CLOUD={cloud.name}: channel service {cloud.channel_service or 'public Bot Framework'};"
        f" tokens from Teams must be issued by {cloud.token_issuer}, keys from {keys}{overridden};"
        f" the bot signs in at {bot.bot_login_url} for {cloud.to_channel_scope};"
        f" token service {cloud.oauth_url}; new chats open at {cloud.global_service_url};"
        f" Graph {cloud.graph_url}, sign-in {sign_in}.",
    )


def _store(bot: BotSettings, timeout: float) -> list[Finding]:
    topic = "Store"
    url = bot.store_url
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.parent.exists():
            return [
                Finding(FAIL, topic, f"STORE_URL points into {path.parent}, which does not exist. Create the folder.")
            ]
    elif url == "cosmos":
        endpoint = bot.cosmos_endpoint
        if not endpoint.startswith("https://"):
            return [
                Finding(
                    FAIL,
                    topic,
                    "STORE_URL is cosmos but COSMOS_ENDPOINT is not an https:// account URL"
                    " (for example https://myaccount.documents.azure.com:443/).",
                )
            ]

    async def probe() -> dict[str, int]:
        store = create_store(bot)
        try:
            await asyncio.wait_for(store.open(), timeout)
            await asyncio.wait_for(store.ping(), timeout)
            return await asyncio.wait_for(store.quarantine.counts(), timeout)
        finally:
            await store.close()

    try:
        quarantined = asyncio.run(probe())
    except TimeoutError:
        return [Finding(FAIL, topic, f"{_describe_store(bot)} did not answer within {timeout:.0f} s.")]
    except Exception as exc:  # any failure is the finding; its type and text say which
        hint = ""
        if url == "cosmos" and not bot.cosmos_key:
            hint = (
                " Without COSMOS_KEY the managed identity (or your az login) is used: it needs the"
                " 'Cosmos DB Built-in Data Contributor' role on the account."
            )
        message = str(exc).splitlines()[0][:300] if str(exc) else ""
        return [
            Finding(FAIL, topic, f"{_describe_store(bot)} could not be opened: {type(exc).__name__}: {message}.{hint}")
        ]
    found = [Finding(OK, topic, f"{_describe_store(bot)} answers.")]
    if any(quarantined.values()):
        counts = ", ".join(f"{count} {kind}" for kind, count in quarantined.items() if count)
        found.append(
            Finding(
                WARN,
                "Quarantine",
                f"Records a loop could not read or process were moved aside ({counts}); the others go on."
                " See them with 'teams-proactive quarantine list'; docs/operations.md says what to do.",
            )
        )
    return found


def _describe_store(bot: BotSettings) -> str:
    if bot.store_url == "cosmos":
        return f"Cosmos DB at {urlsplit(bot.cosmos_endpoint).hostname}, database {bot.cosmos_database}"
    if bot.store_url.startswith("sqlite:///"):
        return f"SQLite file {bot.store_url.removeprefix('sqlite:///')}"
    return f"Store {bot.store_url}"


def _public_url(env: Mapping[str, str], bot: BotSettings, connector: ConnectorSettings, online: bool) -> list[Finding]:
    topic = "Public URL"
    base = connector.public_base_url
    if not base:
        level = WARN if bot.local_mode else FAIL
        return [
            Finding(
                level,
                topic,
                "PUBLIC_BASE_URL is not set. Set it to the https address people and Power Automate reach this"
                " service at (for example https://notify.contoso.com); the Azure Bot's messaging endpoint is that"
                " address plus /api/messages.",
            )
        ]
    parts = urlsplit(base)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return [
            Finding(
                FAIL,
                topic,
                f"PUBLIC_BASE_URL must be an absolute URL such as https://notify.contoso.com, not {base!r}.",
            )
        ]
    if parts.path.rstrip("/").endswith("/api/messages"):
        return [
            Finding(
                FAIL,
                topic,
                "PUBLIC_BASE_URL ends with /api/messages: give only the base (https://host); /api/messages is"
                " the bot endpoint under it.",
            )
        ]
    found: list[Finding] = []
    if parts.scheme != "https" and parts.hostname not in LOCAL_HOSTS:
        found.append(
            Finding(
                FAIL, topic, "PUBLIC_BASE_URL must use https: Azure Bot Service and Power Platform refuse plain http."
            )
        )
    if parts.path not in {"", "/"} or parts.query:
        found.append(Finding(WARN, topic, "PUBLIC_BASE_URL has a path or query; the connector expects the bare host."))
    if online:
        found.append(_reach(base))
    if not found:
        found.append(Finding(OK, topic, f"{base} (bot endpoint {base}/api/messages)."))
    if parts.scheme == "https" and not (env.get("METRICS_TOKEN") or "").strip():
        found.append(
            Finding(
                WARN,
                "Metrics",
                "/metrics is open to anyone who can reach the service (it shows counts, not people). Set"
                " METRICS_TOKEN and give Prometheus that bearer token.",
            )
        )
    return found


def _reach(base: str) -> Finding:
    url = base.rstrip("/") + "/healthz"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read().decode() or "{}")
            if response.status == 200 and body.get("status") == "ok":
                return Finding(OK, "Public URL", f"{url} answers: this service is reachable there.")
            return Finding(FAIL, "Public URL", f"{url} answered {response.status} but not as this service does.")
    except urllib.error.HTTPError as exc:
        return Finding(FAIL, "Public URL", f"{url} answered HTTP {exc.code}: is this service deployed there?")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Finding(FAIL, "Public URL", f"{url} cannot be reached ({reason}). Check DNS, TLS and that the app runs.")


def _api_access(env: Mapping[str, str], connector: ConnectorSettings) -> list[Finding]:
    found: list[Finding] = []
    if "apikey" in connector.auth_modes:
        key = connector.bootstrap_api_key
        if key and len(key) < 24:
            found.append(
                Finding(
                    WARN,
                    "API keys",
                    f"CONNECTOR_API_KEY is only {len(key)} characters. Use a long random value, or better, remove it"
                    " and create keys with: teams-proactive keys create --name NAME",
                )
            )
        elif key:
            found.append(
                Finding(
                    OK,
                    "API keys",
                    "CONNECTOR_API_KEY is set (a bootstrap key with every scope; prefer named keys from"
                    " 'teams-proactive keys create' in production).",
                )
            )
        else:
            found.append(
                Finding(OK, "API keys", "No bootstrap key; callers use keys made with 'teams-proactive keys create'.")
            )
    if "entra" in connector.auth_modes:
        found.append(Finding(OK, "Entra ID", f"Bearer tokens for audience {connector.entra_audience} are accepted."))
    if not (env.get("SECRET_KEY") or "").strip():
        found.append(
            Finding(
                WARN,
                "Dashboard",
                "SECRET_KEY is not set: the dashboard's sign-in cookie is signed with a key derived from"
                " MicrosoftAppPassword, or a random one per process (sign-ins then end at each restart and do not"
                " work across gunicorn workers). Set SECRET_KEY to a long random value.",
            )
        )
    return found


def render(findings: list[Finding]) -> str:
    lines = [f"  {f.level:<4}  {f.topic}: {f.text}" for f in findings]
    failures = sum(f.level == FAIL for f in findings)
    warnings = sum(f.level == WARN for f in findings)
    if failures:
        summary = f"{failures} problem{'s' * (failures != 1)} to fix, {warnings} warning{'s' * (warnings != 1)}."
    elif warnings:
        summary = f"No problems; {warnings} warning{'s' * (warnings != 1)}."
    else:
        summary = "Everything checked looks right."
    return "\n".join([*lines, "", summary])
