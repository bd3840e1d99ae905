#!/usr/bin/env bash
# The checks CI runs before the tests: ruff, ruff format and mypy, each failing on any finding.
#   ./scripts/lint.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_setup.sh
ensure_venv test
log "ruff check"
.venv/bin/ruff check src tests benchmarks
log "ruff format --check"
.venv/bin/ruff format --check src tests benchmarks
log "mypy"
.venv/bin/mypy
