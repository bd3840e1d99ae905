"""The unresolved queue: emails and meetings with external people that match no Salesforce
Contact or Lead, waiting for their rep.

The writer marks such an activity *unmatched* (there is nothing to relate it to); the queue
is the unmatched emails and meetings a member holds, each with the external addresses nobody
has decided about yet. For an address the rep can, in one step:

- **relate** it to a Salesforce record found by name or address in the mirror (a Contact or
  Lead: the address then matches that person; an Account or Opportunity: what the email or
  meeting is related to);
- **create a Lead** for it in Salesforce (an unconverted Lead with that address is used
  rather than a second one);
- **dismiss** it: not for Salesforce; what involves only dismissed addresses leaves the
  queue.

The choice is remembered for the address in the organization (``salesforce_address_choices``):
what already waits with it goes back to the writer at once, and every later email or meeting
with it follows the choice (a related Contact or Lead, or a new Lead, matches the address from
then on, so mail from it is logged even where only mail with known people is). Emails wait
here only when the local store keeps them: by default only mail with a known contact or lead
is logged, so unmatched emails appear when the sync rules log mail with unknown people;
meetings always do.
"""

from __future__ import annotations

import requests
from sqlalchemy.orm import Session

from m365sync.crm.addresses import address_domain, normalize_address
from m365sync.crm.embedded import EmbeddedCrm
from m365sync.crm.errors import UnresolvedMemberNotFound, UnresolvedRecordNotFound
from m365sync.crm.models import (
    AddressChoice,
    CrmActivity,
    PersonKind,
    SalesforceAddressChoice,
    SalesforceMirrorRecord,
)
from m365sync.crm.salesforce_access import open_client, remember, working_secrets
from m365sync.crm.salesforce_repository import SalesforceRepository
from m365sync.crm.salesforce_schemas import AddressDecision, RecordChoice, UnresolvedItem
from m365sync.crm.target import NewLead
from m365sync.crypto import SecretBox
from m365sync.db.base import utcnow
from m365sync.errors import ValidationFailed
from m365sync.settings import Settings

__all__ = [
    "create_lead_for_address",
    "dismiss_address",
    "find_salesforce_records",
    "relate_address",
    "unresolved_items",
]

QUEUE_LIMIT = 200
SEARCH_LIMIT = 20
PERSON_KIND = {"Contact": PersonKind.CONTACT, "Lead": PersonKind.LEAD}


def _address(value: str) -> str:
    address = normalize_address(value)
    if address is None:
        raise ValidationFailed(
            f"“{value}” is not an email address.",
            fix="Choose one of the addresses the email or meeting involves.",
        )
    return address


def _member_id(repo: SalesforceRepository, member_id: str) -> str:
    if repo.member(member_id) is None:
        raise UnresolvedMemberNotFound(
            "This organization has no such member.",
            fix="Choose a member of the organization (their id or email address).",
        )
    return member_id


def _external(activity: CrmActivity, internal: set[str], members: set[str]) -> list[str]:
    addresses = {str(p.get("address") or "").lower() for p in activity.participants or []}
    if activity.from_address:
        addresses.add(activity.from_address.lower())
    return sorted(
        a for a in addresses if a and a not in members and address_domain(a) not in internal
    )


def unresolved_items(
    session: Session, organization_id: str, member_id: str, *, limit: int = QUEUE_LIMIT
) -> list[UnresolvedItem]:
    """The member's queue, newest first: unmatched emails and meetings they hold, each with
    its external addresses nobody has decided about (items with none left are not shown)."""
    repo = SalesforceRepository(session, organization_id)
    activities = repo.unmatched_held_by(_member_id(repo, member_id), limit)
    internal = repo.org_domains()
    members = {m.email.lower() for m in repo.members()}
    external = {a.id: _external(a, internal, members) for a in activities}
    decided = repo.choices({a for found in external.values() for a in found})
    items = []
    for activity in activities:
        open_addresses = [a for a in external[activity.id] if a not in decided]
        if not open_addresses:
            continue
        items.append(
            UnresolvedItem(
                activity_id=activity.id,
                kind=activity.kind,
                subject=activity.subject,
                occurred_at=activity.occurred_at or activity.starts_at,
                addresses=open_addresses,
            )
        )
    return items


def find_salesforce_records(
    session: Session, organization_id: str, text: str, *, limit: int = SEARCH_LIMIT
) -> list[RecordChoice]:
    """Salesforce Contacts, Leads, Accounts and open Opportunities (from the mirror: no API
    request) whose name or address contains ``text``."""
    if len(text.strip()) < 2:
        raise ValidationFailed(
            "Type at least two letters to search Salesforce.",
            fix="Search by a person's name or address, or a company or opportunity name.",
        )
    repo = SalesforceRepository(session, organization_id)
    return [
        RecordChoice(sobject=sobject, salesforce_id=sfid, label=label)
        for sobject, sfid, label, _ in repo.search_people_and_records(text, limit)
    ]


