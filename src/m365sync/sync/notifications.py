"""Change notifications: keeping subscriptions alive, and turning notifications into work.

Delta stays the source of truth: a notification only says "sync this unit now". So a
notification is checked (its ``clientState`` must equal the subscription's secret, which is
stored sealed and opened only for the comparison), the unit is queued, and the webhook
answers 202 at once; nothing is fetched in the request.
Anyone can post to the webhook, so the work a POST causes is bounded: at most
``webhook_max_notifications`` items (more is ``TooManyNotifications``), one query for all
the subscriptions they name, each subscription's secret opened once, one update for all the
units to queue.
Lifecycle events: ``missed`` and ``subscriptionRemoved`` queue a delta pass now (and the
removed subscription is recreated at the next ``ensure_subscriptions``);
``reauthorizationRequired`` marks the subscription for reauthorization, done by the next
``ensure_subscriptions``. While every subscription of a unit is healthy, the scheduler
polls it ``sync_subscribed_poll_factor`` times less often.

What is watched, per unit: Email Sync, each synced mail folder; Calendar Sync, the events;
Task Sync, the To Do list it syncs (the default list; a delegated subscription, since To Do
subscriptions take no application permission, so only members whose own Office 365
connection grants Tasks.ReadWrite get one). Graph sends To Do only
``reauthorizationRequired`` lifecycle events; a lost To Do subscription is noticed when
renewing fails and is recreated then.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from m365sync.connections.errors import ConnectionsError
from m365sync.connections.models import Feature
from m365sync.connections.runtime import ConnectionRuntime, MailboxAccess
from m365sync.crypto import SecretBox, SecretKeyError, seal_context
from m365sync.db.base import new_id, utcnow
from m365sync.db.session import Database
from m365sync.errors import M365SyncError
from m365sync.microsoft import errors as ms
from m365sync.microsoft.subscriptions import (
    create_subscription,
    delete_subscription,
    reauthorize_subscription,
    renew_subscription,
)
from m365sync.microsoft.todo import default_list_id, list_id_from_link
from m365sync.sync.features import SyncFeature
from m365sync.sync.models import GraphSubscription
from m365sync.sync.repository import SyncRepository
from m365sync.sync.todo import CURSOR_KEY as TASKS_CURSOR_KEY

__all__ = [
    "RENEW_BEFORE",
    "NotificationOutcome",
    "TooManyNotifications",
    "ensure_subscriptions",
    "handle_notifications",
    "notification_items",
]

# Under every watched resource's maximum (Outlook 10,080 minutes, To Do 4,230 minutes).
LIFETIME = timedelta(days=2)
RENEW_BEFORE = timedelta(hours=12)
REAUTHORIZE = "reauthorize"


SUBSCRIPTION_ID_MAX = 100  # the column's width: a longer id can't be one of ours


class TooManyNotifications(M365SyncError):
    """413: more notifications in one POST than ``webhook_max_notifications``."""

    status = 413


@dataclass
class NotificationOutcome:
    queued: set[str] = field(default_factory=set)
    rejected: int = 0


def notification_items(payload: Any, max_items: int | None = None) -> list[Any]:
    """A notification POST's ``value`` items ([] when it has none); more than ``max_items``
    is ``TooManyNotifications``."""
    items = payload.get("value") if isinstance(payload, Mapping) else None
    if not isinstance(items, list):
        return []
    if max_items is not None and len(items) > max_items:
        raise TooManyNotifications(
            f"{len(items):,} notifications arrived in one request; at most {max_items:,} are "
            "accepted.",
            fix="Microsoft sends far fewer at a time: if these are yours, raise the server's "
            "limit of notifications per request; otherwise they were not sent by Microsoft.",
        )
    return items


def handle_notifications(
    database: Database,
    box: SecretBox,
    payload: Any,
    dispatch: Callable[[str], None],
    *,
    max_items: int | None = None,
) -> NotificationOutcome:
    """Check and queue a notification POST's ``value`` items (one small transaction).

    Every item is checked on its own (its ``clientState`` against its subscription's
    secret); a POST with more than ``max_items`` items is refused whole, before any work.
    """
    outcome = NotificationOutcome()
    items = notification_items(payload, max_items)
    named = {str(item.get("subscriptionId") or "") for item in items if isinstance(item, Mapping)}
    named = {i for i in named if i and len(i) <= SUBSCRIPTION_ID_MAX}
    with database.session() as session:
        repo = SyncRepository(session)
        subscriptions = repo.subscriptions_by_graph_ids(named)
        secrets_by_row: dict[str, str | None] = {}
        for item in items:
            subscription = (
                subscriptions.get(str(item.get("subscriptionId") or ""))
                if isinstance(item, Mapping)
                else None
            )
            if subscription is None:
                outcome.rejected += 1
                continue
            if subscription.id not in secrets_by_row:
                secrets_by_row[subscription.id] = _client_state(box, subscription)
            expected = secrets_by_row[subscription.id]
            given = str(item.get("clientState") or "")
            if expected is None or not hmac.compare_digest(given.encode(), expected.encode()):
                outcome.rejected += 1
                continue
            subscription.last_notification_at = utcnow()
            event = item.get("lifecycleEvent")
            if event == "reauthorizationRequired":
                subscription.last_error = REAUTHORIZE
                continue
            if event == "subscriptionRemoved":
                subscription.healthy = False
                subscription.subscription_id = None
            outcome.queued.add(subscription.unit_id)
        repo.schedule_units_now(outcome.queued)
    for unit_id in outcome.queued:
        dispatch(unit_id)
    return outcome


def _client_state(box: SecretBox, subscription: GraphSubscription) -> str | None:
    """The subscription's secret, or None when it has none we can open."""
    sealed = subscription.client_state_sealed
    if sealed is None:
        return None
    try:
        return box.open(sealed, _client_state_context(subscription))
    except SecretKeyError:
        return None


