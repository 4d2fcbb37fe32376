#!/usr/bin/env bash
# Rebuild assets/ and tests/fixtures/ from the package registries.
# Usage: scripts/run_all.sh [python]   (default: /work/pyenv/bin/python, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-/work/pyenv/bin/python}"
[ -x "$PY" ] || PY=python3
nice -n 19 "$PY" scripts/fetch_assets.py
nice -n 19 "$PY" scripts/convert_squeezenet.py
nice -n 19 "$PY" scripts/convert_efficientnet_lite0.py
nice -n 19 "$PY" scripts/make_fixtures.py
nice -n 19 "$PY" scripts/make_jpeg_fixtures.py
nice -n 19 "$PY" scripts/make_fixtures.py chelsea_jpeg
chmod 644 assets/* tests/fixtures/*.* tests/fixtures/jpeg/*
