"""Posting to subscribers: the validation handshake, change and lifecycle notifications.

Change notifications are never sent from inside the request that made the change: the
``Change`` listener only picks the matching subscriptions and hands the payloads to a
``NotificationDispatcher``, which owns a daemon thread with its own event loop and
delivers from there (so a slow or failing subscriber never slows the Graph request, and
changes published outside any event loop are delivered too).

Delivery: one POST per notification (``{"value": [notification]}``), answered within
``deliveryTimeoutSeconds`` with any 2xx. A 5xx, a 429, a timeout or a refused
connection is retried after ``retryBaseSeconds``, doubling up to
``retryMaxDelaySeconds``, for at most ``retryWindowSeconds`` (Graph: 4 hours); other
4xx answers are not retried. A notification whose subscription was deleted or has
expired is dropped. Every attempt is recorded in the delivery log
(``GET /_sim/notifications``). Retry timing is wall-clock time; expiry is judged on the
simulator's clock.

A sweeper on the same thread removes expired subscriptions and sends
``reauthorizationRequired`` once, ``reauthorizationLeadSeconds`` before expiry, to
subscriptions that have a ``lifecycleNotificationUrl``.

Differences from Microsoft Graph: notifications are not batched; ``@odata.etag`` is an
opaque value, not the item's changeKey; subscribers on ``http://`` are allowed only with
``SimConfig.allow_http_notification_urls``; slow
endpoints are not put in Graph's "slow" or "drop" buckets.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from m365sim.dates import graph_timestamp
from m365sim.graph.subscriptions.exceptions import VALIDATION_FAILED, VALIDATION_MISMATCH
from m365sim.graph.subscriptions.models import Subscription, subscription_book
from m365sim.state import Change, SimState

__all__ = ["NotificationDispatcher", "dispatcher_for", "install", "validate_endpoint"]

_SWEEP_SECONDS = 0.2
_DISPATCHERS: weakref.WeakKeyDictionary[SimState, NotificationDispatcher] = (
    weakref.WeakKeyDictionary()
)


def _verify() -> ssl.SSLContext | bool:
    cafile = os.environ.get("SSL_CERT_FILE")
    return ssl.create_default_context(cafile=cafile) if cafile and os.path.exists(cafile) else True


def _client(timeout: float) -> httpx.AsyncClient:
    # trust_env=False: subscribers are local; an HTTP(S)_PROXY in the environment must not apply.
    return httpx.AsyncClient(
        timeout=timeout, trust_env=False, verify=_verify(), follow_redirects=False
    )


async def validate_endpoint(state: SimState, url: str, subscription_id: str | None) -> str | None:
    """Graph's handshake: POST ``url?validationToken=...``; None if answered correctly, else
    the error message Graph gives."""
    book = subscription_book(state)
    token = (
        "Validation: Testing client application reachability for subscription "
        f"Request-Id: {uuid.uuid4()}"
    )
    entry: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "kind": "validation",
        "subscriptionId": subscription_id,
        "url": url,
        "attempt": 1,
        "at": graph_timestamp(state.now()),
    }
    try:
        async with _client(book.settings.validation_timeout_seconds) as client:
            response = await client.post(
                url,
                params={"validationToken": token},
                headers={"Content-Type": "text/plain; charset=utf-8"},
            )
    except httpx.HTTPError as exc:
        book.record({**entry, "status": None, "error": type(exc).__name__, "delivered": False})
        return VALIDATION_FAILED
    book.record(
        {
            **entry,
            "status": response.status_code,
            "error": None,
            "delivered": response.status_code == 200,
        }
    )
    if response.status_code != 200:
        return VALIDATION_FAILED
    content_type = response.headers.get("content-type", "")
    if response.text != token or not content_type.lower().startswith("text/plain"):
        return VALIDATION_MISMATCH
    return None


@dataclass
class _Job:
    generation: int
    subscription_id: str
    url: str
    payload: dict[str, Any]
    kind: str  # "notification" | "lifecycle"
    event: str  # the changeType or lifecycleEvent
    needs_live_subscription: bool


class NotificationDispatcher:
    """Delivers notifications of one ``SimState`` from a background thread."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self._generation = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._count_lock = threading.Lock()
        self._sweeper: asyncio.Task[None] | None = None
        self.in_flight = 0

    # -- listeners -----------------------------------------------------------------------
    def on_change(self, change: Change) -> None:
        book = subscription_book(self.state)
        for subscription in book.matching(change, self.state.now()):
            etag = 'W/"' + base64.b64encode(uuid.uuid4().bytes).decode() + '"'
            self.submit(
                subscription,
                {"value": [subscription.notification(change, etag)]},
                kind="notification",
                event=change.change_type,
            )

    def on_reset(self) -> None:
        self._generation += 1

    # -- API -------------------------------------------------------------------------------
    def submit(
        self, subscription: Subscription, payload: dict[str, Any], *, kind: str, event: str
    ) -> None:
        url = (
            subscription.notification_url
            if kind == "notification"
            else subscription.lifecycle_notification_url
        )
        if not url:
            return
        job = _Job(
            generation=self._generation,
            subscription_id=subscription.id,
            url=url,
            payload=payload,
            kind=kind,
            event=event,
            needs_live_subscription=kind == "notification",
        )
        loop = self.ensure_started()
        with self._count_lock:
            self.in_flight += 1
        loop.call_soon_threadsafe(self._spawn, job)

    def ensure_started(self) -> asyncio.AbstractEventLoop:
        with self._started:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    self._sweeper = loop.create_task(self._sweep_forever())
                    loop.run_forever()

                threading.Thread(target=run, name="m365sim-notifications", daemon=True).start()
                ready.wait(5)
                self._loop = loop
            return self._loop

    # -- delivery thread -----------------------------------------------------------------
    def _spawn(self, job: _Job) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, job: _Job) -> None:
        try:
            await self._attempts(job)
        finally:
            with self._count_lock:
                self.in_flight -= 1

    async def _attempts(self, job: _Job) -> None:
        started = time.monotonic()
        attempt = 0
        body = orjson.dumps(job.payload)
        while True:
            if job.generation != self._generation:
                return
            book = subscription_book(self.state)
            settings = book.settings
            if job.needs_live_subscription:
                live = book.get(job.subscription_id)
                if live is None or live.expiration <= self.state.now():
                    return
            attempt += 1
            entry: dict[str, Any] = {
                "id": str(uuid.uuid4()),
                "kind": job.kind,
                "subscriptionId": job.subscription_id,
                "event": job.event,
                "url": job.url,
                "attempt": attempt,
                "at": graph_timestamp(self.state.now()),
                "payload": job.payload,
            }
            retry = False
            try:
                async with _client(settings.delivery_timeout_seconds) as client:
                    response = await client.post(
                        job.url,
                        content=body,
                        headers={"Content-Type": "application/json; charset=utf-8"},
                    )
            except httpx.HTTPError as exc:
                book.record(
                    {**entry, "status": None, "error": type(exc).__name__, "delivered": False}
                )
                retry = True
            else:
                delivered = 200 <= response.status_code < 300
                book.record(
                    {**entry, "status": response.status_code, "error": None, "delivered": delivered}
                )
                if delivered:
                    return
                retry = response.status_code >= 500 or response.status_code == 429
            if not retry:
                return
            delay = min(
                settings.retry_base_seconds * 2 ** (attempt - 1), settings.retry_max_delay_seconds
            )
            if time.monotonic() + delay - started > settings.retry_window_seconds:
                return
            await asyncio.sleep(delay)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(_SWEEP_SECONDS)
            try:
                self._sweep()
            except Exception:  # noqa: S112 - a bad sweep must not stop delivery
                continue

    def _sweep(self) -> None:
        book = subscription_book(self.state)
        now = self.state.now()
        lead = book.settings.reauthorization_lead_seconds
        for subscription in book.all():
            if subscription.expiration <= now:
                book.remove(subscription.id)
            elif (
                subscription.lifecycle_notification_url
                and not subscription.reauthorization_requested
                and (subscription.expiration - now).total_seconds() <= lead
            ):
                subscription.reauthorization_requested = True
                self.submit(
                    subscription,
                    {"value": [subscription.lifecycle("reauthorizationRequired")]},
                    kind="lifecycle",
                    event="reauthorizationRequired",
                )


def dispatcher_for(state: SimState) -> NotificationDispatcher:
    """The state's dispatcher, installing it on first use."""
    dispatcher = _DISPATCHERS.get(state)
    if dispatcher is None:
        dispatcher = install(state)
    return dispatcher


def install(state: SimState) -> NotificationDispatcher:
    """Listen to ``state``'s change feed (idempotent); called by ``build_app``."""
    existing = _DISPATCHERS.get(state)
    if existing is not None:
        return existing
    dispatcher = NotificationDispatcher(state)
    state.change_listeners.append(dispatcher.on_change)
    state.reset_listeners.append(dispatcher.on_reset)
    _DISPATCHERS[state] = dispatcher
    return dispatcher
