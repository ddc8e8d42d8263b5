#!/usr/bin/env bash
# Installs teams-proactive into .venv (first run only) and serves it: bot endpoint and connector API on
# one port, embedded SQLite, no configuration needed. Arguments go to `teams-proactive serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/teams-proactive ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e .
fi
exec .venv/bin/teams-proactive serve "$@"
