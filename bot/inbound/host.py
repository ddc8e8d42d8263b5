"""The seam to the SDK that runs the turn: botbuilder or the Microsoft 365 Agents SDK, told apart by the context's type.

The inbound logic (``teams_proactive.bot.inbound.handler``) asks a turn for four things only: the
activity, the turn's state, a member lookup (UPN and email) and the invoke answer; plus replacing a
card already in the chat. Each is done here with the host SDK's own client, so the middleware uses
the host bot's identity and connections and never builds its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from msrest.serialization import Model
from teams_proactive.bot.inbound.activity import as_dict

INVOKE_RESPONSE = "invokeResponse"


class HostTurn(Protocol):
    """One turn of the host SDK, as the inbound logic sees it."""

    sdk: str
    context: Any

    @property
    def activity(self) -> Any: ...

    @property
    def turn_state(self) -> dict[Any, Any]: ...

    async def member(self, user_id: str) -> dict[str, Any]:
        """The conversation member as the Bot Connector answers it (camelCase JSON)."""
        ...

    async def answer_invoke(self, body: dict[str, Any], status: int = 200) -> None:
        """Set the invoke's HTTP answer, in the form the host's adapter returns."""
        ...

    async def update_message(self, activity: dict[str, Any]) -> None:
        """Replace a message of this conversation (``activity["id"]``) through the host's connector."""
        ...

    async def run_logic(self, logic: Callable[..., Awaitable[Any]]) -> None:
        """Call the next middleware / the bot's own logic as this SDK calls it."""
        ...


class _CardActionAnswer(Model):
    """Universal Actions' invoke answer (statusCode, type, value) as an msrest model; botbuilder's own
    ``AdaptiveCardInvokeResponse`` types ``value`` as an object, and a message answer's value is a string."""

    _attribute_map = {
        "status_code": {"key": "statusCode", "type": "int"},
        "type": {"key": "type", "type": "str"},
        "value": {"key": "value", "type": "object"},
    }

    def __init__(self, *, status_code: int | None = None, type: str | None = None, value: Any = None) -> None:
        super().__init__()
        self.status_code = status_code
        self.type = type
        self.value = value


class BotbuilderTurn:
    sdk = "botbuilder"

    def __init__(self, context: Any) -> None:
        self.context = context

    @property
    def activity(self) -> Any:
        return self.context.activity

    @property
    def turn_state(self) -> dict[Any, Any]:
        return self.context.turn_state  # type: ignore[no-any-return]

    async def member(self, user_id: str) -> dict[str, Any]:
        from botbuilder.core.teams import TeamsInfo

        return as_dict(await TeamsInfo.get_member(self.context, user_id))

    async def answer_invoke(self, body: dict[str, Any], status: int = 200) -> None:
        from botbuilder.schema import Activity, InvokeResponse

        # botbuilder's aiohttp CloudAdapter serialises the body with msrest, which takes a model, not a dict.
        answer = _CardActionAnswer(status_code=body.get("statusCode"), type=body.get("type"), value=body.get("value"))
        await self.context.send_activity(Activity(type=INVOKE_RESPONSE, value=InvokeResponse(status=status, body=answer)))

    async def update_message(self, activity: dict[str, Any]) -> None:
        from botbuilder.schema import Activity

        await self.context.update_activity(Activity.deserialize(activity))

    async def run_logic(self, logic: Callable[..., Awaitable[Any]]) -> None:
        await logic()


class AgentsTurn:
    sdk = "agents"

    def __init__(self, context: Any) -> None:
        self.context = context

    @property
    def activity(self) -> Any:
        return self.context.activity

    @property
    def turn_state(self) -> dict[Any, Any]:
        return self.context.turn_state  # type: ignore[no-any-return]

    async def member(self, user_id: str) -> dict[str, Any]:
        from microsoft_agents.hosting.core.connector import ConnectorClientBase

        client = self.context.services.get(ConnectorClientBase)
        if client is None:
            raise LookupError("no connector client in this turn")
        member = await client.conversations.get_conversation_member(self.activity.conversation.id, user_id)
        return as_dict(member)

    async def answer_invoke(self, body: dict[str, Any], status: int = 200) -> None:
        from microsoft_agents.activity import Activity, InvokeResponse

        await self.context.send_activity(Activity(type=INVOKE_RESPONSE, value=InvokeResponse(status=status, body=body)))

    async def update_message(self, activity: dict[str, Any]) -> None:
        from microsoft_agents.activity import Activity

        await self.context.update_activity(Activity.model_validate(activity))

    async def run_logic(self, logic: Callable[..., Awaitable[Any]]) -> None:
        await logic(self.context)


def host_turn(context: Any) -> HostTurn:
    """Wrap a turn context of whichever SDK runs the bot (the Agents SDK's modules are ``microsoft_agents.*``)."""
    if isinstance(context, BotbuilderTurn | AgentsTurn):
        return context
    for kind in (type(context), type(getattr(context, "activity", None))):
        if kind.__module__.startswith("microsoft_agents"):
            return AgentsTurn(context)
    return BotbuilderTurn(context)
