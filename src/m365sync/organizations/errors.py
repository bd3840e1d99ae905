"""Errors of the organizations package.

::

    Conflict (M365SyncError, 409)
    └── DomainTaken           409: another organization has verified this domain
    ValidationFailed (M365SyncError, 422)
    └── DomainNotProven       422: the proof asked for was not found (no DNS TXT record yet)
    M365SyncError
    └── DnsUnavailable        503: DNS did not answer; nothing was decided

The rest of the package raises the root errors (``NotFound``, ``Conflict``,
``ValidationFailed``) of ``m365sync.errors``.
"""

from __future__ import annotations

from m365sync.errors import Conflict, M365SyncError, ValidationFailed


class DomainTaken(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name} is verified by another organization on this server: a domain is synced "
            "by the one organization that proved it owns it.",
            fix=f"Check the spelling. If {name} is yours, your Microsoft 365 tenant or your "
            "DNS decides who owns it: ask this server's operator to look into the other "
            "organization's verification.",
        )


class DomainNotProven(ValidationFailed):
    pass


class DnsUnavailable(M365SyncError):
    status = 503
