"""Is this process ready to serve, and how is the fleet doing (read from the database)?

``readiness`` answers a load balancer's question: the database answers, its schema is the
one this version expects, the secret key that opens stored secrets is there, and (when
units go to Celery) the broker answers. Each check says what is wrong and how to fix it.
``fleet_snapshot`` is what ``/metrics`` reads at scrape time: units by feature, status
and stage, the backlog, bookings by outcome, which scheduler leads, and the connected
Salesforce orgs' API usage. Both hold in every
process alike, since they come from the shared database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from m365sync.crypto import load_keys
from m365sync.db.base import utcnow
from m365sync.db.migrate import current_revision, head_revision
from m365sync.db.session import Database
from m365sync.errors import M365SyncError
from m365sync.operations.repository import OperationsRepository
from m365sync.settings import Settings
from m365sync.sync.repository import SyncRepository
from m365sync.sync.scheduler import SCHEDULER_LEASE

__all__ = ["Check", "FleetSnapshot", "Readiness", "fleet_snapshot", "readiness"]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str = ""
    fix: str = ""


@dataclass(frozen=True)
class Readiness:
    checks: list[Check]

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks)


def _database(database: Database) -> Check:
    try:
        with database.session() as session:
            OperationsRepository(session).ping()
    except Exception as exc:
        return Check(
            "database",
            False,
            f"The database does not answer ({type(exc).__name__}).",
            "Check that the database server is running and reachable from this machine, and "
            "that the database URL setting names it with the right user and password.",
        )
    return Check("database", True)


def _schema(database: Database) -> Check:
    try:
        current, head = current_revision(database.engine), head_revision()
    except Exception as exc:
        return Check(
            "migrations",
            False,
            f"The database's schema revision could not be read ({type(exc).__name__}).",
            "Make the database reachable first.",
        )
    if current == head:
        return Check("migrations", True)
    return Check(
        "migrations",
        False,
        f"The database's schema is at revision {current or 'none'}; this version of m365sync "
        f"needs {head}.",
        "Upgrade the database schema (the database upgrade command, or start one process of "
        "this version, which upgrades it as it starts). If the database is newer, run the "
        "newer version of m365sync here too.",
    )


def _secret_key(settings: Settings) -> Check:
    try:
        load_keys(settings, anything_sealed=lambda: True)  # never makes a new key here
    except M365SyncError:
        return Check(
            "secret_key",
            False,
            "The secret key that opens the stored secrets is missing or unreadable.",
            "Give this process the installation's secret key: the key file in its data "
            "directory, or the secret key setting (the same key on every machine).",
        )
    return Check("secret_key", True)


def _broker(url: str) -> Check:
    from kombu.connection import Connection

    try:
        with Connection(url, connect_timeout=3) as connection:  # type: ignore[no-untyped-call]
            connection.ensure_connection(max_retries=1, timeout=3)
    except Exception as exc:
        return Check(
            "broker",
            False,
            f"The Celery broker (Redis) does not answer ({type(exc).__name__}).",
            "Check that Redis is running and reachable from this machine, and that the "
            "broker URL setting names it.",
        )
    return Check("broker", True)


def readiness(database: Database, settings: Settings, *, broker_url: str | None) -> Readiness:
    """Every check, each with its cause and fix when it fails; ``broker_url`` when this
    process hands units to Celery."""
    reachable = _database(database)
    checks = [
        reachable,
        _schema(database)
        if reachable.ok
        else Check(
            "migrations",
            False,
            "The schema revision is unknown while the database does not answer.",
            "Make the database reachable first.",
        ),
    ]
    checks.append(_secret_key(settings))
    if broker_url:
        checks.append(_broker(broker_url))
    return Readiness(checks)


@dataclass(frozen=True)
class FleetSnapshot:
    units: list[tuple[str, str, str, int]] = field(default_factory=list)
    """(feature, status, stage, how many)"""
    due: int = 0
    bookings: dict[str, int] = field(default_factory=dict)
    scheduler_owner: str | None = None
    scheduler_expires_at: datetime | None = None
    salesforce_usage: list[tuple[int, int]] = field(default_factory=list)
    """(used, limit) of each connected Salesforce org's daily API requests"""
    taken_at: datetime = field(default_factory=utcnow)


def fleet_snapshot(session: Session) -> FleetSnapshot:
    sync = SyncRepository(session)
    now = utcnow()
    lease = sync.scheduler_lease(SCHEDULER_LEASE)
    operations = OperationsRepository(session)
    return FleetSnapshot(
        units=sync.unit_totals(),
        due=sync.due_count(now),
        bookings=operations.booking_totals(),
        salesforce_usage=operations.salesforce_usage(),
        scheduler_owner=lease.owner if lease is not None else None,
        scheduler_expires_at=lease.expires_at if lease is not None else None,
        taken_at=now,
    )
