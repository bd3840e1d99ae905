"""Salesforce's periodic work, as the workers run it: which organizations need the mirror,
the writer or the changes pull now, and running one of them for one organization.

Whether a job is due is read from the database, so the in-process workers (``m365sync
serve``) and the scaled-out scheduler with its Celery workers decide the same way:

- ``salesforce-mirror``: the organization's mirror never loaded (a new connection: it runs
  within one scheduler tick of connecting) or last read Salesforce's changes more than
  ``MIRROR_EVERY`` ago (hourly);
- ``salesforce-writer``: the organization has records due (a sync committed activities, a
  retry's time came, a pause ended) and the writer may run: no pause in force, nobody
  draining it, and the mirror loaded once (otherwise nobody could be related);
- ``salesforce-changes``: Events and Tasks created, changed or deleted in Salesforce are
  pulled into the local store (``m365sync.crm.salesforce_changes``) about every
  ``CHANGES_EVERY`` (two minutes), once the mirror has read the org, never while a pause is
  in force; Calendar Sync and Task Sync then write them to Outlook and To Do.

The Graph sync never waits on any of it: a sync only queues its activities in its own
transaction. ``drain_salesforce`` holds a lease on the connection, so even two workers
handed the same organization drain it once at a time (the other answers *busy*).

``salesforce_jobs`` is a plain list; another periodic Salesforce pass is one more entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from m365sync.crm.salesforce_changes import POLL_SECONDS, pull_salesforce_changes
from m365sync.crm.salesforce_mirror import refresh_salesforce_people
from m365sync.crm.salesforce_repository import SalesforceRepository
from m365sync.crm.salesforce_writer import drain_salesforce
from m365sync.crypto import SecretBox
from m365sync.db.session import Database
from m365sync.settings import Settings

__all__ = [
    "CHANGES_EVERY",
    "MIRROR_EVERY",
    "SalesforceJob",
    "run_salesforce_job",
    "salesforce_jobs",
]

MIRROR_EVERY = timedelta(hours=1)
CHANGES_EVERY = timedelta(seconds=POLL_SECONDS)


@dataclass(frozen=True)
class SalesforceJob:
    """One kind of Salesforce work, run per organization."""

    name: str
    due: Callable[[Database, datetime], list[str]]
    """The organizations that need it now."""
    run: Callable[[Database, str, Settings, SecretBox], object]
    """Do it for one organization (blocking: Salesforce is called over the network)."""
    gap_seconds: float
    """Not started (or queued) again for the same organization sooner than this, so a run
    that failed or is still queued is not repeated at every tick."""


def _to_mirror(database: Database, now: datetime) -> list[str]:
    with database.session() as session:
        return SalesforceRepository.organizations_to_mirror(session, now - MIRROR_EVERY)


def _mirror(database: Database, organization_id: str, settings: Settings, box: SecretBox) -> object:
    return refresh_salesforce_people(database, organization_id, settings=settings, box=box)


def _to_drain(database: Database, now: datetime) -> list[str]:
    with database.session() as session:
        return SalesforceRepository.organizations_to_drain(session, now)


def _drain(database: Database, organization_id: str, settings: Settings, box: SecretBox) -> object:
    return drain_salesforce(database, organization_id, settings=settings, box=box)


def _to_pull(database: Database, now: datetime) -> list[str]:
    with database.session() as session:
        return SalesforceRepository.organizations_to_pull_changes(session, now, CHANGES_EVERY)


def _pull(database: Database, organization_id: str, settings: Settings, box: SecretBox) -> object:
    return pull_salesforce_changes(database, organization_id, settings=settings, box=box)


def salesforce_jobs() -> list[SalesforceJob]:
    """The Salesforce jobs every deployment runs, mirror first."""
    return [
        SalesforceJob("salesforce-mirror", _to_mirror, _mirror, gap_seconds=300.0),
        SalesforceJob("salesforce-writer", _to_drain, _drain, gap_seconds=10.0),
        SalesforceJob("salesforce-changes", _to_pull, _pull, gap_seconds=POLL_SECONDS),
    ]


def run_salesforce_job(
    name: str, database: Database, organization_id: str, settings: Settings, box: SecretBox
) -> object:
    """Run the job called ``name`` for one organization (a queued message names it)."""
    job = next((j for j in salesforce_jobs() if j.name == name), None)
    if job is None:
        raise ValueError(f"no Salesforce job called {name!r}")
    return job.run(database, organization_id, settings, box)
