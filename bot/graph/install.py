"""Proactive installation: find the person in Entra ID, install the app for them, store their Teams chat."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from teams_proactive.bot.graph.client import GraphClient, GraphError
from teams_proactive.bot.model import Reference, ReferenceStatus, Surface, now
from teams_proactive.bot.store.base import Store
from teams_proactive.bot.surfaces import TEAMS_CHANNEL

log = logging.getLogger(__name__)

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# A delivery to someone the bot has never seen carries this prefix on its person key until the
# dispatcher has found them in Entra ID (a UPN or email is not a key: the object id is).
UNRESOLVED = "?"

# How each install outcome is reported (delivery ``installOutcome`` and broadcast counts).
INSTALLED = "installed"
ALREADY_INSTALLED = "alreadyInstalled"
FAILURE_MESSAGES = {
    "AppNotInCatalog": "The app is not in the organisation's Teams app catalog (check TEAMS_APP_ID and that an admin"
    " uploaded or approved the app).",
    "InstallBlockedByPolicy": "A Teams app permission or setup policy blocks this app for the person.",
    "UserNotFound": "No one with this address exists in the organisation's directory (Microsoft Entra ID).",
    "NoTeamsLicence": "The person has no Microsoft Teams licence.",
    "GraphPermissionMissing": "The service's app registration lacks a Graph permission or admin consent for"
    " installing apps (see docs/graph.md).",
    "GraphUnauthorized": "Microsoft Entra ID refused the service's Graph credentials (check the secret or"
    " certificate, and that the app is consented in this tenant).",
    "InstallFailed": "Microsoft Graph refused to install the app for the person.",
}


def unresolved_key(recipient: str) -> str:
    """The person key of someone not yet found: their object id when given one, else a placeholder."""
    value = recipient.strip().lower()
    return value if GUID.match(value) else UNRESOLVED + value


class InstallFailed(Exception):
    """The app could not be installed (``code`` as in FAILURE_MESSAGES), or not yet (``retryable``)."""

    def __init__(self, code: str, message: str, *, retryable: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(slots=True)
class Installed:
    reference: Reference
    outcome: str  # INSTALLED or ALREADY_INSTALLED


def classify(error: GraphError, step: str) -> InstallFailed:
    """What a Graph refusal means for the person (the shapes Company Communicator users report:
    403 Forbidden "App is blocked by app permission policy" with innerError AccessDenied, 404 for an
    app id the catalog does not hold, "Missing role permissions" without consent)."""
    if error.retryable:
        return InstallFailed(
            "GraphUnavailable",
            f"Microsoft Graph answered {error.status or 'nothing'} ({error.code}) while {step}; it will be retried.",
            retryable=True,
            retry_after=error.retry_after,
        )
    text = f"{error.code} {error.message}".lower()
    if "licen" in text:
        code = "NoTeamsLicence"
    elif error.status == 401:
        code = "GraphUnauthorized"
    elif error.status == 403 and ("policy" in text or "blocked" in text):
        code = "InstallBlockedByPolicy"
    elif error.status == 403 and ("permission" in text or "scope" in text or "role" in text):
        code = "GraphPermissionMissing"
    elif error.status == 404 and step == "installing the app":
        code = "AppNotInCatalog"
    elif error.status == 404 and step == "looking up the person":
        code = "UserNotFound"
    else:
        code = "InstallFailed"
    message = FAILURE_MESSAGES[code]
    if code == "InstallFailed":
        message = f"{message} ({error.status} {error.code} while {step})"
    return InstallFailed(code, message)


class Installer:
    """Installs the app for a person and records the resulting chat as their Teams reference."""

    def __init__(self, store: Store, graph: GraphClient, *, cloud_service_url: str, bot_id: str = "") -> None:
        self._store = store
        self.graph = graph
        self._cloud_service_url = cloud_service_url
        self._bot_id = bot_id

    async def find_user(self, tenant_id: str, recipient: str) -> dict[str, Any]:
        """The Entra user for a UPN, email or object id (GET /users/{id | userPrincipalName})."""
        try:
            user = await self.graph.get_user(tenant_id, recipient.strip())
        except GraphError as exc:
            raise classify(exc, "looking up the person") from exc
        if user is None or not user.get("id"):
            raise InstallFailed("UserNotFound", FAILURE_MESSAGES["UserNotFound"])
        return user

    async def install(self, tenant_id: str, user_id: str, *, repair: bool = False) -> Installed:
        """Install (409: it already is), read the chat, and store it as the person's Teams reference."""
        user = await self.find_user(tenant_id, user_id)
        object_id = str(user["id"])
        try:
            installed_now = await self.graph.install_app(tenant_id, object_id)
        except GraphError as exc:
            raise classify(exc, "installing the app") from exc
        try:
            installation = await self.graph.find_installation(tenant_id, object_id)
            if installation is None:
                # Installed a moment ago and not listed yet: the outbox asks again shortly.
                raise InstallFailed(
                    "GraphUnavailable", "The new installation is not listed by Graph yet.", retryable=True
                )
            chat_id = await self.graph.installation_chat(tenant_id, object_id, installation)
        except GraphError as exc:
            if exc.status == 404:
                raise InstallFailed(
                    "GraphUnavailable", "The chat of the new installation is not ready yet.", retryable=True
                ) from exc
            raise classify(exc, "reading the person's chat with the app") from exc
        reference = await self._record(tenant_id, user, chat_id, repair=repair)
        return Installed(reference, INSTALLED if installed_now else ALREADY_INSTALLED)

    async def _record(self, tenant_id: str, user: dict[str, Any], chat_id: str, *, repair: bool) -> Reference:
        user_key = str(user["id"]).lower()
        service_url = await self._store.references.tenant_service_url(tenant_id, TEAMS_CHANNEL) or self._cloud_service_url
        at = now()
        refused: list[str] = []

        def merge(current: Reference | None) -> Reference | None:
            if current is not None and (
                current.opted_out or current.status in (ReferenceStatus.BLOCKED, ReferenceStatus.UNINSTALLED)
            ):
                # The person said no (blocked, typed stop, uninstalled) while we were installing.
                refused.append(current.status if not current.opted_out else "optedOut")
                return None
            ref = current or Reference(
                tenant_id=tenant_id,
                user_key=user_key,
                surface=Surface.TEAMS,
                conversation_id=chat_id,
                service_url=service_url,
                channel_id=TEAMS_CHANNEL,
                user_id=str(user["id"]),
                bot_id=self._bot_id,
                created_at=at,
                last_seen=at,
            )
            if current is not None and current.conversation_id != chat_id:
                previous = ref.conversation_id
                ref.conversation_id = chat_id
                ref.remember_chat_id(previous)
                ref.conversation_reference = {}
            if not ref.service_url:
                ref.service_url = service_url
            ref.aad_object_id = ref.aad_object_id or str(user["id"])
            ref.upn = ref.upn or user.get("userPrincipalName")
            ref.email = ref.email or user.get("mail")
            ref.name = ref.name or user.get("displayName")
            ref.conversation_type = "personal"
            ref.status = ReferenceStatus.ACTIVE
            ref.failures = 0
            ref.last_error = None
            ref.expires_at = self._store.references.expiry(ref.last_seen)
            return ref

        stored = await self._store.references.update(tenant_id, user_key, Surface.TEAMS, merge)
        if refused or stored is None:
            raise InstallFailed("RecipientUnreachable", "The person turned the bot off while it was being installed.")
        log.info("installed the app for a person in tenant %s (%s)", tenant_id, "repair" if repair else "new")
        return stored
