"""Change-notification subscriptions for Outlook messages and events, and To Do tasks.

A ``Subscription`` watches one mailbox resource: all messages
(``users/{id}/messages``), the messages of one folder
(``users/{id}/mailFolders('inbox')/messages`` or ``mailFolders/{id}/messages``), events
(``users/{id}/events``), or the tasks of one To Do list
(``users/{id}/todo/lists/{listId}/tasks``); ``me/...`` forms are stored with the signed-in
user's id.
``SubscriptionBook`` (``state.extension("subscriptions", ...)``) holds them; its lock
is shared with the delivery thread, which reads subscriptions while requests change them.

Rules kept from Microsoft Graph: ``changeType`` is a comma-separated subset of
``created,updated,deleted``; ``clientState`` is at most 128 characters; Outlook
resources expire at most 10,080 minutes after now, To Do tasks at most 4,230 minutes; an
expired subscription delivers nothing and is removed; creating, renewing and
reauthorizing need read permission on the mailbox, including Application Access Policies
and RBAC for Applications (To Do: delegated ``Tasks.ReadWrite`` only, app-only callers
are refused); delegated callers can subscribe only to their own mailbox. Graph sends only
``reauthorizationRequired`` lifecycle events for To Do (``missed`` and
``subscriptionRemoved`` are Outlook's).

Differences: ``notificationUrl`` may be plain ``http`` only when
``SimConfig.allow_http_notification_urls`` is set (Microsoft always requires ``https``);
``includeResourceData`` (encrypted rich notifications) and ``$filter`` in ``resource``
are refused; the 1,000-subscriptions-per-mailbox limit is not enforced. A mail folder
named by well-known name or id is resolved to its folder id when the subscription is
created; a calendar named in an events resource is not (all events of the mailbox match).
A To Do list must exist when the subscription is created, and is stored by its id.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from m365sim.dates import graph_timestamp
from m365sim.directory.models import new_id
from m365sim.state import Change, SimState

__all__ = [
    "CHANGE_TYPES",
    "MAX_EXPIRATION_MINUTES",
    "TODO_LIFECYCLE_EVENTS",
    "DeliverySettings",
    "ParsedResource",
    "Subscription",
    "SubscriptionBook",
    "max_expiration",
    "max_expiration_minutes",
    "parse_resource",
    "subscription_book",
]

CHANGE_TYPES = ("created", "updated", "deleted")
MAX_EXPIRATION_MINUTES = 10080  # Outlook message and event
_MAX_EXPIRATION_BY_KIND = {"message": 10080, "event": 10080, "todoTask": 4230}
MAX_CLIENT_STATE = 128
TODO_LIFECYCLE_EVENTS = ("reauthorizationRequired",)

_TODO_RESOURCE = re.compile(
    r"""^/?(?:(?P<me>me)|users/(?P<user>[^/(]+)|users\('(?P<quoted>[^']+)'\))
        /todo/lists(?:\('(?P<listq>[^']+)'\)|/(?P<list>[^/(]+))/tasks/?$""",
    re.VERBOSE | re.IGNORECASE,
)

_RESOURCE = re.compile(
    r"""^/?(?:(?P<me>me)|users/(?P<user>[^/(]+)|users\('(?P<quoted>[^']+)'\))
        (?:/mailFolders(?:\('(?P<folderq>[^']+)'\)|/(?P<folder>[^/]+)))?
        (?:/calendars?(?:\('(?P<calq>[^']+)'\)|/(?P<cal>[^/]+))?)?
        /(?P<kind>messages|events)/?$""",
    re.VERBOSE | re.IGNORECASE,
)


@dataclass(frozen=True)
class ParsedResource:
    user_key: str | None  # None for "me"
    kind: str  # "message" | "event" | "todoTask"
    folder: str | None  # mail folder, calendar or To Do list


def parse_resource(resource: str) -> ParsedResource | None:
    todo = _TODO_RESOURCE.match(resource.strip())
    if todo is not None:
        return ParsedResource(
            user_key=None if todo.group("me") else (todo.group("user") or todo.group("quoted")),
            kind="todoTask",
            folder=todo.group("listq") or todo.group("list"),
        )
    match = _RESOURCE.match(resource.strip())
    if match is None:
        return None
    kind = match.group("kind").lower()
    folder = (
        match.group("folderq") or match.group("folder") or match.group("calq") or match.group("cal")
    )
    if kind == "messages" and (match.group("calq") or match.group("cal")):
        return None
    if kind == "events" and (match.group("folderq") or match.group("folder")):
        return None
    return ParsedResource(
        user_key=None if match.group("me") else (match.group("user") or match.group("quoted")),
        kind="message" if kind == "messages" else "event",
        folder=folder,
    )


