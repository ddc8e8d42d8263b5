"""Audiences from Entra ID: the users of groups (nested groups flattened) and the members of teams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from teams_proactive.bot import errors
from teams_proactive.bot.graph.client import GraphClient, GraphError
from teams_proactive.bot.graph.install import FAILURE_MESSAGES, classify
from teams_proactive.bot.graph.settings import GraphSettings
from teams_proactive.bot.model import ReferenceStatus
from teams_proactive.bot.recipients import Person
from teams_proactive.bot.store.base import PersonKey, Store

# (recipient as reported, the person, or why they are skipped)
Member = tuple[str, PersonKey | None, errors.Rejected | None]

# Members checked against the store at once (each is one read of the person's references).
LOOKUP_CONCURRENCY = 32


def graph_required(settings: GraphSettings, target: str) -> None:
    """Groups and teams are read through Graph: refuse clearly when the service has no credentials."""
    if not settings.configured:
        raise errors.Rejected(
            "GraphNotConfigured",
            "Entra groups and teams are read through Microsoft Graph, and this service has no Graph credentials:"
            " the operator sets MicrosoftAppId/MicrosoftAppPassword or GRAPH_CLIENT_ID with a secret or"
            " certificate, and grants GroupMember.Read.All / TeamMember.Read.All (docs/graph.md).",
            target,
        )


class AudienceExpander:
    """Streams the people of groups and teams, page by page, as broadcast recipients."""

    def __init__(self, store: Store, graph: GraphClient | None) -> None:
        self._store = store
        self._graph = graph

    async def members(
        self, tenant_id: str, *, groups: list[str], teams: list[str], include_guests: bool, install: bool
    ) -> AsyncIterator[Member]:
        if self._graph is None:
            raise errors.Rejected("GraphNotConfigured", "Microsoft Graph is not configured on this service.")
        for group in groups:
            try:
                async for page in self._graph.group_users(tenant_id, group):
                    people = [
                        (str(u["id"]), _address(u.get("userPrincipalName"), u.get("mail"), u["id"]))
                        for u in page
                        if u.get("id") and (include_guests or str(u.get("userType") or "").lower() != "guest")
                    ]
                    for member in await self._check(tenant_id, people, install):
                        yield member
            except GraphError as exc:
                if exc.retryable:
                    raise  # the expansion runs again later; delivery ids are deterministic
                yield f"group {group}", None, _audience_error(exc, "group", group)
        for team in teams:
            try:
                async for page in self._graph.team_members(tenant_id, team):
                    people = []
                    for m in page:
                        if not m.get("userId"):
                            continue
                        address = _address(m.get("email"), None, m["userId"])
                        home = str(m.get("tenantId") or tenant_id)
                        if home.lower() != tenant_id.lower():
                            # "List members of team": members of other organisations (shared channels,
                            # B2B direct connect) carry their own tenantId; this tenant's bot cannot
                            # reach them, so they are skipped with the reason, not counted as ours.
                            yield address, None, _other_tenant(address, team)
                            continue
                        if include_guests or "guest" not in [r.lower() for r in m.get("roles") or []]:
                            people.append((str(m["userId"]), address))
                    for member in await self._check(tenant_id, people, install):
                        yield member
            except GraphError as exc:
                if exc.retryable:
                    raise
                yield f"team {team}", None, _audience_error(exc, "team", team)

    async def look_up(self, recipient: str, tenant_id: str) -> Member:
        """Someone the bot has never seen, named by address: find their object id in Entra ID."""
        if self._graph is None:
            return recipient, None, errors.not_found(recipient)
        try:
            user = await self._graph.get_user(tenant_id, recipient)
        except GraphError as exc:
            if exc.retryable:
                raise
            failure = classify(exc, "looking up the person")
            return recipient, None, errors.Rejected(failure.code, failure.message, "recipients")
        if user is None or not user.get("id"):
            return recipient, None, errors.Rejected("UserNotFound", FAILURE_MESSAGES["UserNotFound"], "recipients")
        return (await self._check(tenant_id, [(str(user["id"]), recipient)], True))[0]

    async def _check(self, tenant_id: str, people: list[tuple[str, str]], install: bool) -> list[Member]:
        answers: list[Member] = []
        for start in range(0, len(people), LOOKUP_CONCURRENCY):
            window = people[start : start + LOOKUP_CONCURRENCY]
            answers += await asyncio.gather(*(self._one(tenant_id, oid, address, install) for oid, address in window))
        return answers

    async def _one(self, tenant_id: str, object_id: str, address: str, install: bool) -> Member:
        key = PersonKey(tenant_id, object_id.lower())
        refs = await self._store.references.of_person(key.tenant_id, key.user_key)
        if not refs:
            return (address, key, None) if install else (address, None, errors.not_found(address))
        person = Person(key, refs)
        if person.opted_out:
            return address, None, errors.opted_out(address)
        status = person.reachability()
        if status == ReferenceStatus.ACTIVE or (status == ReferenceStatus.NOT_FOUND and install):
            return address, key, None
        return address, None, errors.unreachable(address, status)


def _other_tenant(address: str, team: str) -> errors.Rejected:
    return errors.Rejected(
        "OtherTenantMember",
        f"'{address}' is a member of team {team} from another organisation (another Entra tenant); a broadcast"
        " reaches the people of the team's own organisation only.",
        "teams",
    )


def _address(*candidates: Any) -> str:
    return next(str(c) for c in candidates if c)


def _audience_error(exc: GraphError, kind: str, ident: str) -> errors.Rejected:
    if exc.status == 404:
        return errors.Rejected(
            f"{kind.title()}NotFound", f"Microsoft Graph has no {kind} with id '{ident}'.", kind + "s"
        )
    if exc.status in (401, 403):
        return errors.Rejected(
            "GraphPermissionMissing",
            f"Microsoft Graph refused to list the {kind}'s members ({exc.status} {exc.code}): grant"
            f" {'GroupMember.Read.All' if kind == 'group' else 'TeamMember.Read.All'} with admin consent.",
            kind + "s",
        )
    return errors.Rejected(
        "GraphError", f"Microsoft Graph answered {exc.status} ({exc.code}) for the {kind}.", kind + "s"
    )
