"""Salesforce's jobs run by themselves: after a Graph sync commits activities, the mirror
(first, right after connecting) and then the writer put them in sfsim, and a meeting a rep
makes in sfsim reaches Outlook — in-process as ``m365sync serve`` runs them, and on a real
Celery worker as the scaled-out scheduler queues them; never while the writer is paused."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from m365sync.connections.runtime import ConnectionRuntime
from m365sync.crm.models import SalesforceConnection
from m365sync.db.base import utcnow
from m365sync.workers.dispatch import InProcessSyncWorkers
from m365sync.workers.salesforce import SalesforceRunner, queue_salesforce_jobs
from support.polling import wait_for
from support.salesforce_target_world import ADELE, MEMBER_PASSWORD, PAT, SalesforceTarget
from support.services import redis_up
from support.sf_clients import user_client


def deliver(target: SalesforceTarget, subject: str) -> str:
    message_id = f"<{subject.lower().replace(' ', '-')}@fabrikam.example>"
    target.sync.deliver(
        ADELE, **{"from": PAT, "to": [ADELE], "subject": subject, "internetMessageId": message_id}
    )
    return message_id


def email_messages(target: SalesforceTarget, message_id: str) -> list[dict[str, object]]:
    return [r for r in target.records("EmailMessage") if r["MessageIdentifier"] == message_id]


def test_after_a_sync_the_writer_runs_by_itself_and_sfsim_holds_the_email_message(
    target: SalesforceTarget,
) -> None:
    """The whole in-process loop, as ``m365sync serve`` runs it: nobody calls the mirror,
    the sync or the writer; the mail ends up in Salesforce once, related to Pat."""
    assert target.connect().ok
    message_id = deliver(target, "Quote for 500 units")
    runtime = ConnectionRuntime.from_settings(target.settings, target.database)
    workers = InProcessSyncWorkers(target.database, runtime, tick_seconds=0.2)

    async def run() -> list[dict[str, object]]:
        await workers.start()
        try:
            return await asyncio.to_thread(
                wait_for,
                lambda: email_messages(target, message_id),
                120,
                interval=0.2,
                message="the email never reached Salesforce",
            )
        finally:
            await workers.stop()

    (email,) = asyncio.run(run())
    pat = target.record_id("Contact", Email=PAT)
    related = {
        r["RelationId"]
        for r in target.records("EmailMessageRelation")
        if r["EmailMessageId"] == email["Id"]
    }
    assert pat in related
    assert email["Subject"] == "Quote for 500 units"


def outlook_events(target: SalesforceTarget) -> list[dict[str, Any]]:
    return list(target.sync.control.get(f"/_sim/mailboxes/{ADELE}/events").json()["value"])


def test_serve_brings_a_meeting_made_in_salesforce_to_outlook_by_itself(
    target: SalesforceTarget,
) -> None:
    """Nobody calls the pull or Calendar Sync: the in-process workers read the change from
    sfsim and Adele's calendar in m365sim gets the meeting, without attendees."""
    assert target.connect().ok
    target.sync.configure(poll_interval_seconds=1)
    rep = user_client(target.sf, "adele@acme.example", MEMBER_PASSWORD)
    start = (datetime.now(UTC) + timedelta(days=2)).replace(hour=15, minute=0, second=0)
    rep.Event.create(
        {
            "Subject": "Pricing call with Pat",
            "StartDateTime": start.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "EndDateTime": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "WhoId": target.record_id("Contact", Email=PAT),
        }
    )
    # Salesforce's change polling covers whole minutes: from the next one, a poll sees it.
    time.sleep(61 - datetime.now(UTC).second)
    runtime = ConnectionRuntime.from_settings(target.settings, target.database)
    workers = InProcessSyncWorkers(target.database, runtime, tick_seconds=0.2)

    async def run() -> list[dict[str, Any]]:
        await workers.start()
        try:
            return await asyncio.to_thread(
                wait_for,
                lambda: [
                    e for e in outlook_events(target) if e["subject"] == "Pricing call with Pat"
                ],
                120,
                interval=0.5,
                message="the meeting made in Salesforce never reached Outlook",
            )
        finally:
            await workers.stop()

    (event,) = asyncio.run(run())
    assert event["attendees"] == []
    assert event["start"]["dateTime"].startswith(start.strftime("%Y-%m-%dT%H:%M:%S"))


