"""Headless driver for Microsoft 365 Agents Playground (npm ``@microsoft/m365agentsplayground``).

The playground is a local Teams emulator: it plays the Teams *client* (it POSTs activities to the
bot's ``/api/messages``) and the Bot *Connector* (it serves ``{serviceUrl}/v3/...`` for the bot's
replies and proactive messages). Its web UI talks to it over an internal HTTP API plus two
WebSockets; this module drives that same internal API from Python tests, without a browser.

PINNED TO 0.2.28. Every ``/_debug``, ``/_conversation``, ``/_internal`` and ``/_ws*`` route used
below is internal to the package (read from its bundled source ``dist/index.js``), not a public
contract. :class:`Playground` refuses to start any other version; re-check the routes before
bumping the pin in ``tests/node/package.json``. See ``tests/support/PLAYGROUND_NOTES.md``.

Only stdlib plus ``aiohttp`` (already a dependency of ``botbuilder-integration-aiohttp``) is used;
aiohttp provides the WebSocket client, run on a private event loop in a background thread.

Example::

    with Playground(f"http://127.0.0.1:{bot_port}/api/messages") as pg:
        pg.install()                                   # installationUpdate + conversationUpdate
        pg.send_user_message("hello")
        msg = pg.wait_for_bot_message(lambda m: m.text == "echo: hello")
        # ... the bot sends proactively to pg.service_url / pg.conversation_id ...
        card = pg.wait_for_bot_message(lambda m: bool(m.cards), since=mark)
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

__all__ = [
    "PINNED_VERSION",
    "BotMessage",
    "Delivery",
    "Playground",
    "PlaygroundError",
    "PlaygroundUser",
    "free_port",
]

#: The only package version whose internal routes this module was written against.
PINNED_VERSION = "0.2.28"

_SUPPORT_DIR = Path(__file__).resolve().parent
DEFAULT_PACKAGE_DIR = _SUPPORT_DIR.parent / "node" / "node_modules" / "@microsoft" / "m365agentsplayground"
LOOPBACK_PRELOAD = _SUPPORT_DIR / "node_loopback.cjs"

# --- internal routes of @microsoft/m365agentsplayground 0.2.28 (dist/index.js) -----------------
# Liveness: answers "pong" once mountBackend() ran.
_R_PING = "/_debug/ping"
# Install the bot in a conversation: 200 at once, then (async, fire-and-forget) an
# installationUpdate(action=add) [msteams only] and a conversationUpdate(membersAdded=[me, bot]).
_R_INSTALL = "/_debug/conversation/{cid}/installation"
# Current config (identity, chats, team) WITHOUT the 15 s wait-for-bot that /_internal/v1/config does.
_R_TEST_CONFIG = "/_internal/v1/testConfig"
# Base activity template for a conversation (?conversationId=&type=install|uninstall|botAdded|...).
_R_TEMPLATE = "/_internal/v1/customActivities/template"
# POST any JSON; forwarded verbatim to the bot. Answers 200 before the bot is called.
_R_CUSTOM = "/_internal/v1/customActivities"
# User message: {"from":{"id"},"text","textFormat"} -> 200 {"messageId","timestamp"}; the message
# activity is sent to the bot after the response (only in personal chat or when the bot is @mentioned).
_R_USER_MESSAGE = "/_conversation/v1/conversations/{cid}/messages"
# Action.Submit on a card: {"conversation":{"id"},"from":{"id"},"replyToId","value":{}} -> 200.
_R_SUBMIT = "/_conversation/v1/submit"
# Invoke (adaptiveCard/action etc.); synchronous: answers the bot's invoke response {"type","value"}.
_R_INVOKE = "/_conversation/v1/invoke"
# WebSocket: {"action":"createMessage"|"updateMessage"|"typing","actionConversationId",["message"]}
# for every activity the bot posts to the connector (user messages are NOT echoed here).
_WS_CONVERSATION = "/_ws_conversation/v1/conversations/stream"
# WebSocket: {"logAction":"appendLog","log":{...}}: every HTTP exchange playground<->bot
# (request body + response status/body) and text notices. Used to learn what the bot received.
_WS_LOG = "/_ws/log/stream"
# Emulated Bot Connector lives under this prefix (the --service-url).
_CONNECTOR_PREFIX = "/_connector"

# Log item labels (schema LabelType in 0.2.28).
_LABEL_PLAYGROUND = "Microsoft 365 Agents Playground"
_LABEL_BOT = "User Application"

# Environment the playground reads that must not leak in from the developer's shell.
_SCRUBBED_ENV = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
    "AUTH_CLIENT_ID",
    "AUTH_CLIENT_SECRET",
    "AUTH_TENANT_ID",  # would make /_connector demand JWTs
    "BOT_ENDPOINT",
    "DEFAULT_CHANNEL_ID",
    "SEND_INSTALLATION_ACTIVITY",
    "TEAMSAPPTESTER_PORT",
    "M365_AGENTS_PLAYGROUND_CONVERSATION_ID",
    "M365_AGENTS_PLAYGROUND_SERVICE_URL",
    "M365_AGENTS_PLAYGROUND_DELIVERY_MODE",
    "M365_AGENTS_PLAYGROUND_ENABLE_EVENTS_RECORDING",
    "M365_AGENTS_PLAYGROUND_TARGET_SDK",
    "M365_AGENTS_PLAYGROUND_CONFIG_PATH",
    "TEAMS_APP_TEST_TOOL_CONFIG_PATH",
    "M365_AGENTS_PLAYGROUND_LOGFILE",
    "TEAMSAPPTESTER_LOGFILE",
    "NODE_OPTIONS",
)

_LISTENING_RE = re.compile(r"Listening on (\d+)")


class PlaygroundError(RuntimeError):
    """The playground failed to start, or answered an internal-API call with an error."""


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now (bind to port 0, then release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class PlaygroundUser:
    """The emulated signed-in Teams user ("currentUser" in the playground config).

    The defaults are the playground's built-in identity (0.2.28). Note the built-in tenant id and
    aadObjectId are NOT valid GUIDs (13 hex digits in the last group) -- pass your own if the code
    under test validates GUIDs.
    """

    id: str = "user-id-0"
    name: str = "Alex Wilber"
    aad_object_id: str = "00000000-0000-0000-0000-0000000000020"
    upn: str = "alexw@example.com"
    email: str = "alexw@example.com"
    given_name: str = "Alex"
    surname: str = "Wilber"
    tenant_id: str = "00000000-0000-0000-0000-0000000000001"

    def _config_entry(self) -> dict[str, str]:
        # The config schema spells it "userPrincipleName" (sic); the connector answers it as
        # "userPrincipalName".
        return {
            "id": self.id,
            "name": self.name,
            "userPrincipleName": self.upn,
            "aadObjectId": self.aad_object_id,
            "givenName": self.given_name,
            "surname": self.surname,
            "email": self.email,
        }


@dataclass(frozen=True)
class BotMessage:
    """One event from the conversation WebSocket: something the bot posted to the connector."""

    action: str  # "createMessage" | "updateMessage" | "typing"
    conversation_id: str  # actionConversationId
    message_id: str | None  # connector activity id (also the "id" the connector returned)
    text: str | None
    text_format: str | None  # the playground defaults it to "markdown" when the bot sent none
    attachments: list[dict[str, Any]]
    from_id: str | None  # the bot id
    timestamp_ms: int | None
    raw: dict[str, Any] = field(repr=False)

    @property
    def cards(self) -> list[dict[str, Any]]:
        """The Adaptive Card payloads (attachment ``content``) of this message."""
        return [
            a.get("content") or {}
            for a in self.attachments
            if a.get("contentType") == "application/vnd.microsoft.card.adaptive"
        ]

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> BotMessage:
        msg = event.get("message") or {}
        return cls(
            action=str(event.get("action")),
            conversation_id=str(event.get("actionConversationId")),
            message_id=msg.get("messageId"),
            text=msg.get("text"),
            text_format=msg.get("textFormat"),
            attachments=list(msg.get("attachments") or []),
            from_id=(msg.get("from") or {}).get("id"),
            timestamp_ms=msg.get("timestamp"),
            raw=dict(event),
        )


@dataclass(frozen=True)
class Delivery:
    """One activity the playground POSTed to the bot, and the bot's HTTP answer (from the log stream)."""

    activity: dict[str, Any]  # the JSON body exactly as sent to the bot's endpoint
    status: int  # the bot's HTTP status
    body: Any  # the bot's response body (the invoke response for invokes; usually empty)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class _Collector:
    """Thread-safe append-only list with blocking waits."""

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._cond = threading.Condition()

    def append(self, item: Any) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    def snapshot(self, since: int = 0) -> list[Any]:
        with self._cond:
            return list(self._items[since:])

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def wait_for(self, predicate: Callable[[Any], bool], since: int, timeout: float) -> Any | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            idx = since
            while True:
                while idx < len(self._items):
                    item = self._items[idx]
                    idx += 1
                    if predicate(item):
                        return item
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)


