"""The embedded CRM store, with the reads tests use to check what it holds.

The product reads the store through ``crm.repository`` (what people see); these reads exist
for assertions only, so they live here rather than in ``EmbeddedCrm``.
"""

from __future__ import annotations

from sqlalchemy import func, select

from m365sync.crm.embedded import EmbeddedCrm
from m365sync.crm.models import (
    ActivityKind,
    CrmAccount,
    CrmActivity,
    CrmActivityMember,
    CrmActivityPerson,
    CrmActivityRecord,
    CrmEmailCopy,
    CrmLead,
    PersonKind,
    RecordKind,
)

__all__ = ["InspectableCrm"]


class InspectableCrm(EmbeddedCrm):
    """``EmbeddedCrm`` (one organization, inside the caller's session) plus reads for tests."""

    def count_activities(self, kind: ActivityKind, *, include_deleted: bool = False) -> int:
        stmt = (
            select(func.count())
            .select_from(CrmActivity)
            .where(CrmActivity.organization_id == self.organization_id, CrmActivity.kind == kind)
        )
        if not include_deleted:
            stmt = stmt.where(CrmActivity.deleted_at.is_(None))
        return int(self.session.scalar(stmt) or 0)

    def activities(self, kind: ActivityKind, *, include_deleted: bool = False) -> list[CrmActivity]:
        stmt = select(CrmActivity).where(
            CrmActivity.organization_id == self.organization_id, CrmActivity.kind == kind
        )
        if not include_deleted:
            stmt = stmt.where(CrmActivity.deleted_at.is_(None))
        return list(
            self.session.scalars(stmt.order_by(CrmActivity.occurred_at, CrmActivity.external_id))
        )

    def activity_members(
        self, activity_id: str, *, include_removed: bool = False
    ) -> list[CrmActivityMember | CrmEmailCopy]:
        """Who holds the activity: a meeting's or task's member links, an email's copies
        (one per mailbox item: a member may hold two, in two folders)."""
        found: list[CrmActivityMember | CrmEmailCopy] = []
        for link in (CrmActivityMember, CrmEmailCopy):
            stmt = select(link).where(link.activity_id == activity_id)
            if not include_removed:
                stmt = stmt.where(link.removed_at.is_(None))
            found.extend(self.session.scalars(stmt))
        return found

    def activity_people(self, activity_id: str) -> list[tuple[PersonKind, str]]:
        rows = self.session.execute(
            select(CrmActivityPerson.person_kind, CrmActivityPerson.person_id).where(
                CrmActivityPerson.activity_id == activity_id
            )
        )
        return [(kind, pid) for kind, pid in rows]

    def activity_accounts(self, activity_id: str) -> list[str]:
        return list(
            self.session.scalars(
                select(CrmActivityRecord.record_id).where(
                    CrmActivityRecord.activity_id == activity_id,
                    CrmActivityRecord.record_kind == RecordKind.ACCOUNT,
                )
            )
        )

    def account_by_name(self, name: str) -> CrmAccount | None:
        return self.session.scalar(
            select(CrmAccount).where(
                CrmAccount.organization_id == self.organization_id, CrmAccount.name == name
            )
        )

    def leads(self) -> list[CrmLead]:
        return list(
            self.session.scalars(
                select(CrmLead).where(CrmLead.organization_id == self.organization_id)
            )
        )
