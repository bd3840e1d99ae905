"""Database access for service accounts, user connections and pending sign-ins.

Every query filters on ``organization_id`` (isolation). Sealed columns are read and
written as bytes; ``m365sync.connections.secrets`` seals and opens them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, String, column, delete, select, table
from sqlalchemy.orm import Session

from m365sync.connections.models import AuthorizationRequest, ServiceAccount, UserConnection

# Scheduling's meeting types, named rather than imported (scheduling sits above connections):
# Run Test only asks whether one books a room.
_MEETING_TYPES = table(
    "meeting_types", column("organization_id", String), column("book_room", Boolean)
)


class ConnectionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def books_rooms(self, organization_id: str) -> bool:
        """Whether some meeting type of the organization books a meeting room."""
        found = self.session.execute(
            select(_MEETING_TYPES.c.organization_id)
            .where(
                _MEETING_TYPES.c.organization_id == organization_id,
                _MEETING_TYPES.c.book_room.is_(True),
            )
            .limit(1)
        ).first()
        return found is not None

    # service accounts
    def add_service_account(self, account: ServiceAccount) -> ServiceAccount:
        self.session.add(account)
        self.session.flush()
        return account

    def service_accounts(self, organization_id: str) -> list[ServiceAccount]:
        query = (
            select(ServiceAccount)
            .where(ServiceAccount.organization_id == organization_id)
            .order_by(ServiceAccount.created_at)
        )
        return list(self.session.scalars(query))

    def service_account(self, organization_id: str, account_id: str) -> ServiceAccount | None:
        query = select(ServiceAccount).where(
            ServiceAccount.organization_id == organization_id, ServiceAccount.id == account_id
        )
        return self.session.scalar(query)

    def accounts_with_registered_apps(self) -> list[ServiceAccount]:
        """Every organization's service accounts whose app registration m365sync set up
        itself (their certificates are m365sync's to renew)."""
        query = (
            select(ServiceAccount)
            .where(ServiceAccount.application_object_id.is_not(None))
            .order_by(ServiceAccount.created_at)
        )
        return list(self.session.scalars(query))

    def delete_service_account(self, account: ServiceAccount) -> None:
        self.session.delete(account)
        self.session.flush()

    # user connections
    def user_connection(self, organization_id: str, member_id: str) -> UserConnection | None:
        query = select(UserConnection).where(
            UserConnection.organization_id == organization_id, UserConnection.member_id == member_id
        )
        return self.session.scalar(query)

    def user_connections(self, organization_id: str) -> list[UserConnection]:
        query = select(UserConnection).where(UserConnection.organization_id == organization_id)
        return list(self.session.scalars(query))

    def add_user_connection(self, connection: UserConnection) -> UserConnection:
        self.session.add(connection)
        self.session.flush()
        return connection

    def delete_user_connection(self, connection: UserConnection) -> None:
        self.session.delete(connection)
        self.session.flush()

    # pending sign-ins
    def add_authorization(self, request: AuthorizationRequest) -> AuthorizationRequest:
        self.session.add(request)
        self.session.flush()
        return request

    def authorization(self, state: str) -> AuthorizationRequest | None:
        """The pending sign-in with this ``state``, left in place (``take_authorization``
        consumes it)."""
        return self.session.scalar(
            select(AuthorizationRequest).where(AuthorizationRequest.state == state)
        )

    def take_authorization(self, state: str) -> AuthorizationRequest | None:
        """The pending sign-in with this ``state``, removed so it can't be replayed."""
        request = self.session.scalar(
            select(AuthorizationRequest).where(AuthorizationRequest.state == state)
        )
        if request is not None:
            self.session.delete(request)
            self.session.flush()
        return request

    def purge_authorizations(self, older_than: datetime) -> None:
        self.session.execute(
            delete(AuthorizationRequest).where(AuthorizationRequest.created_at < older_than)
        )
