"""The EWS client against m365sim's Exchange Server: TLS trust from the product's settings
(not the environment), sign-in as the user or by impersonation, Exchange's failures as the
product's categories, and ``BackOffMilliseconds`` honoured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from exchangelib.protocol import Protocol

from m365sim.server import SimServer
from m365sync.microsoft import errors as ms
from m365sync.microsoft.ews import (
    ExchangeLogin,
    ExchangeServer,
    close_exchange_connections,
    discover_ews_url,
    probe_server,
)
from m365sync.settings import Settings
from support.demo import demo_settings
from support.ews_clients import (
    SERVICE_ACCOUNT,
    SERVICE_PASSWORD,
    USER_PASSWORD,
    add_fault,
    turn_on_exchange,
)

SERVICE = ExchangeLogin(SERVICE_ACCOUNT, SERVICE_PASSWORD)


@pytest.fixture
def ews_url(sim: SimServer) -> Iterator[str]:
    yield turn_on_exchange(sim)
    close_exchange_connections()


@pytest.fixture
def untrusting_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests' own trust settings gone: only the product's ``ca_bundle`` may make
    m365sim's certificate trusted."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)


def test_tls_trusts_the_ca_bundle_setting_not_the_environment(
    settings: Settings, ews_url: str, untrusting_environment: None
) -> None:
    server = ExchangeServer(settings, ews_url, SERVICE, impersonation=True)
    assert server.call(lambda: server.account("diego@contoso.com").inbox.total_count) == 42
    # exchangelib's own protocol class is left as it was: no global side effect
    assert Protocol.HTTP_ADAPTER_CLS is requests.adapters.HTTPAdapter


def test_without_the_ca_bundle_the_certificate_is_untrusted(
    sim: SimServer, ews_url: str, tmp_path: Path, untrusting_environment: None
) -> None:
    untrusting = demo_settings(sim, tmp_path / "data", ca_bundle=None)
    server = ExchangeServer(untrusting, ews_url, SERVICE, impersonation=True)
    with pytest.raises(ms.ExchangeTlsUntrusted):
        server.call(lambda: server.account("diego@contoso.com").inbox.total_count)
    with pytest.raises(ms.ExchangeTlsUntrusted):
        probe_server(untrusting, ews_url)


def test_a_user_reads_their_own_mailbox_with_ntlm_or_basic(
    settings: Settings, ews_url: str
) -> None:
    for auth in ("ntlm", "basic"):
        login = ExchangeLogin("diego@contoso.com", USER_PASSWORD, auth=auth)
        server = ExchangeServer(settings, ews_url, login, impersonation=False)
        assert server.call(lambda s=server: s.account("diego@contoso.com").inbox.total_count) == 42


def test_exchange_failures_arrive_as_categories(settings: Settings, ews_url: str) -> None:
    wrong = ExchangeServer(
        settings, ews_url, ExchangeLogin("diego@contoso.com", "wrong"), impersonation=False
    )
    with pytest.raises(ms.ExchangeCredentialsRejected):
        wrong.call(lambda: wrong.account("diego@contoso.com").inbox.total_count)
    no_role = ExchangeServer(
        settings, ews_url, ExchangeLogin("lee@contoso.com", USER_PASSWORD), impersonation=True
    )
    with pytest.raises(ms.ImpersonationDenied) as denied:
        no_role.call(lambda: no_role.account("diego@contoso.com").inbox.total_count)
    assert denied.value.code == "ErrorImpersonateUserDenied"
    assert "ApplicationImpersonation" in (denied.value.fix or "")
    service = ExchangeServer(settings, ews_url, SERVICE, impersonation=True)
    with pytest.raises(ms.MailboxNotOnServer):
        service.call(lambda: service.account("nobody@contoso.com").inbox.total_count)
    lee = ExchangeServer(
        settings, ews_url, ExchangeLogin("lee@contoso.com", USER_PASSWORD), impersonation=False
    )
    with pytest.raises(ms.ExchangeAccessDenied):
        lee.call(lambda: lee.account("diego@contoso.com").inbox.total_count)


def test_server_busy_is_waited_out_for_its_back_off(
    sim: SimServer, settings: Settings, ews_url: str
) -> None:
    slept: list[float] = []
    server = ExchangeServer(settings, ews_url, SERVICE, impersonation=True, sleep=slept.append)
    add_fault(sim, kind="429", operation="GetFolder", backOffMs=1500, count=1)
    assert server.call(lambda: server.account("diego@contoso.com").inbox.total_count) == 42
    assert slept == [1.5]


def test_a_back_off_longer_than_allowed_is_raised_for_the_scheduler(
    sim: SimServer, ews_url: str, tmp_path: Path
) -> None:
    patient = demo_settings(sim, tmp_path / "data", graph_backoff_max_seconds=5)
    slept: list[float] = []
    server = ExchangeServer(patient, ews_url, SERVICE, impersonation=True, sleep=slept.append)
    add_fault(sim, kind="429", operation="GetFolder", backOffMs=60_000, count=1)
    with pytest.raises(ms.Throttled) as throttled:
        server.call(lambda: server.account("diego@contoso.com").inbox.total_count)
    assert throttled.value.retry_after == 60
    assert slept == []


def test_temporary_failures_are_retried(sim: SimServer, settings: Settings, ews_url: str) -> None:
    slept: list[float] = []
    server = ExchangeServer(settings, ews_url, SERVICE, impersonation=True, sleep=slept.append)
    add_fault(sim, kind="500", operation="GetFolder", count=1)
    assert server.call(lambda: server.account("diego@contoso.com").inbox.total_count) == 42
    assert len(slept) == 1


def test_the_probe_tells_exchange_server_from_exchange_online(
    sim: SimServer, settings: Settings
) -> None:
    url = f"{sim.url}/EWS/Exchange.asmx"
    online = probe_server(settings, url)  # the demo tenant has no Exchange Server yet
    assert online.status == 401 and online.exchange_online
    turn_on_exchange(sim)
    onprem = probe_server(settings, url)
    assert not onprem.exchange_online
    assert {"ntlm", "basic"} <= onprem.methods
    with pytest.raises(ms.ExchangeServerUnreachable):
        probe_server(settings, "https://127.0.0.1:9/EWS/Exchange.asmx")


def test_a_server_older_than_2016_is_refused(sim: SimServer, settings: Settings) -> None:
    ews_url = turn_on_exchange(sim)
    server = ExchangeServer(settings, ews_url, SERVICE, impersonation=True)
    assert server.require_supported_version()[:2] == (15, 2)
    close_exchange_connections()
    turn_on_exchange(sim, build="14.3.123.4")  # Exchange 2010 SP3
    old = ExchangeServer(settings, ews_url, SERVICE, impersonation=True)
    with pytest.raises(ms.ExchangeServerTooOld):
        old.require_supported_version()


def test_autodiscover(sim: SimServer, settings: Settings, ews_url: str) -> None:
    diego = ExchangeLogin("diego@contoso.com", USER_PASSWORD)
    endpoint = f"{sim.url}/autodiscover/autodiscover.svc"
    assert discover_ews_url(settings, "diego@contoso.com", diego, [endpoint]) == ews_url
    with pytest.raises(ms.MailboxNotOnServer):
        discover_ews_url(settings, "nobody@contoso.com", diego, [endpoint])
    # contoso.com publishes no autodiscover host this machine can reach
    with pytest.raises(ms.AutodiscoverFailed) as failed:
        discover_ews_url(settings, "diego@contoso.com", diego)
    assert "autodiscover.contoso.com" in failed.value.message
