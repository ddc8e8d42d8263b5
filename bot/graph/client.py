"""The Graph client: one pooled aiohttp session, per-tenant pacing under Graph's published limits, retries.

Pacing follows "Microsoft Graph service-specific throttling limits" (learn.microsoft.com/graph/
throttling-limits): Teams calls are counted in requests per second per app per tenant (GET and POST
installedApps 30 rps, GET /teams/{id}/members 60 rps, other Teams GETs 30 rps); identity calls
(users, groups) spend resource units from 3,500 per 10 s for the smallest tenants (GET users/{id}
costs 1, groups/{id}/transitiveMembers 5, minus 1 with $select). A 429 still pauses the lane for
its Retry-After; 429, 503, 504 and timeouts are retried a few times here, then handed back as
retryable so the outbox tries again later (durably).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from teams_proactive.bot.graph.settings import GraphSettings
from teams_proactive.bot.graph.tokens import GraphAuthError, GraphTokens
from teams_proactive.bot.jsonhttp import JsonHttp, ServiceError

log = logging.getLogger(__name__)

RETRYABLE = frozenset({0, 429, 500, 502, 503, 504})
USER_FIELDS = "id,displayName,userPrincipalName,mail,userType"


class GraphError(ServiceError):
    """Graph refused or failed a call. ``status`` 0: no answer; ``inner_code`` from innerError when given."""

    @property
    def retryable(self) -> bool:
        return self.status in RETRYABLE


@dataclass(frozen=True, slots=True)
class Lane:
    """One published limit: ``rate`` units per second per app per tenant."""

    name: str
    rate: float


IDENTITY = Lane("identity", 350.0)  # 3,500 resource units per 10 s (tenants under 50 users)
TEAMS_APPS_READ = Lane("teamsAppsRead", 30.0)
TEAMS_APPS_WRITE = Lane("teamsAppsWrite", 30.0)
TEAM_MEMBERS = Lane("teamMembers", 60.0)
TEAMS_OTHER_READ = Lane("teamsOtherRead", 30.0)


class _Bucket:
    """A token bucket that never lets more than ``rate`` units through in any one second: it refills
    at 90% of the rate and holds a tenth of a second's worth as a burst. ``pause`` empties it for a
    Retry-After."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self._refill = rate * 0.9
        self._capacity = rate * 0.1
        self._clock = clock
        self._sleep = sleep
        self.tokens = self._capacity
        self.updated = clock()
        self.paused_until = 0.0
        self.lock = asyncio.Lock()

    async def take(self, cost: float) -> None:
        async with self.lock:  # first come, first served: a waiter is not overtaken
            while True:
                at = self._clock()
                if at < self.paused_until:
                    await self._sleep(self.paused_until - at)
                    continue
                # A call dearer than the burst still goes, once the bucket holds its whole cost.
                self.tokens = min(max(self._capacity, cost), self.tokens + (at - self.updated) * self._refill)
                self.updated = at
                if self.tokens >= cost - 1e-9:  # float rounding must not leave a waiter spinning
                    self.tokens = max(0.0, self.tokens - cost)
                    return
                await self._sleep((cost - self.tokens) / self._refill)

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, self._clock() + seconds)
        self.tokens = 0.0


