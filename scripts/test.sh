#!/usr/bin/env bash
# Everything the test suite needs, then the suite: ./scripts/test.sh [pytest args]
#   - a virtualenv in .venv with the pinned dependencies (constraints.txt)
#   - Debian's chromium for the browser tests (installed with apt-get when missing and root)
#   - PostgreSQL and Redis started when installed but not running
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_setup.sh
ensure_venv test
ensure_chromium
ensure_services
exec .venv/bin/python -m pytest "$@"
