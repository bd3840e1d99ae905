"""Searching the embedded CRM store's activities: what the Activities pages show.

Read-only and scoped to one organization. Logging into the CRM is the sync engine's job,
through ``CrmTarget``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from m365sync.crm.models import ActivityKind, CrmAccount, CrmActivity, CrmContact
from m365sync.crm.repository import ActivityRepository
from m365sync.errors import NotFound

__all__ = [
    "ACTIVITY_KINDS",
    "UPCOMING_DAYS",
    "ActivityDetail",
    "ActivityList",
    "activities_held_by_members",
    "activity_detail",
    "file_size_text",
    "get_activity",
    "search_activities",
]

ACTIVITY_KINDS = {"email": "Emails", "event": "Meetings", "task": "Tasks"}
UPCOMING_DAYS = 14


@dataclass
class ActivityList:
    """Found activities, with the organization's contacts and accounts to filter by."""

    activities: list[CrmActivity]
    contacts: list[CrmContact] = field(default_factory=list)
    accounts: list[CrmAccount] = field(default_factory=list)


def search_activities(
    session: Session,
    organization_id: str,
    *,
    text: str = "",
    kind: str = "",
    contact_id: str | None = None,
    account_id: str | None = None,
    include_later: bool = False,
    limit: int = 100,
) -> ActivityList:
    """Newest first, matching ``text`` in the subject or sender. Meetings and tasks more than
    ``UPCOMING_DAYS`` ahead only when asked: a weekly series would otherwise fill the page
    with next year's occurrences. An unknown ``kind`` means every kind."""
    repo = ActivityRepository(session, organization_id)
    activities = repo.search(
        text=text.strip(),
        kind=kind if kind in ACTIVITY_KINDS else None,
        contact_id=contact_id,
        account_id=account_id,
        not_after=None if include_later else datetime.now(UTC) + timedelta(days=UPCOMING_DAYS),
        limit=limit,
    )
    return ActivityList(activities=activities, contacts=repo.contacts(), accounts=repo.accounts())


def get_activity(session: Session, organization_id: str, activity_id: str) -> CrmActivity:
    activity = ActivityRepository(session, organization_id).activity(activity_id)
    if activity is None:
        raise NotFound(
            "That activity is not in your organization's CRM.", fix="Go back to Activities."
        )
    return activity


@dataclass
class ActivityDetail:
    """One activity and, for an email, the other emails of its thread (oldest first)."""

    activity: CrmActivity
    thread: list[CrmActivity] = field(default_factory=list)


def activity_detail(session: Session, organization_id: str, activity_id: str) -> ActivityDetail:
    """The activity page's content: the activity, and the emails logged from the same
    conversation (a mailbox's thread) when there are others."""
    activity = get_activity(session, organization_id, activity_id)
    thread: list[CrmActivity] = []
    if activity.conversation_id:
        thread = ActivityRepository(session, organization_id).thread(activity.conversation_id)
        if len(thread) < 2:
            thread = []
    return ActivityDetail(activity, thread)


def activities_held_by_members(
    session: Session, organization_id: str
) -> dict[tuple[str, ActivityKind], int]:
    """How many distinct emails, meetings and tasks each member's mailbox holds in the CRM
    now (by member id and kind): what "synced" means to a person, however often it ran."""
    return ActivityRepository(session, organization_id).held_by_members()


def file_size_text(size: object) -> str:
    """A size in bytes as people read it ("820 bytes", "14 KB", "2.3 MB"): an attachment's,
    on the activity page and in what m365sync writes to Salesforce."""
    value = size if isinstance(size, int) and not isinstance(size, bool) else 0
    if value < 1024:
        return f"{value} bytes"
    if value < 1024 * 1024:
        return f"{round(value / 1024)} KB"
    return f"{value / (1024 * 1024):.1f} MB"
