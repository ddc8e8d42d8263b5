"""Bot-side settings read from the environment (DESIGN.md section 5 names), with a .env file if present."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from botframework.connector.auth import AuthenticationConstants, GovernmentConstants
from teams_proactive.bot.callback_guard import CallbackPolicy
from teams_proactive.bot.clouds import CloudEndpoints, cloud_endpoints


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, not {raw!r}") from exc


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return int(_float(env, name, default))


def require_https(name: str, value: str) -> None:
    """Refuse a sign-in or key URL that is not https: tokens and signing keys must not travel in the clear."""
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"{name} must be an https:// URL (a host, optionally a path), not {value!r}")


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    return default if not raw else raw in {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class BotSettings:
    """Everything the bot, the store and the delivery engine are configured with."""

    app_id: str = ""
    app_password: str = field(default="", repr=False)
    # BOT_CERTIFICATE_PATH: a PEM file with the app registration's private key and certificate, used instead of
    # MicrosoftAppPassword for the bot's Bot Connector token (and Graph's, when Graph uses the bot's registration).
    app_certificate_path: str = ""
    app_type: str = "MultiTenant"
    app_tenant_id: str = ""
    store_url: str = "sqlite:///teams-proactive.db"
    cosmos_endpoint: str = ""
    cosmos_key: str = field(default="", repr=False)
    cosmos_database: str = "teams-proactive"
    reference_ttl_days: float | None = None
    delivery_retention_days: float = 30.0
    teams_cloud: str = "public"
    # Teams' per-app limit is per tenant; Microsoft has published both 30 and 50 requests/s.
    send_rate_per_tenant: float = 50.0
    send_concurrency: int = 32
    max_message_kb: float = 80.0  # MAX_MESSAGE_KB: largest message, as Teams counts it
    max_attempts: int = 8
    # How long a dispatcher owns a claimed delivery; a crashed sender's work is taken over after it.
    send_lease_seconds: float = 30.0
    send_timeout_seconds: float = 15.0  # one Bot Connector call; a timeout is retried
    delete_on_uninstall: bool = False
    # How often the retention purge physically removes what expired (SQLite; Cosmos DB uses TTL).
    purge_interval_seconds: float = 3600.0
    bot_name: str = "Notifications"
    # BOT_OPENID_METADATA_URL (or the SDK's own name BotOpenIdMetadata): replaces the cloud's channel OpenID
    # metadata URL, where inbound tokens' signing keys are published (tests, private and sovereign deployments).
    open_id_metadata: str = ""
    # LOGIN_URL: replaces the cloud's Entra sign-in host for every token the service asks for (the bot's
    # Bot Connector token and Graph's); empty: the cloud's own host.
    login_url: str = ""
    # How long one fetch of OpenID metadata or signing keys may take before /api/messages answers 503.
    metadata_timeout_seconds: float = 5.0
    # LOCAL_MODE=true: local mode (no MicrosoftAppId) wanted on purpose, also off loopback and under WSGI.
    local_mode_allowed: bool = False
    # CALLBACK_ALLOWED_NETWORKS, MAX_SUBSCRIPTIONS_PER_KEY: where webhook callbacks may go, how many.
    callback_policy: CallbackPolicy = field(default_factory=CallbackPolicy)

    @property
    def local_mode(self) -> bool:
        """No bot identity: no inbound token check and anonymous outbound calls (Playground, tests)."""
        return not self.app_id

    @property
    def cloud(self) -> CloudEndpoints:
        return cloud_endpoints(self.teams_cloud)

    @property
    def cloud_service_url(self) -> str:
        return self.cloud.global_service_url

    @property
    def channel_openid_metadata_url(self) -> str:
        """Where the signing keys of the channel's tokens are published (BOT_OPENID_METADATA_URL wins)."""
        return self.open_id_metadata or self.cloud.openid_metadata_url

    @property
    def sign_in_host(self) -> str:
        """Where every token is asked for: LOGIN_URL, or the cloud's Entra host."""
        return self.login_url or self.cloud.login_url

    @property
    def bot_login_url(self) -> str:
        """The authority the bot's Bot Connector token comes from.

        A single-tenant or managed-identity bot signs in in its own tenant (as the SDK's credentials do);
        a multi-tenant bot in the Bot Framework's tenant (botframework.com; MicrosoftServices.onmicrosoft.us
        in the government clouds)."""
        if self.app_type.lower() in {"singletenant", "userassignedmsi"} and self.app_tenant_id:
            return f"{self.sign_in_host}/{self.app_tenant_id}"
        tenant = (GovernmentConstants if self.cloud.government else AuthenticationConstants).DEFAULT_CHANNEL_AUTH_TENANT
        return f"{self.sign_in_host}/{tenant}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BotSettings:
        env = os.environ if env is None else env
        ttl_raw = env.get("REFERENCE_TTL_DAYS", "").strip()
        cloud = env.get("TEAMS_CLOUD", "public").strip().lower() or "public"
        cloud_endpoints(cloud)  # a ValueError naming the allowed clouds
        settings = cls(
            app_id=env.get("MicrosoftAppId", "").strip(),
            app_password=env.get("MicrosoftAppPassword", ""),
            app_certificate_path=env.get("BOT_CERTIFICATE_PATH", "").strip(),
            app_type=env.get("MicrosoftAppType", "").strip() or "MultiTenant",
            app_tenant_id=env.get("MicrosoftAppTenantId", "").strip(),
            store_url=env.get("STORE_URL", "").strip() or "sqlite:///teams-proactive.db",
            cosmos_endpoint=env.get("COSMOS_ENDPOINT", "").strip(),
            cosmos_key=env.get("COSMOS_KEY", ""),
            cosmos_database=env.get("COSMOS_DATABASE", "").strip() or "teams-proactive",
            reference_ttl_days=float(ttl_raw) if ttl_raw else None,
            delivery_retention_days=_float(env, "DELIVERY_RETENTION_DAYS", 30.0),
            teams_cloud=cloud,
            send_rate_per_tenant=_float(env, "SEND_RATE_PER_TENANT", 50.0),
            send_concurrency=_int(env, "SEND_CONCURRENCY", 32),
            max_message_kb=_float(env, "MAX_MESSAGE_KB", 80.0),
            max_attempts=_int(env, "SEND_MAX_ATTEMPTS", 8),
            send_lease_seconds=_float(env, "SEND_LEASE_SECONDS", 30.0),
            send_timeout_seconds=_float(env, "SEND_TIMEOUT_SECONDS", 15.0),
            delete_on_uninstall=_bool(env, "DELETE_ON_UNINSTALL", False),
            purge_interval_seconds=_float(env, "PURGE_INTERVAL_SECONDS", 3600.0),
            bot_name=env.get("BOT_NAME", "").strip() or "Notifications",
            open_id_metadata=(
                env.get("BOT_OPENID_METADATA_URL", "").strip() or env.get("BotOpenIdMetadata", "").strip()
            ),
            login_url=env.get("LOGIN_URL", "").strip().rstrip("/"),
            metadata_timeout_seconds=_float(env, "BOT_METADATA_TIMEOUT_SECONDS", 5.0),
            local_mode_allowed=_bool(env, "LOCAL_MODE", False),
            callback_policy=CallbackPolicy.from_env(env),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.app_certificate_path and not os.path.isfile(self.app_certificate_path):
            raise ValueError(f"BOT_CERTIFICATE_PATH does not name a readable file: {self.app_certificate_path}")
        if self.login_url:
            require_https("LOGIN_URL", self.login_url)
        if self.open_id_metadata:
            require_https("BOT_OPENID_METADATA_URL", self.open_id_metadata)
        if self.reference_ttl_days is not None and self.reference_ttl_days <= 0:
            raise ValueError("REFERENCE_TTL_DAYS must be a positive number of days (or unset)")
        if self.metadata_timeout_seconds <= 0:
            raise ValueError("BOT_METADATA_TIMEOUT_SECONDS must be positive")
        if self.purge_interval_seconds <= 0:
            raise ValueError("PURGE_INTERVAL_SECONDS must be a positive number of seconds")
        if self.send_rate_per_tenant <= 0:
            raise ValueError("SEND_RATE_PER_TENANT must be positive")
        if not 0 < self.max_message_kb <= 100:
            raise ValueError("MAX_MESSAGE_KB must be above 0 and at most 100 (Teams refuses larger messages)")
        if self.send_timeout_seconds <= 0 or self.send_lease_seconds <= self.send_timeout_seconds:
            raise ValueError("SEND_LEASE_SECONDS must be longer than SEND_TIMEOUT_SECONDS (both positive)")
        if self.app_type.lower() not in {"multitenant", "singletenant", "userassignedmsi"}:
            raise ValueError("MicrosoftAppType must be MultiTenant, SingleTenant or UserAssignedMSI")
