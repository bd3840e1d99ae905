"""What each m365sync process counts for Prometheus (``prometheus-client``).

These are the process's own counters: the Graph requests it sent, the 429s Microsoft
answered (by the limit named), the Salesforce API calls it made (by operation and
outcome), the unit runs and items it logged, the lag from a mail's arrival to its
activity. Every process counts its own; the web app serves its own at
``/metrics`` together with gauges read from the database at scrape time (units by status
and stage, the backlog, bookings by outcome, the broker queue; ``m365sync.operations``),
and ``m365sync scheduler`` and ``m365sync worker`` serve theirs on a port of their own. A
Celery worker's pool processes write to files in ``PROMETHEUS_MULTIPROC_DIR`` (set by
``m365sync worker`` before anything imports this module), which its main process adds up.
See docs/deploy.md for what each metric means and how to scrape them.

Nothing here ever carries a mailbox address, an organization or a secret as a label.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from prometheus_client import Counter, Histogram

__all__ = [
    "GRAPH_REQUESTS",
    "GRAPH_THROTTLED",
    "ITEMS_LOGGED",
    "MAIL_LAG",
    "SALESFORCE_CALLS",
    "UNITS_QUEUED",
    "UNIT_RUNS",
    "record_graph_response",
    "record_mail_lag",
    "record_salesforce_call",
]

GRAPH_REQUESTS = Counter(
    "m365sync_graph_requests",
    "Microsoft Graph requests sent, by HTTP status class (2xx, 3xx, 4xx, 5xx, network).",
    ["status"],
)
GRAPH_THROTTLED = Counter(
    "m365sync_graph_throttled",
    "Graph answers 429 (or a throttling 503), by the limit Microsoft named "
    "(MailboxConcurrency, MailboxRequests, ...).",
    ["reason"],
)
SALESFORCE_CALLS = Counter(
    "m365sync_salesforce_calls",
    "Salesforce API calls sent (OAuth and REST), by operation (query, create, update, "
    "upsert, delete, collections, composite, describe, limits, updated, deleted, token, "
    "other) and outcome (ok, network, or the error's category: session_expired, "
    "limit_exceeded, transient, needs_person, not_found, auth_failed, unexpected).",
    ["operation", "outcome"],
)
UNIT_RUNS = Counter(
    "m365sync_unit_runs",
    "Sync unit runs, by feature and outcome (ok, failed, busy, stale, lost, gone).",
    ["feature", "outcome"],
)
ITEMS_LOGGED = Counter(
    "m365sync_items_logged",
    "Items logged into the CRM (emails, meetings, tasks), by feature.",
    ["feature"],
)
UNITS_QUEUED = Counter(
    "m365sync_units_queued", "Sync units the scheduler handed to the Celery queue."
)
MAIL_LAG = Histogram(
    "m365sync_mail_lag_seconds",
    "From a message's arrival (receivedDateTime) to the commit that synced it, for "
    "incremental syncs (first syncs and backfills are left out).",
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 21600),
)


def record_graph_response(status: int | None, throttled_reason: str | None = None) -> None:
    """One Graph request's answer (``status`` None: no answer, a network failure)."""
    GRAPH_REQUESTS.labels("network" if status is None else f"{status // 100}xx").inc()
    if throttled_reason is not None:
        GRAPH_THROTTLED.labels(throttled_reason).inc()


def record_salesforce_call(operation: str, outcome: str) -> None:
    """One Salesforce call's answer (``outcome`` ``network``: no answer)."""
    SALESFORCE_CALLS.labels(operation, outcome).inc()


def record_mail_lag(received: Iterable[datetime | None], now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    for moment in received:
        if moment is not None:
            MAIL_LAG.observe(max(0.0, (now - moment).total_seconds()))
