"""What the app factory put on ``app.state`` that pages need, as FastAPI dependencies: the
process's ``ConnectionRuntime`` and the sync workers (to run a sync now)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from m365sync.connections.runtime import ConnectionRuntime
from m365sync.workers.dispatch import SyncWorkers


def runtime_of(request: Request) -> ConnectionRuntime:
    runtime = getattr(request.app.state, "runtime", None)
    if not isinstance(runtime, ConnectionRuntime):  # pragma: no cover - a wiring mistake
        raise RuntimeError("app.state.runtime is not set: build the app with m365sync.web.app")
    return runtime


def sync_workers_of(request: Request) -> SyncWorkers:
    workers: SyncWorkers | None = getattr(request.app.state, "sync_workers", None)
    if workers is None:  # pragma: no cover - a wiring mistake
        raise RuntimeError("app.state.sync_workers is not set: build the app with m365sync.web.app")
    return workers


Runtime = Annotated[ConnectionRuntime, Depends(runtime_of)]
Workers = Annotated[SyncWorkers, Depends(sync_workers_of)]
