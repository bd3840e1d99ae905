"""Calendar calls for Calendar Sync: calendarView delta over a window, and event writes.

Times are asked for and written in UTC (``Prefer: outlook.timezone="UTC"``), so the engine
never converts Windows time-zone names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

from m365sync.microsoft.delta import delta_pages
from m365sync.microsoft.graph import (
    TEXT_BODY_PREFERENCE,
    UTC_PREFERENCE,
    GraphClient,
    ItemCollection,
    Page,
)

__all__ = ["calendar_delta", "calendar_events"]


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


def calendar_events(graph: GraphClient, user_path: str) -> ItemCollection:
    """The events of the mailbox's default calendar, written with times in UTC."""
    return ItemCollection(graph, f"{user_path}/events", prefer=(UTC_PREFERENCE,))
