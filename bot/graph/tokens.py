"""App-only Graph tokens per tenant: msal (client secret or certificate) or azure-identity (managed identity)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from teams_proactive.bot.graph.settings import GraphSettings

log = logging.getLogger(__name__)


class GraphAuthError(Exception):
    """Entra ID refused to issue a Graph token (wrong secret, no consent, unknown tenant)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def certificate_credential(path: str) -> dict[str, str]:
    """msal's client_credential for a PEM file holding the private key and its certificate.

    Given the certificate, msal signs the assertion with PS256 and names the key by its SHA-256
    thumbprint (``x5t#S256``), as Entra ID now prefers; the SHA-1 ``x5t`` is not used."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    pem = Path(path).read_bytes()
    certificate = x509.load_pem_x509_certificate(pem)
    key = serialization.load_pem_private_key(pem, password=None)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "private_key": key_pem.decode(),
        "public_certificate": certificate.public_bytes(serialization.Encoding.PEM).decode(),
    }


class GraphTokens:
    """``await tokens.token(tenant_id)`` gives a bearer token for Graph in that tenant.

    msal is blocking, so its calls run in a worker thread and never on the bot loop; a token is
    reused until five minutes before it expires, so a broadcast asks Entra ID once an hour per tenant.
    """

    REFRESH_MARGIN_SECONDS = 300

    def __init__(self, settings: GraphSettings) -> None:
        self._settings = settings
        self._apps: dict[str, Any] = {}
        self._cached: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._credential: Any = None  # azure-identity managed identity credential (async)
        self._retired: list[Any] = []  # credentials dropped by forget(), closed with the rest
        self._client_credential: Any = None

    async def token(self, tenant_id: str) -> str:
        cached = self._cached.get(tenant_id)
        if cached and time.time() < cached[1] - self.REFRESH_MARGIN_SECONDS:
            return cached[0]
        lock = self._locks.setdefault(tenant_id, asyncio.Lock())
        async with lock:
            cached = self._cached.get(tenant_id)
            if cached and time.time() < cached[1] - self.REFRESH_MARGIN_SECONDS:
                return cached[0]
            token, expires_at = await self._fetch(tenant_id)
            self._cached[tenant_id] = (token, expires_at)
            return token

    def forget(self, tenant_id: str) -> None:
        """Drop a token Graph refused (401): the next call asks Entra ID again.

        msal and azure-identity keep their own token caches and would hand the refused token back, so
        the client that fetched it goes too and a new one asks the authority."""
        self._cached.pop(tenant_id, None)
        self._apps.pop(tenant_id, None)
        if self._credential is not None:
            self._retired.append(self._credential)
            self._credential = None

    async def close(self) -> None:
        for credential in [*self._retired, self._credential]:
            if credential is not None:
                await credential.close()

    async def _fetch(self, tenant_id: str) -> tuple[str, float]:
        if self._settings.managed_identity:
            from azure.identity.aio import ManagedIdentityCredential

            if self._credential is None:
                self._credential = ManagedIdentityCredential(client_id=self._settings.client_id or None)
            access = await self._credential.get_token(self._settings.scope)
            return access.token, float(access.expires_on)
        answer = await asyncio.to_thread(self._acquire, tenant_id)
        if "access_token" not in answer:
            code = str(answer.get("error") or "token_error")
            # Entra ID's error_description names the cause (AADSTS7000215 wrong secret, AADSTS700016 app
            # not in the tenant, ...); it carries no secret.
            raise GraphAuthError(code, str(answer.get("error_description") or "").splitlines()[0][:300])
        return str(answer["access_token"]), time.time() + float(answer.get("expires_in") or 3600)

    def _acquire(self, tenant_id: str) -> dict[str, Any]:
        app = self._apps.get(tenant_id)
        if app is None:
            import msal

            if self._client_credential is None:
                self._client_credential = (
                    certificate_credential(self._settings.certificate_path)
                    if self._settings.certificate_path
                    else self._settings.client_secret
                )
            overridden = not self._settings.login_url.endswith(
                ("login.microsoftonline.com", "login.microsoftonline.us")
            )
            app = msal.ConfidentialClientApplication(
                self._settings.client_id,
                client_credential=self._client_credential,
                authority=f"{self._settings.login_url}/{tenant_id}",
                # A LOGIN_URL of our own (a test authority) is not one Microsoft's discovery knows.
                instance_discovery=not overridden,
                validate_authority=not overridden,
                http_client=_session(self._settings.ca_bundle) if self._settings.ca_bundle else None,
                timeout=15,
            )
            self._apps[tenant_id] = app
        return dict(app.acquire_token_for_client(scopes=[self._settings.scope]))


def _session(ca_bundle: str) -> Any:
    """A requests session that trusts ``ca_bundle`` even when the process environment names another
    bundle (requests lets REQUESTS_CA_BUNDLE win over a session's own ``verify`` otherwise)."""
    import requests

    class _Session(requests.Session):
        def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("verify", ca_bundle)
            kwargs.setdefault("timeout", 15)
            return super().request(method, url, *args, **kwargs)

    return _Session()
