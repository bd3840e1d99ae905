"""``m365sync serve`` in a process of its own."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys


def test_serve_shows_the_products_own_log_lines_at_debug(tmp_path):
    """``M365SYNC_LOG_LEVEL=DEBUG m365sync serve`` shows m365sync's lines next to the web
    server's, and never the secrets of its settings."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "M365SYNC_DATA_DIR": str(tmp_path / "data"),
        "M365SYNC_CONFIG_FILE": str(tmp_path / "none.env"),
        "M365SYNC_LOG_LEVEL": "DEBUG",
        "M365SYNC_USER_APP_CLIENT_SECRET": "Zx8Q~never.logged",
        "M365SYNC_DATABASE_URL": "",
    }
    env.pop("M365SYNC_SECRET_KEY", None)
    command = [sys.executable, "-c", "from m365sync.cli import main; main()"]
    server = subprocess.Popen(
        [*command, "serve", "--no-demo", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert server.stderr is not None
        for line in server.stderr:
            lines.append(line)
            if "Application startup complete" in line:
                break
    finally:
        server.send_signal(signal.SIGINT)
        rest = server.communicate(timeout=60)[1]
    log = "".join(lines) + rest
    assert "Application startup complete" in log, log
    assert re.search(r"^DEBUG: +m365sync\.cli: serve: data directory ", log, re.MULTILINE), log
    assert "Zx8Q~never.logged" not in log