def _client_state_context(subscription: GraphSubscription) -> str:
    return seal_context(GraphSubscription.__tablename__, "client_state_sealed", subscription.id)


def _resources(feature: SyncFeature, folders: list[str], user_id: str) -> list[str]:
    if feature == SyncFeature.EMAIL:
        return [f"users/{user_id}/mailFolders('{folder}')/messages" for folder in folders]
    if feature == SyncFeature.CALENDAR:
        return [f"users/{user_id}/events"]
    return []


async def _todo_resources(access: MailboxAccess, task_link: str | None) -> list[str]:
    """The tasks of the list Task Sync pulls: the one in its delta cursor, else the default
    list (one request, until the first sync stored a cursor)."""
    list_id = list_id_from_link(task_link) if task_link else None
    if list_id is None:
        try:
            list_id = await default_list_id(access.graph, access.user_path)
        except LookupError:
            return []
    return [f"{access.user_path.strip('/')}/todo/lists/{list_id}/tasks"]


async def ensure_subscriptions(
    database: Database, runtime: ConnectionRuntime, unit_id: str, notification_url: str
) -> list[GraphSubscription]:
    """Create, renew, reauthorize or recreate the unit's subscriptions as needed."""

    def load() -> tuple[Any, list[str], str | None, list[GraphSubscription], Any]:
        with database.session() as session:
            repo = SyncRepository(session)
            unit = repo.unit(unit_id)
            if unit is None:
                return None, [], None, [], None
            member = repo.member(unit.member_id)
            try:
                access = runtime.graph_for_mailbox(session, member, Feature(unit.feature.value))  # type: ignore[arg-type]
            except (ms.MicrosoftError, ConnectionsError):
                access = None
            folders = list(repo.settings_for(unit.organization_id).mail_folders or [])
            task_link = next(
                (
                    c.next_link or c.delta_link
                    for c in repo.cursors(unit_id)
                    if c.key == TASKS_CURSOR_KEY
                ),
                None,
            )
            subs = repo.subscriptions(unit_id)
            for sub in subs:
                session.expunge(sub)
            session.expunge(unit)
            email = member.email if member else ""
            return (unit, email), folders, task_link, subs, access

    (unit_and_email, folders, task_link, existing, access) = await asyncio.to_thread(load)
    if unit_and_email is None or access is None:
        return []
    unit, email = unit_and_email
    if unit.feature == SyncFeature.TASKS:
        try:
            wanted = await _todo_resources(access, task_link)
        except ms.MicrosoftError:
            return []  # the unit's own run reports why To Do can't be reached
    else:
        wanted = _resources(unit.feature, folders, quote(email, safe="@"))
    by_resource = {s.resource: s for s in existing}
    now = utcnow()
    changed: list[GraphSubscription] = []
    for resource in wanted:
        sub = by_resource.get(resource) or GraphSubscription(
            id=new_id(), unit_id=unit_id, resource=resource
        )
        try:
            if sub.client_state_sealed is None:
                # No secret (a new row, or one migrated from plaintext): a subscription that
                # exists at Microsoft can't be verified, so it is replaced.
                if sub.subscription_id:
                    with contextlib.suppress(ms.MicrosoftError):
                        await delete_subscription(access.graph, sub.subscription_id)
                    sub.subscription_id = None
                sub.client_state_sealed = runtime.box.seal(
                    secrets.token_urlsafe(32), _client_state_context(sub)
                )
            if sub.subscription_id and sub.last_error == REAUTHORIZE:
                await reauthorize_subscription(access.graph, sub.subscription_id)
                sub.last_error = ""
            if sub.subscription_id and sub.expires_at and sub.expires_at - now > RENEW_BEFORE:
                sub.healthy = True
            elif sub.subscription_id:
                try:
                    answer = await renew_subscription(
                        access.graph, sub.subscription_id, now + LIFETIME
                    )
                    sub.expires_at = now + LIFETIME
                    sub.healthy = bool(answer) or True
                except ms.ItemNotFound:
                    sub.subscription_id = None
            if not sub.subscription_id:
                created = await create_subscription(
                    access.graph,
                    resource=resource,
                    notification_url=notification_url,
                    client_state=runtime.box.open(
                        sub.client_state_sealed, _client_state_context(sub)
                    ),
                    expires_at=now + LIFETIME,
                )
                sub.subscription_id = str(created["id"])
                sub.expires_at = now + LIFETIME
                sub.healthy = True
                sub.last_error = ""
        except ms.MicrosoftError as exc:
            sub.healthy = False
            sub.last_error = exc.message
        changed.append(sub)

    def save() -> None:
        with database.session() as session:
            SyncRepository(session).save_subscriptions(changed)

    await asyncio.to_thread(save)
    return changed
