#!/usr/bin/env bash
# Regenerate the pictures in docs/screenshots/: every page at desktop (1280 px) and phone
# (375 px) width in docs/screenshots/pages/, and the flows the dashboard's other browser
# tests walk. ./scripts/screenshots.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_setup.sh
ensure_venv test
ensure_chromium
ensure_services
export M365SYNC_UPDATE_SCREENSHOTS=1
exec .venv/bin/python -m pytest -m browser tests/m365sync/web "$@"
