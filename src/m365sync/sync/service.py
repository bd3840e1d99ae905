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
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy.orm import Session

from m365sync.audit import service as audit
from m365sync.connections.errors import ConnectionsError, MemberNotSynced, NoConnection
from m365sync.connections.models import Feature
from m365sync.connections.runtime import ConnectionRuntime, ExchangeAccess, MailboxAccess
from m365sync.crm import service as crm_service
from m365sync.db.base import utcnow
from m365sync.db.session import Database
from m365sync.errors import NotFound, ValidationFailed
from m365sync.logs import unit_logging
from m365sync.metrics import ITEMS_LOGGED, UNIT_RUNS
from m365sync.microsoft.errors import (
    AuthRevoked,
    ConsentMissing,
    CredentialError,
    MailboxNotEnabled,
    MailboxNotOnServer,
    MicrosoftError,
    Throttled,
)
from m365sync.microsoft.graph import RequestBudget
from m365sync.organizations.models import Member, Organization
from m365sync.organizations.service import EMAIL_RE, normalize_domain
from m365sync.settings import Settings, get_settings
from m365sync.sync.context import LeaseLost, Progress, RunContext
from m365sync.sync.features import SyncFeature
from m365sync.sync.models import SyncSettings, SyncUnit, UnitStage, UnitStatus
from m365sync.sync.repository import SyncRepository
from m365sync.sync.schemas import SyncRules
from m365sync.sync.status import judge_failure

__all__ = [
    "FirstSyncProgress",
    "HealthPoint",
    "HealthSummary",
    "MailboxOverview",
    "UnitResult",
    "disconnect_member",
    "first_sync_progress",
    "health",
    "health_history",
    "mailbox_overview",
    "mailbox_units",
    "request_full_resyncs",
    "request_resync",
    "run_unit",
    "run_units",
    "select_units",
    "sync_member",
    "sync_settings",
    "unit_statuses",
    "update_sync_settings",
    "worker_name",
]

log = logging.getLogger(__name__)

Outcome = Literal["ok", "busy", "failed", "lost", "gone", "stale"]
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
    """How one run of a unit went. ``busy``: another worker holds the unit's lease
    (``lease_owner``, until ``lease_expires_at``), so nothing ran; ``gone``: the unit or its
    member no longer exists; ``lost``: the lease was taken over mid-run; ``stale``: the queue
    ticket the run was asked with is no longer the unit's (it ran, or was queued again,
    since), so nothing ran."""

    unit_id: str
    outcome: Outcome
    status: UnitStatus
    progress: Progress
    error: str = ""
    fix: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    next_run_at: datetime | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None


def _runner(feature: SyncFeature) -> FeatureRunner:
    if feature == SyncFeature.EMAIL:
        from m365sync.sync.email import run_email_sync

        return run_email_sync
    if feature == SyncFeature.CALENDAR:
        from m365sync.sync.calendar import run_calendar_sync

        return run_calendar_sync
    from m365sync.sync.todo import run_task_sync

    return run_task_sync


def _busy_result(database: Database, unit_id: str) -> UnitResult:
    """What people need to know about a unit another worker is running: whose it is (its
    mailbox and feature) and who holds it until when."""
    with database.session() as session:
        repo = SyncRepository(session)
        unit = repo.unit(unit_id)
        member = repo.member(unit.member_id) if unit else None
        if unit is None or member is None:
            return UnitResult(unit_id, "gone", UnitStatus.PENDING, Progress(SyncFeature.EMAIL, ""))
        return UnitResult(
            unit_id,
            "busy",
            unit.status,
            Progress(unit.feature, member.email),
            lease_owner=unit.lease_owner,
            lease_expires_at=unit.lease_expires_at,
        )


def _release_after_failure(database: Database, unit_id: str, owner: str) -> None:
    """Give the lease back after a run that failed before recording its outcome, so the next
    run is not turned away as "already running" for the lease's remaining minutes. Never
    raises: if even this fails (the database is gone), the lease simply runs out."""
    try:
        with database.session() as session:
            SyncRepository(session).release_lease(unit_id, owner)
    except Exception:
        log.warning("could not release the lease of sync unit %s", unit_id, exc_info=True)


