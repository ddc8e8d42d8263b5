#!/usr/bin/env bash
# Builds deploy/build/app.zip, what App Service runs: the project as a wheel, a requirements.txt that
# names it (App Service's build, Oryx, pip-installs it with its dependencies), and gunicorn's settings.
# Usage: deploy/package.sh        OUT=/elsewhere deploy/package.sh writes the zip there instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo "$PWD/.venv/bin/python" || command -v python3 )}"
OUT="$(mkdir -p "${OUT:-deploy/build}" && cd "${OUT:-deploy/build}" && pwd)"
SRC="$(mktemp -d)"
trap 'rm -rf "$SRC"' EXIT
# Build from a copy, so setuptools' build/ and *.egg-info folders stay out of the work tree.
cp -R pyproject.toml setup.py README.md teams_proactive bot connector power-automate-samples "$SRC/"
rm -rf "$OUT/app" "$OUT/app.zip"
mkdir -p "$OUT/app"
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$OUT/app" "$SRC"
WHEEL="$(cd "$OUT/app" && ls teams_proactive-*.whl)"
# Only a requirements.txt (no pyproject.toml) in the zip: App Service then runs pip install -r on it.
printf '%s\n' "./$WHEEL" "gunicorn>=22" > "$OUT/app/requirements.txt"
cp deploy/gunicorn.conf.py "$OUT/app/gunicorn.conf.py"
(cd "$OUT/app" && "$PYTHON" -m zipfile -c ../app.zip requirements.txt gunicorn.conf.py "$WHEEL")
echo "$OUT/app.zip"
