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
PROTOCOL_NAMES = {"graph": "Microsoft Graph", "ews": "Exchange Server (EWS)"}
STAGE_NAMES = {
    "idle": "Idle",
    "queued": "Queued",
    "initial_sync": "First sync",
    "incremental": "Incremental",
    "pushing": "Writing to Outlook",
}


@dataclass(frozen=True)
class UnitView:
    """One mailbox feature's sync, in words."""

    feature: str
    feature_name: str
    status: str
    stage: str
    last_sync: datetime | None
    synced: str
    last_error: str
    last_error_fix: str
    protocol: str = ""  # what served the last run, in words ("" before the first)


def unit_view(unit: SyncUnit) -> UnitView:
    counts = unit.counts or {}
    items, logged = int(counts.get("total_items", 0)), int(counts.get("total_logged", 0))
    synced = f"{items} items, {logged} logged" if counts else "—"
    feature = SyncFeature(unit.feature).value
    return UnitView(
        feature=feature,
        feature_name=FEATURE_NAMES.get(feature, feature),
        status=UnitStatus(unit.status).value,
        stage=STAGE_NAMES.get(UnitStage(unit.stage).value, str(unit.stage)),
        last_sync=unit.last_success_at,
        synced=synced,
        last_error=unit.last_error,
        last_error_fix=unit.last_error_fix,
        protocol=PROTOCOL_NAMES.get(unit.protocol or "", ""),
    )
