"""What pages need besides the signed-in person: the process's ``ConnectionRuntime`` and the
sync workers the app factory put on ``app.state`` (as FastAPI dependencies), and the
signed-in person's organization and member rows, which the services take."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from m365sync.connections.runtime import ConnectionRuntime
from m365sync.organizations import service as organizations
from m365sync.organizations.models import Member, Organization
from m365sync.web.auth.service import SignedIn
from m365sync.web.sync_workers import SyncWorkers


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


def organization_of(db: Session, me: SignedIn) -> Organization:
    """The signed-in person's organization: every page acts within it only."""
    return organizations.get_organization(db, me.organization_id)


def member_of(db: Session, me: SignedIn) -> Member:
    return organizations.get_member(db, organization_of(db, me), me.member_id)
