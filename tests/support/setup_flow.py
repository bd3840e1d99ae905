"""Set up for me as the tests drive it: begin as the organization's admin, sign in at
m365sim's real sign-in and consent pages, complete as a door does, and read what happened
(the audit trail, the service accounts); a fake clock for the replication wait."""

from __future__ import annotations

import asyncio
from typing import Any

from m365sync.audit import service as audit
from m365sync.connections import service_accounts, setup
from m365sync.connections.errors import SetupFailed
from m365sync.connections.models import ServiceAccount
from m365sync.organizations import service as orgs
from support.litware import ADMIN, PASSWORD, REP, SimControl
from support.microsoft_sign_in import sign_in
from support.organizations import fresh

REDIRECT = "http://localhost:8365/admin/service-accounts/setup/callback"


async def begin(db: Any, runtime: Any, org: Any, **choice: Any) -> str:
    with db.session() as session:
        organization = fresh(session, org)
        admin = orgs.get_member(session, organization, ADMIN)
        return await setup.begin_setup(
            session,
            runtime,
            organization,
            admin,
            features=choice.pop("features", ["email", "calendar"]),
            test_mailbox=choice.pop("test_mailbox", REP),
            **choice,
        )


async def complete(db: Any, runtime: Any, org: Any, params: dict[str, str], **kw: Any) -> Any:
    """As a door does it: the result, or the ``SetupFailed`` error with the request's work
    (audit entries, a waiting account) committed."""
    with db.session() as session:
        try:
            return await setup.complete_setup(
                session, runtime, params, organization_id=org.id, **kw
            )
        except SetupFailed as failure:
            return failure


async def set_up(
    sim: Any,
    db: Any,
    runtime: Any,
    org: Any,
    *,
    username: str = ADMIN,
    consent: bool = True,
    features: list[str] | None = None,
    **kw: Any,
) -> Any:
    url = await begin(db, runtime, org, **({"features": features} if features else {}))
    params = await asyncio.to_thread(
        sign_in,
        url,
        username=username,
        password=PASSWORD,
        ca_bundle=str(sim.tls.ca_bundle),
        redirect_prefix=REDIRECT,
        consent=consent,
    )
    return await complete(db, runtime, org, params, **kw)


def actions(db: Any, org: Any) -> list[str]:
    """The audit log's entries about the tenant's apps and the service accounts, oldest first."""
    with db.session() as session:
        return [
            e.action
            for e in reversed(audit.list_events(session, org.id))
            if e.action.startswith(("entra.", "service_account."))
        ]


def accounts(db: Any, org: Any) -> list[ServiceAccount]:
    with db.session() as session:
        found = service_accounts.list_service_accounts(session, fresh(session, org))
        session.expunge_all()
        return found


class FakeTime:
    """``sleep`` and a monotonic ``clock`` for the replication wait, advancing m365sim's
    clock too when ``moves_sim`` (so Entra ID's replication really progresses)."""

    def __init__(self, control: SimControl, *, moves_sim: bool) -> None:
        self.control = control
        self.moves_sim = moves_sim
        self.now = 0.0

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        if self.moves_sim:
            await asyncio.to_thread(self.control.advance_clock, seconds)

    def clock(self) -> float:
        return self.now