class GraphClient:
    """Calls Graph v1.0 for one app in many tenants; every method takes the tenant it acts in."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: GraphSettings,
        tokens: GraphTokens | None = None,
        *,
        timeout_seconds: float = 20.0,
        max_attempts: int = 4,
        max_wait_seconds: float = 30.0,
    ) -> None:
        self._http = JsonHttp(session, timeout_seconds=timeout_seconds, error=GraphError, service="Microsoft Graph")
        self.settings = settings
        self._tokens = tokens or GraphTokens(settings)
        self._max_attempts = max_attempts
        self._max_wait = max_wait_seconds
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self.stats = {"calls": 0, "throttled": 0, "retried": 0}

    @property
    def base(self) -> str:
        return f"{self.settings.graph_url}/v1.0"

    async def close(self) -> None:
        await self._tokens.close()

    def _bucket(self, tenant_id: str, lane: Lane) -> _Bucket:
        key = (tenant_id, lane.name)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(lane.rate)
        return bucket

    # ---- the calls this product makes ---------------------------------------------------------
    async def get_user(self, tenant_id: str, user: str) -> dict[str, Any] | None:
        """The Entra user by object id or UPN ("Get user"); None when Graph says 404."""
        try:
            return await self.request(
                tenant_id, "GET", f"/users/{quote(user, safe='@')}?$select={USER_FIELDS}", IDENTITY
            )
        except GraphError as exc:
            if exc.status == 404:
                return None
            raise

    async def install_app(self, tenant_id: str, user_id: str) -> bool:
        """Install TEAMS_APP_ID in the user's personal scope ("Install app for user"): True when this call
        installed it, False when it was installed already (409 Conflict)."""
        bind = f"{self.base}/appCatalogs/teamsApps/{self.settings.teams_app_id}"
        try:
            await self.request(
                tenant_id,
                "POST",
                f"/users/{quote(user_id)}/teamwork/installedApps",
                TEAMS_APPS_WRITE,
                body={"teamsApp@odata.bind": bind},
            )
        except GraphError as exc:
            if exc.status == 409:
                return False
            raise
        return True

    async def find_installation(self, tenant_id: str, user_id: str) -> str | None:
        """The id of the app's installation for the user ("List apps installed for user", filtered)."""
        app = self.settings.teams_app_id.replace("'", "''")
        # TEAMS_APP_ID is the catalog id; an operator who gave the manifest id is matched on externalId.
        for field in ("id", "externalId"):
            condition = f"teamsApp/{field} eq '{app}'"
            path = (
                f"/users/{quote(user_id)}/teamwork/installedApps?$expand=teamsApp&$filter={quote(condition, safe='/')}"
            )
            answer = await self.request(tenant_id, "GET", path, TEAMS_APPS_READ)
            for item in answer.get("value") or []:
                if item.get("id"):
                    return str(item["id"])
        return None

    async def installation_chat(self, tenant_id: str, user_id: str, installation_id: str) -> str:
        """The 1:1 chat between the user and the app ("Get chat between user and app")."""
        answer = await self.request(
            tenant_id,
            "GET",
            f"/users/{quote(user_id)}/teamwork/installedApps/{quote(installation_id, safe='')}/chat",
            TEAMS_APPS_READ,
        )
        chat_id = answer.get("id")
        if not chat_id:
            raise GraphError(502, "BadGraphAnswer", "the installation's chat came back without an id")
        return str(chat_id)

    async def group_users(self, tenant_id: str, group_id: str) -> AsyncIterator[list[dict[str, Any]]]:
        """Pages of the group's users, nested groups flattened ("List group transitive members", cast
        to microsoft.graph.user so groups, devices and contacts are left out by Graph itself)."""
        path = f"/groups/{quote(group_id)}/transitiveMembers/microsoft.graph.user?$select={USER_FIELDS}&$top=999"
        async for page in self._pages(tenant_id, path, IDENTITY, cost=4):
            yield [
                item for item in page
                if item.get("@odata.type", "#microsoft.graph.user") == "#microsoft.graph.user"
            ]  # fmt: skip

    async def team_members(self, tenant_id: str, team_id: str) -> AsyncIterator[list[dict[str, Any]]]:
        """Pages of a team's members ("List members of team": aadUserConversationMember items)."""
        async for page in self._pages(tenant_id, f"/teams/{quote(team_id)}/members", TEAM_MEMBERS):
            yield page

    async def _pages(
        self, tenant_id: str, path: str, lane: Lane, *, cost: float = 1.0
    ) -> AsyncIterator[list[dict[str, Any]]]:
        url: str | None = path
        while url:
            answer = await self.request(tenant_id, "GET", url, lane, cost=cost)
            yield [item for item in answer.get("value") or [] if isinstance(item, dict)]
            # @odata.nextLink is an absolute URL to follow as it is (Graph's "Paging" page).
            url = answer.get("@odata.nextLink") or None

    # ---- one call, paced and retried --------------------------------------------------------
    async def request(
        self,
        tenant_id: str,
        method: str,
        path_or_url: str,
        lane: Lane,
        *,
        body: dict[str, Any] | None = None,
        cost: float = 1.0,
    ) -> dict[str, Any]:
        url = path_or_url if path_or_url.startswith(("http://", "https://")) else self.base + path_or_url
        bucket = self._bucket(tenant_id, lane)
        attempt = 0
        while True:
            attempt += 1
            await bucket.take(cost)
            try:
                return await self._once(tenant_id, method, url, body)
            except GraphError as exc:
                if exc.status == 429:
                    self.stats["throttled"] += 1
                    bucket.pause(exc.retry_after if exc.retry_after is not None else 1.0)
                if exc.status == 401 and attempt == 1:
                    self._tokens.forget(tenant_id)  # a token revoked or rotated early: ask once more
                    continue
                if not exc.retryable or attempt >= self._max_attempts:
                    raise
                wait = exc.retry_after if exc.retry_after is not None else random.uniform(0.5, 1.0) * 2 ** (attempt - 1)
                if wait > self._max_wait:
                    raise  # a long pause is the outbox's job: the delivery is rescheduled, not held
                self.stats["retried"] += 1
                log.info("graph %s %s answered %s; retrying in %.1f s", method, lane.name, exc.status, wait)
                if exc.status != 429:
                    await asyncio.sleep(wait)  # a 429 already paused the bucket for the whole lane

    async def _once(self, tenant_id: str, method: str, url: str, body: dict[str, Any] | None) -> dict[str, Any]:
        try:
            token = await self._tokens.token(tenant_id)
        except GraphAuthError as exc:
            raise GraphError(401, exc.code, exc.message) from exc
        self.stats["calls"] += 1
        return await self._http.call(method, url, body, token=token)