@dataclass
class DeliverySettings:
    """Timing knobs for validation and delivery; ``PATCH /_sim/notifications/settings``."""

    validation_timeout_seconds: float = 10.0  # Graph: answer the handshake within 10 s
    delivery_timeout_seconds: float = 3.0  # Graph: answer a notification within 3 s
    retry_base_seconds: float = 1.0  # first retry after this, doubling each time
    retry_max_delay_seconds: float = 60.0
    retry_window_seconds: float = 4 * 3600.0  # Graph retries for up to 4 hours
    reauthorization_lead_seconds: float = 600.0  # reauthorizationRequired this long before expiry

    def as_json(self) -> dict[str, float]:
        return {
            "validationTimeoutSeconds": self.validation_timeout_seconds,
            "deliveryTimeoutSeconds": self.delivery_timeout_seconds,
            "retryBaseSeconds": self.retry_base_seconds,
            "retryMaxDelaySeconds": self.retry_max_delay_seconds,
            "retryWindowSeconds": self.retry_window_seconds,
            "reauthorizationLeadSeconds": self.reauthorization_lead_seconds,
        }

    FIELDS = {
        "validationTimeoutSeconds": "validation_timeout_seconds",
        "deliveryTimeoutSeconds": "delivery_timeout_seconds",
        "retryBaseSeconds": "retry_base_seconds",
        "retryMaxDelaySeconds": "retry_max_delay_seconds",
        "retryWindowSeconds": "retry_window_seconds",
        "reauthorizationLeadSeconds": "reauthorization_lead_seconds",
    }


@dataclass
class Subscription:
    tenant_id: str
    app_id: str
    creator_id: str  # service principal id (app-only) or user id (delegated)
    user_id: str  # whose mailbox
    resource: str  # as the client wrote it
    kind: str
    folder_id: str | None
    change_types: tuple[str, ...]
    notification_url: str
    expiration: datetime
    client_state: str | None = None
    lifecycle_notification_url: str | None = None
    latest_supported_tls_version: str = "v1_2"
    id: str = field(default_factory=new_id)
    reauthorization_requested: bool = False

    def as_json(self, base_url: str) -> dict[str, Any]:
        return {
            "@odata.context": f"{base_url}/v1.0/$metadata#subscriptions/$entity",
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.app_id,
            "changeType": ",".join(self.change_types),
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": self.lifecycle_notification_url,
            "expirationDateTime": graph_timestamp(self.expiration),
            "creatorId": self.creator_id,
            "includeResourceData": False,
            "latestSupportedTlsVersion": self.latest_supported_tls_version,
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
        }

    def wants(self, change: Change) -> bool:
        if change.tenant_id != self.tenant_id or change.user_id != self.user_id:
            return False
        if change.resource != self.kind or change.change_type not in self.change_types:
            return False
        return self.folder_id is None or (change.folder_id or "").lower() == self.folder_id.lower()

    def notification(self, change: Change, etag: str) -> dict[str, Any]:
        """One entry of the ``value`` array Graph posts (a notification without resource data)."""
        if self.kind == "todoTask":
            path = f"Users/{self.user_id}/todo/lists/{change.folder_id}/tasks/{change.item_id}"
            odata_type = "#microsoft.graph.todoTask"
        else:
            segment, odata_type = (
                ("Messages", "#Microsoft.Graph.Message")
                if self.kind == "message"
                else ("Events", "#Microsoft.Graph.Event")
            )
            path = f"Users/{self.user_id}/{segment}/{change.item_id}"
        return {
            "subscriptionId": self.id,
            "subscriptionExpirationDateTime": graph_timestamp(self.expiration),
            "changeType": change.change_type,
            "resource": path,
            "resourceData": {
                "@odata.type": odata_type,
                "@odata.id": path,
                "@odata.etag": etag,
                "id": change.item_id,
            },
            "clientState": self.client_state,
            "tenantId": self.tenant_id,
        }

    def lifecycle(self, event: str) -> dict[str, Any]:
        return {
            "subscriptionId": self.id,
            "subscriptionExpirationDateTime": graph_timestamp(self.expiration),
            "tenantId": self.tenant_id,
            "clientState": self.client_state,
            "lifecycleEvent": event,
        }


@dataclass
class SubscriptionBook:
    """Every subscription of one simulator, plus delivery settings and the delivery log."""

    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    settings: DeliverySettings = field(default_factory=DeliverySettings)
    log: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    MAX_LOG = 20_000

    def add(self, subscription: Subscription) -> None:
        with self.lock:
            self.subscriptions[subscription.id] = subscription

    def get(self, subscription_id: str) -> Subscription | None:
        with self.lock:
            return self.subscriptions.get(subscription_id)

    def remove(self, subscription_id: str) -> Subscription | None:
        with self.lock:
            return self.subscriptions.pop(subscription_id, None)

    def all(self) -> list[Subscription]:
        with self.lock:
            return list(self.subscriptions.values())

    def matching(self, change: Change, now: datetime) -> list[Subscription]:
        return [s for s in self.all() if s.expiration > now and s.wants(change)]

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            if len(self.log) < self.MAX_LOG:
                self.log.append(entry)


def subscription_book(state: SimState) -> SubscriptionBook:
    return state.extension("subscriptions", SubscriptionBook)


def max_expiration_minutes(kind: str) -> int:
    """Graph's longest subscription lifetime for a resource kind."""
    return _MAX_EXPIRATION_BY_KIND.get(kind, MAX_EXPIRATION_MINUTES)


def max_expiration(now: datetime, kind: str = "message") -> datetime:
    return now + timedelta(minutes=max_expiration_minutes(kind))
