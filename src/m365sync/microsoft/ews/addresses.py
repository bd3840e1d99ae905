"""Exchange Web Services (EWS) addresses: legacy connections to on-premises Exchange.

Here: what an EWS connection may point at. Exchange Online has switched Basic
Authentication off and retired EWS, so a connection to an Exchange Online host is refused
with the migration steps; on-premises servers (and hybrid deployments' on-premises
mailboxes) keep working.
"""

from __future__ import annotations

from urllib.parse import urlsplit

EXCHANGE_ONLINE_HOSTS = frozenset(
    {
        "outlook.office365.com",
        "outlook.office.com",
        "outlook.office365.us",
        "outlook.office365.de",
        "partner.outlook.cn",
        "outlook.live.com",
        "outlook.com",
        "webmail.apps.mil",
    }
)
EXCHANGE_ONLINE_SUFFIXES = (
    ".outlook.com",
    ".office365.com",
    ".office.com",
    ".outlook.cn",
    ".office365.us",
)

MIGRATION_STEPS = (
    "Exchange Online no longer accepts EWS with a username and password. Switch to Microsoft "
    "Graph: for your own mailbox, 1) Disconnect your Exchange connection, 2) use 'Connect "
    "your Office 365', 3) sign in and grant the permissions. For the whole organization, an "
    "admin adds an Office 365 service account (an app registration) instead."
)


def normalize_ews_url(server: str) -> str:
    """``mail.contoso.com`` → ``https://mail.contoso.com/EWS/Exchange.asmx``."""
    text = server.strip()
    if "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    path = parts.path if parts.path not in ("", "/") else "/EWS/Exchange.asmx"
    return f"{parts.scheme}://{parts.netloc}{path}"


def is_exchange_online(url: str) -> bool:
    host = (urlsplit(normalize_ews_url(url)).hostname or "").lower()
    return host in EXCHANGE_ONLINE_HOSTS or host.endswith(EXCHANGE_ONLINE_SUFFIXES)


def is_valid_ews_url(url: str) -> bool:
    parts = urlsplit(normalize_ews_url(url))
    return parts.scheme == "https" and bool(parts.hostname) and "." in (parts.hostname or "")


__all__ = ["MIGRATION_STEPS", "is_exchange_online", "is_valid_ews_url", "normalize_ews_url"]
