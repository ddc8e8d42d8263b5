"""The MCP tools: flat input schemas made from the REST schemas, and thin calls into the same services the views use."""

from __future__ import annotations

import copy
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import current_app
from marshmallow import Schema, ValidationError, fields, validate
from teams_proactive.bot.cardwait import CardWaitRequest
from teams_proactive.bot.delivery.service import Caller
from teams_proactive.bot.runtime import BotRuntime
from teams_proactive.connector import presenters

# The REST API's own helpers, the single source of what they do: the one readable ValidationError
# sentence, and the card and broadcast bodies the views answer with.
from teams_proactive.connector.errors import validation_error
from teams_proactive.connector.message_requests import message_request
from teams_proactive.connector.schemas.broadcasts import StartBroadcastSchema
from teams_proactive.connector.schemas.cards import SendCardAndWaitSchema
from teams_proactive.connector.schemas.common import meta
from teams_proactive.connector.schemas.messages import SendMessageSchema
from teams_proactive.connector.views import broadcasts as broadcast_views
from teams_proactive.connector.views import cards as card_views

# The answer to a tool call: the object the REST API returns, and one line for the model to read.
Answer = tuple[dict[str, Any], str]
Handler = Callable[[BotRuntime, Caller, dict[str, Any]], Awaitable[Answer]]


class IdArguments(Schema):
    id = fields.String(
        required=True,
        validate=validate.Length(min=1, max=200),
        metadata=meta("ID", "The id returned when the message, card or broadcast was sent."),
    )


