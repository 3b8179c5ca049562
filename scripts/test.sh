#!/usr/bin/env bash
# Set up and run every test: Python packages (CPU torch pinned), Chromium for the browser
# tests, then pytest. Safe to run again; installs are skipped when already present.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install -q --disable-pip-version-check torch==2.13.0
python3 -m pip install -q --disable-pip-version-check -e '.[all]'

if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi

python3 -m ruff check src tests benchmarks
python3 -m pytest -q "$@"
