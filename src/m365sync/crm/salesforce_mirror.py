"""The mirror: Salesforce's Contacts, unconverted Leads, Accounts and open Opportunities,
kept in the local store's people tables so the Graph sync matches without waiting on
Salesforce.

Why a mirror rather than a SOQL query per page (``docs/crm.md``): the sync engine matches
every page's addresses in one local query inside the page's transaction; asking Salesforce
instead would put a network round trip (and an API request from the org's daily limit) in
every page of every mailbox, stall Graph sync whenever Salesforce is slow, limited or
down, and spend most calls on addresses that match nobody. The mirror costs a full read
once, then a few requests per poll whatever the mail volume: ``updated`` and ``deleted``
per object from its cursor, and one query for the records that changed.

Projection: a Contact (with an address) is a row of ``crm_contacts``, a Lead not converted
one of ``crm_leads``, an Account one of ``crm_accounts`` and an open Opportunity one of
``crm_opportunities``; ``salesforce_mirror_records`` ties each Salesforce id to its local
row. Several Salesforce contacts sharing an address share the local contact (the store
keeps one per address); the oldest is the one activities are related to. A converted Lead
or a closed Opportunity leaves the mirror like a deleted record. Owners become members
through their Salesforce users.

The cursor of each object (``salesforce_mirror_cursors``) is Salesforce's own
``latestDateCovered``, so nothing changed in Salesforce while the mirror read is missed;
a cursor too old for ``updated`` (30 days) or ``deleted`` (15 days) means a full read,
which also drops what Salesforce no longer holds. A window holding more than 600,000 ids
is narrowed by the client; the poll reads the rest window after window in the same run,
saving the cursor after each (changed and deleted move independently), and more than
600,000 changes within one minute (which Salesforce cannot list) mean a full read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import requests

from m365sync.crm.addresses import normalize_address
from m365sync.crm.models import (
    CrmAccount,
    CrmContact,
    CrmLead,
    CrmOpportunity,
    SalesforceMirrorRecord,
)
from m365sync.crm.salesforce_access import open_client, remember, working_secrets
from m365sync.crm.salesforce_repository import SalesforceRepository
from m365sync.crm.salesforce_schemas import MirrorResult
from m365sync.crm.salesforce_service import match_members_to_users
from m365sync.crypto import SecretBox
from m365sync.db.base import new_id, utcnow
from m365sync.db.session import Database
from m365sync.salesforce import SalesforceClient, parse_salesforce_datetime
from m365sync.salesforce.errors import LimitExceeded, TooManyIds
from m365sync.settings import Settings

__all__ = ["MIRRORED", "refresh_salesforce_people"]

PAGE = 2_000
UPDATED_WINDOW = timedelta(days=29)
"""``updated`` answers for the last 30 days; older cursors mean a full read."""
DELETED_WINDOW = timedelta(days=14)
"""``deleted`` answers for the last 15 days."""
SAFETY = timedelta(minutes=5)
"""A full read's cursor starts this much before it did (clock skew, slow commits)."""
USERS_EVERY = timedelta(hours=1)


@dataclass(frozen=True)
class Mirrored:
    sobject: str
    fields: tuple[str, ...]
    where: str
    """Which records a full read takes (polling reads changed records by id)."""


MIRRORED = (
    Mirrored("Account", ("Id", "Name", "OwnerId", "CreatedDate"), ""),
    Mirrored(
        "Contact",
        (
            "Id",
            "Email",
            "FirstName",
            "LastName",
            "Title",
            "Phone",
            "AccountId",
            "OwnerId",
            "CreatedDate",
        ),
        "Email != null",
    ),
    Mirrored(
        "Lead",
        (
            "Id",
            "Email",
            "FirstName",
            "LastName",
            "Company",
            "Status",
            "IsConverted",
            "OwnerId",
            "CreatedDate",
        ),
        "IsConverted = false AND Email != null",
    ),
    Mirrored(
        "Opportunity",
        ("Id", "Name", "AccountId", "StageName", "Amount", "IsClosed", "OwnerId", "CreatedDate"),
        "IsClosed = false",
    ),
)
LOCAL = {
    "Account": CrmAccount,
    "Contact": CrmContact,
    "Lead": CrmLead,
    "Opportunity": CrmOpportunity,
}


