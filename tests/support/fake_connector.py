"""A fake Bot Connector service (aiohttp on 127.0.0.1) faithful to the documented REST behaviour.

It records every activity, answers member lookups, creates 1:1 conversations, and can be told to
fail: scripted errors (status, Teams error code, Retry-After), silence past the client's timeout,
latency, and a per-app rate cap that answers 429 like Teams does when it is exceeded.

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
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fixtures import teams as documented


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeConnector:
    """Run with ``with FakeConnector() as fc:``; ``fc.service_url("a")`` is a Bot Connector base URL."""

    def __init__(
        self,
        *,
        latency: tuple[float, float] = (0.0, 0.0),
        rate_cap_per_second: float | None = None,
    ) -> None:
        self.port = free_port()
        self.latency = latency
        self.rate_cap = rate_cap_per_second
        self.received: list[Received] = []
        self.members: dict[str, Member] = {}
        self.created_conversations: list[dict[str, Any]] = []
        self._scripts: deque[tuple[str | None, Scripted]] = deque()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._recent: deque[float] = deque()
        self.throttled = 0
        self.calls = 0  # every send and create-conversation call, answered or refused
        # (monotonic arrival time, conversation id, status answered) of every send and create call.
        self.call_log: list[tuple[float, str, int]] = []
        self.member_lookups = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
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

    def release_hung(self) -> None:
        """Let every request held by a ``Scripted(hang=True)`` answer now (with its scripted status)."""

        def release() -> None:
            for future in self._hung:
                if not future.done():
                    future.set_result(None)

        self._loop.call_soon_threadsafe(release)

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
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> None:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/smba/{name}/v3/conversations", self._create_conversation)
        app.router.add_post("/smba/{name}/v3/conversations/{cid}/activities", self._post)
        app.router.add_post("/smba/{name}/v3/conversations/{cid}/activities/{aid}", self._post)
        app.router.add_put("/smba/{name}/v3/conversations/{cid}/activities/{aid}", self._put)
        app.router.add_delete("/smba/{name}/v3/conversations/{cid}/activities/{aid}", self._delete)
        app.router.add_get("/smba/{name}/v3/conversations/{cid}/members/{uid}", self._member)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        for future in self._hung:
            if not future.done():
                future.set_result(None)
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- routes -----------------------------------------------------------------------------
    async def _answer_faults(self, conversation_id: str) -> web.Response | None:
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
            if scripted is None and self.rate_cap:
                at = time.monotonic()
                while self._recent and self._recent[0] <= at - 1.0:
                    self._recent.popleft()
                if len(self._recent) >= self.rate_cap:
                    self.throttled += 1
                    scripted = Scripted(429, "Throttled", retry_after=1)
                else:
                    self._recent.append(at)
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
            fault = await self._answer_faults(cid)
            if fault is not None:
                return fault
            body = await request.json()
            # Teams message ids in a chat are numbers that grow with time (Microsoft Learn, "Messages in
            # bot conversations": "id": "1485983408511"); read receipts compare them as numbers.
            activity_id = str(MESSAGE_ID_BASE + next(self._ids))
            with self._lock:
                self.received.append(
                    Received("POST", "/smba/" + request.match_info["name"], cid, body, activity_id,
                             request.headers.get("Authorization"))
                )  # fmt: skip
            return web.json_response({"id": activity_id}, status=201)
        finally:
            self.in_flight -= 1

    async def _put(self, request: web.Request) -> web.Response:
        # Updates and deletes spend the same per-app budget as sends (Teams' rate limits count every call).
        fault = await self._answer_faults(request.match_info["cid"])
        if fault is not None:
            return fault
        body = await request.json()
        with self._lock:
            self.received.append(
                Received("PUT", "/smba/" + request.match_info["name"], request.match_info["cid"], body,
                         request.match_info["aid"])
            )  # fmt: skip
        return web.json_response({"id": request.match_info["aid"]})

    async def _delete(self, request: web.Request) -> web.Response:
        fault = await self._answer_faults(request.match_info["cid"])
        if fault is not None:
            return fault
        with self._lock:
            self.received.append(
                Received("DELETE", "/smba/" + request.match_info["name"], request.match_info["cid"], {},
                         request.match_info["aid"])
            )  # fmt: skip
        return web.Response(status=200)

    async def _create_conversation(self, request: web.Request) -> web.Response:
        body = await request.json()
        fault = await self._answer_faults("*create*")
        if fault is not None:
            return fault
        with self._lock:
            self.created_conversations.append(body)
        member = (body.get("members") or [{}])[0].get("id", "")
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