async def run_unit(
    database: Database,
    runtime: ConnectionRuntime,
    unit_id: str,
    *,
    full: bool = False,
    owner: str | None = None,
    settings: Settings | None = None,
    budget: RequestBudget | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    ticket: str | None = None,
) -> UnitResult:
    """Run one unit now, unless another worker holds its lease (``busy``) or, when asked
    with a queue ``ticket``, the ticket is no longer the unit's (``stale``). Every failure,
    Microsoft's or our own, ends as the unit's status and message; the lease taken here is
    given back however the run ends (a crash included), so the next run never waits for it
    to expire. Its Graph requests count against ``budget`` (default: the runtime's for
    this event loop)."""
    with unit_logging(unit_id):
        result = await _run_unit(
            database,
            runtime,
            unit_id,
            full=full,
            owner=owner or worker_name(),
            settings=settings or get_settings(),
            budget=budget or runtime.request_budget(),
            on_progress=on_progress,
            ticket=ticket,
        )
    UNIT_RUNS.labels(result.progress.feature.value, result.outcome).inc()
    if result.progress.logged:
        ITEMS_LOGGED.labels(result.progress.feature.value).inc(result.progress.logged)
    return result


async def _run_unit(
    database: Database,
    runtime: ConnectionRuntime,
    unit_id: str,
    *,
    full: bool,
    owner: str,
    settings: Settings,
    budget: RequestBudget,
    on_progress: Callable[[Progress], None] | None,
    ticket: str | None,
) -> UnitResult:
    def start() -> (
        tuple[SyncUnit, Member, MailboxAccess | ExchangeAccess | None, Exception | None] | str
    ):
        with database.session() as session:
            repo = SyncRepository(session)
            if not repo.try_lease(unit_id, owner, settings.sync_lease_seconds, ticket=ticket):
                found = repo.unit(unit_id)
                if found is None:
                    return "gone"
                return "stale" if ticket is not None and found.queue_ticket != ticket else "busy"
            unit = repo.unit(unit_id)
            member = repo.member(unit.member_id) if unit else None
            if unit is None or member is None:
                repo.release_lease(unit_id, owner)
                return "gone"
            first = not repo.cursors(unit.id)
            unit.stage = (
                UnitStage.INITIAL_SYNC
                if (full or unit.full_resync_requested or first)
                else UnitStage.INCREMENTAL
            )
            unit.stage_started_at = unit.last_attempt_at = utcnow()
            unit.counts = {**(unit.counts or {}), "run_items": 0, "run_expected": 0}
            access: MailboxAccess | ExchangeAccess | None = None
            problem: Exception | None = None
            try:
                # No network here: the connection's MSAL app asks Entra ID only when the
                # run requests its first token, outside this transaction.
                access = runtime.mailbox_access(session, member, _CONNECTION_FEATURE[unit.feature])
            except (MicrosoftError, ConnectionsError) as exc:
                problem = exc  # anything else rolls back, the lease with it
            session.expunge(unit)
            session.expunge(member)
            return unit, member, access, problem

    started = await asyncio.to_thread(start)
    if started == "busy":
        return await asyncio.to_thread(_busy_result, database, unit_id)
    if started == "stale":
        return UnitResult(unit_id, "stale", UnitStatus.PENDING, Progress(SyncFeature.EMAIL, ""))
    if isinstance(started, str):
        return UnitResult(unit_id, "gone", UnitStatus.PENDING, Progress(SyncFeature.EMAIL, ""))
    unit, member, access, problem = started
    try:
        return await _run_and_record(
            database,
            runtime,
            unit,
            member,
            access,
            problem,
            full=full,
            owner=owner,
            settings=settings,
            budget=budget,
            on_progress=on_progress,
        )
    except Exception:
        await asyncio.to_thread(_release_after_failure, database, unit.id, owner)
        raise
    except BaseException:  # cancelled (the server stopping): no awaiting any more
        _release_after_failure(database, unit.id, owner)
        raise


def _other_protocol(
    database: Database,
    runtime: ConnectionRuntime,
    member: Member,
    unit: SyncUnit,
    access: MailboxAccess | ExchangeAccess,
) -> MailboxAccess | ExchangeAccess | None:
    with database.session() as session:
        return runtime.other_protocol(session, member, _CONNECTION_FEATURE[unit.feature], access)