class RecipientArguments(Schema):
    recipient = fields.String(
        required=True,
        validate=validate.Length(min=1, max=320),
        metadata=meta(
            "Recipient", "The person: their user principal name, email address or Microsoft Entra object ID."
        ),
    )


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    title: str
    description: str
    scope: str  # the API-key scope the REST operation needs
    arguments: type[Schema]
    fields: tuple[str, ...]  # the schema's fields the tool takes (the REST schemas may grow internal ones)
    handler: Handler
    read_only: bool
    # The views' body builders it reuses make status links from the request's host: they need a request
    # context (0.5 ms to build); the others need only the app's.
    needs_request: bool = False
    # Field descriptions worded for a model where the designer's help text is not enough.
    hints: tuple[tuple[str, str], ...] = ()

    def loader(self) -> Schema:
        return self.arguments(only=self.fields)

    def input_schema(self) -> dict[str, Any]:
        """A self-contained JSON Schema: no $ref, anyOf or oneOf (Copilot Studio cannot read them)."""
        converted = _converter().schema2jsonschema(self.loader())
        properties: dict[str, Any] = {}
        for name in self.fields:
            prop = {k: v for k, v in converted["properties"][name].items() if not k.startswith("x-ms-")}
            label = converted["properties"][name].get("x-ms-summary")
            if label:
                prop["title"] = label
            properties[name] = prop
        for name, text in self.hints:
            properties[name]["description"] = text
        schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
        required = [name for name in converted.get("required", []) if name in self.fields]
        if required:
            schema["required"] = required
        return schema

    def parse(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Validate exactly as the REST operation does; a refusal is our ValidationError with the field named."""
        try:
            return self.loader().load(arguments)
        except ValidationError as exc:
            messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
            raise validation_error({"json": messages}) from exc


def _converter() -> Any:
    plugin = MarshmallowPlugin()
    APISpec("tools", "1", "2.0", plugins=[plugin])
    return plugin.converter


def _settings() -> Any:
    return current_app.extensions["teams_proactive.connector_settings"]


# ---- the handlers: the same service calls as the views, the same presenters -------------------------
async def send_message(runtime: BotRuntime, caller: Caller, args: dict[str, Any]) -> Answer:
    settings = _settings()
    wait = min(float(args.get("wait", settings.default_wait_seconds)), settings.max_wait_seconds)
    request = message_request(args)
    body = presenters.delivery(await runtime.deliveries.send(caller, request, wait), runtime.settings.app_id)
    return body, _delivery_line(body)


async def get_message(runtime: BotRuntime, caller: Caller, args: dict[str, Any]) -> Answer:
    body = presenters.delivery(await runtime.deliveries.get(caller, args["id"]), runtime.settings.app_id)
    return body, _delivery_line(body)


async def get_recipient(runtime: BotRuntime, caller: Caller, args: dict[str, Any]) -> Answer:
    person = await runtime.deliveries.find(args["recipient"], caller.tenant_id)
    body = presenters.person(args["recipient"], person)
    who = body.get("name") or body["recipient"]
    if body["reachable"]:
        line = f"{who} can be messaged in Teams now (last seen {body['lastSeen']})."
    else:
        line = f"{who} cannot be messaged now: {body['reason']}"
    return body, line


async def send_card(runtime: BotRuntime, caller: Caller, args: dict[str, Any]) -> Answer:
    request = CardWaitRequest(
        recipient=args["recipient"],
        card=args["card"],
        text=args.get("text"),
        summary=args.get("summary"),
        tenant_id=args.get("tenantId"),
        idempotency_key=args.get("idempotencyKey"),
    )
    body = card_views.present(await runtime.cards.start(caller, request))
    return body, _card_line(body)


async def get_card_response(runtime: BotRuntime, caller: Caller, args: dict[str, Any]) -> Answer:
    body = card_views.present(await runtime.cards.get(caller, args["id"]))
    return body, _card_line(body)


async def start_broadcast(runtime: BotRuntime, caller: Caller, args: dict[str, Any]) -> Answer:
    content = {k: args[k] for k in ("text", "card", "summary") if k in args}
    broadcast, _ = await runtime.broadcasts.start_broadcast(
        caller,
        content=content,
        recipients=args.get("recipients") if not args.get("allActiveUsers") else None,
        tenant_id=args.get("tenantId"),
        idempotency_key=args.get("idempotencyKey"),
    )
    body = broadcast_views.present(await runtime.broadcasts.report(caller, broadcast.id))
    return body, f"Broadcast {body['id']} started for {body['total']} people; follow it with get_broadcast."


async def get_broadcast(runtime: BotRuntime, caller: Caller, args: dict[str, Any]) -> Answer:
    body = broadcast_views.present(await runtime.broadcasts.report(caller, args["id"]))
    counts = body.get("counts") or {}
    done = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    return body, f"Broadcast {body['id']} is {body['status']} ({body['progress']:.0f}% done: {done or 'nothing yet'})."


def _delivery_line(body: dict[str, Any]) -> str:
    status, where = body["status"], body["recipient"]
    if status == "delivered":
        return f"Delivered to {where} in Teams at {body['deliveredAt']} (id {body['id']})."
    if status == "failed":
        reason = (body.get("error") or {}).get("message") or "Teams did not accept it."
        return f"Not delivered to {where}: {reason} (id {body['id']})."
    if status == "scheduled":
        return f"Scheduled for {where} at {body['deliverAt']} (id {body['id']}); check it later with get_message."
    return f"Accepted for {where}, still on its way (status {status}, id {body['id']}); check with get_message."


def _card_line(body: dict[str, Any]) -> str:
    if body["status"] == "responded":
        who = (body.get("respondedBy") or {}).get("name") or body["recipient"]
        return f"{who} answered the card (button {body.get('action')!r}): {body.get('response')}."
    if body["status"] == "waiting":
        return f"The card is in {body['recipient']}'s chat, not answered yet (id {body['id']}); ask get_card_response later."
    return f"The card for {body['recipient']} is on its way (id {body['id']}); ask get_card_response later."


# ---- the tools ----------------------------------------------------------------------------------------
RECIPIENT_HINT = (
    "The person to notify: their email address, user principal name (UPN) or Microsoft Entra object ID,"
    " exactly as the user or your data gave it. Do not guess an address."
)
CARD_HINT = (
    'An Adaptive Card as a JSON object, e.g. {"type": "AdaptiveCard", "version": "1.5", "body": [...],'
    ' "actions": [...]}.'
)
ERRORS_TEXT = (
    " Errors (isError, with error.code): RecipientNotFound - the person never opened the bot in Teams (ask them"
    " to install it; do not retry); RecipientUnreachable - they uninstalled or blocked the bot; RecipientOptedOut -"
    " they typed 'stop' (respect it); ValidationError - an argument is wrong, the message names it (fix it and"
    " retry); MessageTooLarge - shorten the text or card; Throttled - wait and retry; Forbidden - the connection's"
    " key may not do this."
)

TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="send_message",
        title="Send a Teams message to a person",
        description=(
            "Send a message to one person in their Microsoft Teams chat with the organisation's notification bot."
            " Use it to tell someone something now or at a given time (a reminder, an assignment, a status)."
            " The person sees a chat message from the bot, with a Teams notification showing the summary or the"
            " start of the text; markdown (bold, lists, links) is shown formatted. Returns the delivery: status"
            " delivered, or queued/sending (still on its way: check later with get_message), or scheduled when"
            " deliverAt or deliverAtLocalTime is given. Sending again with the same idempotencyKey never sends"
            " twice. For more than a few people use start_broadcast." + ERRORS_TEXT
        ),
        scope="send",
        arguments=SendMessageSchema,
        fields=(
            "recipient",
            "text",
            "card",
            "summary",
            "idempotencyKey",
            "deliverAt",
            "deliverAtLocalTime",
            "wait",
            "tenantId",
        ),
        handler=send_message,
        read_only=False,
        hints=(
            ("recipient", RECIPIENT_HINT),
            ("text", "What the person reads, in markdown. Give text, card, or both."),
            ("card", CARD_HINT + " Optional; most messages need only text."),
            ("wait", "Seconds to wait for Teams to accept the message before answering (0-90, default 5)."),
        ),
    ),
    ToolSpec(
        name="get_message",
        title="Check a sent message",
        description=(
            "Tell whether a message sent with send_message (or part of a broadcast) reached the person: status"
            " queued, scheduled, sending, delivered or failed, and why it failed. Use it when send_message answered"
            " that the message is still on its way, or when the user asks whether someone got it. Errors: NotFound -"
            " no message with this id for this connection."
        ),
        scope="send",
        arguments=IdArguments,
        fields=("id",),
        handler=get_message,
        read_only=True,
        hints=(("id", "The id send_message returned."),),
    ),
    ToolSpec(
        name="get_recipient",
        title="Check whether a person can be messaged",
        description=(
            "Find out whether the bot can message a person in Teams before sending: reachable true/false, why not"
            " (uninstalled, blocked, opted out), their name, time zone and when they last used the bot. Nothing is"
            " sent and the person sees nothing. Errors: RecipientNotFound - the bot has never talked with this"
            " person (they must open the bot in Teams once), or this connection may not see their tenant."
        ),
        scope="send",
        arguments=RecipientArguments,
        fields=("recipient",),
        handler=get_recipient,
        read_only=True,
        hints=(("recipient", RECIPIENT_HINT),),
    ),
    ToolSpec(
        name="send_card",
        title="Send a card that asks the person to answer",
        description=(
            "Send an Adaptive Card with inputs and buttons (for an approval, a choice or a short form) to one"
            " person's Teams chat; the answer is collected for you. The person sees the card in their chat with"
            " the bot; when they press a button the card shows their answer. Returns at once with the card's id"
            " and status (sending, waiting); use get_card_response with that id to read the answer later. The card"
            " needs at least one Action.Submit or Action.Execute button." + ERRORS_TEXT
        ),
        scope="send",
        arguments=SendCardAndWaitSchema,
        fields=("recipient", "card", "text", "summary", "idempotencyKey", "tenantId"),
        handler=send_card,
        needs_request=True,
        read_only=False,
        hints=(
            ("recipient", RECIPIENT_HINT),
            ("card", CARD_HINT + " It needs inputs with ids and at least one Action.Submit button."),
            ("text", "Optional text (markdown) shown above the card."),
        ),
    ),
    ToolSpec(
        name="get_card_response",
        title="Read the answer to a card",
        description=(
            "Read what the person answered to a card sent with send_card: status responded (with the submitted"
            " values, the button pressed and who answered), waiting (shown, no answer yet) or sending. Nothing is"
            " sent. Errors: NotFound - no card with this id for this connection; MessageNotDelivered - the card"
            " never reached the person or was deleted."
        ),
        scope="send",
        arguments=IdArguments,
        fields=("id",),
        handler=get_card_response,
        needs_request=True,
        read_only=True,
        hints=(("id", "The id send_card returned."),),
    ),
    ToolSpec(
        name="start_broadcast",
        title="Send one message to many people",
        description=(
            "Send the same message (text and/or card) to a list of people, or to everyone in the tenant who can be"
            " reached (allActiveUsers), at the pace Teams allows. Each person sees the message in their own chat"
            " with the bot. Returns at once with the broadcast's id and counts; follow progress and failures with"
            " get_broadcast. Use it instead of many send_message calls. Errors: ValidationError - no recipients,"
            " or both a list and allActiveUsers; Forbidden - the connection may not broadcast; MessageTooLarge,"
            " Throttled as for send_message. People who cannot be reached are reported per person, not as errors."
        ),
        scope="broadcast",
        arguments=StartBroadcastSchema,
        fields=("recipients", "allActiveUsers", "text", "card", "summary", "idempotencyKey", "tenantId"),
        handler=start_broadcast,
        needs_request=True,
        read_only=False,
        hints=(
            ("recipients", "Email addresses, UPNs or Entra object IDs of the people to message."),
            ("text", "What everyone reads, in markdown. Give text, card, or both."),
            ("card", CARD_HINT + " Optional."),
        ),
    ),
    ToolSpec(
        name="get_broadcast",
        title="Check a broadcast's progress",
        description=(
            "Report a broadcast started with start_broadcast: status (preparing, running, completed), how many"
            " people got it, are queued, failed or were skipped, and who did not get it and why. Nothing is sent."
            " Errors: NotFound - no broadcast with this id for this connection."
        ),
        scope="broadcast",
        arguments=IdArguments,
        fields=("id",),
        handler=get_broadcast,
        needs_request=True,
        read_only=True,
        hints=(("id", "The id start_broadcast returned."),),
    ),
)

BY_NAME = {tool.name: tool for tool in TOOLS}


def input_schemas() -> dict[str, dict[str, Any]]:
    """Every tool's input schema (a copy: callers may change theirs)."""
    return copy.deepcopy(_built_schemas())


@functools.cache
def _built_schemas() -> dict[str, dict[str, Any]]:
    # Built once per process: the schemas are code, not data.
    return {tool.name: tool.input_schema() for tool in TOOLS}
