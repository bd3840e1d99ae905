"""A process dying at a chosen point of a sync: here, right after Microsoft answered a
write and before the local transaction recording the answer commits."""

from __future__ import annotations

from typing import Any

import pytest

from m365sync.crm.embedded import EmbeddedCrm

__all__ = ["crash_recording_once"]


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
