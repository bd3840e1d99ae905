"""Queries over sync state. A repository never commits: the job boundary does."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import and_, case, delete, func, or_, select, update
from sqlalchemy.orm import Session

from m365sync.db.base import dialect_insert, new_id, utcnow
from m365sync.organizations.models import Domain, Member, Organization
from m365sync.sync.features import SyncFeature
from m365sync.sync.models import (
    GraphSubscription,
    QuarantinedItem,
    SchedulerLease,
    SyncCursor,
    SyncHealthSample,
    SyncSettings,
    SyncUnit,
    UnitStage,
    UnitStatus,
)

__all__ = ["SyncRepository"]


class SyncRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- organizations and members ----------------------------------------------------------
    def settings_for(self, organization_id: str) -> SyncSettings:
        """The organization's settings; a row with the defaults is created when missing
        (safe when several units ask at once)."""
        found = self.session.get(SyncSettings, organization_id)
        if found is None:
            self.session.execute(
                dialect_insert(self.session, SyncSettings)
                .values(organization_id=organization_id)
                .on_conflict_do_nothing()
            )
            found = self.session.get(SyncSettings, organization_id)
            assert found is not None
        return found

    def org_domains(self, organization_id: str) -> list[str]:
        return list(
            self.session.scalars(
                select(Domain.name).where(Domain.organization_id == organization_id)
            )
        )

    def member(self, member_id: str) -> Member | None:
        return self.session.get(Member, member_id)

    def find_members(self, org: str | None = None, mailbox: str | None = None) -> list[Member]:
        stmt = select(Member).join(Organization, Organization.id == Member.organization_id)
        if org:
            stmt = stmt.where(
                or_(Organization.slug == org, Organization.id == org, Organization.name == org)
            )
        if mailbox:
            stmt = stmt.where(func.lower(Member.email) == mailbox.lower())
        return list(self.session.scalars(stmt.order_by(Member.email)))

    # -- units ------------------------------------------------------------------------------
    def member_count(self, organization_id: str) -> int:
        return int(
            self.session.scalar(
                select(func.count())
                .select_from(Member)
                .where(Member.organization_id == organization_id)
            )
            or 0
        )

    def record_health(
        self,
        organization_id: str,
        member_id: str,
        bucket: datetime,
        *,
        items_logged: int,
        errors: int,
        throttled: int,
        backlog: int,
    ) -> None:
        """Add a run's outcome to its bucket (one statement: runs ending together add up)."""
        insert = dialect_insert(self.session, SyncHealthSample).values(
            organization_id=organization_id,
            member_id=member_id,
            bucket=bucket,
            items_logged=items_logged,
            errors=errors,
            throttled=throttled,
            backlog=backlog,
        )
        table = SyncHealthSample.__table__.c
        self.session.execute(
            insert.on_conflict_do_update(
                index_elements=["organization_id", "member_id", "bucket"],
                set_={
                    "items_logged": table.items_logged + insert.excluded.items_logged,
                    "errors": table.errors + insert.excluded.errors,
                    "throttled": table.throttled + insert.excluded.throttled,
                    "backlog": insert.excluded.backlog,
                },
            )
        )

    def health_series(
        self, organization_id: str, member_id: str | None, since: datetime
    ) -> list[tuple[datetime, int, int, int, int]]:
        """Per bucket since ``since``: items logged, errors, throttled runs, backlog (the
        organization's members added up, or one member's)."""
        query = (
            select(
                SyncHealthSample.bucket,
                func.sum(SyncHealthSample.items_logged),
                func.sum(SyncHealthSample.errors),
                func.sum(SyncHealthSample.throttled),
                func.sum(SyncHealthSample.backlog),
            )
            .where(
                SyncHealthSample.organization_id == organization_id,
                SyncHealthSample.bucket >= since,
            )
            .group_by(SyncHealthSample.bucket)
            .order_by(SyncHealthSample.bucket)
        )
        if member_id is not None:
            query = query.where(SyncHealthSample.member_id == member_id)
        return [
            (bucket, int(logged or 0), int(errors or 0), int(throttled or 0), int(backlog or 0))
            for bucket, logged, errors, throttled, backlog in self.session.execute(query)
        ]

    def forget_health_before(self, before: datetime) -> None:
        self.session.execute(delete(SyncHealthSample).where(SyncHealthSample.bucket < before))

    def save_run_progress(self, unit_id: str, items: int, expected: int) -> None:
        """How far the running pass is, for the dashboard's first-sync progress."""
        unit = self.session.get(SyncUnit, unit_id)
        if unit is not None:
            unit.counts = {**(unit.counts or {}), "run_items": items, "run_expected": expected}

    def unit(self, unit_id: str) -> SyncUnit | None:
        return self.session.get(SyncUnit, unit_id)

    def ensure_unit(self, member: Member, feature: SyncFeature) -> SyncUnit:
        """The unit of ``member``/``feature``, created when missing (safe under races)."""
        found = self.session.scalar(
            select(SyncUnit).where(SyncUnit.member_id == member.id, SyncUnit.feature == feature)
        )
        if found is not None:
            return found
        row = {
            "id": new_id(),
            "organization_id": member.organization_id,
            "member_id": member.id,
            "feature": feature,
            "status": "pending",
            "stage": "idle",
            "stage_started_at": utcnow(),
            "failure_count": 0,
            "last_error": "",
            "last_error_fix": "",
            "last_error_code": "",
            "counts": {},
            "next_run_at": utcnow(),
            "full_resync_requested": False,
            "created_at": utcnow(),
        }
        self.session.execute(
            dialect_insert(self.session, SyncUnit).values(row).on_conflict_do_nothing()
        )
        unit = self.session.scalar(
            select(SyncUnit).where(SyncUnit.member_id == member.id, SyncUnit.feature == feature)
        )
        assert unit is not None
        return unit

    def units(
        self, organization_id: str | None = None, member_ids: Sequence[str] | None = None
    ) -> list[SyncUnit]:
        stmt = select(SyncUnit)
        if organization_id:
            stmt = stmt.where(SyncUnit.organization_id == organization_id)
        if member_ids is not None:
            stmt = stmt.where(SyncUnit.member_id.in_(list(member_ids)))
        return list(self.session.scalars(stmt.order_by(SyncUnit.member_id, SyncUnit.feature)))

    def due_units(self, now: datetime, limit: int) -> list[SyncUnit]:
        return list(
            self.session.scalars(
                select(SyncUnit)
                .where(
                    SyncUnit.next_run_at <= now,
                    or_(SyncUnit.lease_owner.is_(None), SyncUnit.lease_expires_at < now),
                )
                .order_by(SyncUnit.next_run_at)
                .limit(limit)
            )
        )

    def units_to_queue(
        self,
        now: datetime,
        limit: int,
        requeue_before: datetime,
        *,
        first_syncs: int | None = None,
    ) -> list[str]:
        """Due units nobody runs (no live lease) and nobody queued since ``requeue_before``:
        what the elected scheduler hands to the Celery queue. Units that have synced before
        (short incremental runs) come first, then those that never have (first syncs, which
        may take long), each the longest due first; at most ``first_syncs`` of the latter
        (None: no cap)."""
        free = (
            SyncUnit.next_run_at <= now,
            or_(SyncUnit.lease_owner.is_(None), SyncUnit.lease_expires_at < now),
            or_(SyncUnit.queue_ticket.is_(None), SyncUnit.queued_at < requeue_before),
        )
        synced = list(
            self.session.scalars(
                select(SyncUnit.id)
                .where(*free, SyncUnit.last_success_at.is_not(None))
                .order_by(SyncUnit.next_run_at)
                .limit(limit)
            )
        )
        room = limit - len(synced)
        if first_syncs is not None:
            room = min(room, first_syncs)
        if room <= 0:
            return synced
        never = self.session.scalars(
            select(SyncUnit.id)
            .where(*free, SyncUnit.last_success_at.is_(None))
            .order_by(SyncUnit.next_run_at)
            .limit(room)
        )
        return [*synced, *never]

    def first_syncs_in_flight(self, now: datetime, requeue_before: datetime) -> int:
        """Units that never synced and are running (a live lease) or waiting in the queue
        (queued since ``requeue_before``)."""
        return int(
            self.session.scalar(
                select(func.count())
                .select_from(SyncUnit)
                .where(
                    SyncUnit.last_success_at.is_(None),
                    or_(
                        SyncUnit.lease_expires_at >= now,
                        and_(
                            SyncUnit.queue_ticket.is_not(None),
                            SyncUnit.queued_at >= requeue_before,
                        ),
                    ),
                )
            )
            or 0
        )

    def mark_queued(self, unit_id: str) -> str:
        """A new queue ticket for the unit (replacing any older one); returns it."""
        ticket = uuid.uuid4().hex
        self.session.execute(
            update(SyncUnit)
            .where(SyncUnit.id == unit_id)
            .values(queue_ticket=ticket, queued_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return ticket

    def withdraw_ticket(self, unit_id: str, ticket: str) -> None:
        """Forget ``ticket`` if it is still the unit's (its message will not run it), so
        the scheduler queues the unit again as soon as it is due and free."""
        self.session.execute(
            update(SyncUnit)
            .where(SyncUnit.id == unit_id, SyncUnit.queue_ticket == ticket)
            .values(queue_ticket=None, queued_at=None)
            .execution_options(synchronize_session=False)
        )

    def unit_totals(self) -> list[tuple[str, str, str, int]]:
        """How many units there are by (feature, status, stage), every organization."""
        rows = self.session.execute(
            select(SyncUnit.feature, SyncUnit.status, SyncUnit.stage, func.count()).group_by(
                SyncUnit.feature, SyncUnit.status, SyncUnit.stage
            )
        )
        return [(str(f.value), str(st.value), str(sg.value), int(n)) for f, st, sg, n in rows]

    def member_backlog(self, member_id: str, now: datetime) -> int:
        """The member's units due and waiting for a worker."""
        return int(
            self.session.scalar(
                select(func.count())
                .select_from(SyncUnit)
                .where(
                    SyncUnit.member_id == member_id,
                    SyncUnit.next_run_at <= now,
                    or_(SyncUnit.lease_owner.is_(None), SyncUnit.lease_expires_at < now),
                )
            )
            or 0
        )

    def due_count(self, now: datetime) -> int:
        """Units due now that nobody runs: the backlog."""
        return int(
            self.session.scalar(
                select(func.count())
                .select_from(SyncUnit)
                .where(
                    SyncUnit.next_run_at <= now,
                    or_(SyncUnit.lease_owner.is_(None), SyncUnit.lease_expires_at < now),
                )
            )
            or 0
        )

    def try_lease(
        self, unit_id: str, owner: str, seconds: int, *, ticket: str | None = None
    ) -> bool:
        """Take the unit's lease if nobody holds a live one (one conditional UPDATE), and
        only while ``ticket`` is still the unit's queue ticket when one is given. Taking it
        withdraws the unit's ticket: whatever was queued for it is done by this run."""
        now = utcnow()
        conditions = [
            SyncUnit.id == unit_id,
            or_(
                SyncUnit.lease_owner.is_(None),
                SyncUnit.lease_expires_at < now,
                SyncUnit.lease_owner == owner,
            ),
        ]
        if ticket is not None:
            conditions.append(SyncUnit.queue_ticket == ticket)
        result = self.session.execute(
            update(SyncUnit)
            .where(*conditions)
            .values(
                lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=seconds),
                queue_ticket=None,
                queued_at=None,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def renew_lease(self, unit_id: str, owner: str, seconds: int) -> bool:
        result = self.session.execute(
            update(SyncUnit)
            .where(SyncUnit.id == unit_id, SyncUnit.lease_owner == owner)
            .values(lease_expires_at=utcnow() + timedelta(seconds=seconds))
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def release_lease(self, unit_id: str, owner: str) -> None:
        self.session.execute(
            update(SyncUnit)
            .where(SyncUnit.id == unit_id, SyncUnit.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )

    def reset_stuck(self, now: datetime, stuck_after: timedelta) -> list[SyncUnit]:
        """Units left in a running stage by a process that died: back to idle, run soon."""
        stuck = list(
            self.session.scalars(
                select(SyncUnit).where(
                    SyncUnit.stage != UnitStage.IDLE,
                    SyncUnit.stage_started_at < now - stuck_after,
                    or_(SyncUnit.lease_owner.is_(None), SyncUnit.lease_expires_at < now),
                )
            )
        )
        for unit in stuck:
            unit.stage = UnitStage.IDLE
            unit.stage_started_at = now
            unit.lease_owner = None
            unit.lease_expires_at = None
            unit.next_run_at = now
        return stuck

    def request_full_resync(self, unit: SyncUnit) -> None:
        unit.full_resync_requested = True
        unit.next_run_at = utcnow()

    def schedule_now(self, unit_id: str) -> None:
        self.session.execute(
            update(SyncUnit)
            .where(SyncUnit.id == unit_id)
            .values(next_run_at=utcnow())
            .execution_options(synchronize_session=False)
        )

    # -- cursors ----------------------------------------------------------------------------
    def cursor(self, unit_id: str, key: str) -> SyncCursor:
        found = self.session.scalar(
            select(SyncCursor).where(SyncCursor.unit_id == unit_id, SyncCursor.key == key)
        )
        if found is None:
            found = SyncCursor(unit_id=unit_id, key=key)
            self.session.add(found)
            self.session.flush()
        return found

    def cursors(self, unit_id: str) -> list[SyncCursor]:
        return list(self.session.scalars(select(SyncCursor).where(SyncCursor.unit_id == unit_id)))

    def save_cursor(
        self,
        unit_id: str,
        key: str,
        *,
        delta_link: str | None,
        next_link: str | None,
        window: tuple[datetime, datetime] | None = None,
        received_since: datetime | Literal[False] | None = False,
    ) -> None:
        """``window``: a calendar round's range; ``received_since``: the receivedDateTime
        floor a mail folder's rounds apply locally (stored as ``window_start``; False
        leaves it as it is)."""
        cursor = self.cursor(unit_id, key)
        cursor.delta_link = delta_link
        cursor.next_link = next_link
        if window is not None:
            cursor.window_start, cursor.window_end = window
        if received_since is not False:
            cursor.window_start = received_since
        cursor.updated_at = utcnow()

    def clear_cursors(self, unit_id: str) -> None:
        for cursor in self.cursors(unit_id):
            self.session.delete(cursor)
        self.session.flush()

    # -- quarantine -------------------------------------------------------------------------
    def quarantine(self, unit_id: str, item_id: str, reason: str, excerpt: str) -> None:
        found = self.session.scalar(
            select(QuarantinedItem).where(
                QuarantinedItem.unit_id == unit_id, QuarantinedItem.item_id == item_id
            )
        )
        if found is None:
            self.session.add(
                QuarantinedItem(
                    unit_id=unit_id, item_id=item_id[:400], reason=reason, excerpt=excerpt[:2000]
                )
            )
        else:
            found.reason = reason

    def quarantined(self, unit_id: str) -> list[QuarantinedItem]:
        return list(
            self.session.scalars(select(QuarantinedItem).where(QuarantinedItem.unit_id == unit_id))
        )

    # -- subscriptions ----------------------------------------------------------------------
    def subscriptions(self, unit_id: str | None = None) -> list[GraphSubscription]:
        stmt = select(GraphSubscription)
        if unit_id is not None:
            stmt = stmt.where(GraphSubscription.unit_id == unit_id)
        return list(self.session.scalars(stmt))

    def subscription_by_graph_id(self, subscription_id: str) -> GraphSubscription | None:
        return self.session.scalar(
            select(GraphSubscription).where(GraphSubscription.subscription_id == subscription_id)
        )

    def subscriptions_by_graph_ids(
        self, subscription_ids: Collection[str]
    ) -> dict[str, GraphSubscription]:
        """The subscriptions Microsoft knows by these ids, in one query."""
        if not subscription_ids:
            return {}
        rows = self.session.scalars(
            select(GraphSubscription).where(
                GraphSubscription.subscription_id.in_(list(subscription_ids))
            )
        )
        return {row.subscription_id: row for row in rows if row.subscription_id}

    def schedule_units_now(self, unit_ids: Collection[str]) -> None:
        if unit_ids:
            self.session.execute(
                update(SyncUnit)
                .where(SyncUnit.id.in_(list(unit_ids)))
                .values(next_run_at=utcnow())
                .execution_options(synchronize_session=False)
            )

    def save_subscriptions(self, subscriptions: Sequence[GraphSubscription]) -> None:
        """Store subscriptions changed outside a session (new ones or detached ones)."""
        for subscription in subscriptions:
            self.session.merge(subscription)

    def has_healthy_subscriptions(self, unit_id: str, now: datetime) -> bool:
        subs = self.subscriptions(unit_id)
        return bool(subs) and all(
            s.healthy and s.expires_at is not None and s.expires_at > now for s in subs
        )

    def units_needing_subscriptions(self, now: datetime, renew_before: timedelta) -> list[str]:
        """Active units with no subscription yet, or one that is unhealthy, flagged for
        reauthorization or expiring within ``renew_before``."""
        troubled = (
            select(GraphSubscription.unit_id)
            .where(
                or_(
                    GraphSubscription.healthy.is_(False),
                    GraphSubscription.subscription_id.is_(None),
                    GraphSubscription.expires_at.is_(None),
                    GraphSubscription.expires_at < now + renew_before,
                    GraphSubscription.last_error != "",
                )
            )
            .distinct()
        )
        covered = select(GraphSubscription.unit_id).distinct()
        return list(
            self.session.scalars(
                select(SyncUnit.id).where(
                    SyncUnit.status == UnitStatus.ACTIVE,
                    or_(SyncUnit.id.in_(troubled), SyncUnit.id.not_in(covered)),
                )
            )
        )

    # -- the elected scheduler --------------------------------------------------------------
    def take_scheduler_lease(self, name: str, owner: str, seconds: float) -> bool:
        """Lead ``name`` for ``seconds`` more: renew our lease, or take it over once the
        holder's has passed (one conditional statement, so two candidates never both win)."""
        now = utcnow()
        expires = now + timedelta(seconds=seconds)
        result = self.session.execute(
            update(SchedulerLease)
            .where(
                SchedulerLease.name == name,
                or_(SchedulerLease.owner == owner, SchedulerLease.expires_at < now),
            )
            .values(
                owner=owner,
                expires_at=expires,
                acquired_at=case(
                    (SchedulerLease.owner == owner, SchedulerLease.acquired_at), else_=now
                ),
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount:  # type: ignore[attr-defined]
            return True
        inserted = self.session.execute(
            dialect_insert(self.session, SchedulerLease)
            .values(name=name, owner=owner, expires_at=expires, acquired_at=now)
            .on_conflict_do_nothing()
            .returning(SchedulerLease.name)
        )
        return inserted.first() is not None

    def release_scheduler_lease(self, name: str, owner: str) -> None:
        """Step down: a standby may take over at once."""
        self.session.execute(
            update(SchedulerLease)
            .where(SchedulerLease.name == name, SchedulerLease.owner == owner)
            .values(expires_at=utcnow() - timedelta(seconds=1))
            .execution_options(synchronize_session=False)
        )

    def scheduler_lease(self, name: str) -> SchedulerLease | None:
        return self.session.get(SchedulerLease, name)
