"""The feature matrix: which features a connection's granted permissions enable.

Service accounts (application permissions, the token's ``roles``) and user connections
(delegated scopes, the token's ``scp``) follow DESIGN.md's table; Task Sync is never
offered through a service account (Microsoft To Do has no application permission).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from m365sync.connections.models import Feature

FEATURE_TITLES: dict[Feature, str] = {
    Feature.EMAIL: "Email Sync",
    Feature.CALENDAR: "Calendar Sync",
    Feature.SCHEDULING: "Calendar Scheduling",
    Feature.TASKS: "Task Sync",
}

APPLICATION_PERMISSIONS: dict[Feature, tuple[str, ...]] = {
    Feature.EMAIL: ("Mail.Read", "Mail.ReadWrite"),
    Feature.CALENDAR: ("Calendars.Read", "Calendars.ReadWrite"),
    Feature.SCHEDULING: ("Mail.Read", "Mail.ReadWrite", "Calendars.Read", "Calendars.ReadWrite"),
}

ROOM_PERMISSION = "Place.Read.All"
"""Reads the tenant's meeting rooms (``/places``). Only meeting types that book a room need
it, so Calendar Scheduling is on without it; Run Test warns when such a meeting type exists
and it is missing."""

SETUP_EXTRA_PERMISSIONS: dict[Feature, tuple[str, ...]] = {Feature.SCHEDULING: (ROOM_PERMISSION,)}
"""Asked for by Set up for me with a feature, beyond what turns the feature on."""

DELEGATED_SCOPES: dict[Feature, tuple[str, ...]] = {
    Feature.EMAIL: ("Mail.ReadWrite",),
    Feature.CALENDAR: ("Calendars.ReadWrite",),
    Feature.SCHEDULING: ("Mail.ReadWrite", "Calendars.ReadWrite"),
    Feature.TASKS: ("Tasks.ReadWrite",),
}

TASKS_VIA_SERVICE_ACCOUNT = (
    "Task Sync is not available through a service account: Microsoft To Do has no application "
    "permission. Each user turns it on with their own connection (Connect your Office 365)."
)


@dataclass
class FeatureMatrix:
    enabled: set[Feature] = field(default_factory=set)
    missing: dict[Feature, list[str]] = field(default_factory=dict)  # feature → permissions
    notes: dict[Feature, str] = field(default_factory=dict)

    def explain(self, feature: Feature) -> str:
        if feature in self.enabled:
            return f"{FEATURE_TITLES[feature]} is enabled."
        if feature in self.notes:
            return self.notes[feature]
        return f"{FEATURE_TITLES[feature]} needs {', '.join(self.missing.get(feature, []))}."

    def missing_as_json(self) -> dict[str, list[str]]:
        return {f.value: perms for f, perms in self.missing.items()}


def _normalized(names: Iterable[str]) -> dict[str, str]:
    return {n.lower(): n for n in names}


def app_feature_matrix(roles: Iterable[str]) -> FeatureMatrix:
    granted = _normalized(roles)
    matrix = FeatureMatrix()
    for feature, needed in APPLICATION_PERMISSIONS.items():
        missing = [p for p in needed if p.lower() not in granted]
        if missing:
            matrix.missing[feature] = missing
        else:
            matrix.enabled.add(feature)
    matrix.notes[Feature.TASKS] = TASKS_VIA_SERVICE_ACCOUNT
    return matrix


def delegated_feature_matrix(scopes: Iterable[str]) -> FeatureMatrix:
    granted = _normalized(s.rsplit("/", 1)[-1] for s in scopes)
    matrix = FeatureMatrix()
    for feature, needed in DELEGATED_SCOPES.items():
        missing = [p for p in needed if p.lower() not in granted]
        if missing:
            matrix.missing[feature] = missing
        else:
            matrix.enabled.add(feature)
    return matrix


def delegated_scopes_for(features: Iterable[Feature]) -> list[str]:
    """Scopes to request for a user connection (``offline_access``/``openid`` are added by MSAL)."""
    scopes = ["User.Read"]
    for feature in features:
        for scope in DELEGATED_SCOPES[feature]:
            if scope not in scopes:
                scopes.append(scope)
    return scopes
