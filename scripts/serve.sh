#!/usr/bin/env bash
# Set up and run m365sync on its embedded defaults: ./scripts/serve.sh [m365sync serve args]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_setup.sh
ensure_venv
log "starting m365sync serve (database, demo tenant, first sync)"
exec .venv/bin/m365sync serve "$@"
