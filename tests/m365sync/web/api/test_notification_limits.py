"""Anyone can post to the change-notification webhook, so what one POST can cost is bounded:
a huge body is refused (413) before it is read, with memory flat; too many notifications
in one POST are refused; and the notifications of one POST are checked together (one
lookup for all their subscriptions), each against its own subscription's secret."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from m365sync.connections.runtime import ConnectionRuntime
from m365sync.crypto import seal_context
from m365sync.db.session import Database
from m365sync.organizations.models import Member, Organization
from m365sync.sync.features import SyncFeature
from m365sync.sync.models import GraphSubscription
from m365sync.sync.repository import SyncRepository
from m365sync.web.api.notifications import WEBHOOK_PATH, webhook_router

MB = 1024 * 1024
CHUNK = b"x" * (64 * 1024)


class Receiver:
    def __init__(self, db: Database, runtime: ConnectionRuntime) -> None:
        self.dispatched: list[str] = []
        self.app = FastAPI()
        self.app.include_router(
            webhook_router(db, self.dispatched.append, box=runtime.box, settings=runtime.settings)
        )

    def post(self, **request: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://m365sync") as c:
                return await c.post(WEBHOOK_PATH, **request)

        return asyncio.run(send())


@pytest.fixture
def receiver(db: Database, runtime: ConnectionRuntime) -> Receiver:
    return Receiver(db, runtime)


@pytest.fixture
def subscribed_unit(
    db: Database,
    runtime: ConnectionRuntime,
    make_org: Callable[..., Organization],
    make_member: Callable[..., Member],
) -> str:
    """Adele's Email Sync unit with the subscription ``sub-1`` (client state ``s3cret``)."""
    member = make_member(make_org(), "adele@contoso.com")
    with db.session() as session:
        unit = SyncRepository(session).ensure_unit(member, SyncFeature.EMAIL)
        subscription = GraphSubscription(
            id="8b7f0c52-0000-4000-8000-000000000001",
            unit_id=unit.id,
            resource="users/adele@contoso.com/mailFolders('inbox')/messages",
            subscription_id="sub-1",
            healthy=True,
        )
        subscription.client_state_sealed = runtime.box.seal(
            "s3cret", seal_context("sync_subscriptions", "client_state_sealed", subscription.id)
        )
        session.add(subscription)
        return unit.id


async def fifty_megabytes() -> AsyncIterator[bytes]:
    for _ in range(50 * MB // len(CHUNK)):
        yield CHUNK


def peak_memory_of(action: Callable[[], httpx.Response]) -> tuple[httpx.Response, int]:
    tracemalloc.start()
    try:
        response = action()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return response, peak


def test_a_fifty_megabyte_body_is_refused_by_its_length_before_it_is_read(
    receiver: Receiver,
) -> None:
    response, peak = peak_memory_of(
        lambda: receiver.post(
            content=fifty_megabytes(),
            headers={"content-type": "application/json", "content-length": str(50 * MB)},
        )
    )
    assert response.status_code == 413
    error = response.json()["error"]
    assert "larger than 1,000,000 bytes" in error["message"]
    assert "M365SYNC_WEBHOOK_MAX_BODY_BYTES" in error["fix"]
    assert peak < 5 * MB, f"{peak / MB:.1f} MB held for a refused request"
    assert receiver.dispatched == []


def test_a_fifty_megabyte_body_without_a_length_is_refused_while_it_streams(
    receiver: Receiver,
) -> None:
    response, peak = peak_memory_of(
        lambda: receiver.post(
            content=fifty_megabytes(), headers={"content-type": "application/json"}
        )
    )
    assert response.status_code == 413
    assert "larger than 1,000,000 bytes" in response.json()["error"]["message"]
    assert peak < 5 * MB, f"{peak / MB:.1f} MB held for a refused request"


def test_too_many_notifications_in_one_post_are_refused(
    receiver: Receiver, subscribed_unit: str
) -> None:
    genuine = {"subscriptionId": "sub-1", "clientState": "s3cret", "changeType": "created"}
    response = receiver.post(json={"value": [genuine] * 1001})
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["message"].startswith("1,001 notifications arrived in one request")
    assert "M365SYNC_WEBHOOK_MAX_NOTIFICATIONS" in error["fix"]
    assert receiver.dispatched == []


def test_one_lookup_for_every_subscription_a_post_names_and_each_item_checked(
    db: Database, receiver: Receiver, subscribed_unit: str
) -> None:
    forged = [
        {"subscriptionId": f"made-up-{n}", "clientState": "guess", "changeType": "created"}
        for n in range(997)
    ]
    payload = {
        "value": [
            *forged,
            {"subscriptionId": "sub-1", "clientState": "guess", "changeType": "created"},
            {"subscriptionId": "sub-1", "clientState": "s3cret", "changeType": "created"},
            {"subscriptionId": "sub-1", "clientState": "s3cret", "changeType": "updated"},
        ]
    }
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "sync_subscriptions" in statement:
            statements.append(statement.split()[0].upper())

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        response = receiver.post(json=payload)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert response.status_code == 202
    assert receiver.dispatched == [subscribed_unit]  # queued once, for the genuine items only
    assert statements.count("SELECT") == 1, statements


def test_a_forged_notification_alone_queues_nothing(
    receiver: Receiver, subscribed_unit: str
) -> None:
    response = receiver.post(
        json={"value": [{"subscriptionId": "sub-1", "clientState": "s3cre", "changeType": "x"}]}
    )
    assert response.status_code == 202
    assert receiver.dispatched == []