def _when(value: Any) -> datetime:
    try:
        return parse_salesforce_datetime(value)
    except ValueError:
        return utcnow()


def _text(value: Any, limit: int) -> str:
    return str(value or "")[:limit]


def _amount(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _pages(records: Iterable[dict[str, Any]], size: int = PAGE) -> Iterator[list[dict[str, Any]]]:
    page: list[dict[str, Any]] = []
    for record in records:
        page.append(record)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page


class _Projector:
    """Applies Salesforce records to the local store, inside one session."""

    def __init__(self, repo: SalesforceRepository, owners: dict[str, str]) -> None:
        self.repo = repo
        self.owners = owners  # Salesforce user id → member id

    def apply(self, sobject: str, records: Sequence[dict[str, Any]]) -> int:
        ids = [str(r["Id"]) for r in records]
        accounts = [str(r["AccountId"]) for r in records if r.get("AccountId")]
        self.known = self.repo.mirror_rows([*ids, *accounts])
        changed = 0
        for record in records:
            changed += getattr(self, f"_{sobject.lower()}")(record)
        return changed

    def remove(self, salesforce_ids: Iterable[str]) -> int:
        rows = self.repo.mirror_rows(list(salesforce_ids))
        for row in rows.values():
            self._detach(row)
        return len(rows)

    def _detach(self, row: SalesforceMirrorRecord) -> None:
        self.repo.delete_mirror_row(row)
        self.repo.session.flush()
        still = [r for r in self.repo.mirror_rows_for_local([row.local_id]) if r is not row]
        if not still:
            local = self.repo.local_row(LOCAL[row.sobject], row.local_id)
            if local is not None:
                self.repo.delete_local(local)

    def _account_of(self, record: dict[str, Any]) -> str | None:
        row = self.known.get(str(record.get("AccountId") or ""))
        return row.local_id if row is not None and row.sobject == "Account" else None

    def _owner(self, record: dict[str, Any]) -> str | None:
        return self.owners.get(str(record.get("OwnerId") or ""))

    def _mirror(
        self, record: dict[str, Any], sobject: str, local_id: str, email: str | None
    ) -> None:
        row = SalesforceMirrorRecord(
            organization_id=self.repo.organization_id,
            salesforce_id=str(record["Id"]),
            sobject=sobject,
            local_id=local_id,
            email=email,
            created_at=_when(record.get("CreatedDate")),
        )
        self.repo.add_mirror_row(row)
        self.known[row.salesforce_id] = row

    def _account(self, record: dict[str, Any]) -> int:
        row = self.known.get(str(record["Id"]))
        local = self.repo.local_row(CrmAccount, row.local_id) if row is not None else None
        if local is None:
            if row is not None:
                self._detach(row)
            local = CrmAccount(
                id=new_id(), organization_id=self.repo.organization_id, name="(account)"
            )
            self.repo.add_local(local)
            self._mirror(record, "Account", local.id, None)
        local.name = _text(record.get("Name"), 200) or "(account)"
        local.owner_member_id = self._owner(record)
        return 1

    def _person(self, record: dict[str, Any], sobject: str, model: Any) -> Any:
        """The local contact or lead this record is matched through (None: it has no
        usable address and left the mirror), and whether it is the primary record."""
        email = normalize_address(str(record.get("Email") or ""))
        row = self.known.get(str(record["Id"]))
        if row is not None and (email is None or row.email != email):
            self._detach(row)
            self.known.pop(row.salesforce_id, None)
            row = None
        if email is None:
            return None
        if row is None:
            found = self.repo.people_by_email(model, [email]).get(email)
            if found is None:
                found = model(id=new_id(), organization_id=self.repo.organization_id, email=email)
                self.repo.add_local(found)
            self._mirror(record, sobject, found.id, email)
            self.repo.session.flush()
            local = found
        else:
            local = self.repo.local_row(model, row.local_id)
            if local is None:
                local = model(id=row.local_id, organization_id=self.repo.organization_id)
                local.email = email
                self.repo.add_local(local)
        primary = self.repo.mirror_rows_for_local([local.id])
        if primary and primary[0].salesforce_id != str(record["Id"]):
            return None  # an older record with this address speaks for it
        return local

    def _contact(self, record: dict[str, Any]) -> int:
        local = self._person(record, "Contact", CrmContact)
        if local is None:
            return 1
        local.first_name = _text(record.get("FirstName"), 100)
        local.last_name = _text(record.get("LastName"), 100)
        local.title = _text(record.get("Title"), 200)
        local.phone = _text(record.get("Phone"), 50)
        local.account_id = self._account_of(record)
        local.owner_member_id = self._owner(record)
        return 1

    def _lead(self, record: dict[str, Any]) -> int:
        if record.get("IsConverted"):
            return self.remove([str(record["Id"])])
        local = self._person(record, "Lead", CrmLead)
        if local is None:
            return 1
        local.first_name = _text(record.get("FirstName"), 100)
        local.last_name = _text(record.get("LastName"), 100)
        local.company = _text(record.get("Company"), 200)
        local.status = _text(record.get("Status"), 50) or "new"
        local.source = "salesforce"
        local.owner_member_id = self._owner(record)
        return 1

    def _opportunity(self, record: dict[str, Any]) -> int:
        account = self._account_of(record)
        if record.get("IsClosed") or account is None:
            return self.remove([str(record["Id"])])
        row = self.known.get(str(record["Id"]))
        local = self.repo.local_row(CrmOpportunity, row.local_id) if row is not None else None
        if local is None:
            if row is not None:
                self._detach(row)
            local = CrmOpportunity(
                id=new_id(),
                organization_id=self.repo.organization_id,
                account_id=account,
                name="(opportunity)",
            )
            self.repo.add_local(local)
            self._mirror(record, "Opportunity", local.id, None)
        local.account_id = account
        local.name = _text(record.get("Name"), 200) or "(opportunity)"
        local.stage = _text(record.get("StageName"), 50)
        local.amount = _amount(record.get("Amount"))
        local.is_closed = False
        local.owner_member_id = self._owner(record)
        return 1


def refresh_salesforce_people(
    database: Database,
    organization_id: str,
    *,
    settings: Settings,
    box: SecretBox,
    now: datetime | None = None,
    http: requests.Session | None = None,
) -> MirrorResult:
    """Bring the mirror of the organization's Salesforce people up to date: a full read the
    first time (or when the cursor is too old), then what changed and was deleted since.
    Members are matched to Salesforce users again at most hourly. Each page commits on its
    own; each object's cursor commits after its changes. Stops, keeping what it read, when
    the API limit (or m365sync's share of it) is reached."""
    started = now or utcnow()
    result = MirrorResult()
    with database.session() as session:
        repo = SalesforceRepository(session, organization_id)
        row = repo.connection()
        secrets = working_secrets(row, box, refused="Salesforce's people can't be read")
        assert row is not None
        match_users = row.users_matched_at is None or started - row.users_matched_at > USERS_EVERY
        cursors = {m.sobject: repo.cursor(m.sobject) for m in MIRRORED}
        positions = {
            name: (c.updated_until, c.deleted_until) for name, c in cursors.items() if c is not None
        }
    with open_client(secrets, settings, http=http) as client:
        try:
            if match_users:
                with database.session() as session:
                    repo = SalesforceRepository(session, organization_id)
                    connection = repo.connection()
                    assert connection is not None
                    match_members_to_users(repo, connection, client)
            owners = _owners(database, organization_id)
            for mirrored in MIRRORED:
                position = positions.get(mirrored.sobject)
                if (
                    position is None
                    or started - position[0] > UPDATED_WINDOW
                    or started - position[1] > DELETED_WINDOW
                ):
                    _full_read(database, client, organization_id, mirrored, owners, started, result)
                else:
                    try:
                        _poll(
                            database,
                            client,
                            organization_id,
                            mirrored,
                            owners,
                            position,
                            started,
                            result,
                        )
                    except TooManyIds:
                        # More changes within one minute than Salesforce lists: what
                        # they were can only be read whole.
                        _full_read(
                            database, client, organization_id, mirrored, owners, started, result
                        )
        except LimitExceeded:
            pass  # what was read is kept; the next run goes on from the cursors
        finally:
            result.api_calls = client.api_calls
            with database.session() as session:
                connection = SalesforceRepository(session, organization_id).connection()
                if connection is not None:
                    remember(connection, client, box)
    return result


def _owners(database: Database, organization_id: str) -> dict[str, str]:
    with database.session() as session:
        links = SalesforceRepository(session, organization_id).user_links()
        return {link.salesforce_user_id: member for member, link in links.items()}


def _full_read(
    database: Database,
    client: SalesforceClient,
    organization_id: str,
    mirrored: Mirrored,
    owners: dict[str, str],
    started: datetime,
    result: MirrorResult,
) -> None:
    where = f" WHERE {mirrored.where}" if mirrored.where else ""
    soql = f"SELECT {', '.join(mirrored.fields)} FROM {mirrored.sobject}{where}"  # noqa: S608
    seen: set[str] = set()
    for page in _pages(client.iter_query(soql)):
        with database.session() as session:
            repo = SalesforceRepository(session, organization_id)
            _Projector(repo, owners).apply(mirrored.sobject, page)
        seen.update(str(r["Id"]) for r in page)
        result.loaded[mirrored.sobject] = result.loaded.get(mirrored.sobject, 0) + len(page)
    with database.session() as session:
        repo = SalesforceRepository(session, organization_id)
        gone = [r.salesforce_id for r in repo.mirror_rows_of(mirrored.sobject)]
        gone = [sfid for sfid in gone if sfid not in seen]
        if gone:
            result.removed[mirrored.sobject] = _Projector(repo, owners).remove(gone)
        cursor = started - SAFETY
        repo.save_cursor(mirrored.sobject, updated_until=cursor, deleted_until=cursor, loaded=True)


def _poll(
    database: Database,
    client: SalesforceClient,
    organization_id: str,
    mirrored: Mirrored,
    owners: dict[str, str],
    position: tuple[datetime, datetime],
    started: datetime,
    result: MirrorResult,
) -> None:
    updated_until, deleted_until = position
    # Salesforce counts whole minutes: a window shorter than one tells nothing new.
    if started - updated_until >= timedelta(minutes=1):
        for window in client.updated_windows(mirrored.sobject, updated_until, started):
            if window.ids:
                records = client.find_by(mirrored.sobject, "Id", window.ids, select=mirrored.fields)
                for page in _pages(records):
                    with database.session() as session:
                        repo = SalesforceRepository(session, organization_id)
                        changed = _Projector(repo, owners).apply(mirrored.sobject, page)
                    result.changed[mirrored.sobject] = (
                        result.changed.get(mirrored.sobject, 0) + changed
                    )
            updated_until = max(updated_until, window.latest_date_covered)
            _save_cursor(database, organization_id, mirrored, updated_until, deleted_until)
    if started - deleted_until >= timedelta(minutes=1):
        for deleted in client.deleted_windows(mirrored.sobject, deleted_until, started):
            if deleted.records:
                with database.session() as session:
                    repo = SalesforceRepository(session, organization_id)
                    removed = _Projector(repo, owners).remove(r.id for r in deleted.records)
                result.removed[mirrored.sobject] = result.removed.get(mirrored.sobject, 0) + removed
            deleted_until = max(deleted_until, deleted.latest_date_covered)
            _save_cursor(database, organization_id, mirrored, updated_until, deleted_until)


def _save_cursor(
    database: Database,
    organization_id: str,
    mirrored: Mirrored,
    updated_until: datetime,
    deleted_until: datetime,
) -> None:
    with database.session() as session:
        SalesforceRepository(session, organization_id).save_cursor(
            mirrored.sobject, updated_until=updated_until, deleted_until=deleted_until, loaded=False
        )
