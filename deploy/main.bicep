// teams-proactive on Azure: App Service for Linux (gunicorn), Azure Bot (Teams channel) whose messaging
// endpoint is the app, Cosmos DB for NoSQL (serverless) as the store, and one user-assigned managed
// identity that is both the bot's identity and the app's key to Cosmos DB: no secret to keep.
//
//   az deployment group create -g <resource-group> -f deploy/main.bicep -p @deploy/main.parameters.json
//
// deploy/README.md walks through it, from an empty subscription to a flow that sends a message.

targetScope = 'resourceGroup'

@description('Short lowercase prefix for the resource names (letters and digits).')
@minLength(3)
@maxLength(16)
param namePrefix string

@description('Region for the app, the plan, the identity and Cosmos DB (the bot itself is global).')
param location string = resourceGroup().location

@description('App Service plan size. B1 or larger: the delivery dispatcher needs Always On, which Free (F1) lacks.')
@allowed(['B1', 'B2', 'B3', 'S1', 'S2', 'S3', 'P0v3', 'P1v3', 'P2v3'])
param appServiceSku string = 'B1'

@description('Azure Bot pricing tier: F0 (free; the Teams channel is a standard channel) or S1.')
@allowed(['F0', 'S1'])
param botSku string = 'F0'

@description('The name people see for the bot in Teams (also BOT_NAME in the app).')
param botDisplayName string = 'Notifications'

@description('Python version of the App Service runtime.')
@allowed(['3.11', '3.12'])
param pythonVersion string = '3.11'

@description('Signs the dashboard session cookie (SECRET_KEY). The default is new on every deployment, which signs everyone out.')
@secure()
param secretKey string = newGuid()

@description('Optional bootstrap API key with every scope (CONNECTOR_API_KEY). Leave empty and create named keys with the CLI instead.')
@secure()
param bootstrapApiKey string = ''

@description('Optional bearer token Prometheus must send to /metrics (METRICS_TOKEN). Empty: /metrics is public (counts only, no people).')
@secure()
param metricsToken string = ''

@description('Opt-in: days after which a conversation reference not refreshed by any activity expires. Empty: never.')
param referenceTtlDays string = ''

var suffix = uniqueString(resourceGroup().id, namePrefix)
var appName = '${namePrefix}-${suffix}'
var cosmosName = toLower('${namePrefix}-${suffix}')
var databaseName = 'teams-proactive'
// Built-in "Cosmos DB Built-in Data Contributor": read and write items (not create containers).
var cosmosDataContributor = '00000000-0000-0000-0000-000000000002'

// The containers the app uses (bot/store/cosmos.py), created here because a managed identity's
// data-plane role cannot create them. Partition keys and indexing match the app's own definitions.
var containers = [
  { name: 'references', partitionKey: '/pk', pointReadsOnly: false, excluded: ['/conversation_reference/*'] }
  { name: 'aliases', partitionKey: '/id', pointReadsOnly: true, excluded: [] }
  { name: 'deliveries', partitionKey: '/id', pointReadsOnly: false, excluded: ['/content/*', '/response/*', '/responded_by/*', '/error/*'] }
  { name: 'broadcasts', partitionKey: '/id', pointReadsOnly: false, excluded: ['/content/*', '/recipients/*', '/skipped/*'] }
  { name: 'keys', partitionKey: '/id', pointReadsOnly: false, excluded: ['/secret_hash/?', '/scopes/*'] }
  { name: 'subscriptions', partitionKey: '/id', pointReadsOnly: false, excluded: ['/callback_url/?'] }
  { name: 'leases', partitionKey: '/id', pointReadsOnly: true, excluded: [] }
  { name: 'notifications', partitionKey: '/id', pointReadsOnly: false, excluded: ['/body/*'] }
  { name: 'personindex', partitionKey: '/id', pointReadsOnly: true, excluded: [] }
  { name: 'erasures', partitionKey: '/id', pointReadsOnly: false, excluded: ['/tenant_id/?', '/user_key/?'] }
  { name: 'recipients', partitionKey: '/id', pointReadsOnly: true, excluded: [] }
  { name: 'quarantine', partitionKey: '/id', pointReadsOnly: false, excluded: ['/body/*'] }
]

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${namePrefix}-identity'
  location: location
}

resource cosmos 'Microsoft.DocumentDB/databaseAccounts@2024-05-15' = {
  name: cosmosName
  location: location
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    locations: [
      { locationName: location, failoverPriority: 0, isZoneRedundant: false }
    ]
    capabilities: [
      { name: 'EnableServerless' }
    ]
    consistencyPolicy: { defaultConsistencyLevel: 'Session' }
    minimalTlsVersion: 'Tls12'
    // Entra ID only: the app signs in with the managed identity; there is no account key to leak.
    disableLocalAuth: true
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-05-15' = {
  parent: cosmos
  name: databaseName
  properties: {
    resource: { id: databaseName }
  }
}

