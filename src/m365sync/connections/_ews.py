"""The address of an on-premises Exchange server (EWS), checked once for service accounts and
user connections alike."""

from __future__ import annotations

from m365sync.connections.errors import ExchangeOnlineNotSupported
from m365sync.errors import ValidationFailed
from m365sync.microsoft.ews import (
    MIGRATION_STEPS,
    is_exchange_online,
    is_valid_ews_url,
    normalize_ews_url,
)
from m365sync.microsoft.ews_probe import probe_ews_server
from m365sync.settings import Settings


def ews_server_url(server_url: str) -> str:
    """The normalised EWS URL; Exchange Online (which no longer takes a username and
    password) and anything but an HTTPS address are refused with the way forward."""
    url = normalize_ews_url(server_url)
    if is_exchange_online(url):
        raise ExchangeOnlineNotSupported(
            f"{url} is Exchange Online, which no longer accepts EWS connections with a username "
            "and password.",
            fix=MIGRATION_STEPS,
        )
    if not is_valid_ews_url(url):
        raise ValidationFailed(
            f"'{server_url}' is not an HTTPS address of an Exchange server.",
            fix="Enter your on-premises server, e.g. https://mail.contoso.com/EWS/Exchange.asmx",
        )
    return url


def reachable_ews_server_url(server_url: str, settings: Settings) -> str:
    """``ews_server_url``, and the server asked whether it answers there: an address that
    can't be reached is refused with its cause before anything is saved."""
    url = ews_server_url(server_url)
    probe_ews_server(url, verify=settings.ssl_context)
    return url
