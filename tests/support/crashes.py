"""A process dying at a chosen point of a sync: right after Microsoft answered a write and
before the local transaction recording the answer commits; or SIGKILLed in the middle of a
first sync."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections.abc import Callable
from subprocess import DEVNULL
from typing import Any

import pytest

from m365sync.crm.embedded import EmbeddedCrm

__all__ = ["crash_recording_once", "sigkill_mid_sync"]


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


def sigkill_mid_sync(
    worker_command: list[str],
    env: dict[str, str],
    stored: Callable[[], int],
    *,
    attempts: int,
    rng: random.Random,
    lease_seconds: float,
    pages: tuple[int, int],
    page_size: int,
) -> int:
    """Start ``worker_command`` ``attempts`` times and SIGKILL each run in the middle of
    its work: once ``stored()`` (the emails committed so far) has grown by a random number
    of pages in ``pages``, plus up to 50 ms, so the kill lands anywhere in the pipeline (a
    page being fetched, prepared or committed). A fixed sleep instead would depend on this
    machine's speed: a fast run finishes before it and nothing is killed. Waits for each
    dead worker's lease to run out. Returns how many runs were killed (a run that finished
    first is not)."""
    kills = 0
    for _ in range(attempts):
        before = stored()
        target = before + rng.randint(*pages) * page_size
        worker = subprocess.Popen(worker_command, env=env, stdout=DEVNULL, stderr=DEVNULL)
        deadline = time.monotonic() + 120
        while worker.poll() is None and stored() < target and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.05))
        if worker.poll() is None:
            worker.send_signal(signal.SIGKILL)
            kills += 1
        worker.wait()
        time.sleep(lease_seconds + 0.1)
    return kills
