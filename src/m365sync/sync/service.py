"""The unit of work: ``sync(mailbox, feature)`` — idempotent, resumable, never twice at once.

A run takes the unit's lease (one conditional UPDATE, committed), resolves how to reach the
mailbox (``ConnectionRuntime.graph_for_mailbox``), runs the feature, and records the
outcome as a status people see. Every page commits with its cursor, so a run killed at
any point resumes where it stopped; a second caller while the lease is live gets
``busy`` and does nothing. The in-process scheduler, the CLI, webhooks and Celery
workers all call ``run_unit``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from m365sync.connections.errors import ConnectionsError
from m365sync.connections.models import Feature
from m365sync.connections.runtime import ConnectionRuntime, MailboxAccess
from m365sync.db.base import utcnow
from m365sync.db.session import Database
from m365sync.microsoft.errors import AuthRevoked, ConsentMissing, CredentialError, MicrosoftError
from m365sync.organizations.models import Member
from m365sync.sync.config import EngineSettings, get_engine_settings
from m365sync.sync.context import LeaseLost, Progress, RequestBudget, RunContext
from m365sync.sync.models import SyncFeature, SyncUnit, UnitStage, UnitStatus
from m365sync.sync.repository import SyncRepository
from m365sync.sync.status import judge_failure

__all__ = ["UnitResult", "run_unit", "sync_member", "worker_name"]

log = logging.getLogger(__name__)

Outcome = Literal["ok", "busy", "failed", "lost"]
FeatureRunner = Callable[[RunContext], Awaitable[None]]

_CONNECTION_FEATURE = {
    SyncFeature.EMAIL: Feature.EMAIL,
    SyncFeature.CALENDAR: Feature.CALENDAR,
    SyncFeature.TASKS: Feature.TASKS,
}


def worker_name() -> str:
    """A lease owner name unique to this process (host, pid and a random suffix)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class UnitResult:
    unit_id: str
    outcome: Outcome
    status: UnitStatus
    progress: Progress
    error: str = ""
    fix: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _runner(feature: SyncFeature) -> FeatureRunner:
    if feature == SyncFeature.EMAIL:
        from m365sync.sync.email import run_email_sync

        return run_email_sync
    if feature == SyncFeature.CALENDAR:
        from m365sync.sync.calendar import run_calendar_sync

        return run_calendar_sync
    from m365sync.sync.tasks import run_task_sync

    return run_task_sync


def _budget_for_loop(limit: int) -> RequestBudget:
    loop = asyncio.get_running_loop()
    budget: RequestBudget | None = getattr(loop, "_m365sync_budget", None)
    if budget is None:
        budget = RequestBudget(limit)
        loop._m365sync_budget = budget  # type: ignore[attr-defined]
    return budget


