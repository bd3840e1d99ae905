"""Calendar calls for Calendar Sync: calendarView delta over a window, and event writes.

Times are asked for and written in UTC (``Prefer: outlook.timezone="UTC"``), so the engine
never converts Windows time-zone names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from m365sync.microsoft.delta import delta_pages
from m365sync.microsoft.graph import TEXT_BODY_PREFERENCE, UTC_PREFERENCE, GraphClient, Page

__all__ = ["calendar_delta", "create_event", "delete_event", "update_event"]


def calendar_delta(
    graph: GraphClient,
    user_path: str,
    *,
    start: datetime,
    end: datetime,
    cursor: str | None,
    page_size: int,
) -> AsyncIterator[Page]:
    """One ``calendarView/delta`` round of the default calendar between ``start`` and ``end``."""
    params: dict[str, str | int] = {
        "startDateTime": start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endDateTime": end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return delta_pages(
        graph,
        initial_path=f"{user_path}/calendarView/delta",
        params=params,
        cursor=cursor,
        page_size=page_size,
        prefer=[UTC_PREFERENCE, TEXT_BODY_PREFERENCE],
    )


async def create_event(
    graph: GraphClient, user_path: str, body: dict[str, Any], *, transaction_id: str
) -> dict[str, Any]:
    """Create an event; ``transaction_id`` makes a retried create return the first event
    instead of a second one (Graph's idempotent POST)."""
    return await graph.post_json(
        f"{user_path}/events", {**body, "transactionId": transaction_id}, prefer=[UTC_PREFERENCE]
    )


async def update_event(
    graph: GraphClient, user_path: str, event_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    return await graph.patch_json(f"{user_path}/events/{event_id}", body, prefer=[UTC_PREFERENCE])


async def delete_event(graph: GraphClient, user_path: str, event_id: str) -> None:
    await graph.delete(f"{user_path}/events/{event_id}")
