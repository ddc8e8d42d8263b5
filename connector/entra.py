"""Entra ID bearer tokens for the connector API (CONNECTOR_AUTH=entra): validation and what they may do."""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

import jwt
import requests
from teams_proactive.bot.delivery.service import Caller
from teams_proactive.connector.errors import ApiError
from teams_proactive.connector.settings import ConnectorSettings

log = logging.getLogger(__name__)

# Microsoft's per-tenant OpenID metadata under the cloud's sign-in host (login.microsoftonline.com, or
# login.microsoftonline.us for GCC High and DoD); ENTRA_METADATA_URL replaces it (same ``{tenantid}`` placeholder).
METADATA_PATH = "/{tenantid}/v2.0/.well-known/openid-configuration"
PLACEHOLDER = "{tenantid}"
# Clock skew allowed on exp/nbf; Entra's own guidance is a few minutes at most.
LEEWAY_SECONDS = 120
METADATA_TTL_SECONDS = 3600
FETCH_TIMEOUT_SECONDS = 10
# After a failed fetch, requests are answered 503 at once for this long instead of each waiting again.
FAILURE_CACHE_SECONDS = 30
# A tenant id goes into a URL path: only GUID-shaped text (letters, digits, dashes) is let through.
TENANT_ID = re.compile(r"[A-Za-z0-9-]{1,64}")

# App roles (application permissions) or delegated scopes beyond the required one, and the API scope each grants.
# The required role (ENTRA_REQUIRED_ROLE, default Notifications.Send) grants "send".
ROLE_SCOPES = {
    "Notifications.Send": "send",
    "Notifications.Broadcast": "broadcast",
    "Notifications.Admin": "admin",
    "Notifications.Install": "install",
}

REFUSED = "The bearer token is not valid for this API (wrong audience, issuer or tenant, expired, or badly signed)."


