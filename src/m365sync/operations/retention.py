"""Retention and erasure: what m365sync keeps, and forgetting one person on request.

``purge`` drops email bodies (``bodies_older_than``) or deletes activities
(``activities_older_than``: emails that arrived, meetings that ended, tasks completed,
before the cutoff; open tasks stay) older than a number of days. The cutoff may not fall
inside an organization's backfill window or calendar days back: a full resync reads that
window again and would bring back what was purged.

``erase`` forgets one person in one organization: the contacts and leads with that
address, every activity that involves it (sent by it, addressed to it, copied to it, or
linked to one of those contacts or leads), with its links and mailbox copies, the bookings
it made, and the items the sync set aside that mention it. Mail stays in the mailboxes
(they are the organization's); a Salesforce org erases its own records.

Both are recorded in the audit log with what they removed; an erasure records the address
as a hash, never the address itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from m365sync.audit import service as audit
from m365sync.crm.addresses import normalize_address
from m365sync.db.base import utcnow
from m365sync.errors import ValidationFailed
from m365sync.operations.repository import OperationsRepository

__all__ = ["ErasureReport", "PurgeReport", "erase", "purge"]


@dataclass
class PurgeReport:
    bodies: int = 0
    activities: int = 0
    organizations: int = 0


@dataclass
class ErasureReport:
    activities: int = 0
    people: int = 0
    bookings: int = 0
    quarantined: int = 0


def purge(
    session: Session,
    *,
    bodies_older_than: int | None = None,
    activities_older_than: int | None = None,
    organization_id: str | None = None,
    actor: str,
) -> PurgeReport:
    """Purge every organization (or one); all or nothing."""
    if bodies_older_than is None and activities_older_than is None:
        raise ValidationFailed(
            "Nothing to purge was named.",
            fix="Say how many days of email bodies, or of activities, to keep.",
        )
    for days in (bodies_older_than, activities_older_than):
        if days is not None and days < 1:
            raise ValidationFailed(
                f"{days} days: retention must keep at least one day.",
                fix="Give a number of days of 1 or more.",
            )
    repo = OperationsRepository(session)
    report = PurgeReport()
    now = utcnow()
    for org in repo.organization_ids(organization_id):
        backfill, days_back = repo.windows(org)
        window = max(backfill, days_back)
        for days in (bodies_older_than, activities_older_than):
            if days is not None and days <= window:
                raise ValidationFailed(
                    f"{days} days is inside an organization's sync window ({window} days): a "
                    "full resync would bring back what was purged.",
                    fix=f"Keep more than {window} days, or shorten the organization's backfill "
                    "window and calendar days back first.",
                )
        bodies = activities = 0
        if activities_older_than is not None:
            activities = repo.purge_activities(org, now - timedelta(days=activities_older_than))
        if bodies_older_than is not None:
            bodies = repo.purge_bodies(org, now - timedelta(days=bodies_older_than))
        audit.record(
            session,
            org,
            actor,
            "retention.purge",
            "activities",
            bodies_older_than_days=bodies_older_than,
            activities_older_than_days=activities_older_than,
            bodies_dropped=bodies,
            activities_deleted=activities,
        )
        report.bodies += bodies
        report.activities += activities
        report.organizations += 1
    return report


def erase(session: Session, organization_id: str, email: str, *, actor: str) -> ErasureReport:
    """Forget everything the organization's m365sync holds about ``email``."""
    address = normalize_address(email)
    if not address:
        raise ValidationFailed(
            f"'{email}' is not an email address.", fix="Give the person's email address."
        )
    repo = OperationsRepository(session)
    contacts, leads = repo.people_with_address(organization_id, address)
    activities = repo.activities_involving(organization_id, address, contacts + leads)
    report = ErasureReport(
        activities=repo.delete_activities(activities),
        people=repo.delete_people(contacts, leads),
        bookings=repo.delete_bookings_of(organization_id, address),
        quarantined=repo.delete_quarantined_mentioning(organization_id, address),
    )
    audit.record(
        session,
        organization_id,
        actor,
        "privacy.erase",
        f"person sha256:{hashlib.sha256(address.encode()).hexdigest()[:16]}",
        activities_deleted=report.activities,
        people_deleted=report.people,
        bookings_deleted=report.bookings,
        quarantined_deleted=report.quarantined,
    )
    return report
