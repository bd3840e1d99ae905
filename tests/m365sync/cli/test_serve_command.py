"""``m365sync serve`` in a process of its own."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys

import pytest

from m365sync.demo import listen_socket
from support.sockets import nagle_off_on_accepted_connections


def test_serve_shows_the_products_own_log_lines_at_debug(tmp_path):
    """``M365SYNC_LOG_LEVEL=DEBUG m365sync serve`` shows m365sync's lines next to the web
    server's, and never the secrets of its settings."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = _serve_env(tmp_path) | {
        "M365SYNC_LOG_LEVEL": "DEBUG",
        "M365SYNC_USER_APP_CLIENT_SECRET": "Zx8Q~never.logged",
    }
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


def _serve_env(tmp_path) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "M365SYNC_DATA_DIR": str(tmp_path / "data"),
        "M365SYNC_CONFIG_FILE": str(tmp_path / "none.env"),
        "M365SYNC_DATABASE_URL": "",
        "COLUMNS": "200",
    }
    env.pop("M365SYNC_SECRET_KEY", None)
    return env


CLI = [sys.executable, "-c", "from m365sync.cli import main; main()"]
# The one-process server and the scaled-out web process bind their port the same way.
PROCESSES = pytest.mark.parametrize(
    ("command", "process"), [("serve", [*CLI, "serve", "--no-demo"]), ("web", [*CLI, "web"])]
)


@PROCESSES
def test_a_busy_port_is_said_before_any_banner_with_how_to_pick_another(tmp_path, command, process):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        answer = subprocess.run(
            [*process, "--host", "127.0.0.1", "--port", str(port)],
            env=_serve_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert answer.returncode != 0
    assert "is running" not in answer.stdout
    assert f"Port {port} on 127.0.0.1 is already in use" in answer.stderr
    assert "--port 0" in answer.stderr
    assert f"m365sync {command} --port {port + 1}" in answer.stderr
    assert "Traceback" not in answer.stderr


@PROCESSES
def test_port_0_prints_the_port_it_really_listens_on(tmp_path, command, process):
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as stderr:
        server = subprocess.Popen(
            [*process, "--host", "127.0.0.1", "--port", "0"],
            env=_serve_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        found = re.search(r"open http://127\.0\.0\.1:(\d+) ", banner)
        assert found, (banner, errors.read_text())
        port = int(found.group(1))
        assert port != 0
        with socket.create_connection(("127.0.0.1", port), timeout=30) as reached:
            assert reached  # the banner's port is the one listening
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()
            raise AssertionError(
                f"m365sync {command} did not stop within 120 s of Ctrl+C:\n{errors.read_text()}"
            ) from None


def test_the_web_servers_connections_answer_without_waiting_for_a_delayed_ack():
    """``serve`` and ``web`` listen on ``listen_socket``: connections accepted from it have
    Nagle's algorithm off under asyncio's own event loop too (uvloop sets it anyway), so a
    small API answer's body follows its headers at once."""
    assert nagle_off_on_accepted_connections(listen_socket("127.0.0.1", 0))
