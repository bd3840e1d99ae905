"""Who may call EWS: NTLM and Basic sign-ins, wrong passwords, the server version exchangelib
detects, and Exchange Online refusing EWS."""

from __future__ import annotations

import httpx
import pytest
from exchangelib import BASIC, NTLM, Account, Configuration, Credentials
from exchangelib.errors import UnauthorizedError
from exchangelib.protocol import close_connections

from m365sim.server import SimServer
from support.ews_clients import TENANT, AccountFactory
from support.sim_tokens import sim_client


@pytest.mark.parametrize("auth_type", [NTLM, BASIC])
def test_a_user_reads_their_inbox_with_ntlm_or_basic(ews: AccountFactory, auth_type: str) -> None:
    account = ews("diego@contoso.com", auth_type=auth_type)
    assert account.inbox.total_count == 42
    assert account.protocol.auth_type == auth_type


def test_exchangelib_detects_ntlm_and_the_server_build(ews: AccountFactory) -> None:
    account = ews("diego@contoso.com")  # no auth type: exchangelib asks the server
    assert account.inbox.total_count == 42
    assert account.protocol.auth_type == NTLM
    version = account.version
    assert str(version.build) == "15.2.1748.24"
    assert version.fullname == "Microsoft Exchange Server 2019"


def test_a_domain_backslash_user_name_signs_in(ews: AccountFactory) -> None:
    account = ews("diego@contoso.com", username="CONTOSO\\diego", auth_type=NTLM)
    assert account.inbox.total_count == 42


@pytest.mark.parametrize("auth_type", [NTLM, BASIC])
def test_a_wrong_password_is_refused_with_401(ews: AccountFactory, auth_type: str) -> None:
    account = ews("diego@contoso.com", password="not-the-password", auth_type=auth_type)
    with pytest.raises(UnauthorizedError):
        _ = account.inbox.total_count


def test_basic_is_refused_when_the_server_accepts_only_windows_authentication(
    ews: AccountFactory, control: httpx.Client
) -> None:
    control.patch(f"/_sim/tenants/{TENANT}/exchange", json={"authentication": ["ntlm"]})
    with pytest.raises(UnauthorizedError):
        _ = ews("diego@contoso.com", auth_type=BASIC).inbox.total_count
    assert ews("lee@contoso.com", auth_type=NTLM).inbox.total_count == 0


@pytest.mark.parametrize(
    ("version", "build", "fullname"),
    [
        ("Exchange2016", "15.1.2507.39", "Microsoft Exchange Server 2016"),
        ("ExchangeSE", "15.2.2562.17", "Microsoft Exchange Server 2019"),
    ],
)
def test_each_server_version_reports_its_build(
    ews: AccountFactory, control: httpx.Client, version: str, build: str, fullname: str
) -> None:
    control.patch(f"/_sim/tenants/{TENANT}/exchange", json={"version": version})
    account = ews("diego@contoso.com", auth_type=NTLM)
    _ = account.inbox.total_count
    assert str(account.version.build) == build
    assert account.version.fullname == fullname  # exchangelib names SE builds 2019


def test_an_unknown_request_server_version_is_a_soap_fault(ews_url: str, onprem: SimServer) -> None:
    envelope = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" '
        'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">'
        '<s:Header><t:RequestServerVersion Version="Exchange2031"/></s:Header>'
        "<s:Body><m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>"
        '<m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder></s:Body>'
        "</s:Envelope>"
    )
    with sim_client(onprem) as http:
        response = http.post(
            ews_url,
            content=envelope,
            auth=("diego@contoso.com", "Demo-User-1!"),
            headers={"Content-Type": "text/xml; charset=utf-8"},
        )
    assert response.status_code == 500
    assert b"ErrorInvalidServerVersion" in response.content
    assert b"The specified server version is invalid." in response.content


def test_exchange_online_refuses_ews(sim: SimServer) -> None:
    """Contoso without an Exchange Server is Exchange Online: basic and NTLM sign-ins get its
    OAuth-only challenge, a token gets 403 (EWS is blocked there since 2026-10-01)."""
    url = f"{sim.url}/EWS/Exchange.asmx"
    account = Account(
        "diego@contoso.com",
        config=Configuration(
            service_endpoint=url,
            credentials=Credentials("diego@contoso.com", "Demo-User-1!"),
            auth_type=BASIC,
        ),
        autodiscover=False,
        access_type="delegate",
    )
    try:
        with pytest.raises(UnauthorizedError):
            _ = account.inbox.total_count
    finally:
        close_connections()
    with sim_client(sim) as http:
        basic = http.post(url, content=b"<x/>", auth=("diego@contoso.com", "Demo-User-1!"))
        bearer = http.post(
            url, content=b"<x/>", headers={"Authorization": "Bearer eyJ0eXAi.e30.sig"}
        )
    assert basic.status_code == 401
    challenge = basic.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'client_id="00000002-0000-0ff1-ce00-000000000000"' in challenge
    assert bearer.status_code == 403
    assert bearer.content == b""
