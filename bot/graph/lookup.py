"""A person named by an address we never saw, but known to us by Entra object id: Graph says which object id it is.

Someone seen only in Microsoft 365 Copilot (or any surface that gives no UPN) is stored under their object
id; a maker who names them by UPN would otherwise get RecipientNotFound although the bot can reach them.
When Graph is configured, ``GET /users/{upn}`` gives the object id (User.Read.All, no install), and the
address is kept on the person's records so the next lookup needs no Graph call.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from teams_proactive.bot import errors
from teams_proactive.bot.graph.client import GraphClient, GraphError
from teams_proactive.bot.model import Reference
from teams_proactive.bot.recipients import Person, find_person
from teams_proactive.bot.store.base import PersonKey, Store

log = logging.getLogger(__name__)

# A lookup answers an API call: Graph's own retries (up to 30 s of Retry-After) must not hold it longer.
LOOKUP_TIMEOUT_SECONDS = 10.0


async def find_person_or_ask_graph(
    store: Store, recipient: str, tenant_id: str | None, graph: GraphClient | None, home_tenant_id: str = ""
) -> Person:
    """``find_person``, then, for an address nobody is stored under, the object id Graph gives for it."""
    try:
        return await find_person(store, recipient, tenant_id)
    except errors.Rejected as rejection:
        address = recipient.strip()
        tenant = tenant_id or home_tenant_id
        if rejection.code != "RecipientNotFound" or graph is None or "@" not in address or not tenant:
            raise
        user = await _graph_user(graph, tenant, address)
        object_id = str(user.get("id") or "").lower() if user else ""
        references = await store.references.of_person(tenant, object_id) if object_id else []
        if not references:
            raise
        assert user is not None

        def learn(current: Reference) -> Reference:
            current.upn = current.upn or user.get("userPrincipalName")
            current.email = current.email or user.get("mail")
            current.aad_object_id = current.aad_object_id or object_id
            return current

        # Kept through the store's own per-person write, so the address resolves without Graph next time.
        return Person(PersonKey(tenant, object_id), await store.references.update_person(tenant, object_id, learn) or references)


async def _graph_user(graph: GraphClient, tenant: str, address: str) -> dict[str, Any] | None:
    try:
        return await asyncio.wait_for(graph.get_user(tenant, address), LOOKUP_TIMEOUT_SECONDS)
    except GraphError as exc:
        # Graph unreachable or refusing: the person stays not found, as without Graph (never a 5xx here).
        log.info("graph could not look up a recipient (%s %s)", exc.status, exc.code)
        return None
    except TimeoutError:
        log.info("graph did not answer a recipient lookup in time")
        return None
