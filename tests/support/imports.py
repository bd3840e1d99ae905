"""What a fresh interpreter has imported after some code: how tests keep start-up cheap
without timing it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

__all__ = ["loaded_modules"]


def loaded_modules(code: str) -> set[str]:
    """The modules, and their top-level packages, loaded in a fresh interpreter after
    ``code`` (run with this interpreter's import path)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    modules = json.loads(result.stdout.splitlines()[-1])
    return {name.split(".")[0] for name in modules} | set(modules)
