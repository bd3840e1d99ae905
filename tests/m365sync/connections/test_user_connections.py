"""User connections: Connect your Office 365 (auth code + PKCE through MSAL against
m365sim's real pages), silent refresh, restart, revocation, disconnect; legacy Exchange."""

from __future__ import annotations

import socket
import warnings

import pytest

from m365sync.connections import user_connections
from m365sync.connections.errors import (
    AuthorizationExpired,
    DomainNotVerified,
    ExchangeOnlineNotSupported,
    NoConnection,
    RunTestFailed,
)
from m365sync.connections.models import ConnectionKind, ConnectionStatus, Feature
from m365sync.connections.runtime import ConnectionRuntime
from m365sync.db import Database
from m365sync.errors import NotFound
from m365sync.microsoft import errors as ms
from m365sync.microsoft.ews import close_exchange_connections
from m365sync.organizations import service as orgs
from m365sync.organizations.models import DomainProof, Role
from m365sync.sync import service as sync
from m365sync.sync.features import SyncFeature
from m365sync.sync.models import UnitStatus
from support.demo import DEMO_TENANT_ID
from support.ews_clients import USER_PASSWORD, turn_on_exchange
from support.microsoft_sign_in import sign_in
from support.organizations import fresh
from support.sim_tokens import sim_control

REDIRECT = "http://localhost:8365/connections/office365/callback"


async def connect(
    sim,
    db,
    runtime,
    org,
    email="adele@contoso.com",
    password="Demo-User-1!",
    consent=True,
    completed_by=None,
):
    with db.session() as session:
        member = orgs.get_member(session, fresh(session, org), email)
        url = await user_connections.start_office365_connection(
            session, runtime, fresh(session, org), member
        )
    params = sign_in(
        url,
        username=email,
        password=password,
        ca_bundle=str(sim.tls.ca_bundle),
        redirect_prefix=REDIRECT,
        consent=consent,
    )
    with db.session() as session:
        return await user_connections.complete_office365_connection(
            session, runtime, params, member_id=completed_by
        )


async def test_connect_refresh_restart_revoke_disconnect(
    sim, db, runtime, settings, make_org, make_member
):
    org = make_org()
    member = make_member(org, "adele@contoso.com")
    connection = await connect(sim, db, runtime, org)
    assert connection.status == ConnectionStatus.ACTIVE
    assert connection.account_username == "adele@contoso.com"
    assert {"Mail.ReadWrite", "Calendars.ReadWrite", "Tasks.ReadWrite"} <= set(
        connection.granted_scopes
    )

    # Task Sync goes through the member's own connection.
    with db.session() as session:
        access = runtime.graph_for_mailbox(session, member, Feature.TASKS)
        assert access.source == "user_connection" and access.user_path == "/me"
        assert Feature.TASKS in access.features
        me = await access.graph.get_json("/me")
        assert me["userPrincipalName"] == "adele@contoso.com"
    await runtime.aclose()

    # Silent refresh (through the refresh token) works and is persisted.
    with db.session() as session:
        stored = user_connections.get_user_connection(session, fresh(session, org), member)
        await user_connections.refresh_user_connection(session, runtime, stored)
        assert stored.status == ConnectionStatus.ACTIVE

    # A restart: a new engine and runtime on the same database file and key.
    restarted_db = Database.from_url(str(db.engine.url.render_as_string(hide_password=False)))
    restarted = ConnectionRuntime.from_settings(settings, restarted_db)
    with restarted_db.session() as session:
        stored = user_connections.get_user_connection(session, fresh(session, org), member)
        await user_connections.refresh_user_connection(session, restarted, stored)
        assert stored.status == ConnectionStatus.ACTIVE
        access = restarted.graph_for_mailbox(session, member, Feature.EMAIL)
        assert "value" in await access.graph.get_json(
            "/me/mailFolders/inbox/messages", params={"$top": 1}
        )
    await restarted.aclose()

    # Revoked sessions: "reconnect needed", told once.
    sim_control(
        sim, "POST", f"/_sim/tenants/{DEMO_TENANT_ID}/users/adele@contoso.com/revokeSessions"
    )
    with restarted_db.session() as session:
        stored = user_connections.get_user_connection(session, fresh(session, org), member)
        await user_connections.refresh_user_connection(session, restarted, stored)
        assert stored.status == ConnectionStatus.NEEDS_RECONNECT
        assert "Connect your Office 365" in stored.status_fix
        notice = user_connections.take_notice(stored)
        assert notice and "Reconnect" in notice
        assert user_connections.take_notice(stored) is None
        await user_connections.refresh_user_connection(session, restarted, stored)
        assert user_connections.take_notice(stored) is None
        with pytest.raises(ms.AuthRevoked):
            restarted.graph_for_mailbox(session, member, Feature.TASKS)
    restarted_db.dispose()

    # Disconnect deletes the tokens.
    with db.session() as session:
        assert user_connections.disconnect(session, runtime, fresh(session, org), member)
    with db.session() as session:
        assert user_connections.get_user_connection(session, fresh(session, org), member) is None
        with pytest.raises(NoConnection):
            runtime.graph_for_mailbox(session, member, Feature.TASKS)


