"""The bot's bearer token for the Bot Connector: one cached token, from Entra ID (secret or certificate) or a managed identity.

Proactive sends (``teams_proactive.bot.outbound``) and the SDK's own replies inside a turn share it, so the
service asks the authority once per token lifetime, not once per path. A token the Bot Connector answers
401 to is forgotten (``forget``) and the next call asks again. LOGIN_URL replaces the sign-in host
(tests, private and sovereign deployments); its authority is then not one Microsoft's instance discovery
knows, so msal is told not to ask it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from botframework.connector.auth import AppCredentials, ServiceClientCredentialsFactory
from msrest.authentication import Authentication
from teams_proactive.bot.graph.tokens import certificate_credential
from teams_proactive.bot.settings import BotSettings

TOKEN_TIMEOUT_SECONDS = 15


def _default_scope(scope: str) -> str:
    return scope if scope.endswith("/.default") else scope.rstrip("/") + "/.default"


class BotTokenProvider:
    """``await provider.token()``: a bearer token for the Bot Connector, or None in local mode.

    msal is blocking, so fetches run in a worker thread (``token``) or, from the SDK's own synchronous
    credential hook, in the caller's thread (``token_now``); one lock lets one fetch run at a time.
    """

    REFRESH_MARGIN_SECONDS = 300

    def __init__(self, settings: BotSettings) -> None:
        self._settings = settings
        self._scope = settings.cloud.to_channel_scope
        self._login = settings.bot_login_url
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._client: Any = None
        self.fetches = 0  # how often the authority was asked (tests, metrics)

    @property
    def scope(self) -> str:
        return self._scope

    @property
    def authority(self) -> str:
        return self._login

    async def token(self) -> str | None:
        """A bearer token, or None in local mode (anonymous outbound calls)."""
        if self._settings.local_mode:
            return None
        cached = self._fresh()
        if cached is not None:
            return cached
        return await asyncio.to_thread(self.token_now)

    def token_now(self) -> str:
        """The token, fetched in this thread when none is fresh (blocking)."""
        with self._lock:
            cached = self._fresh()
            if cached is not None:
                return cached
            token, lifetime = self._acquire()
            self._token, self._expires_at = token, time.time() + lifetime
            return token

    def forget(self, token: str) -> None:
        """The Bot Connector refused ``token`` (401): the next call asks the authority for a new one."""
        with self._lock:
            if self._token == token:
                self._token, self._expires_at = None, 0.0
                self._client = None  # msal keeps its own cache: a new client asks the authority

    def _fresh(self) -> str | None:
        if self._token and time.time() < self._expires_at - self.REFRESH_MARGIN_SECONDS:
            return self._token
        return None

    def _acquire(self) -> tuple[str, float]:
        import msal
        import requests

        self.fetches += 1
        settings = self._settings
        if self._client is None:
            session = requests.Session()  # honours REQUESTS_CA_BUNDLE and proxies, as msal's own would
            if settings.app_type.lower() == "userassignedmsi":
                self._client = msal.ManagedIdentityClient(
                    msal.UserAssignedManagedIdentity(client_id=settings.app_id),
                    http_client=session,
                    token_cache=msal.TokenCache(),
                )
            else:
                custom = bool(settings.login_url)
                credential: Any = settings.app_password
                if settings.app_certificate_path:
                    credential = certificate_credential(settings.app_certificate_path)
                self._client = msal.ConfidentialClientApplication(
                    settings.app_id,
                    client_credential=credential,
                    authority=self._login,
                    instance_discovery=not custom,
                    validate_authority=not custom,
                    http_client=session,
                    timeout=TOKEN_TIMEOUT_SECONDS,
                )
        if isinstance(self._client, msal.ManagedIdentityClient):
            answer = self._client.acquire_token_for_client(resource=self._scope.removesuffix("/.default"))
        else:
            answer = self._client.acquire_token_for_client(scopes=[_default_scope(self._scope)])
        if "access_token" not in answer:
            # Entra ID's error_description names the cause (AADSTS7000215 wrong secret, ...); no secret in it.
            description = str(answer.get("error_description") or "").splitlines()[:1]
            raise PermissionError(
                f"the bot's token was refused: {answer.get('error') or 'token_error'}"
                f" {description[0][:300] if description else ''}".rstrip()
            )
        return str(answer["access_token"]), float(answer.get("expires_in") or 3600)


class _SharedCredentials(AppCredentials):
    """The SDK's credential shape (msrest signs each request with it) over the shared provider."""

    def __init__(self, provider: BotTokenProvider, app_id: str) -> None:
        super().__init__(app_id=app_id, oauth_scope=provider.scope)
        self.oauth_endpoint = provider.authority
        self._provider = provider

    def get_access_token(self, force_refresh: bool = False) -> str:
        return self._provider.token_now()


class SharedTokenCredentialFactory(ServiceClientCredentialsFactory):
    """The SDK's replies inside a turn sign with the provider's token; other audiences keep the SDK's own."""

    def __init__(self, inner: ServiceClientCredentialsFactory, provider: BotTokenProvider) -> None:
        self._inner = inner
        self._provider = provider

    async def is_valid_app_id(self, app_id: str) -> bool:
        return await self._inner.is_valid_app_id(app_id)

    async def is_authentication_disabled(self) -> bool:
        return await self._inner.is_authentication_disabled()

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> Authentication:
        same = _default_scope(oauth_scope or "") == _default_scope(self._provider.scope)
        if await self.is_authentication_disabled() or not same or not await self.is_valid_app_id(app_id):
            return await self._inner.create_credentials(app_id, oauth_scope, login_endpoint, validate_authority)
        return _SharedCredentials(self._provider, app_id)
