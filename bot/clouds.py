"""Every Microsoft endpoint the bot talks to or trusts, per Teams cloud (TEAMS_CLOUD: public, gcc, gcch, dod).

Sources (the values are Microsoft's; where two documents disagree both are named):
- Bot Framework in Azure Government / GCC High: Microsoft Learn, Azure AI Bot Service, "Configure
  Bot Framework bots for US Government customers" (learn.microsoft.com/azure/bot-service/how-to-deploy-gov-cloud-high):
  ChannelService https://botframework.azure.us, OAuthUrl https://tokengcch.botframework.azure.us/ (DoD:
  https://apiDoD.botframework.azure.us), ToChannelFromBotLoginUrl
  https://login.microsoftonline.us/MicrosoftServices.onmicrosoft.us, ToChannelFromBotOAuthScope and
  ToBotFromChannelTokenIssuer https://api.botframework.us, ToBotFromChannelOpenIdMetadataUrl
  https://login.botframework.azure.us/v1/.well-known/openidconfiguration. The same values are the SDK's
  ``GovernmentConstants`` (botframework-connector) and Microsoft's Teams SDK ``CloudEnvironment.USGov`` /
  ``USGovDoD`` presets.
- Public cloud: ``AuthenticationConstants`` of botframework-connector (issuer https://api.botframework.com,
  metadata https://login.botframework.com/v1/.well-known/openidconfiguration).
- GCC (moderate) runs on the commercial Azure and Bot Framework; only the Teams service URL differs.
- Teams service URLs: Microsoft Learn, Teams platform, "Send proactive messages" (global service URLs
  per cloud); the Agents SDK's ``TeamsServiceEndpoints`` lists the same four.
- Graph and login hosts: Microsoft Graph "National cloud deployments" (graph.microsoft.us for GCC High,
  dod-graph.microsoft.us for DoD; login.microsoftonline.us for both).
"""

from __future__ import annotations

from dataclasses import dataclass

from botframework.connector.auth import AuthenticationConstants, GovernmentConstants


@dataclass(frozen=True, slots=True)
class CloudEndpoints:
    """The endpoints of one Teams cloud; the bot's inbound and outbound auth both read them."""

    name: str
    # Bot Framework's ChannelService setting (empty in the public cloud).
    channel_service: str
    # Bot -> channel tokens: where the bot signs in and for which audience.
    to_channel_login_url: str
    to_channel_scope: str
    # Channel -> bot tokens: the issuer Teams' tokens carry and where their signing keys are published.
    token_issuer: str
    openid_metadata_url: str
    emulator_openid_metadata_url: str
    # The Bot Framework token service (user sign-in, OAuthApiEndpoint).
    oauth_url: str
    # Where a 1:1 chat is created when a tenant has no service URL on record yet.
    global_service_url: str
    graph_url: str
    login_url: str

    @property
    def government(self) -> bool:
        return self.channel_service == GovernmentConstants.CHANNEL_SERVICE


_PUBLIC_BOT_FRAMEWORK = {
    "channel_service": "",
    "to_channel_login_url": AuthenticationConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL,
    "to_channel_scope": AuthenticationConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE,
    "token_issuer": AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER,
    "openid_metadata_url": AuthenticationConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL,
    "emulator_openid_metadata_url": AuthenticationConstants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL,
    "oauth_url": AuthenticationConstants.OAUTH_URL,
    "graph_url": "https://graph.microsoft.com",
    "login_url": "https://login.microsoftonline.com",
}

_GOVERNMENT_BOT_FRAMEWORK = {
    "channel_service": GovernmentConstants.CHANNEL_SERVICE,
    "to_channel_login_url": GovernmentConstants.TO_CHANNEL_FROM_BOT_LOGIN_URL,
    "to_channel_scope": GovernmentConstants.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE,
    "token_issuer": GovernmentConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER,
    "openid_metadata_url": GovernmentConstants.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL,
    "emulator_openid_metadata_url": GovernmentConstants.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL,
    "login_url": "https://login.microsoftonline.us",
}

CLOUDS: dict[str, CloudEndpoints] = {
    "public": CloudEndpoints(
        name="public", global_service_url="https://smba.trafficmanager.net/teams/", **_PUBLIC_BOT_FRAMEWORK
    ),
    "gcc": CloudEndpoints(
        name="gcc", global_service_url="https://smba.infra.gcc.teams.microsoft.com/teams", **_PUBLIC_BOT_FRAMEWORK
    ),
    "gcch": CloudEndpoints(
        name="gcch",
        global_service_url="https://smba.infra.gov.teams.microsoft.us/teams",
        oauth_url="https://tokengcch.botframework.azure.us",
        graph_url="https://graph.microsoft.us",
        **_GOVERNMENT_BOT_FRAMEWORK,
    ),
    "dod": CloudEndpoints(
        name="dod",
        global_service_url="https://smba.infra.dod.teams.microsoft.us/teams",
        oauth_url="https://apiDoD.botframework.azure.us",
        graph_url="https://dod-graph.microsoft.us",
        **_GOVERNMENT_BOT_FRAMEWORK,
    ),
}


def cloud_endpoints(name: str) -> CloudEndpoints:
    """The endpoints of TEAMS_CLOUD ``name``; a ValueError names the allowed values."""
    try:
        return CLOUDS[name]
    except KeyError:
        raise ValueError(f"TEAMS_CLOUD must be one of {', '.join(CLOUDS)}, not {name!r}") from None
