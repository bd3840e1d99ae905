"""Queries for operations: reachability, bookings by outcome, and the rows retention and
erasure touch. A repository never commits: the job boundary does."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Text, and_, cast, delete, func, or_, select, text, update
from sqlalchemy.orm import Session

from m365sync.crm.models import (
    ActivityKind,
    CrmActivity,
    CrmActivityPerson,
    CrmContact,
    CrmLead,
    SalesforceConnection,
    SalesforceStatus,
)
from m365sync.organizations.models import Organization
from m365sync.scheduling.models import Booking
from m365sync.sync.models import QuarantinedItem, SyncSettings, SyncUnit

__all__ = ["OperationsRepository"]


class OperationsRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def ping(self) -> None:
        self.session.execute(text("SELECT 1"))

    def booking_totals(self) -> dict[str, int]:
        rows = self.session.execute(select(Booking.status, func.count()).group_by(Booking.status))
        return {str(status.value): int(n) for status, n in rows}

    def salesforce_usage(self) -> list[tuple[int, int]]:
        """(used, limit) of the daily API requests of each connected Salesforce org, as
        Salesforce last reported them."""
        rows = self.session.execute(
            select(SalesforceConnection.api_used, SalesforceConnection.api_limit).where(
                SalesforceConnection.status == SalesforceStatus.ACTIVE,
                SalesforceConnection.api_used.is_not(None),
                SalesforceConnection.api_limit > 0,
            )
        )
        return [(int(used or 0), int(limit or 0)) for used, limit in rows]

    # -- retention ---------------------------------------------------------------------------
    def organization_ids(self, organization_id: str | None = None) -> list[str]:
        stmt = select(Organization.id)
        if organization_id is not None:
            stmt = stmt.where(Organization.id == organization_id)
        return list(self.session.scalars(stmt.order_by(Organization.id)))

    def windows(self, organization_id: str) -> tuple[int, int]:
        """The organization's backfill window and calendar days back (defaults if unset)."""
        row = self.session.get(SyncSettings, organization_id)
        if row is None:
            return 30, 30
        return int(row.backfill_days), int(row.calendar_days_back)

    def purge_bodies(self, organization_id: str, before: datetime) -> int:
        """Email bodies of mail that arrived before ``before`` dropped (headers kept)."""
        result = self.session.execute(
            update(CrmActivity)
            .where(
                CrmActivity.organization_id == organization_id,
                CrmActivity.kind == ActivityKind.EMAIL,
                CrmActivity.occurred_at < before,
                CrmActivity.body.is_not(None),
            )
            .values(body=None, headers_only=True)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def purge_activities(self, organization_id: str, before: datetime) -> int:
        """Emails that arrived, meetings that ended and tasks completed before ``before``
        deleted, with their links (open tasks stay)."""
        result = self.session.execute(
            delete(CrmActivity)
            .where(
                CrmActivity.organization_id == organization_id,
                or_(
                    and_(CrmActivity.kind == ActivityKind.EMAIL, CrmActivity.occurred_at < before),
                    and_(CrmActivity.kind == ActivityKind.EVENT, CrmActivity.ends_at < before),
                    and_(CrmActivity.kind == ActivityKind.TASK, CrmActivity.completed_at < before),
                ),
            )
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    # -- erasure -----------------------------------------------------------------------------
    def people_with_address(
        self, organization_id: str, address: str
    ) -> tuple[list[str], list[str]]:
        contacts = self.session.scalars(
            select(CrmContact.id).where(
                CrmContact.organization_id == organization_id, CrmContact.email == address
            )
        )
        leads = self.session.scalars(
            select(CrmLead.id).where(
                CrmLead.organization_id == organization_id, CrmLead.email == address
            )
        )
        return list(contacts), list(leads)

    def activities_involving(
        self, organization_id: str, address: str, person_ids: list[str]
    ) -> list[str]:
        """Activities sent by ``address``, naming it among their participants, or linked to
        one of ``person_ids``. Participants are matched exactly after a coarse text filter
        (the JSON column is searched as text, then each candidate's list is read)."""
        escaped = address.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        candidates = self.session.execute(
            select(CrmActivity.id, CrmActivity.from_address, CrmActivity.participants).where(
                CrmActivity.organization_id == organization_id,
                or_(
                    func.lower(CrmActivity.from_address) == address,
                    func.lower(cast(CrmActivity.participants, Text)).like(
                        f"%{escaped}%", escape="\\"
                    ),
                ),
            )
        )
        found: set[str] = set()
        for activity_id, sender, participants in candidates:
            addresses = {str(p.get("address", "")).lower() for p in participants or []}
            if (sender or "").lower() == address or address in addresses:
                found.add(activity_id)
        if person_ids:
            found.update(
                self.session.scalars(
                    select(CrmActivityPerson.activity_id)
                    .join(CrmActivity, CrmActivity.id == CrmActivityPerson.activity_id)
                    .where(
                        CrmActivity.organization_id == organization_id,
                        CrmActivityPerson.person_id.in_(person_ids),
                    )
                )
            )
        return sorted(found)

    def delete_activities(self, activity_ids: list[str]) -> int:
        deleted = 0
        for start in range(0, len(activity_ids), 500):
            chunk = activity_ids[start : start + 500]
            result = self.session.execute(
                delete(CrmActivity)
                .where(CrmActivity.id.in_(chunk))
                .execution_options(synchronize_session=False)
            )
            deleted += int(result.rowcount)  # type: ignore[attr-defined]
        return deleted

    def delete_people(self, contact_ids: list[str], lead_ids: list[str]) -> int:
        deleted = 0
        if contact_ids:
            result = self.session.execute(
                delete(CrmContact)
                .where(CrmContact.id.in_(contact_ids))
                .execution_options(synchronize_session=False)
            )
            deleted += int(result.rowcount)  # type: ignore[attr-defined]
        if lead_ids:
            result = self.session.execute(
                delete(CrmLead)
                .where(CrmLead.id.in_(lead_ids))
                .execution_options(synchronize_session=False)
            )
            deleted += int(result.rowcount)  # type: ignore[attr-defined]
        return deleted

    def delete_bookings_of(self, organization_id: str, address: str) -> int:
        result = self.session.execute(
            delete(Booking)
            .where(
                Booking.organization_id == organization_id,
                func.lower(Booking.invitee_email) == address,
            )
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def delete_quarantined_mentioning(self, organization_id: str, address: str) -> int:
        """Items set aside by the sync whose kept excerpt names ``address``."""
        escaped = address.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        units = select(SyncUnit.id).where(SyncUnit.organization_id == organization_id)
        result = self.session.execute(
            delete(QuarantinedItem)
            .where(
                QuarantinedItem.unit_id.in_(units),
                func.lower(QuarantinedItem.excerpt).like(f"%{escaped}%", escape="\\"),
            )
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
