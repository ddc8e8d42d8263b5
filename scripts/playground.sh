#!/usr/bin/env bash
# Starts Microsoft 365 Agents Playground (the pinned npm package in tests/node) against a running
# `teams-proactive serve`, bound to 127.0.0.1, and opens nothing: browse to the printed address.
# Usage: ./scripts/playground.sh [APP_PORT (3978)] [PLAYGROUND_PORT (56150)]
set -euo pipefail
cd "$(dirname "$0")/.."
APP_PORT="${1:-3978}"
PG_PORT="${2:-56150}"
[ -d tests/node/node_modules/@microsoft/m365agentsplayground ] || npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
export TEAMSAPPTESTER_BROWSER=none APPLICATION_INSIGHTS_NO_STATSBEAT=true
export M365_AGENTS_PLAYGROUND_LOGFILE="${M365_AGENTS_PLAYGROUND_LOGFILE:-${TMPDIR:-/tmp}/m365agentsplayground.log}"
echo "Agents Playground: open http://127.0.0.1:${PG_PORT} in a browser (Ctrl+C to stop)"
exec node --require ./tests/support/node_loopback.cjs \
  tests/node/node_modules/@microsoft/m365agentsplayground/cli.js \
  --app-endpoint "http://127.0.0.1:${APP_PORT}/api/messages" --channel-id msteams \
  --port "${PG_PORT}" --service-url "http://127.0.0.1:${PG_PORT}/_connector" --disable-telemetry \
  --conversation-id "a:playground-personal-chat"
