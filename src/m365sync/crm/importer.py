"""CSV import of accounts, contacts and leads into the embedded store (format: docs/crm.md).

Rows are matched on their natural key — an account on its name, a contact or lead on its
email address (normalised) — so importing the same file twice updates, never duplicates.
A bad row (no email, a value longer than its column holds, a domain of another account) is
reported with its line number, the cause and the fix, and changes nothing; the good rows
are imported.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from importlib import resources

from sqlalchemy import select
from sqlalchemy.orm import Session

from m365sync.crm.addresses import normalize_address
from m365sync.crm.models import CrmAccount, CrmAccountDomain, CrmContact, CrmLead
from m365sync.db.base import max_length
from m365sync.errors import ValidationFailed

__all__ = ["ImportReport", "import_csv", "load_demo_crm"]

KINDS = ("accounts", "contacts", "leads")

# The most characters each imported column holds (the store's column sizes).
LIMITS = {
    "name": max_length(CrmAccount.__table__.c.name),
    "domain": max_length(CrmAccountDomain.__table__.c.domain),
    "email": max_length(CrmContact.__table__.c.email),
    "first_name": max_length(CrmContact.__table__.c.first_name),
    "last_name": max_length(CrmContact.__table__.c.last_name),
    "title": max_length(CrmContact.__table__.c.title),
    "phone": max_length(CrmContact.__table__.c.phone),
    "company": max_length(CrmLead.__table__.c.company),
}


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    """(line number, what is wrong with the row and how to fix it)."""


class _RowRejected(ValueError):
    """One row can't be imported; the message says why and what to change."""


def _bounded(column: str, value: str) -> str:
    limit = LIMITS[column]
    if len(value) > limit:
        raise _RowRejected(
            f"{column} is {len(value):,} characters long; the most is {limit}. "
            f"Shorten it to {limit} characters or fewer and import the file again."
        )
    return value


def _account(session: Session, organization_id: str, name: str) -> CrmAccount:
    found = session.scalar(
        select(CrmAccount).where(
            CrmAccount.organization_id == organization_id, CrmAccount.name == name
        )
    )
    if found is None:
        found = CrmAccount(organization_id=organization_id, name=name)
        session.add(found)
        session.flush()
    return found


def _row(
    session: Session, organization_id: str, kind: str, row: dict[str, str], report: ImportReport
) -> None:
    def get(key: str) -> str:
        return (row.get(key) or "").strip()

    if kind == "accounts":
        name = _bounded("name", get("name") or get("company"))
        if not name:
            raise _RowRejected("The account has no name. Fill in its name column.")
        existed = session.scalar(
            select(CrmAccount.id).where(
                CrmAccount.organization_id == organization_id, CrmAccount.name == name
            )
        )
        account = _account(session, organization_id, name)
        for domain in filter(
            None, (d.strip().lower().lstrip("@") for d in get("domains").replace(";", " ").split())
        ):
            _bounded("domain", domain)
            taken = session.scalar(
                select(CrmAccountDomain).where(
                    CrmAccountDomain.organization_id == organization_id,
                    CrmAccountDomain.domain == domain,
                )
            )
            if taken is None:
                session.add(
                    CrmAccountDomain(
                        organization_id=organization_id, account_id=account.id, domain=domain
                    )
                )
            elif taken.account_id != account.id:
                raise _RowRejected(
                    f"The domain {domain} already belongs to another account. Remove it from "
                    "one of the two accounts."
                )
        if existed:
            report.updated += 1
        else:
            report.created += 1
        return
    email = normalize_address(get("email"))
    if email is None:
        raise _RowRejected(
            f"'{get('email')[:80]}' is not an email address. Enter one such as kim@fabrikam.com."
        )
    _bounded("email", email)
    first_name = _bounded("first_name", get("first_name"))
    last_name = _bounded("last_name", get("last_name"))
    title = _bounded("title", get("title"))
    phone = _bounded("phone", get("phone"))
    company = _bounded("company", get("company") or get("account"))
    model: type[CrmContact] | type[CrmLead] = CrmContact if kind == "contacts" else CrmLead
    found: CrmContact | CrmLead | None
    if model is CrmContact:
        found = session.scalar(
            select(CrmContact).where(
                CrmContact.organization_id == organization_id, CrmContact.email == email
            )
        )
    else:
        found = session.scalar(
            select(CrmLead).where(
                CrmLead.organization_id == organization_id, CrmLead.email == email
            )
        )
    if found is None:
        found = model(organization_id=organization_id, email=email)
        session.add(found)
        report.created += 1
    else:
        report.updated += 1
    found.first_name = first_name
    found.last_name = last_name
    if isinstance(found, CrmContact):
        found.title = title
        found.phone = phone
        if company:
            found.account_id = _account(session, organization_id, company).id
    else:
        found.company = company
        found.source = "import"
    session.flush()


def import_csv(session: Session, organization_id: str, kind: str, text: str) -> ImportReport:
    """Import ``kind`` (accounts, contacts, leads) rows; the caller's boundary commits.
    Each row is checked whole and applied in a savepoint, so a rejected row changes
    nothing and the others are imported."""
    if kind not in KINDS:
        raise ValidationFailed(
            f"'{kind}' is not something the CRM import knows.",
            fix=f"Import one of: {', '.join(KINDS)}.",
        )
    report = ImportReport()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    try:
        for row in reader:
            try:
                with session.begin_nested():
                    _row(
                        session,
                        organization_id,
                        kind,
                        {k.strip().lower(): v for k, v in row.items() if isinstance(k, str)},
                        report,
                    )
            except _RowRejected as exc:
                report.errors.append((reader.line_num, str(exc)))
    except csv.Error as exc:
        report.errors.append(
            (
                reader.line_num,
                f"The file can't be read as CSV from here on ({exc}). Save it again as CSV "
                "(UTF-8) and import it again; the lines before it were imported.",
            )
        )
    return report


def load_demo_crm(session: Session, organization_id: str) -> ImportReport:
    """The demo CRM: the accounts, contacts and lead the demo tenant's mail and meetings
    involve (Fabrikam, Northwind Traders, Tailspin Toys)."""
    text = resources.files("m365sync.crm").joinpath("demo/demo.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    total = ImportReport()
    for kind in KINDS:
        wanted = [r for r in rows if r["kind"] + "s" == kind]
        buffer = io.StringIO()
        writer = csv.DictWriter(
            buffer,
            fieldnames=["name", "email", "first_name", "last_name", "company", "title", "domains"],
        )
        writer.writeheader()
        for r in wanted:
            writer.writerow(
                {
                    **{
                        k: r[k]
                        for k in ("email", "first_name", "last_name", "company", "title", "domains")
                    },
                    "name": r["company"],
                }
            )
        part = import_csv(session, organization_id, kind, buffer.getvalue())
        total.created += part.created
        total.updated += part.updated
        total.errors += part.errors
    return total
