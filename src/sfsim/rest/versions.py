"""The API versions sfsim answers on, with Salesforce's release labels."""

from __future__ import annotations

OLDEST = 31
LATEST = 64


def release_label(major: int) -> str:
    """Salesforce's release name of an API version (31.0 was Summer '14; three a year)."""
    n = major - OLDEST
    season = ("Summer", "Winter", "Spring")[n % 3]
    return f"{season} '{14 + (n + 2) // 3:02d}"


VERSIONS = [f"{major}.0" for major in range(OLDEST, LATEST + 1)]
LATEST_VERSION = VERSIONS[-1]


def listing() -> list[dict[str, str]]:
    return [
        {"label": release_label(int(v.split(".")[0])), "url": f"/services/data/v{v}", "version": v}
        for v in VERSIONS
    ]