async def test_connecting_warns_nothing_in_the_log(sim, db, runtime, make_org, make_member):
    """MSAL's form_post advice is not printed on every user connection (the callback takes
    a query on purpose: see ``m365sync.microsoft.auth``)."""
    org = make_org()
    make_member(org, "adele@contoso.com")
    with warnings.catch_warnings(record=True) as seen:
        connection = await connect(sim, db, runtime, org)
    assert connection.status == ConnectionStatus.ACTIVE
    assert [str(w.message) for w in seen if "form_post" in str(w.message)] == []


async def test_a_disconnected_mailbox_stays_disconnected_and_needs_no_attention(
    sim, db, runtime, settings, make_org, make_member
):
    org = make_org()
    member = make_member(org, "adele@contoso.com")
    await connect(sim, db, runtime, org)
    assert (
        await sync.sync_member(db, runtime, member.id, SyncFeature.TASKS, settings=settings)
    ).outcome == "ok"

    with db.session() as session:
        assert sync.disconnect_member(session, runtime, fresh(session, org), member)
    with db.session() as session:
        [unit] = sync.mailbox_overview(session, org.id).units
        assert unit.status == UnitStatus.DISCONNECTED
    # Its next check finds no connection, as expected: still disconnected, nothing to fix.
    result = await sync.sync_member(db, runtime, member.id, SyncFeature.TASKS, settings=settings)
    assert result.status == UnitStatus.DISCONNECTED and result.error == ""
    with db.session() as session:
        health = sync.mailbox_overview(session, org.id).health
    assert (health.disconnected, health.parked) == (1, 0)

    await connect(sim, db, runtime, org)  # connecting again resumes it
    result = await sync.sync_member(db, runtime, member.id, SyncFeature.TASKS, settings=settings)
    assert result.status == UnitStatus.ACTIVE


async def test_state_mismatch_is_refused(sim, db, runtime, make_org, make_member):
    org = make_org()
    make_member(org, "alex@contoso.com")
    with db.session() as session, pytest.raises(AuthorizationExpired):
        await user_connections.complete_office365_connection(
            session, runtime, {"code": "x", "state": "forged"}
        )


async def test_service_account_member_gets_tasks_from_own_connection(
    sim, db, runtime, make_org, make_member
):
    from support.connections import add_service_account

    org = make_org()
    member = make_member(org, "adele@contoso.com")
    await add_service_account(db, runtime, org)
    await connect(sim, db, runtime, org)
    with db.session() as session:
        assert runtime.graph_for_mailbox(session, member, Feature.EMAIL).source == "service_account"
        assert runtime.graph_for_mailbox(session, member, Feature.TASKS).source == "user_connection"
    await runtime.aclose()


@pytest.mark.parametrize(
    "server",
    [
        "https://outlook.office365.com/EWS/Exchange.asmx",
        "outlook.office.com",
        "https://eur01.outlook.com/ews/exchange.asmx",
    ],
)
async def test_exchange_online_is_refused_with_migration_steps(
    db, runtime, make_org, make_member, server
):
    org = make_org()
    member = make_member(org, "adele@contoso.com")
    with db.session() as session, pytest.raises(ExchangeOnlineNotSupported) as caught:
        await user_connections.connect_exchange(
            session,
            runtime,
            fresh(session, org),
            member,
            server_url=server,
            username="adele",
            password="pw-123456",
        )
    fix = caught.value.fix or ""
    assert "Disconnect" in fix and "Connect your Office 365" in fix and "service account" in fix


async def connect_on_premises(db, runtime, org, member, server_url: str, password: str):
    """Diego's own Exchange connection, saved only when Run Test for Exchange passes."""
    with db.session() as session:
        return await user_connections.connect_exchange(
            session,
            runtime,
            fresh(session, org),
            member,
            server_url=server_url,
            username="",
            password=password,
        )


