"""The mirror of Salesforce's people in the local store: a full read, then what changed and
was deleted since, so the Graph sync matches locally."""

from __future__ import annotations

from datetime import datetime

from m365sync.crm.embedded import EmbeddedCrm
from m365sync.crm.models import CrmContact, PersonKind
from m365sync.salesforce import JwtBearerFlow, SalesforceClient
from support.demo import SALESFORCE_CONSUMER_KEY, SALESFORCE_INTEGRATION_USER
from support.salesforce_target_world import LEE, NINA, PAT, SAM, SalesforceTarget
from support.salesforce_world import DEMO_KEY


def salesforce(target: SalesforceTarget) -> SalesforceClient:
    """A Salesforce user's own client (what people do in Salesforce meanwhile)."""
    flow = JwtBearerFlow(
        target.settings,
        consumer_key=SALESFORCE_CONSUMER_KEY,
        username=SALESFORCE_INTEGRATION_USER,
        signing_key=DEMO_KEY,
    )
    return SalesforceClient(target.settings, flow)


def later(target: SalesforceTarget, minutes: int = 2) -> datetime:
    """Salesforce's clock, moved on (its change polling counts whole minutes)."""
    answer = target.control("POST", "clock", json={"advanceSeconds": minutes * 60})
    return datetime.fromisoformat(answer["now"])


def people(target: SalesforceTarget, *emails: str) -> dict[str, tuple[PersonKind, str | None]]:
    with target.database.session() as session:
        found = EmbeddedCrm(session, target.organization_id).find_people(emails)
        return {email: (match.kind, match.account_id) for email, match in found.items()}


def test_the_mirror_reads_everyone_then_follows_changes_and_deletions(
    target: SalesforceTarget,
) -> None:
    target.connect()

    first = target.mirror()

    assert first.loaded == {"Account": 2, "Contact": 3, "Lead": 1, "Opportunity": 1}
    matched = people(target, PAT, SAM, NINA, LEE, "nobody@fabrikam.example")
    assert {email: kind for email, (kind, _) in matched.items()} == {
        PAT: PersonKind.CONTACT,
        SAM: PersonKind.CONTACT,
        NINA: PersonKind.CONTACT,
        LEE: PersonKind.LEAD,
    }
    assert matched[PAT][1] is not None and matched[PAT][1] == matched[SAM][1]  # Fabrikam

    with salesforce(target) as client:
        fabrikam = client.query_all("SELECT Id FROM Account WHERE Name = 'Fabrikam'")[0]["Id"]
        (created,) = client.create(
            "Contact",
            [
                {
                    "FirstName": "Kai",
                    "LastName": "New",
                    "Email": "Kai@Fabrikam.example",
                    "AccountId": fabrikam,
                }
            ],
        )
        assert created.success
        sam = client.query_all(f"SELECT Id FROM Contact WHERE Email = '{SAM}'")[0]["Id"]
        assert client.delete([sam])[0].success
        lee = client.query_all(f"SELECT Id FROM Lead WHERE Email = '{LEE}'")[0]["Id"]
    target.control("POST", f"leads/{lee}/convert", json={"createOpportunity": False})
    target.forget_requests()

    second = target.mirror(now=later(target))

    assert second.loaded == {}
    # Kai and the contact Lee became (and, read again, what changed just before the full
    # read: its cursor starts a few minutes early, and applying a record twice is harmless).
    assert second.changed["Contact"] >= 2
    assert second.removed == {"Contact": 1}  # Sam; the converted lead left as a change
    assert second.api_calls == len(target.api_requests()) <= 12
    matched = people(target, PAT, SAM, LEE, "kai@fabrikam.example")
    assert matched["kai@fabrikam.example"] == matched[PAT]
    assert SAM not in matched
    assert matched[LEE][0] == PersonKind.CONTACT  # converted: a contact now, no longer a lead

    # Nothing changed since: a poll reads nothing but the windows.
    target.forget_requests()
    third = target.mirror(now=later(target))
    assert (third.loaded, third.changed, third.removed) == ({}, {}, {})
    assert third.api_calls == 8  # updated + deleted for each of the four objects


def test_several_contacts_with_one_address_are_one_local_contact(target: SalesforceTarget) -> None:
    target.connect()
    target.mirror()
    with salesforce(target) as client:
        (twin,) = client.create(
            "Contact",
            [{"LastName": "Buyer (duplicate)", "Email": PAT}],
            allow_duplicates=True,
        )
        assert twin.success
        oldest = client.query_all(
            f"SELECT Id FROM Contact WHERE Email = '{PAT}' ORDER BY CreatedDate LIMIT 1"
        )[0]["Id"]
    target.mirror(now=later(target))
    # One local contact for the address; the oldest Salesforce contact speaks for it.
    with target.database.session() as session:
        match = EmbeddedCrm(session, target.organization_id).find_people([PAT])[PAT]
        local = session.get(CrmContact, match.id)
        assert local is not None and local.last_name == "Buyer"
    with salesforce(target) as client:
        assert client.delete([oldest])[0].success
    target.mirror(now=later(target))
    assert PAT in people(target, PAT)  # the twin still has the address


def test_more_changes_than_salesforce_lists_at_once_reach_the_mirror(
    target: SalesforceTarget,
) -> None:
    target.connect()
    target.mirror()
    target.control("PATCH", "config", json={"replication_id_limit": 5})
    emails = [f"buyer{n:02}@northwind.example" for n in range(12)]
    made: list[str] = []
    with salesforce(target) as client:
        for pair in range(6):  # two a minute: each minute fits, the whole window does not
            saved = client.create(
                "Contact", [{"LastName": f"Buyer {e}", "Email": e} for e in emails[2 * pair :][:2]]
            )
            made += [str(r.id) for r in saved if r.success]
            later(target, 1)
    assert len(made) == 12
    target.forget_requests()

    changed = target.mirror(now=later(target))

    assert changed.loaded == {}  # followed, not read again
    assert set(people(target, *emails)) == set(emails)
    updates = windows(target, "/sobjects/Contact/updated/")
    assert 400 in {status for status, _ in updates}
    assert len([1 for status, _ in updates if status == 200]) >= 2

    with salesforce(target) as client:
        for pair in range(6):
            assert all(r.success for r in client.delete(made[2 * pair :][:2]))
            later(target, 1)
    target.forget_requests()

    removed = target.mirror(now=later(target))

    assert removed.loaded == {}
    assert removed.removed == {"Contact": 12}
    assert people(target, *emails) == {}
    deletions = windows(target, "/sobjects/Contact/deleted/")
    assert 400 in {status for status, _ in deletions}
    assert PAT in people(target, PAT)  # only the twelve left


def test_more_changes_within_one_minute_than_salesforce_lists_mean_a_full_read(
    target: SalesforceTarget,
) -> None:
    target.connect()
    target.mirror()
    target.control("PATCH", "config", json={"replication_id_limit": 1})
    emails = ["one@northwind.example", "two@northwind.example"]
    with salesforce(target) as client:
        assert all(
            r.success
            for r in client.create("Contact", [{"LastName": e, "Email": e} for e in emails])
        )

    again = target.mirror(now=later(target))

    assert again.loaded["Contact"] == 5  # the three seeded and the two new, read whole
    assert set(people(target, *emails)) == set(emails)


def windows(target: SalesforceTarget, path: str) -> list[tuple[int, str]]:
    """The change-polling requests m365sync made: (status, query)."""
    return [
        (int(entry["status"]), str(entry["query"]))
        for entry in target.api_requests()
        if path in entry["path"]
    ]
