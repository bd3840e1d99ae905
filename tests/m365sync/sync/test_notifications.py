"""Change notifications end to end: m365sim validates our webhook, notifies it, and the
notified unit syncs at once (polling alone would wait minutes)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from harness import SyncWorld, wait_for

from m365sync.connections.models import ConnectionKind, ConnectionStatus, UserConnection
from m365sync.crm.models import ActivityKind
from m365sync.crypto import seal_context
from m365sync.db.base import utcnow
from m365sync.sync.features import SyncFeature
from m365sync.sync.models import GraphSubscription, SyncUnit
from m365sync.sync.repository import SyncRepository
from m365sync.sync.scheduler import Scheduler
from m365sync.web.api.notifications import WEBHOOK_PATH, webhook_router

ADELE = "adele@contoso.com"


class Receiver:
    def __init__(self, world: SyncWorld) -> None:
        self.world = world
        self.dispatched: list[str] = []
        self.scheduler = Scheduler(world.database, world.runtime, world.engine, tick_seconds=60)
        app = FastAPI()
        app.include_router(webhook_router(world.database, self.dispatch, box=world.runtime.box))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        # Graph only notifies https URLs: the webhook is served with the certificate m365sim
        # uses itself (its CA, which m365sim's notification sender trusts, issued it).
        self.url = f"https://127.0.0.1:{sock.getsockname()[1]}{WEBHOOK_PATH}"
        tls = world.sim.tls
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                log_level="warning",
                lifespan="off",
                ssl_certfile=str(tls.cert_chain),
                ssl_keyfile=str(tls.private_key),
            )
        )
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)

    def dispatch(self, unit_id: str) -> None:
        self.dispatched.append(unit_id)
        self.scheduler.dispatch(unit_id)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)


@pytest.fixture
def receiver(world: SyncWorld) -> Iterator[Receiver]:
    r = Receiver(world)
    world.engine.webhook_url = r.url
    yield r
    r.stop()


def test_notification_triggers_an_immediate_sync_and_polling_slows(
    world: SyncWorld, receiver: Receiver
) -> None:
    world.add_contact("kim@fabrikam.com")
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    runner = threading.Thread(
        target=lambda: loop.run_until_complete(receiver.scheduler.run_forever(stop)), daemon=True
    )
    runner.start()
    try:

        def subscribed() -> bool:
            with world.database.session() as s:
                return (
                    len([x for x in s.query(GraphSubscription).all() if x.healthy]) == 9
                )  # 3 members: Inbox, Sent Items, calendar

        wait_for(subscribed, 15)

        def all_synced() -> bool:
            with world.database.session() as s:
                units = SyncRepository(s).units(world.organization_id)
                return len(units) == 6 and all(u.last_success_at is not None for u in units)

        wait_for(all_synced, 15)
        with world.database.session() as s:
            repo = SyncRepository(s)
            email = next(
                u
                for u in repo.units(world.organization_id)
                if u.feature == SyncFeature.EMAIL and u.member_id == world.members[ADELE]
            )
            assert (
                email.next_run_at.timestamp() - time.time()
                > world.engine.sync_subscribed_poll_factor * 250
            )

        world.deliver(ADELE, **{"from": "kim@fabrikam.com", "subject": "Notified"})

        def logged() -> bool:
            with world.crm() as crm:
                return crm.count_activities(ActivityKind.EMAIL) == 1

        wait_for(logged, 10)
        assert email.id in receiver.dispatched

        # The per-subscription secrets are stored sealed: not one is in the database as text.
        sim_subscriptions = world.control.get("/_sim/subscriptions").json()["value"]
        secrets = {sub["clientState"] for sub in sim_subscriptions}
        assert len(secrets) == 9
        with world.database.engine.connect() as connection:
            stored = [
                bytes(row[0])
                for row in connection.exec_driver_sql(
                    "SELECT client_state_sealed FROM sync_subscriptions"
                )
            ]
        assert len(stored) == 9
        assert not any(secret.encode() in value for secret in secrets for value in stored)
    finally:
        loop.call_soon_threadsafe(stop.set)
        runner.join(10)


def connect_office365(world: SyncWorld, mailbox: str, scopes: list[str]) -> None:
    """The member's own "Connect your Office 365" (the harness's runtime serves its tokens)."""
    with world.database.session() as s:
        s.add(
            UserConnection(
                organization_id=world.organization_id,
                member_id=world.members[mailbox],
                kind=ConnectionKind.OFFICE365,
                status=ConnectionStatus.ACTIVE,
                account_username=mailbox,
                granted_scopes=scopes,
            )
        )


def test_a_to_do_task_reaches_the_crm_through_its_notification(
    world: SyncWorld, receiver: Receiver
) -> None:
    connect_office365(world, ADELE, ["Tasks.ReadWrite", "User.Read", "offline_access"])
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    runner = threading.Thread(
        target=lambda: loop.run_until_complete(receiver.scheduler.run_forever(stop)), daemon=True
    )
    runner.start()
    try:

        def tasks_unit() -> SyncUnit | None:
            with world.database.session() as s:
                repo = SyncRepository(s)
                unit = next(
                    (
                        u
                        for u in repo.units(world.organization_id)
                        if u.feature == SyncFeature.TASKS
                    ),
                    None,
                )
                if unit is None or unit.last_success_at is None:
                    return None
                if not repo.has_healthy_subscriptions(unit.id, utcnow()):
                    return None
                s.expunge(unit)
                return unit

        wait_for(lambda: tasks_unit() is not None, 15)
        unit = tasks_unit()
        assert unit is not None and unit.member_id == world.members[ADELE]
        # Only the member with Task Sync has a To Do unit, and its polling slowed down.
        with world.database.session() as s:
            units = SyncRepository(s).units(world.organization_id)
            assert [u.member_id for u in units if u.feature == SyncFeature.TASKS] == [
                world.members[ADELE]
            ]
        assert (
            unit.next_run_at.timestamp() - time.time()
            > world.engine.sync_subscribed_poll_factor * 250
        )
        lists = world.control.get(f"/_sim/mailboxes/{ADELE}/todo/lists").json()["value"]
        default = next(i["id"] for i in lists if i["wellknownListName"] == "defaultList")
        [todo_subscription] = [
            sub
            for sub in world.control.get("/_sim/subscriptions").json()["value"]
            if "/todo/" in sub["resource"]
        ]
        assert todo_subscription["resource"] == f"me/todo/lists/{default}/tasks"
        assert todo_subscription["changeType"] == "created,updated,deleted"

        made = world.control.post(
            f"/_sim/mailboxes/{ADELE}/todo/lists/default/tasks",
            json={"title": "Call Kim about the renewal", "importance": "high"},
        )
        made.raise_for_status()

        def in_crm() -> bool:
            with world.crm() as crm:
                return any(
                    t.subject == "Call Kim about the renewal"
                    for t in crm.activities(ActivityKind.TASK)
                )

        wait_for(in_crm, 10)
        assert unit.id in receiver.dispatched
        delivered = world.control.get(
            "/_sim/notifications",
            params={"subscriptionId": todo_subscription["id"], "kind": "notification"},
        ).json()["value"]
        assert [(n["event"], n["status"]) for n in delivered] == [("created", 202)]
        assert delivered[0]["payload"]["value"][0]["resourceData"]["id"] == made.json()["id"]
    finally:
        loop.call_soon_threadsafe(stop.set)
        runner.join(10)


def test_webhook_handshake_forged_client_state_and_lifecycle_events(
    world: SyncWorld, receiver: Receiver
) -> None:
    response = httpx.post(
        receiver.url,
        params={"validationToken": "Validation: Testing client application reachability"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "Validation: Testing client application reachability"

    with world.database.session() as s:
        repo = SyncRepository(s)
        member = repo.member(world.members[ADELE])
        unit = repo.ensure_unit(member, SyncFeature.EMAIL)  # type: ignore[arg-type]
        subscription = GraphSubscription(
            id="8b7f0c52-0000-4000-8000-000000000001",
            unit_id=unit.id,
            resource="users/x/messages",
            subscription_id="sub-1",
            healthy=True,
        )
        subscription.client_state_sealed = world.runtime.box.seal(
            "s3cret", seal_context("sync_subscriptions", "client_state_sealed", subscription.id)
        )
        s.add(subscription)
        unit_id = unit.id

    forged = httpx.post(
        receiver.url,
        json={
            "value": [{"subscriptionId": "sub-1", "clientState": "guess", "changeType": "created"}]
        },
    )
    assert forged.status_code == 202 and receiver.dispatched == []

    missed = httpx.post(
        receiver.url,
        json={
            "value": [
                {"subscriptionId": "sub-1", "clientState": "s3cret", "lifecycleEvent": "missed"}
            ]
        },
    )
    assert missed.status_code == 202 and receiver.dispatched == [unit_id]

    removed = httpx.post(
        receiver.url,
        json={
            "value": [
                {
                    "subscriptionId": "sub-1",
                    "clientState": "s3cret",
                    "lifecycleEvent": "subscriptionRemoved",
                }
            ]
        },
    )
    assert removed.status_code == 202 and receiver.dispatched == [unit_id, unit_id]
    with world.database.session() as s:
        (sub,) = SyncRepository(s).subscriptions(unit_id)
        assert not sub.healthy and sub.subscription_id is None  # recreated by the next ensure
