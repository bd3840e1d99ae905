"""Errors of the connections package.

::

    ConnectionsError (M365SyncError)
    ├── NoDomains                 409: a service account can't be authorized before domains exist
    ├── MemberNotSynced           409: the address is outside the domains to sync
    │   └── DomainNotVerified     409: the member's domain is not proven yet (mailboxes wait)
    ├── WrongTenant               403: Microsoft signed in an account of another tenant than
    │                                  the one the member's domain is verified in
    ├── NoConnection              409: nothing can serve this feature for this member
    │   └── UserAppNotConfigured  409: the server has no app for "Connect your Office 365"
    ├── DraftIncomplete           422: Run Test or Save without a client ID, a credential or
    │                                  a test account (``missing`` says which)
    ├── RunTestFailed             422: Save refused while a required Run Test check fails
    ├── ExchangeOnlineNotSupported 422: an EWS connection pointed at Exchange Online
    ├── DuplicateServiceAccount   409: the same app (client ID) in the same tenant is already
    │                                  a service account (``existing_id`` names it)
    ├── AuthorizationExpired      422: an Office 365 sign-in response with an unknown state
    └── SetupFailed               Set up for me did not end with a working service account;
        │                         what it did in the tenant is audited (and undone where
        │                         it could be)
        ├── AdminRoleMissing      403: the administrator who signed in may not register the
        │                         app or grant its permissions
        ├── SetupConsentDeclined  422: the management permissions were declined at Microsoft
        ├── ReplicationSlow       409: Entra ID had not replicated the new app in time (the
        │                         account is kept, waiting for its test)
        └── SetupInterrupted      502: Microsoft failed in the middle (its category's cause)

Microsoft's own failures are ``m365sync.microsoft.errors`` categories, not these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from m365sync.errors import M365SyncError

if TYPE_CHECKING:
    from m365sync.connections.run_test import TestReport


class ConnectionsError(M365SyncError):
    status = 409


class NoDomains(ConnectionsError):
    def __init__(self) -> None:
        super().__init__(
            "No domains to sync are defined, so the service account can't be authorized "
            "(its tenant is found from your domains, and only users in them are synced).",
            fix="Add your domains to sync first (such as contoso.com), then add the service "
            "account.",
        )


class MemberNotSynced(ConnectionsError):
    pass


class DomainNotVerified(MemberNotSynced):
    pass


class WrongTenant(ConnectionsError):
    status = 403


class NoConnection(ConnectionsError):
    pass


class UserAppNotConfigured(NoConnection):
    """The server has no app registration for "Connect your Office 365"."""

    def __init__(self) -> None:
        super().__init__(
            "User connections are not configured on this server.",
            fix="The server's operator gives it the app registration users sign in to (its "
            "client ID and secret; see docs/connections.md).",
        )


class DraftIncomplete(ConnectionsError):
    """``missing`` holds ``client_id``, ``credential``, ``test_mailbox``, ``username`` and/or
    ``password``, so a door can name its own fields."""

    status = 422

    NAMES: ClassVar[dict[str, str]] = {
        "client_id": "the client ID",
        "credential": "the client secret's Value (or a certificate)",
        "test_mailbox": "the test account",
        "username": "the username",
        "password": "the password",
    }
    WHERE: ClassVar[dict[str, str]] = {
        "client_id": "The Application (client) ID is on the app registration's Overview page.",
        "credential": "Give the client secret's Value (the Value column of Certificates & "
        "secrets, not the Secret ID), or a certificate.",
        "test_mailbox": "The test account is any mailbox in your domains to sync; the test "
        "only reads it.",
        "username": "Give the Exchange account's username (user@domain or DOMAIN\\user).",
        "password": "Give the Exchange account's password.",
    }

    def __init__(self, missing: list[str]) -> None:
        names = [self.NAMES[m] for m in missing]
        listed = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
        super().__init__(
            f"{listed[0].upper()}{listed[1:]} {'is' if len(names) == 1 else 'are'} needed to "
            "run the test.",
            fix=" ".join(self.WHERE[m] for m in missing),
        )
        self.missing = tuple(missing)


class RunTestFailed(ConnectionsError):
    status = 422

    def __init__(self, report: TestReport, *, can_save_partial: bool = True) -> None:
        failed = report.required_failures()
        first = failed[0] if failed else None
        super().__init__(
            "Not saved: Run Test found a problem"
            + (f" — {first.title}: {first.message}" if first else "."),
            fix=(first.fix + " " if first and first.fix else "")
            + (
                "Fix it and run the test again, or save anyway with only the features that "
                "passed (the failing ones stay off)."
                if can_save_partial
                else "Fix it and connect again: nothing was saved."
            ),
        )
        self.report = report


class ExchangeOnlineNotSupported(ConnectionsError):
    status = 422


class DuplicateServiceAccount(ConnectionsError):
    status = 409

    def __init__(self, client_id: str, existing_name: str, existing_id: str) -> None:
        super().__init__(
            f"The app {client_id} is already the service account “{existing_name}” for this "
            "tenant: a second copy would sync the same mailboxes twice.",
            fix=f"Use “{existing_name}” in the list of service accounts instead: edit it, or "
            "rotate its secret there. Nothing was saved.",
        )
        self.existing_id = existing_id


class AuthorizationExpired(ConnectionsError):
    status = 422


class SetupFailed(ConnectionsError):
    """Set up for me stopped before a working service account was saved. What it created or
    removed in the tenant is in the audit log: a door answering with this error keeps the
    request's work (the audit entries, a waiting account) rather than rolling it back."""


class AdminRoleMissing(SetupFailed):
    status = 403


class SetupConsentDeclined(SetupFailed):
    status = 422


class ReplicationSlow(SetupFailed):
    status = 409


class SetupInterrupted(SetupFailed):
    status = 502
