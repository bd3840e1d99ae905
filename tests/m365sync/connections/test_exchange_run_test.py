"""Run Test for Exchange against m365sim's Exchange Server: each failure a person can hit,
with its cause and its fix, and the outcome kept on a saved service account."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from m365sim.server import SimServer
from m365sync.connections import service_accounts, user_connections
from m365sync.connections.errors import RunTestFailed
from m365sync.connections.exchange_run_test import ExchangeDraft, run_exchange_test
from m365sync.connections.models import ConnectionStatus, Feature
from m365sync.connections.run_test import Outcome, TestReport
from m365sync.connections.runtime import ConnectionRuntime
from m365sync.db import Database
from m365sync.microsoft.ews import close_exchange_connections
from m365sync.organizations import service as orgs
from m365sync.organizations.models import Member, Organization
from m365sync.settings import Settings
from support.demo import demo_settings
from support.ews_clients import SERVICE_ACCOUNT, SERVICE_PASSWORD, USER_PASSWORD, turn_on_exchange

DOMAINS = ["contoso.com"]


@pytest.fixture
def ews_url(sim: SimServer) -> Iterator[str]:
    yield turn_on_exchange(sim)
    close_exchange_connections()


def service_draft(url: str, **changes: str) -> ExchangeDraft:
    values = {
        "server_url": url,
        "username": SERVICE_ACCOUNT,
        "password": SERVICE_PASSWORD,
        "test_mailbox": "diego@contoso.com",
        **changes,
    }
    return ExchangeDraft(**values, impersonation=True)


async def run(settings: Settings, draft: ExchangeDraft) -> TestReport:
    return await run_exchange_test(settings, draft, domain_names=DOMAINS)


def failure(report: TestReport) -> tuple[str, str, str]:
    """The first failed check: key, message, fix; and everything after it was skipped."""
    assert not report.ok
    failed = report.required_failures()[0]
    later = report.checks[report.checks.index(failed) + 1 :]
    assert all(c.outcome in (Outcome.SKIPPED, Outcome.PASSED) for c in later), later
    assert failed.message and failed.fix
    return failed.key, failed.message, failed.fix


async def test_a_working_service_account_passes_every_check(
    settings: Settings, ews_url: str
) -> None:
    report = await run(settings, service_draft(ews_url))
    assert report.ok, report.as_json()
    assert [c.key for c in report.checks] == [
        "domains",
        "test_mailbox_domain",
        "server_address",
        "server",
        "tls",
        "exchange_server",
        "sign_in",
        "version",
        "mailbox",
        "calendar_access",
    ]
    assert report.check("version") and "Exchange Server 2019" in report.check("version").message  # type: ignore[union-attr]
    assert set(report.enabled_features) == {Feature.EMAIL, Feature.CALENDAR, Feature.SCHEDULING}
    assert report.verdict.startswith("Test passed")


async def test_an_unreachable_server(settings: Settings, ews_url: str) -> None:
    report = await run(settings, service_draft("https://127.0.0.1:9/EWS/Exchange.asmx"))
    key, message, fix = failure(report)
    assert key == "server"
    assert "did not answer" in message and "firewall" in fix


async def test_an_untrusted_certificate(
    sim: SimServer, ews_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    untrusting = demo_settings(sim, tmp_path / "data", ca_bundle=None)
    key, message, fix = failure(await run(untrusting, service_draft(ews_url)))
    assert key == "tls"
    assert "not trusted" in message and "CA" in fix


async def test_wrong_credentials(settings: Settings, ews_url: str) -> None:
    key, message, fix = failure(await run(settings, service_draft(ews_url, password="nope")))
    assert key == "sign_in"
    assert "username or password" in message and "password" in fix


async def test_a_server_older_than_exchange_2016(sim: SimServer, settings: Settings) -> None:
    url = turn_on_exchange(sim, build="14.3.123.4")
    key, message, fix = failure(await run(settings, service_draft(url)))
    close_exchange_connections()
    assert key == "version"
    assert "14.3.123.4" in message and "Upgrade" in fix


async def test_autodiscover(sim: SimServer, settings: Settings, ews_url: str) -> None:
    found = await run(settings, service_draft(f"{sim.url}/autodiscover/autodiscover.svc"))
    assert found.ok, found.as_json()
    assert ews_url in found.check("server_address").message  # type: ignore[union-attr]
    key, message, fix = failure(await run(settings, service_draft("")))
    assert key == "server_address"
    assert "autodiscover.contoso.com" in message and "EWS address" in fix


async def test_impersonation_role_missing_for_the_test_mailbox(
    settings: Settings, ews_url: str
) -> None:
    draft = service_draft(ews_url, username="lee@contoso.com", password=USER_PASSWORD)
    key, message, fix = failure(await run(settings, draft))
    assert key == "mailbox"
    assert "lee@contoso.com may not impersonate diego@contoso.com" in message
    assert (
        "New-ManagementRoleAssignment -Role ApplicationImpersonation -User lee@contoso.com" in fix
    )


async def test_a_mailbox_not_on_the_server(settings: Settings, ews_url: str) -> None:
    key, message, fix = failure(
        await run(settings, service_draft(ews_url, test_mailbox="nobody@contoso.com"))
    )
    assert key == "mailbox"
    assert "no mailbox for nobody@contoso.com" in message and "Microsoft Graph" in fix


async def test_exchange_online_is_steered_to_graph(sim: SimServer, settings: Settings) -> None:
    # the demo tenant as it starts: Exchange Online only, which answers EWS with OAuth only
    key, message, fix = failure(await run(settings, service_draft(f"{sim.url}/EWS/Exchange.asmx")))
    assert key == "exchange_server"
    assert "Exchange Online" in message and "Office 365" in fix
    by_name = await run(settings, service_draft("https://outlook.office365.com/EWS/Exchange.asmx"))
    assert failure(by_name)[0] == "server_address"


async def test_a_test_mailbox_outside_the_domains(settings: Settings, ews_url: str) -> None:
    key, message, _ = failure(
        await run(settings, service_draft(ews_url, test_mailbox="someone@fabrikam.com"))
    )
    assert key == "test_mailbox_domain" and "outside the domains" in message


async def test_a_users_own_connection(
    settings: Settings,
    ews_url: str,
    runtime: ConnectionRuntime,
    make_org: Callable[..., Organization],
    make_member: Callable[..., Member],
) -> None:
    member = make_member(make_org(), "diego@contoso.com")
    report = await user_connections.test_exchange_connection(
        runtime, member, server_url=ews_url, username="", password=USER_PASSWORD
    )
    assert report.ok, report.as_json()
    assert Feature.TASKS in report.enabled_features
    wrong = await user_connections.test_exchange_connection(
        runtime, member, server_url=ews_url, username="", password="nope"
    )
    assert failure(wrong)[0] == "sign_in"


async def test_a_saved_service_account_takes_the_outcome(
    db: Database,
    ews_url: str,
    runtime: ConnectionRuntime,
    make_org: Callable[..., Organization],
) -> None:
    organization = make_org()
    with db.session() as session:
        org = orgs.get_organization(session, organization.id)
        report = await service_accounts.test_exchange_draft(
            session,
            runtime,
            org,
            server_url=ews_url,
            username=SERVICE_ACCOUNT,
            password=SERVICE_PASSWORD,
            test_mailbox="diego@contoso.com",
        )
        assert report.ok
        account, saved = await service_accounts.add_exchange_service_account(
            session,
            runtime,
            org,
            name="Exchange",
            server_url=ews_url,
            username=SERVICE_ACCOUNT,
            password=SERVICE_PASSWORD,
            test_mailbox="diego@contoso.com",
        )
        assert saved.ok and account.status == ConnectionStatus.ACTIVE
        await service_accounts.retest_service_account(session, runtime, org, account)
        assert account.status == ConnectionStatus.ACTIVE
        assert set(account.enabled_features) == {"email", "calendar", "scheduling"}
        report = await service_accounts.retest_service_account(
            session, runtime, org, account, test_mailbox="nobody@contoso.com"
        )
        assert account.status == ConnectionStatus.PARTIAL  # as a retest of Office 365's
        assert account.enabled_features == []
        assert "nobody@contoso.com" in account.status_detail


async def test_editing_a_saved_exchange_account_tests_it(
    db: Database,
    ews_url: str,
    runtime: ConnectionRuntime,
    make_org: Callable[..., Organization],
) -> None:
    """The dashboard's Edit (rename, test account) runs the test and saves its outcome."""
    organization = make_org()
    with db.session() as session:
        org = orgs.get_organization(session, organization.id)
        account, _ = await service_accounts.add_exchange_service_account(
            session,
            runtime,
            org,
            name="Exchange",
            server_url=ews_url,
            username=SERVICE_ACCOUNT,
            password=SERVICE_PASSWORD,
            test_mailbox="diego@contoso.com",
        )
        renamed = await service_accounts.edit_service_account(
            session, runtime, org, account, name="Renamed", test_mailbox=""
        )
        # The stored test mailbox: renaming tests (and saves) again with it.
        assert renamed is not None and renamed.ok and account.name == "Renamed"
        report = await service_accounts.edit_service_account(
            session, runtime, org, account, name="Exchange", test_mailbox="diego@contoso.com"
        )
        assert report is not None and report.ok
        assert account.status == ConnectionStatus.ACTIVE


