"""Organizations, domains, members and API tokens."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from tests.m365sync.conftest import fresh

from m365sync.errors import Conflict, Unauthorized, ValidationFailed
from m365sync.organizations import service as orgs
from m365sync.organizations.models import ApiToken, Role


def test_domains_are_normalized_and_unique(db, make_org):
    org = make_org(domains=())
    with db.session() as session:
        assert (
            orgs.add_domain(session, fresh(session, org), " @Contoso.COM. ").name == "contoso.com"
        )
        assert (
            orgs.add_domain(session, fresh(session, org), "bücher.example").name
            == "xn--bcher-kva.example"
        )
        with pytest.raises(ValidationFailed):
            orgs.add_domain(session, fresh(session, org), "contoso")
    with db.session() as session, pytest.raises(Conflict):
        orgs.add_domain(session, fresh(session, org), "contoso.com")


def test_two_organizations_may_claim_a_domain_until_one_verifies_it(db, make_org):
    make_org("Contoso", ("contoso.com",), verified=False)
    make_org("Contoso EU", ("contoso.com",), verified=False)


def test_api_tokens_are_stored_hashed_and_only_for_admins(db, make_org, make_member):
    org = make_org()
    admin = make_member(org, "admin@contoso.com", Role.ADMIN)
    user = make_member(org, "adele@contoso.com")
    with db.session() as session:
        _, plaintext = orgs.create_api_token(session, fresh(session, org), admin)
        with pytest.raises(ValidationFailed):
            orgs.create_api_token(session, fresh(session, org), user)
    with db.session() as session:
        stored = session.scalars(select(ApiToken)).all()
        assert len(stored) == 1 and plaintext not in (stored[0].token_hash, stored[0].prefix)
        organization, member = orgs.authenticate_token(session, plaintext)
        assert (organization.id, member.email) == (org.id, "admin@contoso.com")
        orgs.revoke_api_token(session, fresh(session, org), stored[0].id)
    with db.session() as session, pytest.raises(Unauthorized):
        orgs.authenticate_token(session, plaintext)


def test_csv_import_reports_bad_rows_and_applies_good_ones(db, make_org):
    org = make_org()
    with db.session() as session:
        result = orgs.import_members_csv(
            session,
            fresh(session, org),
            "\ufeffEmail,Name,Role,CRM_User_Id\nA@Contoso.com,A,admin,005x\nb@,B,user,\nc@contoso.com,C,boss,\n",
        )
    assert result.created == ["a@contoso.com"]
    assert [e.split(":")[0] for e in result.errors] == ["line 3", "line 4"]
    with db.session() as session:
        member = orgs.get_member(session, fresh(session, org), "a@contoso.com")
        assert member.role == Role.ADMIN and member.crm_user_id == "005x"
    with db.session() as session, pytest.raises(ValidationFailed):
        orgs.import_members_csv(session, fresh(session, org), "name\nx\n")