resource cosmosContainers 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-05-15' = [
  for c in containers: {
    parent: database
    name: c.name
    properties: {
      resource: {
        id: c.name
        partitionKey: { paths: [c.partitionKey], kind: 'Hash' }
        // TTL on, nothing expires unless an item carries its own ttl (REFERENCE_TTL_DAYS, retention).
        defaultTtl: -1
        indexingPolicy: c.pointReadsOnly
          ? { indexingMode: 'consistent', includedPaths: [], excludedPaths: [{ path: '/*' }] }
          : {
              indexingMode: 'consistent'
              includedPaths: [{ path: '/*' }]
              excludedPaths: map(concat(c.excluded, ['/"_etag"/?']), p => { path: p })
            }
      }
    }
  }
]

resource cosmosRole 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-05-15' = {
  parent: cosmos
  name: guid(cosmos.id, identity.id, cosmosDataContributor)
  properties: {
    roleDefinitionId: '${cosmos.id}/sqlRoleDefinitions/${cosmosDataContributor}'
    principalId: identity.properties.principalId
    scope: cosmos.id
  }
}

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: '${namePrefix}-plan'
  location: location
  kind: 'linux'
  sku: { name: appServiceSku }
  properties: { reserved: true }
}

resource app 'Microsoft.Web/sites@2023-12-01' = {
  name: appName
  location: location
  kind: 'app,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identity.id}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      linuxFxVersion: 'PYTHON|${pythonVersion}'
      // The dispatcher and the broadcast coordinator run inside the app: it must never be unloaded.
      alwaysOn: true
      // Each gunicorn worker builds the app after the fork (no --preload); see deploy/gunicorn.conf.py.
      appCommandLine: 'gunicorn -c gunicorn.conf.py teams_proactive.connector.wsgi:app'
      healthCheckPath: '/readyz'
      ftpsState: 'Disabled'
      minTlsVersion: '1.2'
      http20Enabled: true
    }
  }
}

var baseUrl = 'https://${app.properties.defaultHostName}'

resource appSettings 'Microsoft.Web/sites/config@2023-12-01' = {
  parent: app
  name: 'appsettings'
  properties: union(
    {
      // App Service's build (Oryx) pip-installs requirements.txt from the deployed zip.
      SCM_DO_BUILD_DURING_DEPLOYMENT: 'true'
      MicrosoftAppType: 'UserAssignedMSI'
      MicrosoftAppId: identity.properties.clientId
      MicrosoftAppTenantId: tenant().tenantId
      // azure-identity's DefaultAzureCredential uses this identity for Cosmos DB.
      AZURE_CLIENT_ID: identity.properties.clientId
      STORE_URL: 'cosmos'
      COSMOS_ENDPOINT: cosmos.properties.documentEndpoint
      COSMOS_DATABASE: databaseName
      PUBLIC_BASE_URL: baseUrl
      BOT_NAME: botDisplayName
      SECRET_KEY: secretKey
      LOG_FORMAT: 'json'
      // App Service's front end appends the caller's address to X-Forwarded-For: one hop to trust,
      // so wrong keys are counted per caller, not for everyone at once.
      TRUSTED_PROXY_HOPS: '1'
      // gunicorn workers add up their metrics through files in this folder.
      PROMETHEUS_MULTIPROC_DIR: '/tmp/teams-proactive-metrics'
    },
    empty(bootstrapApiKey) ? {} : { CONNECTOR_API_KEY: bootstrapApiKey },
    empty(metricsToken) ? {} : { METRICS_TOKEN: metricsToken },
    empty(referenceTtlDays) ? {} : { REFERENCE_TTL_DAYS: referenceTtlDays }
  )
  dependsOn: [cosmosContainers, cosmosRole]
}

resource bot 'Microsoft.BotService/botServices@2022-09-15' = {
  name: '${namePrefix}-bot-${suffix}'
  location: 'global'
  kind: 'azurebot'
  sku: { name: botSku }
  properties: {
    displayName: botDisplayName
    endpoint: '${baseUrl}/api/messages'
    msaAppType: 'UserAssignedMSI'
    msaAppId: identity.properties.clientId
    msaAppMSIResourceId: identity.id
    msaAppTenantId: tenant().tenantId
  }
}

resource teams 'Microsoft.BotService/botServices/channels@2022-09-15' = {
  parent: bot
  name: 'MsTeamsChannel'
  location: 'global'
  properties: {
    channelName: 'MsTeamsChannel'
    properties: { isEnabled: true }
  }
}

output appName string = app.name
output publicBaseUrl string = baseUrl
output messagingEndpoint string = '${baseUrl}/api/messages'
output botAppId string = identity.properties.clientId
output botName string = bot.name
output cosmosEndpoint string = cosmos.properties.documentEndpoint
