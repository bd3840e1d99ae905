"""Outlook's throttling model: per app, per mailbox, a request budget and a concurrency cap.

Microsoft Graph documents two Outlook limits that are "evaluated for each app ID and
mailbox combination": 10,000 API requests in a 10 minute period and 4 concurrent
requests. Above either, Exchange answers 429 ``ApplicationThrottled`` with a
``Retry-After`` header. The numbers come from ``SimConfig`` (``requests_per_window``,
``window_seconds``, ``concurrent_requests``, ``throttling_enabled``), so tests shrink
them with ``PATCH /_sim/config``.

How counting works, and why it is split in two:

- ``admit`` is called by ``graph.auth.resolve_mailbox`` once the caller is known to be
  allowed into the mailbox (only then is the (app, mailbox) pair known). It checks the
  concurrency cap and the sliding request window, then holds one concurrency slot.
- ``ThrottlingMiddleware`` wraps every HTTP request and releases the slots that request
  took when its response has been sent completely (or failed). So a slow response (a
  delay injected by the fault injector, a large page) keeps its slot for as long as it
  really occupies the mailbox. ``$batch`` sub-requests dispatched through the ASGI app
  with their own scope are counted exactly like top-level requests.

Differences from Exchange Online (also in ``docs/m365sim/access-and-limits.md``):

- The window is a sliding window over admitted requests, timed on the simulator's
  clock; requests refused with 429 do not consume budget (Exchange's exact accounting
  is not documented).
- The rate-limit message text is ours; Microsoft documents only the MailboxConcurrency
  text.
- The 150 MB upload-per-5-minutes limit and the per-tenant Graph-wide limits are not
  modelled.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from starlette.types import ASGIApp, Receive, Scope, Send

from m365sim.graph.exceptions import ApplicationThrottled
from m365sim.state import SimState

__all__ = [
    "CONCURRENCY_MESSAGE",
    "RATE_MESSAGE",
    "ThrottleBudget",
    "ThrottlingMiddleware",
    "admit",
    "throttle_budgets",
]

CONCURRENCY_MESSAGE = "Application is over its MailboxConcurrency limit."
RATE_MESSAGE = "Application is over its MailboxRequests limit."
CONCURRENCY_RETRY_AFTER_SECONDS = 1
_SLOTS_KEY = "throttle_slots"


@dataclass
class ThrottleBudget:
    """What one app has used of one mailbox: requests in the window and requests in flight."""

    admitted_at: deque[datetime] = field(default_factory=deque)
    in_flight: int = 0

    def prune(self, now: datetime, window: timedelta) -> None:
        horizon = now - window
        while self.admitted_at and self.admitted_at[0] <= horizon:
            self.admitted_at.popleft()


def throttle_budgets(state: SimState) -> dict[tuple[str, str], ThrottleBudget]:
    """The state-wide budgets, keyed by ``(app_id, mailbox user id)``; emptied by reset."""
    return state.extension("throttling", dict)


def admit(state: SimState, scope: Scope, app_id: str, mailbox_id: str) -> None:
    """Let one request from ``app_id`` into ``mailbox_id``, or raise 429 ``ApplicationThrottled``.

    The concurrency slot taken here is released by ``ThrottlingMiddleware`` when the
    request's response is finished. Without the middleware around the request (a unit
    test calling a handler directly) only the request window is enforced, because
    nothing would give the slot back.
    """
    config = state.config
    if not config.throttling_enabled:
        return
    budgets = throttle_budgets(state)
    budget = budgets.setdefault((app_id, mailbox_id), ThrottleBudget())
    now = state.now()
    window = timedelta(seconds=config.window_seconds)
    budget.prune(now, window)
    slots: list[ThrottleBudget] | None = scope.get("state", {}).get(_SLOTS_KEY)
    if slots is not None and budget.in_flight >= config.concurrent_requests:
        raise ApplicationThrottled(
            CONCURRENCY_MESSAGE, headers={"Retry-After": str(CONCURRENCY_RETRY_AFTER_SECONDS)}
        )
    if len(budget.admitted_at) >= config.requests_per_window:
        reopens = budget.admitted_at[0] + window - now
        retry_after = max(1, math.ceil(reopens.total_seconds()))
        raise ApplicationThrottled(RATE_MESSAGE, headers={"Retry-After": str(retry_after)})
    budget.admitted_at.append(now)
    if slots is not None:
        budget.in_flight += 1
        slots.append(budget)


def _release(slots: list[ThrottleBudget]) -> None:
    for budget in slots:
        budget.in_flight = max(0, budget.in_flight - 1)
    slots.clear()


class ThrottlingMiddleware:
    """Gives each HTTP request a slot list and releases the slots once the response is done.

    A slot belongs to the budget object it was taken from, so a ``/_sim/reset`` during a
    request never decrements the fresh budgets that replaced it.
    """

    def __init__(self, app: ASGIApp, state: SimState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        slots: list[ThrottleBudget] = []
        scope.setdefault("state", {})[_SLOTS_KEY] = slots
        try:
            await self.app(scope, receive, send)
        finally:
            _release(slots)
