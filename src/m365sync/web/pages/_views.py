"""How the dashboard names sync features and shows a mailbox feature's sync: shared by the
admin's Members and mailboxes page and the user's own connections page. Presentation only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from m365sync.sync.features import SyncFeature
from m365sync.sync.models import SyncUnit, UnitStage, UnitStatus

FEATURE_NAMES = {
    "email": "Email Sync",
    "calendar": "Calendar Sync",
    "scheduling": "Calendar Scheduling",
    "tasks": "Task Sync",
}
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
    )