async def test_saving_runs_the_test_and_saves_nothing_when_it_fails(
    db: Database,
    ews_url: str,
    runtime: ConnectionRuntime,
    make_org: Callable[..., Organization],
) -> None:
    """Save is Run Test then save: an unreachable server or a refused sign-in is refused
    with its cause and fix, and nothing is stored; ``partial`` keeps what passed."""
    organization = make_org()
    entered = {
        "name": "Exchange",
        "server_url": ews_url,
        "username": SERVICE_ACCOUNT,
        "password": SERVICE_PASSWORD,
        "test_mailbox": "diego@contoso.com",
    }
    with db.session() as session:
        org = orgs.get_organization(session, organization.id)
        with pytest.raises(RunTestFailed) as unreachable:
            await service_accounts.add_exchange_service_account(
                session,
                runtime,
                org,
                **{**entered, "server_url": "https://127.0.0.1:9/EWS/Exchange.asmx"},
            )
        assert "did not answer" in unreachable.value.message
        assert "firewall" in (unreachable.value.fix or "")
        with pytest.raises(RunTestFailed) as wrong:
            await service_accounts.add_exchange_service_account(
                session, runtime, org, **{**entered, "password": "nope"}
            )
        assert "username or password" in wrong.value.message
        assert service_accounts.list_service_accounts(session, org) == []

        account, report = await service_accounts.add_exchange_service_account(
            session,
            runtime,
            org,
            **{**entered, "test_mailbox": "nobody@contoso.com"},
            partial=True,
        )
        assert not report.ok and account.enabled_features == []
        assert account.status == ConnectionStatus.PARTIAL
