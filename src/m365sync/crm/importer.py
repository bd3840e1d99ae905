"""CSV import of accounts, contacts and leads into the embedded store (format: docs/crm.md).

Rows are matched on their natural key — an account on its name, a contact or lead on its
email address (normalised) — so importing the same file twice updates, never duplicates.
A bad row is reported with its line number; the good rows are imported.
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

__all__ = ["ImportReport", "import_csv", "load_demo_crm"]

KINDS = ("accounts", "contacts", "leads")


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


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
        name = get("name") or get("company")
        if not name:
            raise ValueError("an account needs a name")
        existed = session.scalar(
            select(CrmAccount.id).where(
                CrmAccount.organization_id == organization_id, CrmAccount.name == name
            )
        )
        account = _account(session, organization_id, name)
        for domain in filter(
            None, (d.strip().lower().lstrip("@") for d in get("domains").replace(";", " ").split())
        ):
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
                raise ValueError(f"the domain {domain} already belongs to another account")
        if existed:
            report.updated += 1
        else:
            report.created += 1
        return
    email = normalize_address(get("email"))
    if email is None:
        raise ValueError(f"'{get('email')}' is not an email address")
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
    found.first_name = get("first_name")[:100]
    found.last_name = get("last_name")[:100]
    company = get("company") or get("account")
    if isinstance(found, CrmContact):
        found.title = get("title")[:200]
        found.phone = get("phone")[:50]
        if company:
            found.account_id = _account(session, organization_id, company).id
    else:
        found.company = company[:200]
        found.source = "import"
    session.flush()


def import_csv(session: Session, organization_id: str, kind: str, text: str) -> ImportReport:
    """Import ``kind`` (accounts, contacts, leads) rows; the caller's boundary commits."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    report = ImportReport()
    for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            with session.begin_nested():
                _row(
                    session,
                    organization_id,
                    kind,
                    {k.strip().lower(): v for k, v in row.items() if k},
                    report,
                )
        except ValueError as exc:
            report.errors.append((line, str(exc)))
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
