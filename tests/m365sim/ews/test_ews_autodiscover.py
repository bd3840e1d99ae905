"""Autodiscover: exchangelib's SOAP GetUserSettings and the POX endpoint Outlook uses."""

from __future__ import annotations

import httpx
from exchangelib import DELEGATE, Account, Configuration, Credentials
from exchangelib.autodiscover import AutodiscoverProtocol, autodiscover_cache, clear_cache
from exchangelib.errors import ErrorNonExistentMailbox
from exchangelib.protocol import close_connections

from m365sim.server import SimServer
from support.ews_clients import SERVICE_ACCOUNT, SERVICE_PASSWORD, TENANT
from support.sim_tokens import sim_client

POX_REQUEST = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/'
    'requestschema/2006"><Request><EMailAddress>{address}</EMailAddress>'
    "<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/"
    "responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>"
)


def test_get_user_settings_gives_the_ews_url(onprem: SimServer) -> None:
    credentials = Credentials(SERVICE_ACCOUNT, SERVICE_PASSWORD)
    protocol = AutodiscoverProtocol(
        config=Configuration(
            service_endpoint=f"{onprem.url}/autodiscover/autodiscover.svc",
            credentials=credentials,
        )
    )
    response = protocol.get_user_settings(user="diego@contoso.com")
    assert response.ews_url == f"{onprem.url}/EWS/Exchange.asmx"
    assert response.autodiscover_smtp_address == "diego@contoso.com"
    assert response.user_settings["user_display_name"] == "Diego Siciliani"
    assert response.version.api_version == "Exchange2016"
    response.raise_errors()  # settings m365sim doesn't model are "not available": harmless
    unknown = protocol.get_user_settings(user="nobody@contoso.com")
    try:
        unknown.raise_errors()
    except ErrorNonExistentMailbox:
        pass
    else:
        raise AssertionError("an unknown address was autodiscovered")


def test_an_account_found_by_autodiscover_reads_its_mailbox(onprem: SimServer) -> None:
    """exchangelib's autodiscover asks DNS first; seeding its cache with the domain's
    autodiscover endpoint (what a successful DNS step would have found) leaves the rest —
    GetUserSettings, then EWS at the URL it returns — to the library."""
    credentials = Credentials("diego@contoso.com", "Demo-User-1!")
    autodiscover_cache[(TENANT, credentials)] = AutodiscoverProtocol(
        config=Configuration(
            service_endpoint=f"{onprem.url}/autodiscover/autodiscover.svc",
            credentials=credentials,
        )
    )
    try:
        account = Account(
            "diego@contoso.com", credentials=credentials, autodiscover=True, access_type=DELEGATE
        )
        assert account.protocol.service_endpoint == f"{onprem.url}/EWS/Exchange.asmx"
        assert account.inbox.total_count == 42
    finally:
        clear_cache()
        close_connections()


def test_pox_autodiscover(onprem: SimServer, control: httpx.Client) -> None:
    with sim_client(onprem) as http:
        found = http.post(
            "/autodiscover/autodiscover.xml",
            content=POX_REQUEST.format(address="diego@contoso.com"),
            auth=("diego@contoso.com", "Demo-User-1!"),
        )
        assert found.status_code == 200
        assert f"<EwsUrl>{onprem.url}/EWS/Exchange.asmx</EwsUrl>" in found.text
        assert "<Action>settings</Action>" in found.text
        missing = http.post(
            "/autodiscover/autodiscover.xml",
            content=POX_REQUEST.format(address="nobody@contoso.com"),
            auth=("diego@contoso.com", "Demo-User-1!"),
        )
        assert "<ErrorCode>500</ErrorCode>" in missing.text
        assert "The e-mail address cannot be found." in missing.text
        anonymous = http.post(
            "/autodiscover/autodiscover.xml",
            content=POX_REQUEST.format(address="diego@contoso.com"),
        )
        assert anonymous.status_code == 401
        assert "NTLM" in anonymous.headers.get_list("www-authenticate")
        control.patch(f"/_sim/tenants/{TENANT}/exchange", json={"flavour": "hybrid"})
        moved = http.post(
            "/autodiscover/autodiscover.xml",
            content=POX_REQUEST.format(address="diego@contoso.com"),
            auth=("onprem@contoso.com", "Demo-User-1!"),
        )
        assert "<Action>redirectAddr</Action>" in moved.text
        assert "<RedirectAddr>diego@contoso.mail.onmicrosoft.com</RedirectAddr>" in moved.text
