"""Domain ownership: claims, one verified holder (enforced by the database too), proof by a
DNS TXT record, and claims dropped when the owner verifies."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError

from m365sync.audit import service as audit
from m365sync.organizations import service as orgs
from m365sync.organizations.errors import DnsUnavailable, DomainNotProven, DomainTaken
from m365sync.organizations.models import Domain, DomainProof
from support.organizations import fresh

NOW = datetime.now(UTC)


class FakeDns:
    """A DNS zone the test publishes TXT records in; records which names were asked."""

    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.asked: list[str] = []

    def __call__(self, name: str) -> list[str]:
        self.asked.append(name)
        return list(self.records.get(name, []))


def test_a_claim_never_blocks_the_owner_and_is_dropped_when_the_owner_verifies(db, make_org):
    squatter = make_org("Squatter", ("woodgrove.com",), verified=False)
    owner = make_org("Woodgrove", ("woodgrove.com",), verified=False)

    with db.session() as session:
        verified = orgs.verify_domain(
            session,
            fresh(session, owner),
            "woodgrove.com",
            method=DomainProof.SERVICE_ACCOUNT,
            tenant_id="7e2b7c52-0000-4000-8000-00000000b001",
        )
        assert verified.verified and verified.verification_method == DomainProof.SERVICE_ACCOUNT
        assert verified.tenant_id == "7e2b7c52-0000-4000-8000-00000000b001"

    with db.session() as session:
        assert orgs.list_domains(session, fresh(session, squatter)) == []
        dropped = [
            e for e in audit.list_events(session, squatter.id) if e.action == "domain.claim_dropped"
        ]
        assert [e.target for e in dropped] == ["woodgrove.com"]

    # Claiming or verifying it again is a conflict that names the cause and the fix.
    with db.session() as session, pytest.raises(DomainTaken) as taken:
        orgs.add_domain(session, fresh(session, squatter), "WoodGrove.com")
    assert taken.value.status == 409
    assert "verified by another organization" in taken.value.message
    assert "ask this server's operator" in (taken.value.fix or "")


def test_the_database_holds_a_domain_verified_by_one_organization_at_most(db, make_org):
    """The unique index over verified rows is the last word, even past the service's check
    (two verifications racing)."""
    first = make_org("First", (), verified=False)
    second = make_org("Second", (), verified=False)
    with db.session() as session:
        for org in (first, second):  # unverified claims of one name coexist
            session.add(Domain(organization_id=org.id, name="woodgrove.com"))
        session.add(Domain(organization_id=first.id, name="fabrikam.com", verified_at=NOW))
        session.add(Domain(organization_id=second.id, name="fabrikam.com"))
    with pytest.raises(IntegrityError), db.session() as session:
        session.add(
            Domain(
                organization_id=second.id,
                name="contoso.com",
                verified_at=NOW,
                verification_method=DomainProof.OPERATOR,
            )
        )
        session.add(
            Domain(
                organization_id=first.id,
                name="contoso.com",
                verified_at=NOW,
                verification_method=DomainProof.OPERATOR,
            )
        )
        session.flush()


def test_a_dns_txt_record_verifies_a_domain(db, make_org):
    org = make_org("Woodgrove", ("woodgrove.com",), verified=False)
    dns = FakeDns()
    with db.session() as session:
        domain = orgs.get_domain(session, fresh(session, org), "woodgrove.com")
        record = orgs.dns_record(domain)
        assert record.host == "woodgrove.com"
        assert record.value.startswith("m365sync-verification=")
        dns.records["woodgrove.com"] = ["v=spf1 include:spf.protection.outlook.com -all"]
        with pytest.raises(DomainNotProven) as missing:
            orgs.verify_domain_by_dns(session, fresh(session, org), "woodgrove.com", lookup=dns)
        assert missing.value.status == 422
        assert record.value in (missing.value.fix or "")
        assert "v=spf1" in missing.value.message
        assert not domain.verified

    dns.records["woodgrove.com"].append(record.value)
    with db.session() as session:
        domain = orgs.verify_domain_by_dns(
            session, fresh(session, org), "woodgrove.com", lookup=dns
        )
        assert domain.verified and domain.verification_method == DomainProof.DNS_TXT
        assert domain.tenant_id is None  # no Microsoft 365 tenant vouched for it
    assert dns.asked == ["woodgrove.com", "woodgrove.com"]
    with db.session() as session:
        assert orgs.verified_domain_names(session, org.id) == {"woodgrove.com"}


def test_another_organizations_txt_record_proves_nothing(db, make_org):
    owner = make_org("Woodgrove", ("woodgrove.com",), verified=False)
    squatter = make_org("Squatter", ("woodgrove.com",), verified=False)
    dns = FakeDns()
    with db.session() as session:
        published = orgs.dns_record(
            orgs.get_domain(session, fresh(session, owner), "woodgrove.com")
        )
        dns.records["woodgrove.com"] = [published.value]
        with pytest.raises(DomainNotProven):
            orgs.verify_domain_by_dns(
                session, fresh(session, squatter), "woodgrove.com", lookup=dns
            )


def test_dns_that_does_not_answer_decides_nothing(db, make_org):
    org = make_org("Woodgrove", ("woodgrove.com",), verified=False)

    def unreachable(name: str) -> list[str]:
        raise DnsUnavailable(f"DNS did not answer for {name} (Timeout).", fix="Try again.")

    with db.session() as session, pytest.raises(DnsUnavailable):
        orgs.verify_domain_by_dns(session, fresh(session, org), "woodgrove.com", lookup=unreachable)
    with db.session() as session:
        assert orgs.verified_domain_names(session, org.id) == set()