async def test_on_premises_exchange_is_kept(sim, db, runtime, make_org, make_member):
    org = make_org()
    member = make_member(org, "diego@contoso.com")
    server = turn_on_exchange(sim)  # an on-premises Exchange Server that answers
    try:
        connection = await connect_on_premises(db, runtime, org, member, server, USER_PASSWORD)
    finally:
        close_exchange_connections()
    assert connection.kind == ConnectionKind.EXCHANGE
    assert connection.status == ConnectionStatus.ACTIVE  # Run Test passed first
    assert connection.ews_url == server
    assert user_connections.migration_guidance(connection) is None
    assert runtime.open(connection, "password_sealed") == USER_PASSWORD


async def test_an_exchange_connection_that_fails_run_test_is_refused_and_nothing_saved(
    sim, db, runtime, make_org, make_member
):
    org = make_org()
    member = make_member(org, "diego@contoso.com")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"https://127.0.0.1:{probe.getsockname()[1]}/EWS/Exchange.asmx"
    server = turn_on_exchange(sim)
    try:
        with pytest.raises(RunTestFailed) as unreachable:
            await connect_on_premises(db, runtime, org, member, closed, USER_PASSWORD)
        with pytest.raises(RunTestFailed) as wrong:
            await connect_on_premises(db, runtime, org, member, server, "nope")
    finally:
        close_exchange_connections()
    assert "did not answer" in unreachable.value.message
    assert "nothing was saved" in (unreachable.value.fix or "")
    assert "username or password" in wrong.value.message
    with db.session() as session:
        assert user_connections.get_user_connection(session, fresh(session, org), member) is None


async def test_a_member_of_an_unverified_domain_cannot_connect(
    sim, db, runtime, make_org, make_member
):
    org = make_org(verified=False)
    member = make_member(org, "adele@contoso.com")
    with db.session() as session, pytest.raises(DomainNotVerified) as refused:
        await user_connections.start_office365_connection(
            session, runtime, fresh(session, org), member
        )
    assert refused.value.status == 409
    assert "contoso.com is not verified" in refused.value.message
    assert "Ask an admin of your organization to verify contoso.com" in (refused.value.fix or "")


async def test_an_admins_connection_proves_the_domains_of_their_tenant(
    sim, db, runtime, make_org, make_member, woodgrove_tenant
):
    """Entra resolves contoso.com and contoso.onmicrosoft.com to the tenant the admin signed
    in to: both are verified there. woodgrove.com resolves to another tenant: untouched."""
    org = make_org(
        domains=("contoso.com", "contoso.onmicrosoft.com", "woodgrove.com"), verified=False
    )
    make_member(org, "admin@contoso.com", Role.ADMIN)
    connection = await connect(sim, db, runtime, org, "admin@contoso.com", "Demo-Admin-1!")
    assert connection.tenant_id == DEMO_TENANT_ID
    with db.session() as session:
        domains = {d.name: d for d in orgs.list_domains(session, fresh(session, org))}
    for name in ("contoso.com", "contoso.onmicrosoft.com"):
        assert domains[name].verified, name
        assert domains[name].verification_method == DomainProof.MICROSOFT_SIGN_IN
        assert domains[name].tenant_id == DEMO_TENANT_ID
    assert not domains["woodgrove.com"].verified and domains["woodgrove.com"].tenant_id is None


async def test_a_connection_records_the_tenant_of_a_domain_the_operator_verified(
    sim, db, runtime, make_org, make_member
):
    org = make_org()  # contoso.com verified on the operator's word, no tenant yet
    make_member(org, "adele@contoso.com")
    await connect(sim, db, runtime, org)
    with db.session() as session:
        (domain,) = orgs.list_domains(session, fresh(session, org))
        assert domain.verification_method == DomainProof.OPERATOR
        assert domain.tenant_id == DEMO_TENANT_ID


async def test_a_sign_in_completes_only_for_the_member_who_started_it(
    sim, db, runtime, make_org, make_member
):
    org = make_org()
    make_member(org, "adele@contoso.com")
    other = make_member(org, "alex@contoso.com")
    with pytest.raises(NotFound) as refused:
        await connect(sim, db, runtime, org, completed_by=other.id)
    assert "started by someone else" in refused.value.message
    with db.session() as session:
        assert user_connections.list_user_connections(session, fresh(session, org)) == []
