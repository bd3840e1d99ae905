"""The synced organization served by an on-premises Exchange Server (EWS) instead of Graph:
the sync harness's world with m365sim's Exchange Server turned on, the Office 365 service
account removed, and an Exchange service account (impersonation) stored as a passed Run
Test leaves it."""

from __future__ import annotations

from sqlalchemy import delete

from m365sim.server import SimServer
from m365sync.connections.models import (
    ConnectionKind,
    ConnectionStatus,
    CredentialType,
    ServiceAccount,
    UserConnection,
)
from m365sync.connections.runtime import ConnectionRuntime
from m365sync.db.session import Database
from m365sync.microsoft.ews import close_exchange_connections
from support.ews_clients import SERVICE_ACCOUNT, SERVICE_PASSWORD, USER_PASSWORD, turn_on_exchange
from support.sync_world import SyncWorld

__all__ = [
    "add_exchange_service_account",
    "exchange_only",
    "store_exchange_service_account",
    "store_exchange_user_connection",
]


def store_exchange_service_account(
    world: SyncWorld, *, username: str = SERVICE_ACCOUNT, password: str = SERVICE_PASSWORD
) -> str:
    """An Exchange service account for the world's organization, active with Email,
    Calendar Sync and Calendar Scheduling on; returns its id."""
    return add_exchange_service_account(
        world.sim,
        world.database,
        world.runtime,
        world.organization_id,
        username=username,
        password=password,
    )


def add_exchange_service_account(
    sim: SimServer,
    database: Database,
    runtime: ConnectionRuntime,
    organization_id: str,
    *,
    username: str = SERVICE_ACCOUNT,
    password: str = SERVICE_PASSWORD,
    replace: bool = False,
) -> str:
    """``store_exchange_service_account`` for any world: an Exchange service account on
    ``sim``'s EWS (with ``replace``, in place of the organization's other service
    accounts); returns its id."""
    with database.session() as session:
        if replace:
            session.execute(
                delete(ServiceAccount).where(ServiceAccount.organization_id == organization_id)
            )
        account = ServiceAccount(
            organization_id=organization_id,
            name="Exchange",
            kind=ConnectionKind.EXCHANGE,
            credential_type=CredentialType.PASSWORD,
            ews_url=f"{sim.url}/EWS/Exchange.asmx",
            username=username,
            test_mailbox="adele@contoso.com",
            status=ConnectionStatus.ACTIVE,
            enabled_features=["email", "calendar", "scheduling"],
        )
        session.add(account)
        session.flush()
        runtime.seal(account, "password_sealed", password)
        return account.id


def exchange_only(world: SyncWorld, **exchange: object) -> SyncWorld:
    """``world`` with its mailboxes served over EWS only: Exchange Server 2019 on, the
    Office 365 service account gone, an Exchange service account in its place."""
    close_exchange_connections()
    turn_on_exchange(world.sim, **exchange)
    add_exchange_service_account(
        world.sim, world.database, world.runtime, world.organization_id, replace=True
    )
    return world


def store_exchange_user_connection(
    world: SyncWorld, mailbox: str, *, password: str = USER_PASSWORD
) -> str:
    """``mailbox``'s member's own Exchange connection (their sign-in, no impersonation),
    connected; returns its id."""
    with world.database.session() as session:
        connection = UserConnection(
            organization_id=world.organization_id,
            member_id=world.members[mailbox],
            kind=ConnectionKind.EXCHANGE,
            status=ConnectionStatus.ACTIVE,
            ews_url=f"{world.sim.url}/EWS/Exchange.asmx",
            username=mailbox,
        )
        session.add(connection)
        session.flush()
        world.runtime.seal(connection, "password_sealed", password)
        return connection.id