async def _run_and_record(
    database: Database,
    runtime: ConnectionRuntime,
    unit: SyncUnit,
    member: Member,
    access: MailboxAccess | ExchangeAccess | None,
    problem: Exception | None,
    *,
    full: bool,
    owner: str,
    settings: Settings,
    budget: RequestBudget,
    on_progress: Callable[[Progress], None] | None,
) -> UnitResult:
    """The run proper and its outcome, recorded with the lease given back in one
    transaction. Raises only if the outcome can't be recorded (the caller then gives the
    lease back on its own)."""
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
        if unit.protocol and unit.protocol != access.protocol:
            ctx.full = True  # another protocol's cursors mean nothing here: start over
        try:
            try:
                await _runner(unit.feature)(ctx)
            except (MailboxNotEnabled, MailboxNotOnServer):
                # On-premises for Graph, or moved to Exchange Online for the Exchange Server:
                # the other protocol serves it if the organization has a connection for it.
                other = await asyncio.to_thread(
                    _other_protocol, database, runtime, member, unit, access
                )
                if other is None:
                    raise
                access = ctx.access = other
                ctx.full = True
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
            if ctx is not None:
                row.protocol = ctx.access.protocol
            if error is None:
                row.status = UnitStatus.ACTIVE
                row.failure_count = 0
                row.last_success_at = now
                row.last_error = row.last_error_fix = row.last_error_code = ""
                row.full_resync_requested = False if ctx and ctx.full else row.full_resync_requested
                interval = repo.settings_for(row.organization_id).poll_interval_seconds
                if repo.has_healthy_subscriptions(row.id, now):
                    interval *= settings.sync_subscribed_poll_factor
                if not unit.stage_started_at <= row.next_run_at <= now:
                    row.next_run_at = now + timedelta(
                        seconds=interval + random.uniform(0, settings.sync_jitter_seconds)  # noqa: S311 (jitter)
                    )
                # else a run was asked for while this one ran (a change notification, "sync
                # now"): what it announced may have come after our delta round, so it stays due.
                outcome: Outcome = "ok"
            else:
                failures = row.failure_count + 1
                verdict = judge_failure(error, failures, now, settings)
                if row.status == UnitStatus.DISCONNECTED and isinstance(
                    error, NoConnection | MemberNotSynced
                ):
                    # Still disconnected by the member's choice: nothing to fix, nothing to show.
                    verdict = replace(
                        verdict, status=UnitStatus.DISCONNECTED, message="", fix="", code=""
                    )
                    failures = row.failure_count
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
            _record_health(repo, row, progress, error, now)
            repo.release_lease(row.id, owner)
            return UnitResult(
                row.id,
                outcome,
                row.status,
                progress,
                row.last_error,
                row.last_error_fix,
                next_run_at=row.next_run_at,
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


def select_units(
    session: Session, org: str | None, mailbox: str | None, features: list[SyncFeature]
) -> dict[str, str]:
    """The units of the members ``org`` (an organization's slug, id or name) and ``mailbox``
    (a member's address) select, one per feature, created when missing; every member of
    every organization when both are omitted. Each id comes with how people name the unit
    ("adele@contoso.com email"). Empty when no member matches."""
    repo = SyncRepository(session)
    return {
        repo.ensure_unit(member, feature).id: f"{member.email} {feature.value}"
        for member in repo.find_members(org, mailbox)
        for feature in features
    }


async def run_units(
    database: Database,
    runtime: ConnectionRuntime,
    unit_ids: list[str],
    *,
    full: bool = False,
    settings: Settings | None = None,
    on_progress: Callable[[str], Callable[[Progress], None]] | None = None,
) -> list[UnitResult | BaseException]:
    """Run the units now, ``sync_max_parallel_units`` at a time; results in ``unit_ids``'
    order. One unit's failure never stops the others: each ends with its own result, or
    with the exception that stopped it before its outcome could be recorded (its lease was
    given back). ``on_progress(unit_id)`` is asked for the unit's progress callback when
    the unit starts."""
    settings = settings or get_settings()
    gate = asyncio.Semaphore(settings.sync_max_parallel_units)

    async def one(unit_id: str) -> UnitResult:
        async with gate:
            try:
                return await run_unit(
                    database,
                    runtime,
                    unit_id,
                    full=full,
                    settings=settings,
                    on_progress=on_progress(unit_id) if on_progress else None,
                )
            except Exception:
                log.debug("sync of unit %s stopped", unit_id, exc_info=True)
                raise

    return list(await asyncio.gather(*(one(u) for u in unit_ids), return_exceptions=True))


# -- what people see and change: status, resync, the organization's sync rules -------------
# Callers pass a ``Session`` and commit at their boundary (the dashboard's request).


@dataclass
class HealthSummary:
    """An organization's members and mailboxes at a glance. Each mailbox is counted once,
    by its worst feature: one mailbox whose three features all sync is one healthy mailbox.
    A mailbox its member disconnected is a choice, counted apart and never as needing
    attention."""

    members: int = 0
    mailboxes: int = 0  # members with something syncing (or disconnected)
    healthy: int = 0
    syncing: int = 0
    failing: int = 0
    parked: int = 0
    disconnected: int = 0
    parked_reasons: dict[str, int] = field(default_factory=dict)


def _mailbox_state(units: list[SyncUnit]) -> tuple[str, set[str]]:
    """One mailbox's state from its features' units, worst first, and why it is parked."""
    statuses = [UnitStatus(u.status) for u in units]
    reasons = {status.value.replace("_", " ") for status in statuses if status.parked}
    if reasons:
        return "parked", reasons
    if UnitStatus.BACKING_OFF in statuses:
        return "failing", reasons
    if all(status == UnitStatus.DISCONNECTED for status in statuses):
        return "disconnected", reasons
    if any(
        u.stage in (UnitStage.INITIAL_SYNC, UnitStage.QUEUED) or u.status == UnitStatus.PENDING
        for u in units
    ):
        return "syncing", reasons
    return "healthy", reasons


def health(units: list[SyncUnit], members: int = 0) -> HealthSummary:
    """``members``: how many members the organization has (mailboxes are counted from
    ``units``)."""
    by_mailbox: dict[str, list[SyncUnit]] = {}
    for unit in units:
        by_mailbox.setdefault(unit.member_id, []).append(unit)
    summary = HealthSummary(members=max(members, len(by_mailbox)), mailboxes=len(by_mailbox))
    for units_of_mailbox in by_mailbox.values():
        state, reasons = _mailbox_state(units_of_mailbox)
        setattr(summary, state, getattr(summary, state) + 1)
        for reason in reasons:
            summary.parked_reasons[reason] = summary.parked_reasons.get(reason, 0) + 1
    return summary


def mailbox_units(
    session: Session, organization_id: str, member_ids: list[str] | None = None
) -> list[SyncUnit]:
    """The organization's sync units (or those of ``member_ids``), by member and feature."""
    return SyncRepository(session).units(organization_id, member_ids)


@dataclass
class MailboxOverview:
    """What the dashboard shows of an organization's mailboxes: each feature's unit, how
    many distinct items each holds in the CRM now (``held``, by member id and feature: a
    resync does not add to it), and the health tiles."""

    units: list[SyncUnit]
    held: dict[tuple[str, str], int]
    health: HealthSummary


_HELD_KIND = {"email": SyncFeature.EMAIL, "event": SyncFeature.CALENDAR, "task": SyncFeature.TASKS}


def mailbox_overview(
    session: Session, organization_id: str, member_ids: list[str] | None = None
) -> MailboxOverview:
    """The organization's mailboxes (or those of ``member_ids``) for the dashboard."""
    repo = SyncRepository(session)
    units = mailbox_units(session, organization_id, member_ids)
    held = {
        (member_id, _HELD_KIND[kind.value].value): count
        for (member_id, kind), count in crm_service.activities_held_by_members(
            session, organization_id
        ).items()
        if member_ids is None or member_id in member_ids
    }
    members = len(member_ids) if member_ids is not None else repo.member_count(organization_id)
    return MailboxOverview(units=units, held=held, health=health(units, members))


HEALTH_BUCKET_SECONDS = 300
HEALTH_HISTORY_DAYS = 14


def health_bucket(moment: datetime) -> datetime:
    """The five-minute bucket ``moment`` falls in."""
    seconds = int(moment.timestamp()) // HEALTH_BUCKET_SECONDS * HEALTH_BUCKET_SECONDS
    return datetime.fromtimestamp(seconds, tz=moment.tzinfo)


def _record_health(
    repo: SyncRepository, unit: SyncUnit, progress: Progress, error: Exception | None, now: datetime
) -> None:
    """A run's outcome into the health charts' bucket; older samples are dropped now and
    then (on the hour's first bucket)."""
    throttled = isinstance(error, Throttled)
    disconnected = unit.status == UnitStatus.DISCONNECTED
    repo.record_health(
        unit.organization_id,
        unit.member_id,
        health_bucket(now),
        items_logged=progress.logged,
        errors=int(error is not None and not throttled and not disconnected),
        throttled=int(throttled),
        backlog=repo.member_backlog(unit.member_id, now),
    )
    if now.minute == 0:
        repo.forget_health_before(now - timedelta(days=HEALTH_HISTORY_DAYS))


@dataclass(frozen=True)
class HealthPoint:
    """One bucket of an organization's or member's sync health."""

    at: datetime
    items_logged: int
    errors: int
    throttled: int
    backlog: int


def health_history(
    session: Session, organization_id: str, member_id: str | None = None, *, hours: int = 6
) -> list[HealthPoint]:
    """Sync health over the last ``hours``, every five-minute bucket present (an idle one
    as zeros), oldest first: what the dashboard's charts draw."""
    now = utcnow()
    first = health_bucket(now - timedelta(hours=hours)) + timedelta(seconds=HEALTH_BUCKET_SECONDS)
    rows = {
        bucket: (logged, errors, throttled, backlog)
        for bucket, logged, errors, throttled, backlog in SyncRepository(session).health_series(
            organization_id, member_id, first
        )
    }
    points = []
    at = first
    while at <= now:
        logged, errors, throttled, backlog = rows.get(at, (0, 0, 0, 0))
        points.append(HealthPoint(at, logged, errors, throttled, backlog))
        at += timedelta(seconds=HEALTH_BUCKET_SECONDS)
    return points


@dataclass(frozen=True)
class FirstSyncProgress:
    """A first sync (or full resync) under way: items done of those expected (when
    Microsoft counted them), the rate so far and the time left at that rate."""

    done: int
    expected: int | None
    per_second: float
    seconds_left: float | None


def first_sync_progress(unit: SyncUnit, now: datetime | None = None) -> FirstSyncProgress | None:
    """None unless the unit is in its first sync (or a full resync) right now."""
    if unit.stage != UnitStage.INITIAL_SYNC or unit.lease_owner is None:
        return None
    counts = unit.counts or {}
    done, expected = int(counts.get("run_items", 0)), int(counts.get("run_expected", 0))
    elapsed = max(((now or utcnow()) - unit.stage_started_at).total_seconds(), 1.0)
    rate = done / elapsed
    left = max(expected - done, 0) / rate if expected and rate > 0 and expected >= done else None
    return FirstSyncProgress(done, expected or None, rate, left)


def disconnect_member(
    session: Session,
    runtime: ConnectionRuntime,
    organization: Organization,
    member: Member,
    *,
    actor: str | None = None,
) -> bool:
    """The member's own connection and its tokens deleted, and every feature of their
    mailbox marked "disconnected" at once, so the connection and the sync status agree.
    The mailbox is checked again now and then: a service account covering it later, or
    connecting again, makes it active. Returns False if there was no connection."""
    # Imported here: user connections bring EWS and Run Test, which a sync run never needs.
    from m365sync.connections import user_connections

    if not user_connections.disconnect(session, runtime, organization, member, actor=actor):
        return False
    repo = SyncRepository(session)
    for unit in repo.units(organization.id, [member.id]):
        unit.status = UnitStatus.DISCONNECTED
        unit.stage = UnitStage.IDLE
        unit.stage_started_at = utcnow()
        unit.last_error = unit.last_error_fix = unit.last_error_code = ""
        unit.failure_count = 0
    return True


def unit_statuses(
    session: Session, org: str | None, mailbox: str | None
) -> list[tuple[str, SyncUnit]]:
    """The units of the members ``org`` and ``mailbox`` select (as ``select_units``), each
    with its member's address, by member and feature."""
    repo = SyncRepository(session)
    members = {m.id: m.email for m in repo.find_members(org, mailbox)}
    return [(members[u.member_id], u) for u in repo.units(member_ids=list(members))]


def request_full_resyncs(
    session: Session, org: str | None, mailbox: str | None, features: list[SyncFeature]
) -> dict[str, str]:
    """A full resync at their next run for the units ``select_units`` picks (created when
    missing), which it returns; empty when no member matches."""
    units = select_units(session, org, mailbox, features)
    repo = SyncRepository(session)
    for unit_id in units:
        unit = repo.unit(unit_id)
        if unit is not None:
            repo.request_full_resync(unit)
    return units


def request_resync(session: Session, member: Member, feature: str, *, actor: str) -> str:
    """A full resync of one mailbox feature at its next run (as ``m365sync resync``). Returns
    the unit's id so the caller can wake the workers once its transaction commits."""
    repo = SyncRepository(session)
    unit = next(
        (u for u in repo.units(member.organization_id, [member.id]) if u.feature == feature), None
    )
    if unit is None:
        raise NotFound(
            "This mailbox has no sync for that feature yet.",
            fix="It starts once a connection serves the feature; check Service Accounts.",
        )
    repo.request_full_resync(unit)
    repo.schedule_now(unit.id)
    audit.record(
        session, member.organization_id, actor, "sync.resync", member.email, feature=feature
    )
    return unit.id


def sync_settings(session: Session, organization_id: str) -> SyncSettings:
    """The organization's sync rules, read by the engine at every run (defaults if unset)."""
    return SyncRepository(session).settings_for(organization_id)


def _rules_problems(rules: SyncRules) -> list[str]:
    problems = []
    if not rules.mail_folders:
        problems.append(
            "Choose at least one mail folder (Inbox and Sent Items are the usual pair)."
        )
    if not 0 <= rules.backfill_days <= 3650:
        problems.append("Backfill window: enter a number of days from 0 (everything) to 3650.")
    if not 0 <= rules.calendar_days_back <= 3650 or not 1 <= rules.calendar_days_ahead <= 3650:
        problems.append(
            "Calendar window: enter days back from 0 and days ahead from 1, up to 3650."
        )
    if rules.delete_policy not in {"keep", "delete"}:
        problems.append("Deletions: choose keep or delete.")
    bad = [a for a in rules.excluded_addresses if not EMAIL_RE.match(a)]
    if bad:
        problems.append(f"Excluded addresses: {', '.join(bad)} is not an email address.")
    bad_domains = []
    for name in rules.excluded_domains:
        try:
            normalize_domain(name)
        except ValidationFailed:
            bad_domains.append(name)
    if bad_domains:
        problems.append(f"Excluded domains: {', '.join(bad_domains)} is not a domain name.")
    return problems


def update_sync_settings(
    session: Session, organization_id: str, rules: SyncRules, *, actor: str
) -> None:
    """Replace the organization's sync rules, all or nothing: every problem is named in one
    error's fix so the admin can correct the whole form at once."""
    problems = _rules_problems(rules)
    if problems:
        raise ValidationFailed("The settings were not saved.", fix=" ".join(problems))
    row = sync_settings(session, organization_id)
    row.mail_folders = rules.mail_folders
    row.backfill_days = rules.backfill_days
    row.log_internal = rules.log_internal
    row.excluded_addresses = rules.excluded_addresses
    row.excluded_domains = [normalize_domain(d) for d in rules.excluded_domains]
    row.headers_only = rules.headers_only
    row.log_unknown = rules.log_unknown
    row.create_leads = rules.create_leads
    row.delete_policy = rules.delete_policy
    row.calendar_days_back = rules.calendar_days_back
    row.calendar_days_ahead = rules.calendar_days_ahead
    audit.record(session, organization_id, actor, "sync_settings.update", "sync settings")
