"""An existing botbuilder echo bot with teams-proactive's capture middleware added (the two marked lines)."""

import os

from aiohttp import web
from botbuilder.core import ActivityHandler, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication

from teams_proactive.capture import ReferenceCapture  # added: 1 of 2


class Config:
    """Bot Framework's own setting names, from the environment (empty: local testing, no tokens)."""

    APP_ID = os.environ.get("MicrosoftAppId", "")
    APP_PASSWORD = os.environ.get("MicrosoftAppPassword", "")
    APP_TYPE = os.environ.get("MicrosoftAppType", "MultiTenant")
    APP_TENANTID = os.environ.get("MicrosoftAppTenantId", "")


class EchoBot(ActivityHandler):
    async def on_message_activity(self, turn_context: TurnContext) -> None:
        await turn_context.send_activity(f"Echo: {turn_context.activity.text}")


ADAPTER = CloudAdapter(ConfigurationBotFrameworkAuthentication(Config()))
ADAPTER.use(ReferenceCapture())  # added: 2 of 2 (the store named by STORE_URL)
BOT = EchoBot()


async def messages(request: web.Request) -> web.Response:
    return await ADAPTER.process(request, BOT)


APP = web.Application()
APP.router.add_post("/api/messages", messages)

if __name__ == "__main__":
    web.run_app(APP, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "3979")))
