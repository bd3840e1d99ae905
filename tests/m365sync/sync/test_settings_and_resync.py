"""What an admin changes from the dashboard: the organization's sync rules, a resync."""

from __future__ import annotations

from dataclasses import replace

import pytest

from m365sync.audit import service as audit
from m365sync.db.session import Database
from m365sync.errors import NotFound, ValidationFailed
from m365sync.organizations import service as orgs
from m365sync.sync import service as sync
from m365sync.sync.features import SyncFeature
from m365sync.sync.repository import SyncRepository
from m365sync.sync.schemas import SyncRules

RULES = SyncRules(
    mail_folders=["inbox", "sentitems"],
    backfill_days=60,
    log_internal=False,
    excluded_addresses=["ceo@contoso.com"],
    excluded_domains=["@Partner.Example."],
    headers_only=False,
    log_unknown=False,
    create_leads=True,
    delete_policy="keep",
    calendar_days_back=7,
    calendar_days_ahead=90,
)


def test_rules_are_saved_whole_or_refused_with_every_problem_named(db: Database, make_org) -> None:
    org = make_org()
    bad = replace(RULES, mail_folders=[], backfill_days=5000, excluded_addresses=["nobody"])
    with db.session() as s, pytest.raises(ValidationFailed) as refused:
        sync.update_sync_settings(s, org.id, bad, actor="admin@contoso.com")
    assert "mail folder" in (refused.value.fix or "")
    assert "Backfill window" in (refused.value.fix or "")
    assert "nobody is not an email address" in (refused.value.fix or "")
    with db.session() as s:
        assert sync.sync_settings(s, org.id).backfill_days != 5000

    with db.session() as s:
        sync.update_sync_settings(s, org.id, RULES, actor="admin@contoso.com")
    with db.session() as s:
        saved = sync.sync_settings(s, org.id)
        assert (saved.backfill_days, saved.excluded_domains) == (60, ["partner.example"])
        assert audit.list_events(s, org.id, 10)[0].action == "sync_settings.update"


def test_resync_marks_the_unit_and_needs_one_to_exist(db: Database, make_org, make_member) -> None:
    org = make_org()
    member = make_member(org, "adele@contoso.com")
    with db.session() as s, pytest.raises(NotFound):
        sync.request_resync(s, member, "email", actor="admin@contoso.com")
    with db.session() as s:
        SyncRepository(s).ensure_unit(member, SyncFeature.EMAIL)
    with db.session() as s:
        unit_id = sync.request_resync(
            s,
            orgs.get_member(s, orgs.get_organization(s, org.id), member.id),
            "email",
            actor="admin@contoso.com",
        )
    with db.session() as s:
        unit = SyncRepository(s).unit(unit_id)
        assert unit is not None and unit.full_resync_requested
