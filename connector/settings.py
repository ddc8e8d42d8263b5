"""Connector API settings from the environment (DESIGN.md section 5)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from teams_proactive.bot.clouds import CLOUDS


@dataclass(frozen=True, slots=True)
class ConnectorSettings:
    bootstrap_api_key: str = field(default="", repr=False)
    auth_modes: frozenset[str] = frozenset({"apikey"})
    public_base_url: str = ""
    # Entra ID bearer tokens (CONNECTOR_AUTH includes "entra").
    entra_audience: str = ""
    entra_allowed_tenants: frozenset[str] = frozenset()
    entra_required_role: str = "Notifications.Send"
    entra_metadata_url: str = ""  # tests point it at a local issuer; empty = Microsoft's per tenant
    # Entra ID's sign-in host of the Teams cloud (TEAMS_CLOUD): its tenants' tokens are checked there.
    entra_login_url: str = "https://login.microsoftonline.com"
    # Fits StartBroadcast's 100,000 recipients of ~60 characters (or 25,000 of ~300); /api/messages has
    # its own, smaller cap.
    max_body_bytes: int = 8 * 1024 * 1024
    requests_per_minute_per_key: int = 600
    default_wait_seconds: float = 5.0
    max_wait_seconds: float = 90.0  # Power Automate gives a synchronous action 120 s in all
    # X-Forwarded-For entries to trust for the client address (App Service's front end: 1).
    trusted_proxy_hops: int = 0
    # Wrong API keys, tokens and dashboard sign-ins per client address and minute before 429.
    failed_auth_per_minute: int = 10

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ConnectorSettings:
        env = os.environ if env is None else env
        modes = frozenset(m.strip().lower() for m in (env.get("CONNECTOR_AUTH") or "apikey").split(",") if m.strip())
        unknown = modes - {"apikey", "entra"}
        if unknown or not modes:
            raise ValueError("CONNECTOR_AUTH must be apikey, entra, or apikey,entra")
        if "entra" in modes and not env.get("ENTRA_AUDIENCE", "").strip():
            # Without an audience every token would be refused; say so at start-up, not per request.
            raise ValueError("CONNECTOR_AUTH includes entra: set ENTRA_AUDIENCE (the API's app ID URI or client id)")
        tenants = frozenset(t.strip().lower() for t in env.get("ENTRA_ALLOWED_TENANTS", "").split(",") if t.strip())
        return cls(
            bootstrap_api_key=env.get("CONNECTOR_API_KEY", "").strip(),
            auth_modes=modes,
            public_base_url=env.get("PUBLIC_BASE_URL", "").strip().rstrip("/"),
            entra_audience=env.get("ENTRA_AUDIENCE", "").strip(),
            entra_allowed_tenants=tenants,
            entra_required_role=env.get("ENTRA_REQUIRED_ROLE", "").strip() or "Notifications.Send",
            entra_metadata_url=env.get("ENTRA_METADATA_URL", "").strip(),
            entra_login_url=_cloud_login_url(env),
            max_body_bytes=int(env.get("MAX_BODY_BYTES", "") or 8 * 1024 * 1024),
            requests_per_minute_per_key=int(env.get("RATE_LIMIT_PER_MINUTE", "") or 600),
            trusted_proxy_hops=_count("TRUSTED_PROXY_HOPS", env.get("TRUSTED_PROXY_HOPS", ""), 0),
            failed_auth_per_minute=_count("FAILED_AUTH_PER_MINUTE", env.get("FAILED_AUTH_PER_MINUTE", ""), 10),
        )


def _cloud_login_url(env: Mapping[str, str]) -> str:
    # An unknown TEAMS_CLOUD is reported by the bot's settings; here it falls back to the public cloud.
    cloud = CLOUDS.get(env.get("TEAMS_CLOUD", "").strip().lower() or "public", CLOUDS["public"])
    return cloud.login_url


def _count(name: str, raw: str, default: int) -> int:
    raw = raw.strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ValueError(f"{name} must be a whole number (0 or more), not {raw!r}")
    return int(raw)
