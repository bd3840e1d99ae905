"""Organizations, domains, members and API tokens."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from tests.m365sync.conftest import fresh

from m365sync.audit import service as audit
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


def test_a_demoted_admin_loses_their_tokens_for_good(db, make_org, make_member):
    """Demoting an admin revokes their tokens; promoting them again does not bring the old
    tokens back. Removing a member revokes theirs too."""
    org = make_org()
    admin = make_member(org, "admin@contoso.com", Role.ADMIN)
    other = make_member(org, "diego@contoso.com", Role.ADMIN)
    with db.session() as session:
        _, plaintext = orgs.create_api_token(session, fresh(session, org), admin, name="ci")
        _, others = orgs.create_api_token(session, fresh(session, org), other)
    for role in ("user", "admin"):
        with db.session() as session:
            organization = fresh(session, org)
            member = orgs.get_member(session, organization, "admin@contoso.com")
            orgs.update_member(session, organization, member, role=role)
    with db.session() as session, pytest.raises(Unauthorized, match="was revoked on"):
        orgs.authenticate_token(session, plaintext)
    with db.session() as session:
        assert orgs.authenticate_token(session, others)[1].email == "diego@contoso.com"
        organization = fresh(session, org)
        orgs.remove_member(
            session, organization, orgs.get_member(session, organization, "diego@contoso.com")
        )
    with db.session() as session, pytest.raises(Unauthorized):
        orgs.authenticate_token(session, others)
    with db.session() as session:
        actions = [(e.action, e.detail.get("reason")) for e in audit.list_events(session, org.id)]
        assert ("api_token.revoke", "no longer an admin") in actions


def test_a_demotion_by_csv_import_revokes_tokens_too(db, make_org, make_member):
    org = make_org()
    admin = make_member(org, "admin@contoso.com", Role.ADMIN)
    with db.session() as session:
        _, plaintext = orgs.create_api_token(session, fresh(session, org), admin)
        orgs.import_members_csv(
            session, fresh(session, org), "email,role\nadmin@contoso.com,user\n"
        )
        orgs.import_members_csv(
            session, fresh(session, org), "email,role\nadmin@contoso.com,admin\n"
        )
    with db.session() as session, pytest.raises(Unauthorized, match="revoked"):
        orgs.authenticate_token(session, plaintext)


def test_text_longer_than_its_column_is_refused_with_the_limit(db, make_org, make_member):
    org = make_org()
    make_member(org, "adele@contoso.com")
    cases = [
        lambda s, o: orgs.add_member(s, o, "lee@contoso.com", name="x" * 201),
        lambda s, o: orgs.add_member(s, o, "x" * 310 + "@contoso.com"),
        lambda s, o: orgs.add_member(s, o, "lee@contoso.com", crm_user_id="5" * 101),
        lambda s, o: orgs.update_member(
            s, o, orgs.get_member(s, o, "adele@contoso.com"), name="x" * 201
        ),
        lambda s, o: orgs.create_organization(s, "N" * 201),
    ]
    for case in cases:
        with db.session() as session, pytest.raises(ValidationFailed) as refused:
            case(session, fresh(session, org))
        assert "characters long; the most is" in refused.value.message
        assert refused.value.fix
    with db.session() as session:
        at_the_limit = orgs.add_member(
            session, fresh(session, org), "lee@contoso.com", name="x" * 200
        )
        assert len(at_the_limit.name) == 200
        long_name = orgs.create_organization(session, "Contoso " * 25)  # 200 characters
        assert len(long_name.slug) <= 100 and not long_name.slug.endswith("-")


def test_csv_import_reports_a_too_long_name_on_its_line_and_imports_the_rest(db, make_org):
    org = make_org()
    text = (
        "email,name,role\n"
        "lee@contoso.com,Lee Gu,user\n"
        f"long@contoso.com,{'x' * 201},user\n"
        "grady@contoso.com,Grady Archie,user,surplus cell\n"
    )
    with db.session() as session:
        result = orgs.import_members_csv(session, fresh(session, org), text)
    assert result.created == ["lee@contoso.com", "grady@contoso.com"]
    assert result.errors == [
        "line 3: The member's name is 201 characters long; the most is 200. "
        "Shorten it to 200 characters or fewer."
    ]
    with db.session() as session:
        emails = [m.email for m in orgs.list_members(session, fresh(session, org))]
    assert emails == ["grady@contoso.com", "lee@contoso.com"]


def test_a_member_chooses_the_zone_their_pages_show_or_their_browsers(db, make_org, make_member):
    org = make_org()
    member_id = make_member(org, "adele@contoso.com").id

    def adele(session):
        return orgs.get_member(session, fresh(session, org), member_id)

    with db.session() as session:
        assert orgs.set_time_zone(session, adele(session), "Asia/Tokyo").time_zone == "Asia/Tokyo"
    with db.session() as session, pytest.raises(ValidationFailed) as refused:
        orgs.set_time_zone(session, adele(session), "Mars/Olympus_Mons")
    assert refused.value.message == "'Mars/Olympus_Mons' is not a time zone this server knows."
    assert refused.value.fix == "Choose a time zone from the list, or your browser's."
    with db.session() as session:
        assert adele(session).time_zone == "Asia/Tokyo"  # unchanged
        assert orgs.set_time_zone(session, adele(session), " ").time_zone is None
