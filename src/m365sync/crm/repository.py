"""Read queries over the embedded CRM store's activities, contacts and accounts.

A repository never commits. Writes to the store go through ``EmbeddedCrm`` (the sync
engine's target); this module only reads, always scoped to one organization.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from m365sync.crm.models import (
    ActivityKind,
    CrmAccount,
    CrmActivity,
    CrmActivityMember,
    CrmActivityPerson,
    CrmActivityRecord,
    CrmContact,
    CrmEmailCopy,
)

__all__ = ["ActivityRepository"]


class ActivityRepository:
    def __init__(self, session: Session, organization_id: str) -> None:
        self.session = session
        self.organization_id = organization_id

    def search(
        self,
        *,
        text: str = "",
        kind: str | None = None,
        contact_id: str | None = None,
        account_id: str | None = None,
        not_after: datetime | None = None,
        limit: int = 100,
    ) -> list[CrmActivity]:
        """Live activities, newest first (an activity's time is when it happened, started
        or is due; those without one come last)."""
        when = func.coalesce(CrmActivity.occurred_at, CrmActivity.starts_at, CrmActivity.due_at)
        query = select(CrmActivity).where(
            CrmActivity.organization_id == self.organization_id,
            CrmActivity.deleted_at.is_(None),
        )
        if kind:
            query = query.where(CrmActivity.kind == kind)
        if not_after is not None:
            query = query.where(or_(when.is_(None), when <= not_after))
        if text:
            like = f"%{text.lower()}%"
            query = query.where(
                or_(
                    func.lower(CrmActivity.subject).like(like),
                    func.lower(CrmActivity.from_address).like(like),
                )
            )
        if contact_id:
            query = query.where(
                CrmActivity.id.in_(
                    select(CrmActivityPerson.activity_id).where(
                        CrmActivityPerson.person_id == contact_id
                    )
                )
            )
        if account_id:
            query = query.where(
                CrmActivity.id.in_(
                    select(CrmActivityRecord.activity_id).where(
                        CrmActivityRecord.record_id == account_id
                    )
                )
            )
        ordered = query.order_by(when.desc().nulls_last(), CrmActivity.created_at.desc())
        return list(self.session.scalars(ordered.limit(limit)))

    def activity(self, activity_id: str) -> CrmActivity | None:
        """The activity, unless it belongs to another organization or was deleted."""
        activity = self.session.get(CrmActivity, activity_id)
        if (
            activity is None
            or activity.organization_id != self.organization_id
            or activity.deleted_at is not None
        ):
            return None
        return activity

    def thread(self, conversation_id: str, limit: int = 100) -> list[CrmActivity]:
        """The organization's live emails of one conversation, oldest first."""
        return list(
            self.session.scalars(
                select(CrmActivity)
                .where(
                    CrmActivity.organization_id == self.organization_id,
                    CrmActivity.conversation_id == conversation_id,
                    CrmActivity.kind == ActivityKind.EMAIL,
                    CrmActivity.deleted_at.is_(None),
                )
                .order_by(CrmActivity.occurred_at, CrmActivity.id)
                .limit(limit)
            )
        )

    def contacts(self) -> list[CrmContact]:
        return list(
            self.session.scalars(
                select(CrmContact)
                .where(CrmContact.organization_id == self.organization_id)
                .order_by(CrmContact.email)
            )
        )

    def accounts(self) -> list[CrmAccount]:
        return list(
            self.session.scalars(
                select(CrmAccount)
                .where(CrmAccount.organization_id == self.organization_id)
                .order_by(CrmAccount.name)
            )
        )

    def held_by_members(self) -> dict[tuple[str, ActivityKind], int]:
        """How many distinct activities each member's mailbox holds now, by kind: an email
        in two folders, or synced again by a full resync, counts once."""
        held: dict[tuple[str, ActivityKind], int] = {}
        emails = (
            select(CrmEmailCopy.member_id, func.count(func.distinct(CrmEmailCopy.activity_id)))
            .join(CrmActivity, CrmActivity.id == CrmEmailCopy.activity_id)
            .where(
                CrmActivity.organization_id == self.organization_id,
                CrmActivity.deleted_at.is_(None),
                CrmEmailCopy.removed_at.is_(None),
            )
            .group_by(CrmEmailCopy.member_id)
        )
        for member_id, count in self.session.execute(emails):
            held[(member_id, ActivityKind.EMAIL)] = int(count)
        others = (
            select(CrmActivityMember.member_id, CrmActivity.kind, func.count())
            .join(CrmActivity, CrmActivity.id == CrmActivityMember.activity_id)
            .where(
                CrmActivity.organization_id == self.organization_id,
                CrmActivity.deleted_at.is_(None),
                CrmActivityMember.removed_at.is_(None),
            )
            .group_by(CrmActivityMember.member_id, CrmActivity.kind)
        )
        for member_id, kind, count in self.session.execute(others):
            held[(member_id, ActivityKind(kind))] = int(count)
        return held