def _decide(
    repo: SalesforceRepository,
    member_id: str,
    address: str,
    choice: AddressChoice,
    record: SalesforceMirrorRecord | None = None,
    label: str = "",
) -> AddressDecision:
    kind = PERSON_KIND.get(record.sobject) if record is not None else None
    _member_id(repo, member_id)
    repo.save_choice(
        SalesforceAddressChoice(
            organization_id=repo.organization_id,
            address=address,
            choice=choice,
            sobject=record.sobject if record is not None else "",
            salesforce_id=record.salesforce_id if record is not None else None,
            label=label[:400],
            local_kind=kind.value if kind is not None else None,
            local_id=record.local_id if kind is not None and record is not None else None,
            chosen_by_member_id=member_id,
            chosen_at=utcnow(),
        )
    )
    requeued = repo.requeue_unmatched_with(address) if choice != AddressChoice.DISMISSED else 0
    return AddressDecision(
        address=address,
        choice=choice,
        sobject=record.sobject if record is not None else "",
        salesforce_id=record.salesforce_id if record is not None else None,
        label=label,
        requeued=requeued,
    )


def relate_address(
    session: Session, organization_id: str, member_id: str, address: str, salesforce_id: str
) -> AddressDecision:
    """Relate ``address`` (and what waits with it, and what comes later) to a mirrored
    Salesforce Contact, Lead, Account or Opportunity."""
    address = _address(address)
    repo = SalesforceRepository(session, organization_id)
    record = repo.mirror_row(salesforce_id.strip())
    if record is None:
        raise UnresolvedRecordNotFound(
            "m365sync knows no Salesforce Contact, Lead, Account or open Opportunity with that id.",
            fix="Search for the record by name or address and choose it from the results; "
            "records created in Salesforce in the last few minutes appear after the next "
            "read of Salesforce.",
        )
    label = next(
        (
            found_label
            for sobject, sfid, found_label, _ in repo.search_people_and_records(
                record.email or "", 5
            )
            if sfid == record.salesforce_id and sobject == record.sobject
        ),
        record.email or record.salesforce_id,
    )
    return _decide(repo, member_id, address, AddressChoice.RELATED, record, label)


def dismiss_address(
    session: Session, organization_id: str, member_id: str, address: str
) -> AddressDecision:
    """Not for Salesforce: the address leaves the queue, now and later."""
    address = _address(address)
    return _decide(
        SalesforceRepository(session, organization_id), member_id, address, AddressChoice.DISMISSED
    )


def create_lead_for_address(
    session: Session,
    organization_id: str,
    member_id: str,
    address: str,
    *,
    name: str = "",
    company: str = "",
    settings: Settings,
    box: SecretBox,
    http: requests.Session | None = None,
) -> AddressDecision:
    """Create a Salesforce Lead for ``address`` (owned by the member's Salesforce user; an
    unconverted Lead with that address is used instead of a second), and relate the address
    to it. Salesforce is called inside the caller's transaction (two requests, like Run
    Test's), so the rep's click is one unit: a refusal (a validation or duplicate rule) is
    raised as it is, naming the rule and the fix, and nothing is kept."""
    address = _address(address)
    repo = SalesforceRepository(session, organization_id)
    _member_id(repo, member_id)
    connection = repo.connection()
    secrets = working_secrets(connection, box, refused="A Lead can't be created in Salesforce")
    assert connection is not None
    link = repo.user_links().get(member_id)
    first, _, last = name.strip().partition(" ")
    fields = {
        "Email": address,
        "FirstName": first[:40] if last else None,
        "LastName": (last or first or address.split("@")[0])[:80],
        "Company": (company.strip() or address_domain(address))[:255],
        "OwnerId": link.salesforce_user_id if link is not None else None,
    }
    with open_client(secrets, settings, http=http) as client:
        try:
            existing = [
                r
                for r in client.find_by(
                    "Lead", "Email", [address], select=("Id", "Email", "IsConverted")
                )
                if not r.get("IsConverted")
            ]
            if existing:
                salesforce_id = str(existing[0]["Id"])
            else:
                (result,) = client.create(
                    "Lead", [{k: v for k, v in fields.items() if v is not None}]
                )
                if result.error is not None:
                    raise result.error
                assert result.id is not None
                salesforce_id = result.id
        finally:
            remember(connection, client, box)
    record = repo.mirror_row(salesforce_id)
    if record is None:
        person = EmbeddedCrm(session, organization_id).create_leads(
            [NewLead(address, name.strip())], member_id
        )[address]
        record = SalesforceMirrorRecord(
            organization_id=organization_id,
            salesforce_id=salesforce_id,
            sobject="Lead",
            local_id=person.id,
            email=address,
            created_at=utcnow(),
        )
        repo.add_mirror_row(record)
    label = f"{name.strip() or address} <{address}>"
    return _decide(repo, member_id, address, AddressChoice.NEW_LEAD, record, label)
