"""Exchange Web Services (EWS): on-premises Exchange Server, the only place exchangelib is
imported.

- ``addresses``: what an EWS connection may point at (Exchange Online is refused);
- ``client``: ``ExchangeServer`` (a login on an endpoint, mailboxes as exchangelib
  ``Account`` objects, calls with ``BackOffMilliseconds`` honoured), the anonymous probe of
  Run Test, SOAP Autodiscover;
- ``mail``: a folder's changes page by page (SyncFolderItems + GetItem), in Graph's shape;
- ``mailbox``: ``ExchangeMailbox``, one mailbox as the sync engine holds it;
- ``_transport``: TLS trust from the ``ca_bundle`` setting, without touching requests'
  or exchangelib's globals;
- ``_errors``: exchangelib's failures sorted into ``microsoft.errors`` categories.
"""

from __future__ import annotations

from m365sync.microsoft.ews._errors import classify_ews_error
from m365sync.microsoft.ews.addresses import (
    MIGRATION_STEPS,
    is_exchange_online,
    is_valid_ews_url,
    normalize_ews_url,
)
from m365sync.microsoft.ews.client import (
    EXCHANGE_ONLINE_APP_ID,
    MINIMUM_BUILD,
    ExchangeLogin,
    ExchangeServer,
    ServerProbe,
    autodiscover_endpoints,
    close_exchange_connections,
    discover_ews_url,
    probe_server,
)
from m365sync.microsoft.ews.mail import MessagePage
from m365sync.microsoft.ews.mailbox import ExchangeMailbox

__all__ = [
    "EXCHANGE_ONLINE_APP_ID",
    "MIGRATION_STEPS",
    "MINIMUM_BUILD",
    "ExchangeLogin",
    "ExchangeMailbox",
    "ExchangeServer",
    "MessagePage",
    "ServerProbe",
    "autodiscover_endpoints",
    "classify_ews_error",
    "close_exchange_connections",
    "discover_ews_url",
    "is_exchange_online",
    "is_valid_ews_url",
    "normalize_ews_url",
    "probe_server",
]
