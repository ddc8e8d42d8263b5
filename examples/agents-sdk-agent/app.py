"""An existing Microsoft 365 Agents SDK agent with teams-proactive's capture middleware added (the two marked lines)."""

import os

from aiohttp import web
from microsoft_agents.activity import load_configuration_from_env
from microsoft_agents.authentication.msal import MsalConnectionManager
from microsoft_agents.hosting.aiohttp import CloudAdapter, jwt_authorization_middleware, start_agent_process
from microsoft_agents.hosting.core import AgentApplication, MemoryStorage, TurnContext, TurnState

from teams_proactive.capture import ReferenceCapture  # added: 1 of 2

# The Agents SDK's own settings (CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID, ...). Without
# any, unsigned activities are accepted: only for local testing (Agents Playground, the tests).
CONFIG = load_configuration_from_env(os.environ)
if not CONFIG["CONNECTIONS"]:
    CONFIG["CONNECTIONS"] = {"SERVICE_CONNECTION": {"SETTINGS": {"ANONYMOUS_ALLOWED": True}}}
CONNECTIONS = MsalConnectionManager(**CONFIG)
ADAPTER = CloudAdapter(connection_manager=CONNECTIONS)
ADAPTER.use(ReferenceCapture())  # added: 2 of 2 (the store named by STORE_URL)
AGENT_APP = AgentApplication[TurnState](
    storage=MemoryStorage(), adapter=ADAPTER, connection_manager=CONNECTIONS, **CONFIG
)


@AGENT_APP.activity("message")
async def on_message(context: TurnContext, _state: TurnState) -> None:
    await context.send_activity(f"You said: {context.activity.text}")


async def messages(request: web.Request) -> web.Response:
    return await start_agent_process(request, AGENT_APP, ADAPTER)


APP = web.Application(middlewares=[jwt_authorization_middleware])
APP.router.add_post("/api/messages", messages)
APP["agent_configuration"] = CONNECTIONS.get_default_connection_configuration()

if __name__ == "__main__":
    web.run_app(APP, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "3980")))
