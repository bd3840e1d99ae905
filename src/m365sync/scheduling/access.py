"""Reaching a host's calendar through whichever connection serves Calendar Scheduling.

``ConnectionCalendarAccess`` asks the connections runtime for the member's mailbox with the
Calendar Scheduling feature (a service account with all four Mail and Calendars
permissions, or the member's own Office 365 connection; for a mailbox on an Exchange
Server, an Exchange connection with Calendar Scheduling on, over EWS). When none can, it says why in
the words a rep or admin needs: which permission is missing, and where to grant it.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.orm import Session

from m365sync.connections.errors import ConnectionsError
from m365sync.connections.features import delegated_feature_matrix
from m365sync.connections.models import ConnectionKind, Feature
from m365sync.connections.repository import ConnectionRepository
from m365sync.connections.runtime import ConnectionRuntime
from m365sync.db.session import Database
from m365sync.microsoft.errors import MicrosoftError
from m365sync.microsoft.ews.scheduling import ExchangeSchedulingCalendar
from m365sync.microsoft.scheduling import MailboxCalendar, SchedulingCalendar
from m365sync.organizations.models import Member
from m365sync.scheduling.errors import SchedulingUnavailable
from m365sync.scheduling.service import unavailable_reason

__all__ = ["ConnectionCalendarAccess", "missing_scheduling_permissions"]


def missing_scheduling_permissions(session: Session, member: Member) -> list[str]:
    """The permissions the member's connections lack for Calendar Scheduling (the fewest
    any one connection lacks), or [] when none of them even reaches the mailbox."""
    repo = ConnectionRepository(session)
    candidates: list[list[str]] = []
    for account in repo.service_accounts(member.organization_id):
        if account.kind != ConnectionKind.OFFICE365:
            continue
        missing = (account.missing_permissions or {}).get(Feature.SCHEDULING.value)
        if missing:
            candidates.append([str(p) for p in missing])
    connection = repo.user_connection(member.organization_id, member.id)
    if connection is not None and connection.kind == ConnectionKind.OFFICE365:
        matrix = delegated_feature_matrix(connection.granted_scopes or [])
        if Feature.SCHEDULING in matrix.missing:
            candidates.append(matrix.missing[Feature.SCHEDULING])
    return min(candidates, key=len) if candidates else []


class ConnectionCalendarAccess:
    """Looks connections up in a unit of work of its own, committed at once: the runtime
    may store a refreshed token cache, and that write must not hold the database (SQLite's
    single writer) while the request then waits for Microsoft.

    The lookup runs in a worker thread, never on the event loop: it reads the database and,
    the first time a connection is used, MSAL discovers its tenant over the network."""

    def __init__(self, runtime: ConnectionRuntime, database: Database) -> None:
        self.runtime = runtime
        self.database = database

    async def open_calendar(self, member: Member) -> SchedulingCalendar:
        loop = asyncio.get_running_loop()  # the Graph client is the one of this event loop

        def open_in_own_session() -> SchedulingCalendar:
            with self.database.session() as session:
                return self._open(session, member, loop)

        return await asyncio.to_thread(open_in_own_session)

    def _open(
        self, session: Session, member: Member, loop: asyncio.AbstractEventLoop
    ) -> SchedulingCalendar:
        who = member.name or member.email
        try:
            access = self.runtime.graph_for_mailbox(session, member, Feature.SCHEDULING, loop=loop)
        except ConnectionsError as exc:
            # A mailbox on an Exchange Server: free/busy and the booking over EWS.
            try:
                exchange = self.runtime.exchange_for_mailbox(session, member, Feature.SCHEDULING)
            except MicrosoftError as problem:
                raise SchedulingUnavailable(
                    f"Calendar Scheduling is unavailable for {who}: {problem.message}",
                    fix=problem.fix,
                ) from problem
            if exchange is not None:
                return ExchangeSchedulingCalendar(exchange.exchange.server, member.email)
            missing = missing_scheduling_permissions(session, member)
            if missing:
                raise unavailable_reason(missing, who) from exc
            raise SchedulingUnavailable(
                f"Calendar Scheduling is unavailable for {who}: {exc.message}", fix=exc.fix
            ) from exc
        except MicrosoftError as exc:
            raise SchedulingUnavailable(
                f"Calendar Scheduling is unavailable for {who}: {exc.message}", fix=exc.fix
            ) from exc
        mailbox = None if access.user_path == "/me" else member.email
        return MailboxCalendar(access.graph, mailbox)
