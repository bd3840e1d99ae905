"""A process dying at a chosen point of a sync: right after Microsoft answered a write and
before the local transaction recording the answer commits; or SIGKILLed in the middle of a
first sync."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from subprocess import DEVNULL
from typing import Any

import pytest

from m365sync.crm.embedded import EmbeddedCrm
from m365sync.crm.models import ActivityKind
from support.sync_world import SyncWorld

__all__ = ["KilledSync", "crash_recording_once", "first_sync_killed_again_and_again"]


def crash_recording_once(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """The next recording of pushed CRM changes fails (its transaction rolls back), as if
    the process had died there; later ones work. Returns a list that gets ``True`` once the
    crash happened."""
    died: list[bool] = []
    record = EmbeddedCrm.record_pushed

    def crashing(self: EmbeddedCrm, *args: Any, **kwargs: Any) -> Any:
        if not died:
            died.append(True)
            raise RuntimeError("The process died before committing what Exchange answered.")
        return record(self, *args, **kwargs)

    monkeypatch.setattr(EmbeddedCrm, "record_pushed", crashing)
    return died


KILL_WORKER = Path(__file__).with_name("kill_worker.py")
PAGE_SIZE = 100
LEASE_SECONDS = 2


@dataclass(frozen=True)
class KilledSync:
    kills: int  # runs SIGKILLed mid-sync (a run that finished first is not)
    outcome: str  # the last run's, left to finish
    stderr: str  # the last run's


def first_sync_killed_again_and_again(
    world: SyncWorld,
    tmp_path: Path,
    mailbox: str,
    *,
    pages: tuple[int, int],
    final_timeout: float,
    attempts: int = 4,
    seed: int = 5,
) -> KilledSync:
    """Email Sync of ``mailbox`` in a process (``kill_worker.py``; pages of 100, 2-second
    leases) started ``attempts`` times and SIGKILLed in the middle of its work each time:
    once the emails stored have grown by a random number of pages in ``pages``, plus up to
    50 ms, so the kill lands anywhere in the pipeline (a page being fetched, prepared or
    committed). A fixed sleep instead would depend on this machine's speed: a fast run
    finishes before it and nothing is killed. Each dead worker's lease runs out before the
    next run; then a last run is left to finish."""
    settings = world.settings
    config = tmp_path / "worker.json"
    config.write_text(
        json.dumps(
            {
                "database_url": settings.resolved_database_url,
                "member_id": world.members[mailbox],
                "settings": {
                    "data_dir": str(settings.data_dir),
                    "database_url": settings.resolved_database_url,
                    "secret_key": settings.secret_key,
                    "authority_host": settings.authority_host,
                    "graph_url": settings.graph_url,
                    "ca_bundle": str(settings.ca_bundle),
                },
                "engine": {
                    "sync_page_size": PAGE_SIZE,
                    "sync_lease_seconds": LEASE_SECONDS,
                    "sync_jitter_seconds": 0,
                },
            }
        )
    )
    command = [sys.executable, str(KILL_WORKER), str(config)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    rng = random.Random(seed)

    def stored() -> int:
        with world.crm() as crm:
            return crm.count_activities(ActivityKind.EMAIL)

    kills = 0
    for _ in range(attempts):
        target = stored() + rng.randint(*pages) * PAGE_SIZE
        worker = subprocess.Popen(command, env=env, stdout=DEVNULL, stderr=DEVNULL)
        deadline = time.monotonic() + 120
        while worker.poll() is None and stored() < target and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.05))
        if worker.poll() is None:
            worker.send_signal(signal.SIGKILL)
            kills += 1
        worker.wait()
        time.sleep(LEASE_SECONDS + 0.1)  # the dead worker's lease runs out
    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=final_timeout)
    lines = final.stdout.strip().splitlines()
    outcome = str(json.loads(lines[-1])["outcome"]) if lines else "no answer"
    return KilledSync(kills, outcome, final.stderr)
