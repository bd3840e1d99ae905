# Shared set-up steps for scripts/*.sh (sourced, not run).

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Keep pip's "Collecting x", "Installing collected packages" and errors; drop the rest.
show_pip_progress() {
  local line
  while IFS= read -r line; do
    case "$line" in
      Collecting*|"Building wheel"*|"Installing collected"*|Successfully*) printf '    %s\n' "$line" >&2 ;;
      *ERROR*|*error:*) printf '%s\n' "$line" >&2 ;;
    esac
  done
}

ensure_venv() {
  local extra="${1:-}"
  local stamp=".venv/.installed${extra:+-$extra}"
  if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    python3 -m venv .venv
  fi
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
    log "installing dependencies (pinned by constraints.txt; a minute or two the first time)"
    # pip's own lines, one per package, so a first install never looks hung.
    .venv/bin/python -m pip install --disable-pip-version-check --progress-bar off \
        -c constraints.txt -e ".${extra:+[$extra]}" 2>&1 | show_pip_progress
    touch "$stamp"
    log "dependencies installed"
  fi
}

ensure_chromium() {
  if command -v chromium >/dev/null 2>&1; then return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing Debian's chromium for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    log "chromium is missing: install Debian's 'chromium' package to run the browser tests"
  fi
}

ensure_services() {
  if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
    if command -v pg_ctlcluster >/dev/null 2>&1; then
      log "starting PostgreSQL"
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    fi
  fi
  if command -v redis-server >/dev/null 2>&1 && ! (command -v redis-cli >/dev/null && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1); then
    log "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  fi
}
