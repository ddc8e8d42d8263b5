"""The one module that owns the Bot Framework SDK adapter: inbound auth, turn processing, client reuse.

Everything else in the product talks to Teams through ``teams_proactive.bot.outbound`` (plain REST) or through the
turn context the SDK hands to the bot; a move to the Microsoft 365 Agents SDK changes this file.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from botbuilder.core import Bot, TurnContext
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
    ConfigurationServiceClientCredentialFactory,
)
from botbuilder.schema import Activity, ActivityTypes
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import (
    AuthenticateRequestResult,
    BotFrameworkAuthentication,
    ClaimsIdentity,
    ConnectorFactory,
    PasswordServiceClientCredentialFactory,
    UserTokenClient,
)
from botframework.connector.skills import BotFrameworkClient
from teams_proactive.bot import signing_keys
from teams_proactive.bot.bot_tokens import BotTokenProvider, SharedTokenCredentialFactory
from teams_proactive.bot.settings import BotSettings

log = logging.getLogger(__name__)


# The activity types the Bot Framework protocol defines; anything else is acknowledged and ignored.
KNOWN_ACTIVITY_TYPES = frozenset(t.value for t in ActivityTypes)


class InboundAuthError(Exception):
    """The request to /api/messages did not carry a valid Bot Framework token."""


class InboundUnavailable(Exception):
    """The channel's signing keys could not be fetched in time: the token can be checked neither way."""


@dataclass(frozen=True, slots=True)
class TurnResult:
    status: int
    body: Any | None = None


class _SdkConfig:
    """The attribute names ConfigurationBotFrameworkAuthentication reads.

    Every cloud endpoint is passed explicitly, so the SDK always takes its parameterized path: inbound
    tokens are checked against the configured cloud's issuer and keys, and the SDK's own replies sign
    in to that cloud (without them it falls back to the public cloud for everything but ChannelService).
    """

    def __init__(self, settings: BotSettings) -> None:
        cloud = settings.cloud
        self.APP_ID = settings.app_id
        self.APP_PASSWORD = settings.app_password
        self.APP_TYPE = settings.app_type
        self.APP_TENANTID = settings.app_tenant_id
        self.CHANNEL_SERVICE = cloud.channel_service or None
        self.VALIDATE_AUTHORITY = True
        self.TO_CHANNEL_FROM_BOT_LOGIN_URL = settings.bot_login_url
        self.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE = cloud.to_channel_scope
        self.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER = cloud.token_issuer
        self.OAUTH_URL = cloud.oauth_url
        self.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL = settings.channel_openid_metadata_url
        self.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL = cloud.emulator_openid_metadata_url


class _CachingConnectorFactory(ConnectorFactory):
    """Reuses one ConnectorClient per (service URL, audience).

    Building a ConnectorClient costs ~5 ms of CPU (msrest builds a retry policy over 999 status
    codes); a turn needs one, so without reuse every inbound activity pays it.
    """

    def __init__(self, inner: ConnectorFactory, cache: dict[tuple[str, str | None], ConnectorClient]) -> None:
        self._inner = inner
        self._cache = cache

    async def create(self, service_url: str, audience: str | None = None) -> ConnectorClient:
        key = (service_url, audience)
        client = self._cache.get(key)
        if client is None:
            client = await self._inner.create(service_url, audience)
            self._cache[key] = client
        return client


