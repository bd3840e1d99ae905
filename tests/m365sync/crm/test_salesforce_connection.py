"""Connecting an organization's Salesforce org, Run Test for Salesforce, members' users, and
disconnecting — against sfsim, with the unmodified simple-salesforce underneath."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from sqlalchemy import select

from m365sync.crm.errors import SalesforceSignInUnknown, SalesforceUserNotFound
from m365sync.crm.models import (
    EmailTarget,
    SalesforceAuthKind,
    SalesforceConnection,
    SalesforceStatus,
)
from m365sync.crm.salesforce_access import ConnectionSecrets, token_source
from m365sync.crm.salesforce_schemas import CheckOutcome
from m365sync.crm.salesforce_service import (
    begin_connect_salesforce,
    complete_connect_salesforce,
    connect_with_client_credentials,
    disconnect_salesforce,
    link_member_to_salesforce_user,
    run_salesforce_test,
    salesforce_members,
    salesforce_overview,
    unlink_member_from_salesforce_user,
)
from m365sync.salesforce import errors as sf_errors
from sfsim import DEMO_SEED
from sfsim.seed import read_seed
from support.demo import SALESFORCE_CALLBACK, SALESFORCE_CONSUMER_KEY
from support.salesforce_target_world import ADELE, DIEGO, MEMBERS, SalesforceTarget
from support.salesforce_world import CONSUMER_SECRET, REP, REP_PASSWORD, log_in_and_allow


def connection(target: SalesforceTarget) -> SalesforceConnection:
    with target.database.session() as session:
        row = session.scalar(
            select(SalesforceConnection).where(
                SalesforceConnection.organization_id == target.organization_id
            )
        )
        assert row is not None
        return row


def test_connect_with_jwt_runs_the_test_matches_members_and_seals_the_key(
    target: SalesforceTarget,
) -> None:
    report = target.connect()

    assert report.ok, report.failures()
    assert report.email_target == EmailTarget.EMAIL_MESSAGE
    assert report.username == "integration@acme.example"
    assert {c.name for c in report.checks} >= {
        "sign_in",
        "api_access",
        "enhanced_email",
        "external_id:EmailMessage.M365Sync_Message_Id__c",
        "external_id:Event.M365Sync_Event_Id__c",
        "external_id:Task.M365Sync_Todo_Id__c",
        "api_budget",
    }
    with target.database.session() as session:
        overview = salesforce_overview(session, target.organization_id)
    assert overview.connected and overview.status == SalesforceStatus.ACTIVE
    assert overview.auth_kind == SalesforceAuthKind.JWT_BEARER
    assert overview.integration_username == "integration@acme.example"
    assert overview.instance_url == target.sf.url
    assert overview.api_limit == 100_000
    users = {m.email: m for m in overview.members}
    assert {email: m.salesforce_username for email, m in users.items()} == {
        address: f"{address.split('@')[0]}@acme.example" for address in MEMBERS
    }
    assert all(m.matched_by == "email" for m in overview.members)
    # The private key is sealed at rest: its text is nowhere in the row.
    row = connection(target)
    assert row.private_key_sealed is not None
    assert b"PRIVATE KEY" not in row.private_key_sealed
    assert "BEGIN" not in repr(ConnectionSecrets.of(row, target.box))


def test_connect_with_client_credentials(target: SalesforceTarget) -> None:
    with target.database.session() as session:
        report = connect_with_client_credentials(
            session,
            target.box,
            target.settings,
            target.organization_id,
            consumer_key=SALESFORCE_CONSUMER_KEY,
            consumer_secret=CONSUMER_SECRET.value,
        )
    assert report.ok, report.failures()
    row = connection(target)
    assert row.auth_kind == SalesforceAuthKind.CLIENT_CREDENTIALS
    assert row.status == SalesforceStatus.ACTIVE
    assert row.consumer_secret_sealed is not None
    assert CONSUMER_SECRET.value.encode() not in row.consumer_secret_sealed


def test_a_refused_sign_in_is_not_saved_and_says_what_to_fix(target: SalesforceTarget) -> None:
    report = target.connect(consumer_key="3MVG9-not-the-key")
    assert not report.signed_in
    (failed,) = report.failures()
    assert failed.name == "sign_in"
    assert "Manage Consumer Details" in failed.fix
    assert [c.outcome for c in report.checks[1:]] == [CheckOutcome.SKIPPED] * (
        len(report.checks) - 1
    )
    with target.database.session() as session:
        assert not salesforce_overview(session, target.organization_id).connected


def _reseed(
    target: SalesforceTarget, *, without: tuple[str, str] | None = None, **org: Any
) -> None:
    """sfsim's demo org, with one of m365sync's External ID fields missing (``without``:
    object and field) and the org settings given, plus the members' users."""
    data = read_seed(DEMO_SEED)
    if without is not None:
        sobject, field = without
        data["customFields"][sobject] = [
            f for f in data["customFields"][sobject] if f["name"] != field
        ]
    data["org"].update(org)
    data["users"] += [
        {
            "username": f"{address.split('@')[0]}@acme.example",
            "lastName": "Contoso",
            "email": address,
        }
        for address in MEMBERS
    ]
    answer = requests.post(f"{target.sf.url}/_sim/seed?reset=true", json=data, timeout=10)
    assert answer.status_code == 201, answer.text


