#!/usr/bin/env bash
# Set up and run every test: Python packages (CPU torch pinned), Chromium for the browser
# tests, HAProxy for the deployment tests, then pytest. Safe to run again; installs are
# skipped when already present.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install -q --disable-pip-version-check torch==2.13.0
python3 -m pip install -q --disable-pip-version-check -e '.[all]'

if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
# HAProxy: the deploy tests (tests/deploy/) put the documented config in front of two replicas.
if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq haproxy >/dev/null
fi

python3 -m ruff check src tests benchmarks
python3 -m pytest -q "$@"
