"""Graph settings read from the environment (DESIGN.md section 5 names): credentials, hosts, the switch."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from teams_proactive.bot.settings import BotSettings, require_https


def _bool(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class GraphSettings:
    """How the service reaches Microsoft Graph, and whether it may install the app for people."""

    install_enabled: bool = False  # GRAPH_INSTALL: the operator's switch for proactive installs
    teams_app_id: str = ""  # TEAMS_APP_ID: the app's id in the organisation's app catalog
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    certificate_path: str = ""
    managed_identity: bool = False  # MicrosoftAppType=UserAssignedMSI without a secret or certificate
    home_tenant_id: str = ""  # MicrosoftAppTenantId: the tenant a single-tenant bot serves
    graph_url: str = "https://graph.microsoft.com"
    login_url: str = "https://login.microsoftonline.com"
    ca_bundle: str = ""  # REQUESTS_CA_BUNDLE, as requests reads it (a TLS-inspecting proxy, tests)

    @property
    def configured(self) -> bool:
        """Credentials to ask Entra ID for a Graph token are present."""
        return bool(self.client_id and (self.client_secret or self.certificate_path or self.managed_identity))

    @property
    def can_install(self) -> bool:
        return self.install_enabled and self.configured and bool(self.teams_app_id)

    @property
    def scope(self) -> str:
        return f"{self.graph_url}/.default"

    def install_refusal(self) -> str | None:
        """Why installIfMissing cannot be honoured on this service (None: it can)."""
        if not self.install_enabled:
            return (
                "installIfMissing needs the operator to allow proactive installation: set GRAPH_INSTALL=true on the"
                " service (and TEAMS_APP_ID, with the Graph permissions described in docs/graph.md)."
            )
        if not self.teams_app_id:
            return "GRAPH_INSTALL is on but TEAMS_APP_ID (the app's id in the organisation's catalog) is not set."
        if not self.configured:
            return (
                "GRAPH_INSTALL is on but there are no Graph credentials: set MicrosoftAppId and MicrosoftAppPassword,"
                " or GRAPH_CLIENT_ID with GRAPH_CLIENT_SECRET or GRAPH_CERTIFICATE_PATH."
            )
        return None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, bot: BotSettings | None = None) -> GraphSettings:
        env = os.environ if env is None else env
        bot = bot or BotSettings.from_env(env)
        # The cloud's hosts (bot/clouds.py: GCC uses the global service, GCC High and DoD their own).
        # LOGIN_URL (https only) replaces the sign-in host for Graph's tokens as for the bot's.
        login_override = env.get("LOGIN_URL", "").strip().rstrip("/")
        if login_override:
            require_https("LOGIN_URL", login_override)
        graph_host, login_host = bot.cloud.graph_url, login_override or bot.sign_in_host
        client_id = env.get("GRAPH_CLIENT_ID", "").strip()
        secret = env.get("GRAPH_CLIENT_SECRET", "")
        certificate = env.get("GRAPH_CERTIFICATE_PATH", "").strip()
        if not client_id:
            # By default the bot's own app registration (its secret, or its certificate).
            client_id = bot.app_id
            secret = secret or bot.app_password
            certificate = certificate or bot.app_certificate_path
        managed = bot.app_type.lower() == "userassignedmsi" and not (secret or certificate)
        settings = cls(
            install_enabled=_bool(env, "GRAPH_INSTALL"),
            teams_app_id=env.get("TEAMS_APP_ID", "").strip(),
            client_id=client_id,
            client_secret=secret,
            certificate_path=certificate,
            managed_identity=managed,
            home_tenant_id=bot.app_tenant_id,
            graph_url=(env.get("GRAPH_URL", "").strip() or graph_host).rstrip("/"),
            login_url=login_host.rstrip("/"),
            ca_bundle=env.get("REQUESTS_CA_BUNDLE", "").strip(),
        )
        if settings.certificate_path and not os.path.isfile(settings.certificate_path):
            raise ValueError(f"GRAPH_CERTIFICATE_PATH does not name a readable file: {settings.certificate_path}")
        return settings