class _CachingAuthentication(BotFrameworkAuthentication):
    """Delegates to the SDK's authentication, caching the expensive clients it builds per turn."""

    def __init__(self, inner: BotFrameworkAuthentication) -> None:
        self._inner = inner
        self._connectors: dict[str, dict[tuple[str, str | None], ConnectorClient]] = {}
        self._user_token_clients: dict[str, UserTokenClient] = {}

    def _connector_cache(self, claims: ClaimsIdentity) -> dict[tuple[str, str | None], ConnectorClient]:
        app_id = claims.get_claim_value("aud") or claims.get_claim_value("appid") or ""
        return self._connectors.setdefault(app_id, {})

    async def authenticate_request(self, activity: Activity, auth_header: str) -> AuthenticateRequestResult:
        result = await self._inner.authenticate_request(activity, auth_header)
        if result.connector_factory is not None:
            result.connector_factory = _CachingConnectorFactory(
                result.connector_factory, self._connector_cache(result.claims_identity)
            )
        return result

    async def authenticate_streaming_request(
        self, auth_header: str, channel_id_header: str
    ) -> AuthenticateRequestResult:
        return await self._inner.authenticate_streaming_request(auth_header, channel_id_header)

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return _CachingConnectorFactory(
            self._inner.create_connector_factory(claims_identity), self._connector_cache(claims_identity)
        )

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        app_id = claims_identity.get_claim_value("aud") or claims_identity.get_claim_value("appid") or ""
        client = self._user_token_clients.get(app_id)
        if client is None:
            client = await self._inner.create_user_token_client(claims_identity)
            self._user_token_clients[app_id] = client
        return client

    def create_bot_framework_client(self) -> BotFrameworkClient:
        return self._inner.create_bot_framework_client()

    def get_originating_audience(self) -> str:
        return self._inner.get_originating_audience()

    async def authenticate_channel_request(self, auth_header: str) -> ClaimsIdentity:
        return await self._inner.authenticate_channel_request(auth_header)


class BotEndpoint:
    """Runs inbound activities through the SDK: authenticate, then the middleware pipeline and the bot."""

    def __init__(
        self, settings: BotSettings, bot: Bot, middleware: list[Any], *, tokens: BotTokenProvider | None = None
    ) -> None:
        self._settings = settings
        if settings.local_mode:
            log.warning(
                "MicrosoftAppId is not set: /api/messages accepts activities without a token (local mode)."
                " Set the bot's identity before exposing this service."
            )
        # Built on the bot loop (BotRuntime._open): token checks on it fetch keys without blocking it.
        signing_keys.install(asyncio.get_running_loop(), timeout_seconds=settings.metadata_timeout_seconds)
        config = _SdkConfig(settings)
        # The SDK's replies inside a turn sign with the same token as proactive sends (one per lifetime).
        # With a certificate there is no password, which the SDK's own factory insists on for SingleTenant;
        # its credentials then serve only audiences other than the channel's (none in this product).
        inner = (
            PasswordServiceClientCredentialFactory(settings.app_id, "", settings.app_tenant_id or None)
            if settings.app_certificate_path and not settings.app_password
            else ConfigurationServiceClientCredentialFactory(config)
        )
        credentials = SharedTokenCredentialFactory(inner, tokens or BotTokenProvider(settings))
        self.authentication = _CachingAuthentication(
            ConfigurationBotFrameworkAuthentication(config, credentials_factory=credentials)
        )
        self.adapter = CloudAdapter(self.authentication)
        self.adapter.on_turn_error = self._on_turn_error
        for layer in middleware:
            self.adapter.use(layer)
        self._bot = bot

    async def process(self, auth_header: str, body: dict[str, Any]) -> TurnResult:
        """Authenticate and process one activity; raises InboundAuthError for a bad or missing token."""
        activity = Activity().deserialize(body)
        # The SDK's parameterized path treats only None (not "") as "no header": local mode passes None.
        header = None if self._settings.local_mode else auth_header
        try:
            auth = await self.authentication.authenticate_request(activity, header)
        except signing_keys.SigningKeysUnavailable as exc:
            log.warning("inbound activity not checked: the channel's signing keys are unavailable")
            raise InboundUnavailable(str(exc)) from exc
        except Exception as exc:  # the SDK raises many types (PermissionError, jwt errors, IndexError)
            log.warning("inbound activity refused: %s", type(exc).__name__)
            raise InboundAuthError(str(exc) or type(exc).__name__) from exc
        if activity.type not in KNOWN_ACTIVITY_TYPES:
            # Acknowledged and ignored: an activity type the protocol does not define is not a turn,
            # and nothing about its sender is recorded.
            log.info("ignored an activity of an unknown type")
            return TurnResult(200)
        invoke_response = await self.adapter.process_activity(auth, activity, self._bot.on_turn)
        if invoke_response is None:
            return TurnResult(200)
        return TurnResult(invoke_response.status or 200, invoke_response.body)

    async def _on_turn_error(self, context: TurnContext, error: Exception) -> None:
        # Never log the activity text: it is the user's message.
        log.exception(
            "bot turn failed (type=%s, channel=%s)",
            context.activity.type,
            context.activity.channel_id,
            exc_info=error,
        )
