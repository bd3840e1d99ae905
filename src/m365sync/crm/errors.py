"""Errors of the CRM capability that people see (Salesforce as the CRM).

::

    M365SyncError
    ├── NotFound
    │   ├── SalesforceNotConnected      the organization has no Salesforce connection
    │   ├── SalesforceUserNotFound      no active Salesforce user answers to what was given
    │   ├── UnresolvedRecordNotFound    the record chosen for an address is not in the mirror
    │   └── UnresolvedMemberNotFound    the queue of a member the organization doesn't have
    └── ValidationFailed
        └── SalesforceSignInUnknown     a Connect Salesforce answer nobody is waiting for

Salesforce's own refusals are ``m365sync.salesforce.errors`` classes, raised as they are:
they already name the cause and the fix.
"""

from __future__ import annotations

from m365sync.errors import NotFound, ValidationFailed


class SalesforceNotConnected(NotFound):
    def __init__(self, message: str | None = None, *, fix: str | None = None) -> None:
        super().__init__(
            message or "This organization has no Salesforce connection.",
            fix=fix or "Connect Salesforce first, then try again.",
        )


class SalesforceUserNotFound(NotFound):
    pass


class UnresolvedRecordNotFound(NotFound):
    pass


class UnresolvedMemberNotFound(NotFound):
    pass


class SalesforceSignInUnknown(ValidationFailed):
    def __init__(self) -> None:
        super().__init__(
            "This Salesforce sign-in was not started here, or it has already finished.",
            fix="Start again with Connect Salesforce.",
        )


__all__ = [
    "SalesforceNotConnected",
    "SalesforceSignInUnknown",
    "SalesforceUserNotFound",
    "UnresolvedMemberNotFound",
    "UnresolvedRecordNotFound",
]
