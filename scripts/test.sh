#!/usr/bin/env bash
# Installs everything the tests need on a fresh machine (a Python venv with the project and its test
# extras, and the npm packages for the Cosmos DB server, Agents Playground and Azurite), then runs them all.
# Usage: ./scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
# The dashboard's browser test drives Debian's Chromium through Playwright (which never downloads a
# browser of its own here). Elsewhere without apt-get the test is skipped; CHROMIUM_PATH points it at another.
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
.venv/bin/python -m ruff check teams_proactive bot connector tests bench setup.py
exec .venv/bin/python -m pytest "$@"
