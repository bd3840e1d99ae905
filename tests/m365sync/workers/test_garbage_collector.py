"""``tune_garbage_collector``: what a long-running process (``serve``, ``web``, Celery's
pool processes and their parent, ``scheduler``, ``sync``) runs with, checked in a fresh
interpreter so this test session's collector is left alone."""

from __future__ import annotations

import os
import subprocess
import sys


def test_a_process_started_with_the_collector_off_runs_with_it_tuned_and_on() -> None:
    script = (
        "import gc\n"
        "from m365sync.workers.process import (\n"
        "    OLDER_COLLECTION_THRESHOLDS, YOUNG_COLLECTION_THRESHOLD, tune_garbage_collector)\n"
        "gc.disable()  # as the command line leaves it while a command loads\n"
        "tune_garbage_collector(collect=False)\n"
        "print(gc.isenabled(), gc.get_threshold() == "
        "(YOUNG_COLLECTION_THRESHOLD, *OLDER_COLLECTION_THRESHOLDS), gc.get_freeze_count() > 0)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "True"]