def test_the_mirror_runs_first_and_the_writer_after_the_sync(target: SalesforceTarget) -> None:
    """Right after connecting only the mirror is due (so the sync knows Salesforce's people);
    once a sync has committed an email, the writer is, and a pass writes it."""
    assert target.connect().ok
    runner = SalesforceRunner(target.database, target.settings, target.box)

    asyncio.run(runner.tick())

    assert [name for name, _, _ in runner.results] == ["salesforce-mirror"]
    asyncio.run(runner.tick())  # the mirror has read the org: Salesforce's changes are due
    assert [name for name, _, _ in runner.results] == ["salesforce-mirror", "salesforce-changes"]
    assert asyncio.run(runner.tick()) == []  # nothing to write yet, the mirror is fresh

    message_id = deliver(target, "Delivery dates")
    sync = target.sync.sync(ADELE)
    assert sync.outcome == "ok", sync.error
    asyncio.run(runner.tick())

    assert [name for name, _, _ in runner.results][-1] == "salesforce-writer"
    assert len(email_messages(target, message_id)) == 1
    assert asyncio.run(runner.tick()) == []  # nothing due any more


def test_never_while_paused_and_right_when_the_pause_ends(target: SalesforceTarget) -> None:
    assert target.connect().ok
    target.mirror()
    message_id = deliver(target, "Paused proposal")
    assert target.sync.sync(ADELE).outcome == "ok"
    pause = utcnow() + timedelta(hours=1)
    with target.database.session() as session:
        session.execute(
            update(SalesforceConnection)
            .where(SalesforceConnection.organization_id == target.organization_id)
            .values(writer_paused_until=pause, writer_pause_reason="API share used.")
        )
    target.forget_requests()
    runner = SalesforceRunner(target.database, target.settings, target.box)

    asyncio.run(runner.tick())

    assert email_messages(target, message_id) == []
    assert target.api_requests() == []  # not even one call spent while paused

    with target.database.session() as session:
        session.execute(
            update(SalesforceConnection)
            .where(SalesforceConnection.organization_id == target.organization_id)
            .values(writer_paused_until=utcnow() - timedelta(seconds=1))
        )
    asyncio.run(runner.tick())

    assert len(email_messages(target, message_id)) == 1


def test_the_scheduler_queues_each_due_job_once_within_its_gap(target: SalesforceTarget) -> None:
    assert target.connect().ok
    sent: list[tuple[str, str]] = []
    queued_at: dict[tuple[str, str], float] = {}

    def queue(name: str, organization_id: str) -> None:
        sent.append((name, organization_id))

    queue_salesforce_jobs(target.database, queue, queued_at)
    queue_salesforce_jobs(target.database, queue, queued_at)  # the next pass, seconds later

    assert sent == [("salesforce-mirror", target.organization_id)]


@pytest.mark.skipif(
    not redis_up() and not os.environ.get("M365SYNC_TEST_REQUIRE_SERVICES"), reason="no Redis"
)
def test_a_celery_worker_runs_the_mirror_and_the_writer(target: SalesforceTarget) -> None:
    """What ``m365sync scheduler`` queues, a real ``m365sync worker`` process runs."""
    assert target.connect().ok
    settings = target.settings
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "M365SYNC_DATABASE_URL": settings.resolved_database_url,
        "M365SYNC_DATA_DIR": str(settings.data_dir),
        "M365SYNC_SECRET_KEY": str(settings.secret_key),
        "M365SYNC_AUTHORITY_HOST": settings.authority_host,
        "M365SYNC_GRAPH_URL": settings.graph_url,
        "M365SYNC_CA_BUNDLE": str(settings.ca_bundle),
        "M365SYNC_SALESFORCE_LOGIN_URL": settings.salesforce_login_url,
        "M365SYNC_CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "m365sync.workers.celery_app",
            "worker",
            "-Q",
            queue,
            "--pool",
            "solo",
            "--concurrency",
            "1",
            "--loglevel",
            "WARNING",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        os.environ["M365SYNC_CELERY_BROKER_URL"] = "redis://127.0.0.1:6379/0"
        from m365sync.workers.celery_app import salesforce_job

        def run(name: str) -> dict[str, object]:
            pending = salesforce_job.apply_async(args=[name, target.organization_id], queue=queue)
            answer: dict[str, object] = pending.get(timeout=90)
            return answer

        mirrored = run("salesforce-mirror")
        message_id = deliver(target, "Via Celery to Salesforce")
        assert target.sync.sync(ADELE).outcome == "ok"
        drained = run("salesforce-writer")
    finally:
        worker.terminate()
        worker.wait(10)
    assert mirrored["loaded"], mirrored
    assert drained["status"] == "drained", drained
    assert len(email_messages(target, message_id)) == 1