def test_run_test_names_a_missing_external_id_field_and_how_to_create_it(
    target: SalesforceTarget,
) -> None:
    _reseed(target, without=("Event", "M365Sync_Event_Id__c"))

    report = target.connect()

    (missing,) = report.failures()
    assert missing.name == "external_id:Event.M365Sync_Event_Id__c"
    assert "no field M365Sync_Event_Id__c on Event" in missing.message
    assert "Object Manager → Activity → Fields & Relationships → New" in missing.fix
    assert "Field Name M365Sync_Event_Id" in missing.fix
    assert "tick External ID" in missing.fix
    row = connection(target)
    assert row.status == SalesforceStatus.NEEDS_SETUP
    assert "M365Sync_Event_Id__c" in row.status_detail
    # The stored report is what doors show later.
    with target.database.session() as session:
        overview = salesforce_overview(session, target.organization_id)
    shown = {c.name: c for c in overview.last_test}
    assert shown["external_id:Event.M365Sync_Event_Id__c"].outcome == CheckOutcome.FAILED
    assert shown["external_id:EmailMessage.M365Sync_Message_Id__c"].outcome == (CheckOutcome.PASSED)


def test_without_enhanced_email_run_test_switches_email_to_tasks(
    target: SalesforceTarget,
) -> None:
    _reseed(target, enhancedEmail=False)

    report = target.connect()

    assert report.ok, report.failures()
    assert report.email_target == EmailTarget.TASK
    enhanced = report.check("enhanced_email")
    assert enhanced is not None and enhanced.outcome == CheckOutcome.WARNING
    assert "Setup → Enhanced Email" in enhanced.fix
    assert report.check("external_id:Task.M365Sync_Message_Id__c") is not None
    assert connection(target).email_target == EmailTarget.TASK


def test_run_test_again_after_the_user_lost_access(target: SalesforceTarget) -> None:
    target.connect()
    integration = target.user_id("integration@acme.example")
    target.sf.state.records.records["User"][integration]["IsActive"] = False
    target.control("POST", "sessions/expire")

    with target.database.session() as session:
        report = run_salesforce_test(session, target.box, target.settings, target.organization_id)

    assert not report.signed_in
    row = connection(target)
    assert row.status == SalesforceStatus.NEEDS_RECONNECT
    assert row.status_fix


def test_an_admin_chooses_a_members_salesforce_user(target: SalesforceTarget) -> None:
    target.connect()
    with target.database.session() as session:
        diego = next(
            m for m in salesforce_members(session, target.organization_id) if m.email == DIEGO
        )
        chosen = link_member_to_salesforce_user(
            session, target.box, target.settings, target.organization_id, diego.member_id, REP
        )
    assert (chosen.salesforce_username, chosen.matched_by) == (REP, "admin")
    # Matching by address again keeps the admin's choice.
    with target.database.session() as session:
        report = run_salesforce_test(session, target.box, target.settings, target.organization_id)
        assert report.ok
        by_email = {m.email: m for m in salesforce_members(session, target.organization_id)}
    assert by_email[DIEGO].salesforce_username == REP
    assert by_email[ADELE].matched_by == "email"
    with target.database.session() as session, pytest.raises(SalesforceUserNotFound) as unknown:
        link_member_to_salesforce_user(
            session,
            target.box,
            target.settings,
            target.organization_id,
            diego.member_id,
            "nobody@acme.example",
        )
    assert "Setup → Users" in (unknown.value.fix or "")
    with target.database.session() as session:
        unlink_member_from_salesforce_user(session, target.organization_id, diego.member_id)
        run_salesforce_test(session, target.box, target.settings, target.organization_id)
        by_email = {m.email: m for m in salesforce_members(session, target.organization_id)}
    assert by_email[DIEGO].salesforce_username == "diego@acme.example"


def test_connect_salesforce_with_pkce_then_disconnect_revokes_it(
    target: SalesforceTarget,
) -> None:
    with target.database.session() as session:
        url = begin_connect_salesforce(
            session,
            target.box,
            target.settings,
            target.organization_id,
            consumer_key=SALESFORCE_CONSUMER_KEY,
            consumer_secret=CONSUMER_SECRET.value,
            redirect_uri=SALESFORCE_CALLBACK,
        )
    assert url.startswith(f"{target.sf.url}/services/oauth2/authorize?")
    assert "code_challenge=" in url
    callback = log_in_and_allow(url, username=REP, password=REP_PASSWORD)

    with target.database.session() as session:
        organization_id, report = complete_connect_salesforce(
            session, target.box, target.settings, callback
        )
    assert organization_id == target.organization_id
    assert report.ok, report.failures()
    row = connection(target)
    assert row.auth_kind == SalesforceAuthKind.WEB_SERVER
    assert row.integration_username == REP
    assert row.refresh_token_sealed is not None and row.pending_state is None
    # The same answer twice is refused in words.
    with target.database.session() as session, pytest.raises(SalesforceSignInUnknown):
        complete_connect_salesforce(session, target.box, target.settings, callback)

    refresh = token_source(ConnectionSecrets.of(row, target.box), target.settings)
    assert refresh().access_token
    with target.database.session() as session:
        disconnect_salesforce(session, target.box, target.settings, target.organization_id)
    with pytest.raises(sf_errors.ConnectionRevoked):
        refresh()
    row = connection(target)
    assert row.status == SalesforceStatus.DISCONNECTED
    assert row.refresh_token_sealed is None and row.consumer_secret_sealed is None