async def run_unit(
    database: Database,
    runtime: ConnectionRuntime,
    unit_id: str,
    *,
    full: bool = False,
    owner: str | None = None,
    settings: EngineSettings | None = None,
    budget: RequestBudget | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> UnitResult:
    settings = settings or get_engine_settings()
    owner = owner or worker_name()
    budget = budget or _budget_for_loop(settings.sync_request_budget)

    def start() -> tuple[SyncUnit, Member, MailboxAccess | None, Exception | None] | None:
        with database.session() as session:
            repo = SyncRepository(session)
            if not repo.try_lease(unit_id, owner, settings.sync_lease_seconds):
                return None
            unit = repo.unit(unit_id)
            member = repo.member(unit.member_id) if unit else None
            if unit is None or member is None:
                return None
            first = not repo.cursors(unit.id)
            unit.stage = (
                UnitStage.INITIAL_SYNC
                if (full or unit.full_resync_requested or first)
                else UnitStage.INCREMENTAL
            )
            unit.stage_started_at = unit.last_attempt_at = utcnow()
            access: MailboxAccess | None = None
            problem: Exception | None = None
            try:
                access = runtime.graph_for_mailbox(
                    session, member, _CONNECTION_FEATURE[unit.feature]
                )
            except (MicrosoftError, ConnectionsError) as exc:
                problem = exc
            session.expunge(unit)
            session.expunge(member)
            return unit, member, access, problem

    started = await asyncio.to_thread(start)
    if started is None:
        return UnitResult(unit_id, "busy", UnitStatus.PENDING, Progress(SyncFeature.EMAIL, ""))
    unit, member, access, problem = started
    progress = Progress(unit.feature, member.email, on_change=on_progress)
    ctx: RunContext | None = None
    error: Exception | None = problem
    if access is not None:
        ctx = RunContext(
            database=database,
            unit_id=unit.id,
            organization_id=unit.organization_id,
            member_id=member.id,
            member_email=member.email,
            access=access,
            settings=settings,
            lease_owner=owner,
            budget=budget,
            progress=progress,
            full=full or unit.full_resync_requested,
        )
        try:
            await _runner(unit.feature)(ctx)
        except LeaseLost:
            return UnitResult(unit.id, "lost", unit.status, progress)
        except Exception as exc:  # every failure becomes a status; bugs are logged loudly
            if not isinstance(exc, MicrosoftError | ConnectionsError):
                log.exception(
                    "sync of %s (%s) failed unexpectedly", member.email, unit.feature.value
                )
            error = exc

    def finish() -> UnitResult:
        with database.session() as session:
            repo = SyncRepository(session)
            row = repo.unit(unit.id)
            assert row is not None
            now = utcnow()
            row.stage = UnitStage.IDLE
            row.stage_started_at = now
            counts = dict(row.counts or {})
            for key, value in progress.as_counts().items():
                counts[f"last_{key}"] = value
                if key in ("logged", "removed", "quarantined", "pushed", "items"):
                    counts[f"total_{key}"] = int(counts.get(f"total_{key}", 0)) + value
            row.counts = counts
            runtime.save_token_caches(session)
            if error is None:
                row.status = UnitStatus.ACTIVE
                row.failure_count = 0
                row.last_success_at = now
                row.last_error = row.last_error_fix = row.last_error_code = ""
                row.full_resync_requested = False if ctx and ctx.full else row.full_resync_requested
                interval = repo.settings_for(row.organization_id).poll_interval_seconds
                if repo.has_healthy_subscriptions(row.id, now):
                    interval *= settings.sync_subscribed_poll_factor
                row.next_run_at = now + timedelta(
                    seconds=interval + random.uniform(0, settings.sync_jitter_seconds)  # noqa: S311 (jitter)
                )
                outcome: Outcome = "ok"
            else:
                failures = row.failure_count + 1
                verdict = judge_failure(error, failures, now, settings)
                row.status = verdict.status
                row.failure_count = failures if verdict.counts_as_failure else row.failure_count
                row.last_error, row.last_error_fix, row.last_error_code = (
                    verdict.message,
                    verdict.fix,
                    verdict.code,
                )
                row.next_run_at = verdict.next_run_at
                if access is not None and isinstance(
                    error, AuthRevoked | CredentialError | ConsentMissing
                ):
                    runtime.report_failure(session, access, error)
                outcome = "failed"
            repo.release_lease(row.id, owner)
            return UnitResult(
                row.id, outcome, row.status, progress, row.last_error, row.last_error_fix
            )

    return await asyncio.to_thread(finish)


def ensure_units(
    database: Database, member_ids: list[str], features: list[SyncFeature]
) -> list[str]:
    with database.session() as session:
        repo = SyncRepository(session)
        ids = []
        for member_id in member_ids:
            member = repo.member(member_id)
            if member is None:
                continue
            for feature in features:
                ids.append(repo.ensure_unit(member, feature).id)
        return ids


async def sync_member(
    database: Database,
    runtime: ConnectionRuntime,
    member_id: str,
    feature: SyncFeature,
    **kwargs: Any,
) -> UnitResult:
    """``sync(mailbox, feature)``: the unit for this member and feature, run now."""
    (unit_id,) = await asyncio.to_thread(ensure_units, database, [member_id], [feature])
    return await run_unit(database, runtime, unit_id, **kwargs)
