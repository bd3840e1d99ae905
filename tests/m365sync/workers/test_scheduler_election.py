"""One ``m365sync scheduler`` leads at a time, elected through the database; a standby
takes over when the leader's lease lapses or it steps down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import update

from m365sync.db import Database
from m365sync.db.base import utcnow
from m365sync.settings import Settings
from m365sync.sync.models import SchedulerLease
from m365sync.sync.repository import SyncRepository
from m365sync.workers.scheduler import ElectedScheduler, PeriodicJob


def take(db: Database, owner: str) -> bool:
    with db.session() as session:
        return SyncRepository(session).take_scheduler_lease("scheduler", owner, 30)


def test_one_candidate_leads_until_its_lease_lapses(db: Database) -> None:
    assert take(db, "a")
    assert not take(db, "b")
    assert take(db, "a")  # the leader renews
    assert not take(db, "b")

    with db.session() as session:  # the leader died: its lease runs out
        session.execute(update(SchedulerLease).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert take(db, "b")
    assert not take(db, "a")

    with db.session() as session:
        SyncRepository(session).release_scheduler_lease("scheduler", "b")
    assert take(db, "a")  # stepped down: taken over at once


async def until(what: str, condition: Callable[[], bool], within: float = 20) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_only_the_leader_runs_the_jobs_and_a_standby_takes_over(db: Database) -> None:
    settings = Settings(_env_file=None, scheduler_election_seconds=3)  # type: ignore[call-arg]
    runs = {"a": 0, "b": 0}

    def scheduler(name: str) -> ElectedScheduler:
        async def count() -> None:
            runs[name] += 1

        return ElectedScheduler(db, settings, [PeriodicJob("count", 0.05, count)], owner=name)

    first, second = scheduler("a"), scheduler("b")
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    leading = asyncio.create_task(first.run_forever(stop_first))
    await until("a leads", lambda: runs["a"] >= 3)
    standing_by = asyncio.create_task(second.run_forever(stop_second))
    await until("b has stood for election", lambda: runs["a"] >= 10)
    assert runs["b"] == 0 and not second.leading

    stop_first.set()
    await leading
    await until("b takes over", lambda: runs["b"] >= 3)
    assert second.leading and not first.leading
    stop_second.set()
    await standing_by
