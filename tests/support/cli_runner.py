"""``m365sync`` run in-process as a script runs it: each call returns the exit code, stdout
and stderr, with the settings read afresh from the environment the test set."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from m365sync import cli
from m365sync.settings import get_settings

RunCli = Callable[..., tuple[int, str, str]]


def cli_runner(capsys: pytest.CaptureFixture[str]) -> RunCli:
    def run(*args: str) -> tuple[int, str, str]:
        get_settings.cache_clear()
        with pytest.raises(SystemExit) as exited:
            cli.main(list(args))
        captured = capsys.readouterr()
        return int(exited.value.code or 0), captured.out, captured.err

    return run
