"""Run Test: every cause is produced by the real mistake, seeded into m365sim, and the
check that names it says what went wrong and how to fix it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from m365sim.directory.models import ClientSecret as SimSecret
from m365sim.server import SimServer
from m365sync.connections import service_accounts
from m365sync.connections.models import Feature
from m365sync.connections.run_test import Outcome, ServiceAccountDraft, TestReport
from m365sync.microsoft.auth import ClientSecret
from m365sync.scheduling.models import MeetingType
from support.demo import (
    DEMO_TENANT_ID,
    NO_CONSENT_APP_ID,
    NO_CONSENT_SECRET,
    SERVICE_APP_ID,
    SERVICE_SECRET,
    SERVICE_SECRET_ID,
)
from support.organizations import fresh
from support.sim_tokens import sim_control


async def run_test(
    db,
    runtime,
    org,
    *,
    client_id=SERVICE_APP_ID,
    secret=SERVICE_SECRET,
    mailbox="adele@contoso.com",
    tenant_id=None,
) -> TestReport:
    with db.session() as session:
        draft = ServiceAccountDraft(client_id, ClientSecret(secret), mailbox, tenant_id)
        return await service_accounts.test_draft(session, runtime, fresh(session, org), draft)


def token_requests(sim: SimServer) -> int:
    return sum(1 for r in sim.state.request_log if r.path.endswith("/oauth2/v2.0/token"))


def failed(report: TestReport) -> dict[str, str]:
    return {c.key: f"{c.message} {c.fix}" for c in report.checks if c.outcome == Outcome.FAILED}


async def test_good_service_account_passes_and_enables_its_consented_features(
    db, runtime, make_org
):
    report = await run_test(db, runtime, make_org())
    assert report.ok, failed(report)
    assert report.tenant_id == DEMO_TENANT_ID
    assert set(report.enabled_features) == {Feature.EMAIL, Feature.CALENDAR, Feature.SCHEDULING}
    assert report.outcome("mail_access") == Outcome.PASSED
    assert report.outcome("calendar_access") == Outcome.PASSED
    assert report.outcome("feature:tasks") == Outcome.SKIPPED
    assert "To Do has no application permission" in report.check("feature:tasks").message


async def test_the_verdict_says_in_one_line_what_passed_and_what_failed(db, runtime, make_org):
    org = make_org()
    good = await run_test(db, runtime, org)
    assert good.verdict == (
        "Test passed: Email Sync, Calendar Sync and Calendar Scheduling can be enabled."
    )
    assert good.overall == Outcome.PASSED
    wrong = await run_test(db, runtime, org, secret=SERVICE_SECRET_ID)
    assert wrong.overall == Outcome.FAILED
    assert wrong.verdict == f"Test failed: 1 of {len(wrong.checks)} checks failed (Client secret)."
    # Read worst first: the failure, then what could not run, then what passed.
    order = [c.outcome for c in wrong.worst_first()]
    assert order[0] == Outcome.FAILED
    assert order == sorted(
        order, key=[Outcome.FAILED, Outcome.WARNING, Outcome.SKIPPED, Outcome.PASSED].index
    )
    assert wrong.as_json()["verdict"] == wrong.verdict


async def test_run_test_only_reads(sim, db, runtime, make_org):
    sim.state.request_log.clear()
    await run_test(db, runtime, make_org())
    methods = {(r.method, r.path) for r in sim.state.request_log if "/v1.0/" in r.path}
    assert methods and all(method == "GET" for method, _ in methods), methods


async def test_no_domains_is_the_first_failure(db, runtime, make_org):
    report = await run_test(db, runtime, make_org(domains=()))
    assert not report.ok
    assert report.checks[0].key == "domains" and report.checks[0].outcome == Outcome.FAILED
    assert "Add your domains to sync first" in report.checks[0].fix
    assert all(c.outcome == Outcome.SKIPPED for c in report.checks[1:])


async def test_domain_in_no_tenant(db, runtime, make_org):
    report = await run_test(
        db,
        runtime,
        make_org(domains=("nowhere-at-all.example",)),
        mailbox="a@nowhere-at-all.example",
    )
    assert failed(report).keys() == {"tenant"}
    assert "nowhere-at-all.example" in report.check("tenant").message


async def test_entra_unwell_during_discovery_is_not_an_unknown_domain(sim, db, runtime, make_org):
    sim_control(
        sim,
        "POST",
        "/_sim/faults",
        json={"kind": "garbled", "pathRegex": "openid-configuration", "count": 20},
    )
    report = await run_test(db, runtime, make_org())
    check = report.check("tenant")
    assert failed(report).keys() == {"tenant"}
    assert check.message.startswith("Microsoft unavailable, retrying")
    assert "no tenant" not in check.message and "retries by itself" in check.fix


async def test_secret_id_is_caught_before_entra_is_asked(sim, db, runtime, make_org):
    org = make_org()
    before = token_requests(sim)
    report = await run_test(db, runtime, org, secret=SERVICE_SECRET_ID)
    check = report.check("secret_format")
    assert check.outcome == Outcome.FAILED
    assert "secret's ID, not its value" in check.message
    assert "Value column in Certificates & secrets" in check.fix
    assert token_requests(sim) == before


async def test_wrong_secret(db, runtime, make_org):
    report = await run_test(
        db, runtime, make_org(), secret="Zx8Q~this-is-not-the-secret-value-00000"
    )
    check = report.check("sign_in")
    assert check.outcome == Outcome.FAILED and check.code == "AADSTS7000215"
    assert "Value column" in check.fix and "Secret ID" in check.fix


async def test_expired_secret_needs_a_new_secret(sim, demo_tenant, db, runtime, make_org):
    app = demo_tenant.apps[SERVICE_APP_ID]
    app.secrets.append(
        SimSecret(
            value="Zx8Q~expired.secret-value-0000000000001",
            expires_at=sim.state.now() - timedelta(days=1),
        )
    )
    report = await run_test(
        db, runtime, make_org(), secret="Zx8Q~expired.secret-value-0000000000001"
    )
    check = report.check("sign_in")
    assert check.outcome == Outcome.FAILED and check.code == "AADSTS7000222"
    assert "expired" in check.message and "New client secret" in check.fix


async def test_app_not_registered_in_the_tenant(db, runtime, make_org):
    report = await run_test(
        db, runtime, make_org(), client_id="99999999-2222-4333-8444-000000000009"
    )
    check = report.check("sign_in")
    assert check.outcome == Outcome.FAILED and check.code == "AADSTS700016"
    assert "Application (client) ID" in check.fix


async def test_disabled_app(demo_tenant, db, runtime, make_org):
    demo_tenant.apps[SERVICE_APP_ID].disabled = True
    report = await run_test(db, runtime, make_org())
    check = report.check("sign_in")
    assert check.outcome == Outcome.FAILED and check.code == "AADSTS7000112"
    assert "disabled" in check.message


async def test_admin_consent_not_granted(db, runtime, make_org):
    report = await run_test(
        db, runtime, make_org(), client_id=NO_CONSENT_APP_ID, secret=NO_CONSENT_SECRET
    )
    assert failed(report).keys() == {"consent"}
    assert "Grant admin consent for" in report.check("consent").fix


async def test_permissions_per_feature(demo_tenant, db, runtime, make_org):
    principal = demo_tenant.service_principals[SERVICE_APP_ID]
    principal.granted_application_permissions = {"Mail.Read", "Mail.ReadWrite"}
    report = await run_test(db, runtime, make_org())
    assert report.ok
    assert report.enabled_features == [Feature.EMAIL]
    assert report.check("feature:calendar").outcome == Outcome.FAILED
    assert "Calendars.Read, Calendars.ReadWrite" in report.check("feature:calendar").message
    assert report.matrix.missing[Feature.SCHEDULING] == ["Calendars.Read", "Calendars.ReadWrite"]
    assert report.outcome("calendar_access") == Outcome.SKIPPED


def add_meeting_type(db, org, *, book_room: bool) -> None:
    with db.session() as session:
        session.add(
            MeetingType(
                organization_id=org.id,
                slug="onsite" if book_room else "call",
                name="On-site" if book_room else "Call",
                book_room=book_room,
            )
        )
        session.commit()


async def test_place_read_all_is_checked_only_when_a_meeting_type_books_rooms(
    demo_tenant, db, runtime, make_org
):
    org = make_org()
    principal = demo_tenant.service_principals[SERVICE_APP_ID]
    assert "Place.Read.All" not in principal.granted_application_permissions

    add_meeting_type(db, org, book_room=False)
    assert (await run_test(db, runtime, org)).check("rooms") is None  # not needed

    add_meeting_type(db, org, book_room=True)
    report = await run_test(db, runtime, org)
    rooms = report.check("rooms")
    assert report.ok  # a warning: everything else still works
    assert rooms.outcome == Outcome.WARNING
    assert "lacks Place.Read.All" in rooms.message and "bookings fail" in rooms.message
    assert "Add Place.Read.All" in rooms.fix and "grant admin consent" in rooms.fix

    principal.granted_application_permissions = {
        *principal.granted_application_permissions,
        "Place.Read.All",
    }
    assert (await run_test(db, runtime, org)).outcome("rooms") == Outcome.PASSED


async def test_test_account_outside_synced_domains(db, runtime, make_org):
    report = await run_test(db, runtime, make_org(), mailbox="nestor@contoso.onmicrosoft.com")
    check = report.check("test_mailbox_domain")
    assert check.outcome == Outcome.FAILED
    assert "outside the domains to sync" in check.message


async def test_mailbox_blocked_by_application_access_policy(sim, db, runtime, make_org):
    # About what a policy decides, not when: this test lets policy changes reach Graph at
    # once (the default is Exchange's propagation delay, see docs/m365sim/access-and-limits.md).
    sim.state.config.policy_propagation_seconds = 0
    sim_control(
        sim,
        "POST",
        f"/_sim/tenants/{DEMO_TENANT_ID}/accessPolicies",
        json={
            "AppId": SERVICE_APP_ID,
            "PolicyScopeGroupId": "crm-sync@contoso.com",
            "AccessRight": "RestrictAccess",
        },
    )
    org = make_org()
    blocked = await run_test(db, runtime, org, mailbox="johanna@contoso.com")
    assert "mail_access" in failed(blocked)
    assert "Application Access Policy" in blocked.check("mail_access").message
    allowed = await run_test(db, runtime, org, mailbox="adele@contoso.com")
    assert allowed.ok, failed(allowed)


@pytest.mark.parametrize(
    ("mailbox", "setup"),
    [
        ("pradeep@contoso.com", None),  # no Exchange Online licence
        ("onprem@contoso.com", None),  # mailbox still on-premises
        ("lee@contoso.com", "soft_deleted"),
    ],
)
async def test_mailbox_not_enabled_for_graph(demo_tenant, db, runtime, make_org, mailbox, setup):
    if setup:
        setattr(demo_tenant.find_user(mailbox), setup, True)
    report = await run_test(db, runtime, make_org(), mailbox=mailbox)
    check = report.check("mail_access")
    assert check.outcome == Outcome.FAILED
    assert "licence" in check.message and "on-premises" in check.message
    assert check.code == "MailboxNotEnabledForRESTAPI"


async def test_mailbox_full(demo_tenant, db, runtime, make_org):
    demo_tenant.find_user("adele@contoso.com").mailbox_full = True
    report = await run_test(db, runtime, make_org())
    check = report.check("mail_access")
    assert check.outcome == Outcome.WARNING
    assert "mailbox is full" in check.message


async def test_throttling_is_retried_not_a_failure(sim, db, runtime, make_org):
    sim_control(
        sim,
        "POST",
        "/_sim/faults",
        json={"kind": "429", "pathRegex": "/messages", "count": 1, "retryAfter": 0},
    )
    report = await run_test(db, runtime, make_org(verified=False))
    assert report.ok and report.outcome("mail_access") == Outcome.PASSED
    sim_control(
        sim,
        "POST",
        "/_sim/faults",
        json={"kind": "429", "pathRegex": "/calendar", "count": 20, "retryAfter": 30},
    )
    report = await run_test(db, runtime, make_org(slug="again", verified=False))
    assert report.ok
    assert report.outcome("calendar_access") == Outcome.WARNING
    assert "run the test again" in report.check("calendar_access").fix