class _Metadata:
    """OpenID metadata documents and their key clients, cached per URL (keys are re-read when a kid is new)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._documents: dict[str, tuple[float, dict[str, Any]]] = {}
        self._failures: dict[str, float] = {}
        self._key_clients: dict[str, jwt.PyJWKClient] = {}

    def document(self, url: str) -> dict[str, Any]:
        with self._lock:
            cached = self._documents.get(url)
            failed_at = self._failures.get(url, float("-inf"))
        if cached and time.monotonic() - cached[0] < METADATA_TTL_SECONDS:
            return cached[1]
        if time.monotonic() - failed_at < FAILURE_CACHE_SECONDS:
            raise requests.ConnectionError("the OpenID metadata could not be fetched moments ago")
        try:
            response = requests.get(url, timeout=FETCH_TIMEOUT_SECONDS)
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError):
            with self._lock:
                self._failures[url] = time.monotonic()
            raise
        if not isinstance(document, dict) or not document.get("issuer") or not document.get("jwks_uri"):
            raise ValueError("the OpenID metadata has no issuer or jwks_uri")
        with self._lock:
            self._documents[url] = (time.monotonic(), document)
        return document

    def key_client(self, jwks_uri: str) -> jwt.PyJWKClient:
        with self._lock:
            client = self._key_clients.get(jwks_uri)
            if client is None:
                client = jwt.PyJWKClient(
                    jwks_uri, cache_jwk_set=True, lifespan=METADATA_TTL_SECONDS, timeout=FETCH_TIMEOUT_SECONDS
                )
                self._key_clients[jwks_uri] = client
            return client


_metadata = _Metadata()


def metadata_url(settings: ConnectorSettings, tenant_id: str, version: str) -> str:
    """The metadata document for the token's tenant; a v1 token's issuer is in the v1 document."""
    url = (settings.entra_metadata_url or settings.entra_login_url + METADATA_PATH).replace(PLACEHOLDER, tenant_id)
    if version == "1.0":
        url = url.replace("/v2.0/.well-known/", "/.well-known/")
    return url


def verify_bearer(token: str, settings: ConnectorSettings) -> Caller:
    """Validate an Entra ID access token and return the Caller it stands for.

    Signature (RS256, keys from the tenant's OpenID metadata), ``exp``/``nbf``, ``aud`` (ENTRA_AUDIENCE,
    comma-separated for an app ID URI and a client id) and ``iss`` (the tenant's v1 or v2 issuer) are
    checked; then the tenant allow-list and the required app role or delegated scope. The caller is
    limited to the token's own tenant, so a token never reaches another tenant's people.
    """
    audiences = [a.strip() for a in settings.entra_audience.split(",") if a.strip()]
    if not audiences:
        log.error("CONNECTOR_AUTH includes entra but ENTRA_AUDIENCE is not set; bearer tokens are refused")
        raise ApiError("Unauthorized", REFUSED)
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise ApiError("Unauthorized", REFUSED) from exc
    tenant_id = unverified.get("tid")
    if not isinstance(tenant_id, str) or not TENANT_ID.fullmatch(tenant_id):
        raise ApiError("Unauthorized", REFUSED)
    # Checked before any key fetch, so tokens of other tenants cost nothing (the check is repeated on
    # the verified claims below).
    if settings.entra_allowed_tenants and tenant_id.lower() not in settings.entra_allowed_tenants:
        raise ApiError("Unauthorized", "Tokens from this tenant are not accepted by this API.")
    if header.get("alg") != "RS256":
        raise ApiError("Unauthorized", REFUSED)
    version = "1.0" if unverified.get("ver") == "1.0" else "2.0"
    url = metadata_url(settings, tenant_id, version)
    try:
        document = _metadata.document(url)
        signing_key = _metadata.key_client(document["jwks_uri"]).get_signing_key_from_jwt(token)
    except jwt.PyJWKClientConnectionError as exc:
        raise _keys_unavailable(exc) from exc
    except jwt.PyJWKClientError as exc:  # no key with the token's kid
        raise ApiError("Unauthorized", REFUSED) from exc
    except (jwt.PyJWTError, requests.RequestException, ValueError) as exc:  # unusable metadata or key set
        raise _keys_unavailable(exc) from exc
    issuer = str(document["issuer"]).replace(PLACEHOLDER, tenant_id)
    try:
        claims = jwt.decode(
            token,
            signing_key.key,
            algorithms=["RS256"],
            audience=audiences,
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iss", "aud", "tid"]},
        )
    except jwt.PyJWTError as exc:
        log.info("bearer token refused: %s", type(exc).__name__)
        raise ApiError("Unauthorized", REFUSED) from exc
    if claims["tid"] != tenant_id:
        raise ApiError("Unauthorized", REFUSED)
    granted = permissions(claims)
    if settings.entra_required_role not in granted:
        raise ApiError(
            "Forbidden",
            f"The token does not carry the '{settings.entra_required_role}' app role or scope this API requires.",
        )
    scopes = {"send"} | {ROLE_SCOPES[p] for p in granted if p in ROLE_SCOPES}
    client = claims.get("azp") or claims.get("appid") or claims.get("oid") or "unknown"
    name = f"entra:{tenant_id}:{client}"
    oid = claims.get("oid")
    if claims.get("scp") and isinstance(oid, str) and oid:
        # A delegated token: every Power Automate connection of the connector uses the same OAuth client,
        # so the client alone would make all makers of a tenant one caller (shared idempotency keys, rate
        # bucket and triggers). The signed-in user is the caller; what the shared identity made before
        # stays theirs (legacy_owner).
        return Caller(name=f"{name}:{oid}", tenant_id=tenant_id, scopes=frozenset(scopes), legacy_owner=name)
    return Caller(name=name, tenant_id=tenant_id, scopes=frozenset(scopes))


def permissions(claims: dict[str, Any]) -> set[str]:
    """App roles (``roles``, application permissions) and delegated scopes (``scp``, space-separated)."""
    roles = claims.get("roles")
    granted = {r for r in roles if isinstance(r, str)} if isinstance(roles, list) else set()
    scp = claims.get("scp")
    if isinstance(scp, str):
        granted |= set(scp.split())
    return granted


def _keys_unavailable(exc: Exception) -> ApiError:
    # Not the caller's fault and not a bug: Entra's metadata could not be read. Retry shortly.
    log.warning("Entra ID signing keys could not be fetched (%s)", type(exc).__name__)
    return ApiError(
        "ServiceUnavailable",
        "The token could not be checked now (Microsoft Entra ID keys unavailable); retry shortly.",
        status=503,
        retry_after=30,
    )
