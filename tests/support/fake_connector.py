"""A fake Bot Connector service (aiohttp on 127.0.0.1) faithful to the documented REST behaviour.

It records every activity, answers member lookups, creates 1:1 conversations, and can be told to
fail: scripted errors (status, Teams error code, Retry-After), silence past the client's timeout,
latency, and a per-tenant rate cap (Teams' per-app, per-tenant budget) that answers 429 like Teams does
when it is exceeded; one tenant's calls never spend another tenant's budget.

What Teams itself enforces, it enforces too:
- per conversation, Teams' published limits for a bot ("Optimize your bot: rate limiting and best
  practices": 7 per 1 s, 8 per 2 s, 60 per 30 s, 1,800 per hour), answered 429 when broken (``chat_limits``);
- ``PUT`` and ``DELETE`` of an activity it never issued in that conversation, or one already deleted,
  answer 404 ``ActivityNotFoundInConversation`` ("Status codes from bot conversational APIs");
- creating a 1:1 chat answers 403 ``ForbiddenOperationException`` "Bot isn't installed in user's
  personal scope" for a person without the app (``not_installed``) and 400 ``BadArgument`` for a member
  id that is neither a Teams user id (``29:…``) nor an Entra object id;
- with ``authorize`` set (the signed suite: ``LocalTokenIssuer.accepts_bot_connector_token``), a call
  without a valid bearer token answers 401 as the Bot Connector does.

Every error it answers is one of Microsoft's documented bodies (tests/fixtures/teams/errors), byte
for byte: a scripted status and code pick the documented answer with that code (403
``MessageWritesBlocked`` is the ``errorCode`` 209 body with the code inside a JSON string; 503 is
an empty body; 504 plain text). Only a code Microsoft does not document (a test's "unknown code")
is wrapped in the Bot Framework ErrorResponse envelope ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fixtures import teams as documented
from tests.support.aiohttp_server import BackgroundServer, free_port


@dataclass
class Scripted:
    status: int
    code: str = ""
    message: str = ""  # used only for a code Microsoft does not document (the documented text wins)
    retry_after: float | None = None  # sets Retry-After (None: the documented answer's own headers)
    hang: bool = False  # never answer (the client times out)
    fixture: str | None = None  # answer exactly this documented error (tests/fixtures/teams/errors)

    @classmethod
    def documented(cls, name: str, *, hang: bool = False) -> Scripted:
        found = documented.error(name)
        return cls(found.status, found.teams_code, hang=hang, fixture=name)

    def response(self) -> web.Response:
        """The documented answer for this status and code (see the module docstring)."""
        if self.fixture:
            found: documented.ErrorFixture | None = documented.error(self.fixture)
        else:
            # The documented answer with this code; for a status Microsoft documents one answer for
            # (412, 429, 5xx), that answer whatever name the test gave the code.
            found = documented.error_for(self.status, self.code) or documented.error_for(
                self.status, _DEFAULT_CODES.get(self.status, "")
            )
        if found is not None:
            headers = {k: v for k, v in found.headers.items() if k.lower() not in ("content-type", "content-length")}
            content_type = found.headers.get("Content-Type", "application/octet-stream").split(";")[0]
            if self.retry_after is not None:
                headers["Retry-After"] = str(self.retry_after)
            elif self.fixture is None:
                headers.pop("Retry-After", None)  # a scripted answer without retry_after has none
            return web.Response(
                status=self.status, body=found.body.encode("utf-8"), headers=headers,
                content_type=content_type if found.body else None,
            )  # fmt: skip
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
        body = {"error": {"code": self.code or f"Http{self.status}", "message": self.message}}
        return web.json_response(body, status=self.status, headers=headers)


# The documented answer for a scripted status whose code Microsoft does not document (503: the empty body).
_DEFAULT_CODES = {412: "PreconditionFailed", 413: "MessageSizeTooBig", 429: "Throttled", 500: "ServiceError",
                  502: "ServiceError", 503: "Http503", 504: "Http504"}  # fmt: skip


@dataclass
class Received:
    method: str
    prefix: str  # the service URL path the call came to, e.g. "/smba/a"
    conversation_id: str
    activity: dict[str, Any]
    activity_id: str | None = None
    authorization: str | None = None
    at: float = field(default_factory=time.monotonic)


@dataclass
class Member:
    id: str
    name: str
    aad_object_id: str
    upn: str
    email: str
    tenant_id: str


MESSAGE_ID_BASE = 1_700_000_000_000

# Teams' per-conversation limits for a bot: (window in seconds, calls allowed in it).
CHAT_LIMITS: tuple[tuple[float, int], ...] = ((1.0, 7), (2.0, 8), (30.0, 60), (3600.0, 1800))
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# What the Bot Connector (an ASP.NET Web API service) answers to a call without a valid token: not on
# Microsoft Learn's status-code table (whose 401 entry is BotNotRegistered, tests/fixtures/teams/errors),
# but the body Microsoft's own repositories report for unsigned proactive sends (MicrosoftDocs/bot-docs
# issues 1592 and 1860, microsoft/botframework-sdk issue 6115).
UNAUTHORIZED_BODY = {"message": "Authorization has been denied for this request."}


class FakeConnector:
    """Run with ``with FakeConnector() as fc:``; ``fc.service_url("a")`` is a Bot Connector base URL."""

    def __init__(
        self,
        *,
        latency: tuple[float, float] = (0.0, 0.0),
        rate_cap_per_second: float | None = None,
        chat_limits: bool = True,
        authorize: Callable[[str | None], bool] | None = None,
    ) -> None:
        self.port = free_port()
        self.latency = latency
        self.rate_cap = rate_cap_per_second
        self.chat_limits = chat_limits
        self.authorize = authorize
        self.unauthorized: list[tuple[str, str]] = []  # (method, path) of every call answered 401
        self.chat_throttled = 0  # calls answered 429 for breaking a conversation's limits
        self.not_installed: set[str] = set()  # member or Entra object ids without the app: chat creation 403
        # (conversation id, activity id) -> deleted? for every activity this fake issued
        self.activities: dict[tuple[str, str], bool] = {}
        self._per_chat: dict[str, deque[float]] = {}
        self._chat_aliases: dict[str, str] = {}  # Graph's 19:…@unq.gbl.spaces -> Teams' a:… of the same chat
        self.received: list[Received] = []
        self.members: dict[str, Member] = {}
        self.created_conversations: list[dict[str, Any]] = []
        self._scripts: deque[tuple[str | None, Scripted]] = deque()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._recent_by_tenant: dict[str, deque[float]] = {}  # the rate cap's window, per tenant
        self._chat_tenants: dict[str, str] = {}  # conversation -> tenant, learnt from the calls' bodies
        self.throttled = 0
        self.calls = 0  # every send and create-conversation call, answered or refused
        # (monotonic arrival time, conversation id, status answered) of every send and create call.
        self.call_log: list[tuple[float, str, int]] = []
        self.member_lookups = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._server = BackgroundServer("fake-connector")
        self._hung: list[asyncio.Future[None]] = []

    # ---- set-up -----------------------------------------------------------------------------
    def service_url(self, name: str = "a") -> str:
        return f"http://127.0.0.1:{self.port}/smba/{name}/"

    def add_member(self, member: Member) -> None:
        self.members[member.id] = member

    def fail_next(self, count: int, scripted: Scripted, conversation_id: str | None = None) -> None:
        """The next ``count`` sends (to ``conversation_id``, or any) get this answer."""
        with self._lock:
            for _ in range(count):
                self._scripts.append((conversation_id, scripted))

    def calls_to(self, conversation_id: str) -> list[tuple[float, int]]:
        """(arrival time, status answered) of every send to one conversation, refused ones too."""
        with self._lock:
            return [(at, status) for at, cid, status in self.call_log if cid == conversation_id]

    def same_chat(self, graph_chat_id: str, teams_conversation_id: str) -> None:
        """Graph's id of a personal chat (``19:…@unq.gbl.spaces``) and the ``a:…`` id Teams' activities carry
        name one chat: its limits and its messages are shared, whichever id a call uses."""
        with self._lock:
            self._chat_aliases[graph_chat_id] = teams_conversation_id

    def _chat(self, conversation_id: str) -> str:
        return self._chat_aliases.get(conversation_id, conversation_id)

    def delete_in_teams(self, conversation_id: str, activity_id: str) -> None:
        """The message is deleted in Teams (by its reader or an admin): a later PUT or DELETE answers 404."""
        with self._lock:
            self.activities[(self._chat(conversation_id), activity_id)] = True

    def release_hung(self) -> None:
        """Let every request held by a ``Scripted(hang=True)`` answer now (with its scripted status)."""

        def release() -> None:
            for future in self._hung:
                if not future.done():
                    future.set_result(None)

        self._server.call_soon(release)

    def changes(self, method: str) -> list[Received]:
        """Every PUT or DELETE of an activity that was answered with success."""
        with self._lock:
            return [r for r in self.received if r.method == method]

    def sent(self, conversation_id: str | None = None) -> list[Received]:
        with self._lock:
            return [
                r for r in self.received
                if r.method == "POST" and (conversation_id is None or r.conversation_id == conversation_id)
            ]  # fmt: skip

    # ---- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> FakeConnector:
        app = web.Application(client_max_size=4 * 1024 * 1024, middlewares=[self._check_token])
        app.router.add_post("/smba/{name}/v3/conversations", self._create_conversation)
        app.router.add_post("/smba/{name}/v3/conversations/{cid}/activities", self._post)
        app.router.add_post("/smba/{name}/v3/conversations/{cid}/activities/{aid}", self._post)
        app.router.add_put("/smba/{name}/v3/conversations/{cid}/activities/{aid}", self._put)
        app.router.add_delete("/smba/{name}/v3/conversations/{cid}/activities/{aid}", self._delete)
        app.router.add_get("/smba/{name}/v3/conversations/{cid}/members/{uid}", self._member)
        self._server.start().serve(app, port=self.port)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(before=self._release_all)

    async def _release_all(self) -> None:
        for future in self._hung:
            if not future.done():
                future.set_result(None)

    # ---- routes -----------------------------------------------------------------------------
    @web.middleware
    async def _check_token(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.authorize is not None and not self.authorize(request.headers.get("Authorization")):
            with self._lock:
                self.unauthorized.append((request.method, request.path))
            return web.json_response(UNAUTHORIZED_BODY, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    def _breaks_chat_limits(self, conversation_id: str, at: float) -> bool:
        """Teams' per-conversation limits (caller holds the lock); an accepted call is counted."""
        recent = self._per_chat.setdefault(conversation_id, deque())
        while recent and recent[0] <= at - CHAT_LIMITS[-1][0]:
            recent.popleft()
        for window, allowed in CHAT_LIMITS:
            if sum(1 for t in reversed(recent) if t > at - window) >= allowed:
                return True
        recent.append(at)
        return False

    def _breaks_tenant_cap(self, tenant_id: str, at: float) -> bool:
        """The per-app, per-tenant budget over the last second (caller holds the lock); an accepted call is counted."""
        assert self.rate_cap is not None
        recent = self._recent_by_tenant.setdefault(tenant_id, deque())
        while recent and recent[0] <= at - 1.0:
            recent.popleft()
        if len(recent) >= self.rate_cap:
            return True
        recent.append(at)
        return False

    def _tenant_of(self, conversation_id: str, body: Any) -> str:
        """The tenant a call spends from: its body's (``conversation.tenantId``, ``channelData.tenant.id``,
        ``tenantId``), else the one learnt from an earlier call in that conversation (a DELETE has no body)."""
        tenant = ""
        if isinstance(body, dict):
            conversation = body.get("conversation") if isinstance(body.get("conversation"), dict) else {}
            channel = body.get("channelData") if isinstance(body.get("channelData"), dict) else {}
            channel_tenant = channel.get("tenant") if isinstance(channel.get("tenant"), dict) else {}
            tenant = str(conversation.get("tenantId") or channel_tenant.get("id") or body.get("tenantId") or "")
        with self._lock:
            if tenant:
                self._chat_tenants[self._chat(conversation_id)] = tenant
                return tenant
            return self._chat_tenants.get(self._chat(conversation_id), "")

    async def _answer_faults(self, conversation_id: str, tenant_id: str = "") -> web.Response | None:
        # Decide on arrival, as Teams' throttling does at its front door; the latency is the service's
        # own processing time after that.
        with self._lock:
            self.calls += 1
            index = next(
                (i for i, (target, _) in enumerate(self._scripts) if target is None or target == conversation_id), None
            )
            scripted: Scripted | None = None
            if index is not None:
                scripted = self._scripts[index][1]
                del self._scripts[index]
            if scripted is None and self.chat_limits and conversation_id != "*create*":
                if self._breaks_chat_limits(self._chat(conversation_id), time.monotonic()):
                    self.chat_throttled += 1
                    self.throttled += 1
                    scripted = Scripted(429, "Throttled", retry_after=1)
            if scripted is None and self.rate_cap and self._breaks_tenant_cap(tenant_id, time.monotonic()):
                self.throttled += 1
                scripted = Scripted(429, "Throttled", retry_after=1)
            self.call_log.append((time.monotonic(), conversation_id, scripted.status if scripted else 200))
        if self.latency[1] > 0:
            await asyncio.sleep(random.uniform(*self.latency))
        if scripted is None:
            return None
        if scripted.hang:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._hung.append(future)
            await future
        return scripted.response()

    async def _post(self, request: web.Request) -> web.Response:
        cid = request.match_info["cid"]
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = await request.json()
            fault = await self._answer_faults(cid, self._tenant_of(cid, body))
            if fault is not None:
                return fault
            # Teams message ids in a chat are numbers that grow with time (Microsoft Learn, "Messages in
            # bot conversations": "id": "1485983408511"); read receipts compare them as numbers.
            activity_id = str(MESSAGE_ID_BASE + next(self._ids))
            with self._lock:
                self.activities[(self._chat(cid), activity_id)] = False
                self.received.append(
                    Received("POST", "/smba/" + request.match_info["name"], cid, body, activity_id,
                             request.headers.get("Authorization"))
                )  # fmt: skip
            return web.json_response({"id": activity_id}, status=201)
        finally:
            self.in_flight -= 1

    def _gone(self, request: web.Request, *, delete: bool = False) -> web.Response | None:
        """404 for an activity this fake never issued in the conversation, or one deleted already."""
        with self._lock:
            key = (self._chat(request.match_info["cid"]), request.match_info["aid"])
            if self.activities.get(key, True):
                # The call was logged as accepted on arrival; its answer is the 404.
                for index in range(len(self.call_log) - 1, -1, -1):
                    at, cid, status = self.call_log[index]
                    if cid == request.match_info["cid"] and status == 200:
                        self.call_log[index] = (at, cid, 404)
                        break
                return Scripted.documented("404-activity-not-found").response()
            if delete:
                self.activities[key] = True
        return None

    async def _put(self, request: web.Request) -> web.Response:
        # Updates and deletes spend the same per-app budget as sends (Teams' rate limits count every call).
        body = await request.json()
        fault = await self._answer_faults(request.match_info["cid"], self._tenant_of(request.match_info["cid"], body))
        if fault is not None:
            return fault
        gone = self._gone(request)
        if gone is not None:
            return gone
        with self._lock:
            self.received.append(
                Received("PUT", "/smba/" + request.match_info["name"], request.match_info["cid"], body,
                         request.match_info["aid"])
            )  # fmt: skip
        return web.json_response({"id": request.match_info["aid"]})

    async def _delete(self, request: web.Request) -> web.Response:
        fault = await self._answer_faults(request.match_info["cid"], self._tenant_of(request.match_info["cid"], None))
        if fault is not None:
            return fault
        gone = self._gone(request, delete=True)
        if gone is not None:
            return gone
        with self._lock:
            self.received.append(
                Received("DELETE", "/smba/" + request.match_info["name"], request.match_info["cid"], {},
                         request.match_info["aid"])
            )  # fmt: skip
        return web.Response(status=200)

    async def _create_conversation(self, request: web.Request) -> web.Response:
        body = await request.json()
        fault = await self._answer_faults("*create*", self._tenant_of("*create*", body))
        if fault is not None:
            return fault
        member = str((body.get("members") or [{}])[0].get("id", ""))
        if not (member.startswith("29:") or _GUID.match(member)):
            return web.json_response(
                {"error": {"code": "BadArgument", "message": "Invalid user identity in provided tenant"}}, status=400
            )
        known = self.members.get(member)
        ids = {member, known.aad_object_id} if known is not None else {member}
        ids |= {m.id for m in self.members.values() if m.aad_object_id == member}
        if ids & self.not_installed:
            return Scripted.documented("403-forbidden-operation").response()
        with self._lock:
            self.created_conversations.append(body)
        return web.json_response({"id": f"a:created-{member}"}, status=201)

    async def _member(self, request: web.Request) -> web.Response:
        self.member_lookups += 1
        member = self.members.get(request.match_info["uid"])
        if member is None:
            return web.json_response({"error": {"code": "MemberNotFoundInConversation", "message": ""}}, status=404)
        return web.json_response(
            {
                "id": member.id,
                "name": member.name,
                "aadObjectId": member.aad_object_id,
                "userPrincipalName": member.upn,
                "email": member.email,
                "tenantId": member.tenant_id,
                "userRole": "user",
            }
        )


def dumps(value: Any) -> str:
    return json.dumps(value)