class Playground:
    """Run one Agents Playground process on 127.0.0.1 and drive it headless.

    Args:
        app_endpoint: the bot's messaging endpoint, e.g. ``http://127.0.0.1:3978/api/messages``.
        port: playground port (default: a free one). The service URL is
            ``http://127.0.0.1:{port}/_connector``.
        conversation_id: id of the emulated personal chat (``--conversation-id``). Default is a
            fresh Teams-looking ``a:...`` id.
        user: override the emulated signed-in user (written to a generated config file). ``None``
            keeps the playground's built-in identity (see :class:`PlaygroundUser` defaults).
        bot_id / bot_name: recipient identity in activities (config ``bot``). ``None`` keeps the
            built-in ``00000000-0000-0000-0000-00000000000011`` / ``Test Bot``.
        timezone: IANA zone for the emulated client (sets ``TZ`` for node, which drives
            ``localTimezone``, ``entities[clientInfo].timezone`` and ``localTimestamp`` offsets).
            ``None`` inherits the environment (``UTC`` in CI containers).
        startup_timeout: seconds to wait for the process to answer ``/_debug/ping``.
        package_dir: the installed npm package (must be version 0.2.28).
        node: node executable.
        workdir: cwd for the process (config, log file). Default: a temp dir removed by
            :meth:`stop` unless the env var ``PLAYGROUND_KEEP_FILES`` is set.
    """

    def __init__(
        self,
        app_endpoint: str,
        *,
        port: int | None = None,
        conversation_id: str | None = None,
        user: PlaygroundUser | None = None,
        bot_id: str | None = None,
        bot_name: str | None = None,
        timezone: str | None = None,
        startup_timeout: float = 30.0,
        package_dir: Path = DEFAULT_PACKAGE_DIR,
        node: str | None = None,
        workdir: Path | None = None,
    ) -> None:
        self.app_endpoint = app_endpoint
        self._requested_port = port
        self.conversation_id = conversation_id or f"a:1playground{uuid.uuid4().hex}"
        self._user_override = user
        self._bot_override = (bot_id, bot_name)
        self.timezone = timezone
        self.startup_timeout = startup_timeout
        self.package_dir = Path(package_dir)
        self.node = node or shutil.which("node") or "node"
        self._workdir_given = workdir
        self.workdir: Path | None = None

        self.port: int | None = None
        self.user: PlaygroundUser = user or PlaygroundUser()
        self.bot_id: str = bot_id or "00000000-0000-0000-0000-00000000000011"
        self.bot_name: str = bot_name or "Test Bot"
        self.config: dict[str, Any] = {}

        self._proc: subprocess.Popen[bytes] | None = None
        self._stdout_lines: list[str] = []
        self._listening: threading.Event = threading.Event()
        self._listening_port: int | None = None
        self._events = _Collector()  # conversation WS actions (dicts)
        self._log = _Collector()  # log WS items (the "log" dicts)
        self._ws_ready = threading.Event()
        self._ws_error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ws_thread: threading.Thread | None = None
        self._ws_stop: asyncio.Event | None = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:{port}``: the playground's own server (UI + internal API)."""
        if self.port is None:
            raise PlaygroundError("playground not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def service_url(self) -> str:
        """The Bot Connector service URL the bot sees in ``activity.serviceUrl``."""
        return f"{self.base_url}{_CONNECTOR_PREFIX}"

    @property
    def tenant_id(self) -> str:
        return self.user.tenant_id

    @property
    def log_path(self) -> Path | None:
        """The playground's own console log (it writes console.* there, not to stdout)."""
        return self.workdir / "playground.log" if self.workdir else None

    def __enter__(self) -> Playground:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Playground:
        """Start the process, wait until it answers, connect both WebSocket streams."""
        if self._proc is not None:
            raise PlaygroundError("already started")
        self._check_package()
        self.workdir = Path(self._workdir_given or tempfile.mkdtemp(prefix="agents-playground-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self._write_config()

        # findAvailablePort() in the CLI silently falls back to a random port when the requested
        # one is taken, which would make --service-url wrong; detect that and retry.
        attempts = 1 if self._requested_port else 3
        last_error: Exception | None = None
        for _ in range(attempts):
            port = self._requested_port or free_port()
            try:
                self._spawn(port, config_path)
                self._wait_listening(port)
                self.port = port
                self._wait_ping()
                self._start_streams()
                self._load_config()
                return self
            except _PortTaken as e:
                last_error = e
                self._kill()
            except BaseException:
                self.stop()
                raise
        self.stop()
        if self._requested_port:
            raise PlaygroundError(f"port {self._requested_port} is in use ({last_error})")
        raise PlaygroundError(f"could not start playground on a free port: {last_error}")

    def stop(self) -> None:
        """Close the streams and kill the whole process group. Idempotent."""
        if self._loop is not None and self._ws_stop is not None:
            loop, ev = self._loop, self._ws_stop
            try:
                loop.call_soon_threadsafe(ev.set)
            except RuntimeError:
                pass
        if self._ws_thread is not None:
            self._ws_thread.join(timeout=5)
        self._ws_thread = None
        self._loop = None
        self._kill()
        if self.workdir and self._workdir_given is None and not os.environ.get("PLAYGROUND_KEEP_FILES"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ------------------------------------------------------------------ driving the client side

    def mark(self) -> int:
        """Index of the next bot message; pass as ``since=`` to only wait for later ones."""
        return len(self._events)

    def log_mark(self) -> int:
        """Index of the next log item; pass as ``since=`` to :meth:`wait_for_delivery`."""
        return len(self._log)

    def install(self, *, wait: bool = True, timeout: float = 15.0) -> list[Delivery]:
        """Install the bot in the personal chat (what the UI does on first load).

        The playground answers at once and then sends, concurrently (order at the bot is not
        guaranteed), an ``installationUpdate`` (``action: add``) and a ``conversationUpdate``
        whose ``membersAdded`` is ``[user, bot]``. With ``wait`` this returns both deliveries
        once the bot has answered them (raises :class:`TimeoutError` otherwise).
        """
        since = self.log_mark()
        self._post(_R_INSTALL.format(cid=_q(self.conversation_id)), {})
        if not wait:
            return []
        out: list[Delivery] = []
        for kind in ("installationUpdate", "conversationUpdate"):
            out.append(
                self.wait_for_delivery(
                    lambda a, k=kind: a.get("type") == k and _conv_id(a) == self.conversation_id,
                    since=since,
                    timeout=timeout,
                )
            )
        return out

    def uninstall(self, *, wait: bool = True, timeout: float = 15.0) -> Delivery | None:
        """Send the playground's ``installationUpdate`` (``action: remove``) for the personal chat."""
        tpl = self.activity_template("uninstall")
        return self.send_activity(tpl, merge_template=False, wait=wait, timeout=timeout)

    def send_user_message(self, text: str, *, wait: bool = True, timeout: float = 15.0) -> Delivery | None:
        """The user types ``text`` in the personal chat; the bot receives a ``message`` activity.

        Returns the delivery (activity as the bot received it + the bot's HTTP status) if ``wait``.
        """
        since = self.log_mark()
        res = self._post(
            _R_USER_MESSAGE.format(cid=_q(self.conversation_id)),
            {"from": {"id": self.user.id}, "text": text, "textFormat": "plain"},
        )
        if not wait:
            return None
        _ = res  # {"messageId": "<ms timestamp>", "timestamp": <ms>} -- the UI's own id, not the activity id
        return self.wait_for_delivery(
            lambda a: a.get("type") == "message" and a.get("text") == text and _conv_id(a) == self.conversation_id,
            since=since,
            timeout=timeout,
        )

    def activity_template(self, kind: str | None = None) -> dict[str, Any]:
        """The playground's activity template for the personal chat.

        ``kind`` None gives the base activity (id, timestamp, channelId, serviceUrl, recipient,
        conversation, from={id, aadObjectId}, type placeholder); other kinds (0.2.28): install,
        uninstall, botAdded, botRemoved, userAdded, userRemoved, sendEmail, mentionInWord.
        """
        params = {"conversationId": self.conversation_id}
        if kind:
            params["type"] = kind
        return self._get(_R_TEMPLATE + "?" + urllib.parse.urlencode(params))

    def send_activity(
        self,
        activity: Mapping[str, Any],
        *,
        merge_template: bool = True,
        wait: bool = True,
        timeout: float = 15.0,
    ) -> Delivery | None:
        """POST a custom activity to the bot through the playground (UI "custom activity").

        With ``merge_template`` the given dict is deep-merged over the base template plus the
        fields real Teams always sends (``from.name``, ``channelData.tenant.id``, ``locale``), and a
        fresh ``id``; without it the dict is sent verbatim (the playground adds nothing). Useful
        for invokes the UI API does not cover, or a message with ``value`` (Action.Submit)
        without a prior card. Returns the delivery; for an ``invoke`` its ``body`` is the bot's
        invoke response.
        """
        if merge_template:
            base = self.activity_template()
            base["type"] = "message"
            base["id"] = str(uuid.uuid4())
            base["locale"] = "en-US"
            base.setdefault("from", {})["name"] = self.user.name
            base["channelData"] = {"tenant": {"id": self.tenant_id}}
            body = _deep_merge(base, dict(activity))
        else:
            body = dict(activity)
        body.setdefault("id", str(uuid.uuid4()))
        since = self.log_mark()
        self._post(_R_CUSTOM, body)
        if not wait:
            return None
        act_id = body["id"]
        return self.wait_for_delivery(lambda a: a.get("id") == act_id, since=since, timeout=timeout)

    def submit_card(
        self, reply_to_id: str, value: Mapping[str, Any], *, wait: bool = True, timeout: float = 15.0
    ) -> Delivery | None:
        """Click an ``Action.Submit`` on a bot card: the bot gets a ``message`` with ``value``.

        ``reply_to_id`` must be the ``message_id`` of a bot message in the personal chat.
        """
        since = self.log_mark()
        self._post(
            _R_SUBMIT,
            {
                "conversation": {"id": self.conversation_id},
                "from": {"id": self.user.id},
                "replyToId": reply_to_id,
                "value": dict(value),
            },
        )
        if not wait:
            return None
        return self.wait_for_delivery(
            lambda a: (
                a.get("type") == "message" and a.get("replyToId") == reply_to_id and a.get("value") == dict(value)
            ),
            since=since,
            timeout=timeout,
        )

    def invoke_card_action(self, reply_to_id: str, verb: str, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Click an ``Action.Execute`` on a bot card: ``invoke`` ``adaptiveCard/action``.

        Synchronous: returns the bot's invoke response as the playground relays it,
        ``{"type": ..., "value": ...}`` (``statusCode`` is dropped). Raises
        :class:`PlaygroundError` if the bot failed (the playground answers 502).
        """
        return self._post(
            _R_INVOKE,
            {
                "name": "adaptiveCard/action",
                "conversation": {"id": self.conversation_id},
                "from": {"id": self.user.id},
                "replyToId": reply_to_id,
                "value": {
                    "action": {"type": "Action.Execute", "verb": verb, "data": dict(data or {})},
                    "trigger": "manual",
                },
            },
        )

    # ------------------------------------------------------------------ observing the bot

    def events(self, since: int = 0) -> list[dict[str, Any]]:
        """Raw conversation-stream events (createMessage / updateMessage / typing)."""
        return self._events.snapshot(since)

    def messages(self, since: int = 0) -> list[BotMessage]:
        """Bot messages seen so far (created or updated), oldest first."""
        return [
            BotMessage.from_event(e)
            for e in self._events.snapshot(since)
            if e.get("action") in ("createMessage", "updateMessage")
        ]

    def wait_for_bot_message(
        self,
        predicate: Callable[[BotMessage], bool] | None = None,
        timeout: float = 10.0,
        *,
        since: int = 0,
        include_updates: bool = False,
    ) -> BotMessage:
        """Block until a bot message (index >= ``since``) matches ``predicate``; return it.

        Only ``createMessage`` events count unless ``include_updates``. Raises
        :class:`TimeoutError` listing what was seen.
        """
        actions = ("createMessage", "updateMessage") if include_updates else ("createMessage",)

        def match(e: dict[str, Any]) -> bool:
            if e.get("action") not in actions:
                return False
            return predicate is None or bool(predicate(BotMessage.from_event(e)))

        found = self._events.wait_for(match, since, timeout)
        if found is None:
            seen = [(m.action, m.text, len(m.attachments)) for m in self.messages(since)]
            raise TimeoutError(
                f"no matching bot message within {timeout}s; seen since {since}: {seen}{self._notices_hint()}"
            )
        return BotMessage.from_event(found)

    def log_items(self, since: int = 0) -> list[dict[str, Any]]:
        """Raw log-stream items (HTTP exchanges playground<->bot, and text notices)."""
        return self._log.snapshot(since)

    def deliveries(self, since: int = 0) -> list[Delivery]:
        """Every activity the playground sent to the bot (with the bot's answer), oldest first."""
        return [_delivery(i) for i in self._log.snapshot(since) if _is_delivery(i)]

    def wait_for_delivery(
        self, predicate: Callable[[dict[str, Any]], bool], *, since: int = 0, timeout: float = 15.0
    ) -> Delivery:
        """Block until the bot has answered an activity (sent after log index ``since``) matching
        ``predicate`` (applied to the activity JSON). Raises :class:`TimeoutError`."""
        found = self._log.wait_for(lambda i: _is_delivery(i) and bool(predicate(i["request"]["body"])), since, timeout)
        if found is None:
            seen = [(d.activity.get("type"), d.status) for d in self.deliveries(since)]
            raise TimeoutError(
                f"bot did not answer a matching activity within {timeout}s; "
                f"deliveries since {since}: {seen}{self._notices_hint()}"
            )
        return _delivery(found)

    def get_member(self, user_id: str | None = None) -> tuple[int, dict[str, Any]]:
        """``GET {serviceUrl}/v3/conversations/{personal chat}/members/{user_id}`` -> (status, json)."""
        uid = user_id or self.user.id
        url = f"{_CONNECTOR_PREFIX}/v3/conversations/{_q(self.conversation_id)}/members/{_q(uid)}"
        return self._request("GET", url, None, raise_for_status=False)

    # ------------------------------------------------------------------ internals

    def _check_package(self) -> None:
        pkg = self.package_dir / "package.json"
        if not pkg.is_file():
            raise PlaygroundError(f"{pkg} not found; run `npm ci` in tests/node")
        version = json.loads(pkg.read_text()).get("version")
        if version != PINNED_VERSION:
            raise PlaygroundError(
                f"@microsoft/m365agentsplayground is {version}; this helper is pinned to "
                f"{PINNED_VERSION} (its internal routes are not a public contract)"
            )
        if not LOOPBACK_PRELOAD.is_file():
            raise PlaygroundError(f"{LOOPBACK_PRELOAD} missing")

    def _write_config(self) -> Path:
        """Write .m365agentsplayground.yml if an identity override was asked for.

        YAML 1.2 is a superset of JSON, so the file is written as JSON (no PyYAML needed).
        Without overrides the path does not exist and the playground uses its built-in config.
        """
        assert self.workdir is not None
        path = self.workdir / ".m365agentsplayground.yml"
        bot_id, bot_name = self._bot_override
        if self._user_override is None and bot_id is None and bot_name is None:
            return path
        u = self.user
        domain = u.upn.split("@", 1)[1] if "@" in u.upn else "example.com"
        others = [
            ("Megan", "Bowen"),
            ("Adele", "Vance"),
            ("Isaiah", "Langer"),
            ("Patti", "Fernandez"),
            ("Lynne", "Robbins"),
        ]
        users = []
        for n, (g, s) in enumerate(others, start=1):  # the schema demands exactly 5 other users
            mail = f"{g.lower()}{s[0].lower()}@{domain}"
            users.append(
                {
                    "id": f"user-id-{n}",
                    "name": f"{g} {s}",
                    "userPrincipleName": mail,
                    "aadObjectId": str(uuid.uuid5(uuid.NAMESPACE_URL, mail)),
                    "givenName": g,
                    "surname": s,
                    "email": mail,
                }
            )
        cfg = {
            "version": "0.1.1",
            "tenantId": u.tenant_id,
            "bot": {"id": self.bot_id, "name": self.bot_name[:42]},
            "currentUser": u._config_entry(),
            "users": users,
            "personalChat": {"id": self.conversation_id},
            "groupChat": {"id": f"19:group-{uuid.uuid4().hex}@thread.v2", "name": "Group Chat"},
            "team": {
                "id": f"19:team-{uuid.uuid4().hex}@thread.tacv2",
                "name": "My Team",
                "aadGroupId": str(uuid.uuid4()),
                "channels": [{"id": f"19:chan-{uuid.uuid4().hex}@thread.tacv2", "name": "Announcements"}],
            },
        }
        path.write_text(json.dumps(cfg, indent=2))
        return path

    def _spawn(self, port: int, config_path: Path) -> None:
        assert self.workdir is not None
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
        env.update(
            {
                "TEAMSAPPTESTER_BROWSER": "none",  # do not try to open a browser
                "M365_AGENTS_PLAYGROUND_LOGFILE": str(self.workdir / "playground.log"),
                "M365_AGENTS_PLAYGROUND_CONFIG_PATH": str(config_path),  # absent file => built-in config
                "APPLICATION_INSIGHTS_NO_STATSBEAT": "true",  # appinsights SDK starts even with telemetry off
            }
        )
        if self.timezone:
            env["TZ"] = self.timezone
        cmd = [
            self.node,
            "--require",
            str(LOOPBACK_PRELOAD),
            str(self.package_dir / "cli.js"),
            "--app-endpoint",
            self.app_endpoint,
            "--channel-id",
            "msteams",
            "--port",
            str(port),
            "--service-url",
            f"http://127.0.0.1:{port}{_CONNECTOR_PREFIX}",
            "--conversation-id",
            self.conversation_id,
            "--disable-telemetry",
        ]
        self._listening.clear()
        self._listening_port = None
        self._stdout_lines = []
        stderr = open(self.workdir / "stderr.log", "ab")  # handed to the child, closed below
        try:
            self._proc = subprocess.Popen(
                cmd,
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,
            )
        finally:
            stderr.close()
        threading.Thread(target=self._read_stdout, args=(self._proc,), daemon=True, name="playground-stdout").start()

    def _read_stdout(self, proc: subprocess.Popen[bytes]) -> None:
        # Not a TTY, so the CLI prints only "Listening on <port>" here; console.* go to the log file.
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            self._stdout_lines.append(line)
            m = _LISTENING_RE.search(line)
            if m and not self._listening.is_set():
                self._listening_port = int(m.group(1))
                self._listening.set()
        self._listening.set()  # EOF: unblock the waiter

    def _wait_listening(self, port: int) -> None:
        assert self._proc is not None
        if not self._listening.wait(self.startup_timeout) or self._listening_port is None:
            raise PlaygroundError(f"playground did not start (exit={self._proc.poll()}){self._diag()}")
        if self._listening_port != port:
            raise _PortTaken(f"asked for {port}, playground fell back to {self._listening_port}")

    def _wait_ping(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise PlaygroundError(f"playground exited with {self._proc.returncode}{self._diag()}")
            try:
                with self._opener.open(self.base_url + _R_PING, timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise PlaygroundError(f"playground not answering {_R_PING}{self._diag()}")
            time.sleep(0.05)

    def _load_config(self) -> None:
        self.config = self._get(_R_TEST_CONFIG)
        cfg = self.config.get("config", {})
        me = cfg.get("currentUser", {})
        self.user = PlaygroundUser(
            id=me["id"],
            name=me["name"],
            aad_object_id=me["aadObjectId"],
            upn=me["userPrincipleName"],
            email=me["email"],
            given_name=me["givenName"],
            surname=me["surname"],
            tenant_id=cfg["tenantId"],
        )
        self.bot_id = cfg["bot"]["id"]
        self.bot_name = cfg["bot"]["name"]
        if cfg.get("personalChat", {}).get("id") != self.conversation_id:
            raise PlaygroundError(f"personal chat id mismatch: {cfg.get('personalChat')}")

    def _start_streams(self) -> None:
        self._ws_ready.clear()
        self._ws_error = None
        self._ws_thread = threading.Thread(target=self._ws_main, daemon=True, name="playground-ws")
        self._ws_thread.start()
        if not self._ws_ready.wait(self.startup_timeout) or self._ws_error is not None:
            raise PlaygroundError(f"could not open playground WebSockets: {self._ws_error!r}")

    def _ws_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._ws_run())
        except BaseException as e:  # reported through _ws_error
            self._ws_error = e
            self._ws_ready.set()
        finally:
            loop.close()

    async def _ws_run(self) -> None:
        self._ws_stop = asyncio.Event()
        ws_base = f"ws://127.0.0.1:{self.port}"
        async with aiohttp.ClientSession() as session:
            conv = await session.ws_connect(ws_base + _WS_CONVERSATION, heartbeat=None)
            log = await session.ws_connect(ws_base + _WS_LOG, heartbeat=None)
            self._ws_ready.set()

            async def pump(ws: aiohttp.ClientWebSocketResponse, sink: _Collector, key: str | None) -> None:
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        continue
                    try:
                        data = json.loads(msg.data)
                    except ValueError:
                        continue
                    sink.append(data.get(key) if key else data)

            tasks = [
                asyncio.ensure_future(pump(conv, self._events, None)),
                asyncio.ensure_future(pump(log, self._log, "log")),
                asyncio.ensure_future(self._ws_stop.wait()),
            ]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await conv.close()
            await log.close()

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=5)
        if proc.stdout:
            proc.stdout.close()

    def _diag(self) -> str:
        parts = []
        if self._stdout_lines:
            parts.append("stdout: " + " | ".join(self._stdout_lines[-5:]))
        for name in ("stderr.log", "playground.log"):
            p = (self.workdir / name) if self.workdir else None
            if p and p.is_file():
                parts.append(f"{name}: " + p.read_text(errors="replace")[-2000:])
        return ("\n" + "\n".join(parts)) if parts else ""

    def _notices_hint(self) -> str:
        notes = [
            i.get("displayText")
            for i in self._log.snapshot()
            if i.get("type") == "text" and i.get("level") in ("warning", "error")
        ]
        return f"; playground warnings: {notes[-5:]}" if notes else ""

    def _get(self, path: str) -> Any:
        return self._request("GET", path, None)[1]

    def _post(self, path: str, body: Any) -> Any:
        return self._request("POST", path, body)[1]

    def _request(self, method: str, path: str, body: Any, *, raise_for_status: bool = True) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with self._opener.open(req, timeout=30) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
            if raise_for_status:
                raise PlaygroundError(f"{method} {path} -> {status}: {raw.decode(errors='replace')}") from None
        text = raw.decode("utf-8", "replace")
        try:
            parsed: Any = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return status, parsed


class _PortTaken(Exception):
    pass


def _q(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


def _conv_id(activity: Mapping[str, Any]) -> str | None:
    return (activity.get("conversation") or {}).get("id")


def _is_delivery(item: Mapping[str, Any]) -> bool:
    return (
        item.get("type") == "bot"
        and item.get("from") == _LABEL_PLAYGROUND
        and item.get("to") == _LABEL_BOT
        and isinstance((item.get("request") or {}).get("body"), dict)
    )


def _delivery(item: Mapping[str, Any]) -> Delivery:
    resp = item.get("response") or {}
    return Delivery(activity=item["request"]["body"], status=int(resp.get("statusCode") or 0), body=resp.get("body"))


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out
