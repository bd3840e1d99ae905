"""Calendar Sync tests' vocabulary: times in the window, events made in m365sim's mailboxes
(seen by Graph and EWS alike), the invitations m365sim recorded, the CRM's events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from m365sync.crm.models import ActivityKind
from support.sync_world import SyncWorld

__all__ = [
    "at",
    "crm_events",
    "daily_series",
    "gtime",
    "invitations",
    "outlook_event",
    "outlook_events",
]


def at(days: float, hour: int = 15) -> datetime:
    base = datetime.now(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return base + timedelta(days=days)


def gtime(value: datetime) -> dict[str, str]:
    return {"dateTime": value.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def outlook_event(world: SyncWorld, mailbox: str, **body: Any) -> dict[str, Any]:
    response = world.control.post(f"/_sim/mailboxes/{mailbox}/events", json=body)
    response.raise_for_status()
    return dict(response.json())


def outlook_events(world: SyncWorld, mailbox: str) -> list[dict[str, Any]]:
    return list(world.control.get(f"/_sim/mailboxes/{mailbox}/events").json()["value"])


def invitations(world: SyncWorld) -> list[dict[str, Any]]:
    return list(world.control.get("/_sim/invitations").json()["value"])


def crm_events(world: SyncWorld) -> list[Any]:
    with world.crm() as crm:
        return crm.activities(ActivityKind.EVENT)


def daily_series(
    world: SyncWorld, mailbox: str, subject: str, start: datetime, count: int
) -> dict[str, Any]:
    """A daily series of ``count`` 15-minute meetings from ``start``, made in Outlook."""
    return outlook_event(
        world,
        mailbox,
        subject=subject,
        start=gtime(start),
        end=gtime(start + timedelta(minutes=15)),
        recurrence={
            "pattern": {"type": "daily", "interval": 1},
            "range": {
                "type": "numbered",
                "startDate": start.strftime("%Y-%m-%d"),
                "numberOfOccurrences": count,
            },
        },
    )
