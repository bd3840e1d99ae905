"""How the dashboard names sync features and shows a mailbox feature's sync: shared by the
admin's Members and mailboxes page and the user's own connections page. Presentation only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from m365sync.sync.features import SyncFeature
from m365sync.sync.models import SyncUnit, UnitStage, UnitStatus
from m365sync.sync.service import FirstSyncProgress, first_sync_progress

FEATURE_NAMES = {
    "email": "Email Sync",
    "calendar": "Calendar Sync",
    "scheduling": "Calendar Scheduling",
    "tasks": "Task Sync",
}
PROTOCOL_NAMES = {"graph": "Microsoft Graph", "ews": "Exchange Server (EWS)"}
STAGE_NAMES = {
    "idle": "Idle",
    "queued": "Queued",
    "initial_sync": "First sync",
    "incremental": "Incremental",
    "pushing": "Writing to Outlook",
}
STATUS_NAMES = {"disconnected": "Disconnected by the user"}
HELD_NOUNS = {"email": "email", "calendar": "meeting", "tasks": "task"}


@dataclass(frozen=True)
class UnitView:
    """One mailbox feature's sync, in words."""

    feature: str
    feature_name: str
    status: str
    status_name: str
    stage: str
    last_sync: datetime | None
    synced: str
    last_error: str
    last_error_fix: str
    protocol: str = ""  # what served the last run, in words ("" before the first)
    progress: FirstSyncProgress | None = None

    @property
    def progress_text(self) -> str:
        """ "1,240 of 3,000 items · 85 a second · about 25 s left"."""
        p = self.progress
        if p is None:
            return ""
        done = f"{p.done:,} of {p.expected:,} items" if p.expected else f"{p.done:,} items"
        parts = [done, f"{p.per_second:,.0f} a second"]
        if p.seconds_left is not None:
            parts.append(f"about {_duration(p.seconds_left)} left")
        return " · ".join(parts)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(round(seconds), 1)} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def unit_view(unit: SyncUnit, held: dict[tuple[str, str], int]) -> UnitView:
    """``held``: distinct items each mailbox feature holds in the CRM (``MailboxOverview``)."""
    feature = SyncFeature(unit.feature).value
    status = UnitStatus(unit.status).value
    count, noun = held.get((unit.member_id, feature), 0), HELD_NOUNS.get(feature)
    plural = "" if count == 1 else "s"
    synced = "—" if noun is None or not unit.counts else f"{count} {noun}{plural}"
    return UnitView(
        feature=feature,
        feature_name=FEATURE_NAMES.get(feature, feature),
        status=status,
        status_name=STATUS_NAMES.get(status, status.replace("_", " ").capitalize()),
        stage=STAGE_NAMES.get(UnitStage(unit.stage).value, str(unit.stage)),
        last_sync=unit.last_success_at,
        synced=synced,
        last_error=unit.last_error,
        last_error_fix=unit.last_error_fix,
        protocol=PROTOCOL_NAMES.get(unit.protocol or "", ""),
        progress=first_sync_progress(unit),
    )
