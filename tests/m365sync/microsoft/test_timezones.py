"""Time zone names as Microsoft gives them: Windows, IANA or UTC."""

from __future__ import annotations

import pytest

from m365sync.microsoft.timezones import UnknownTimeZone, zone_from_microsoft


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Pacific Standard Time", "America/Los_Angeles"),
        ("Eastern Standard Time", "America/New_York"),
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("Europe/Paris", "Europe/Paris"),
        ("UTC", "UTC"),
        (None, "UTC"),
    ],
)
def test_zone_from_microsoft(name: str | None, expected: str) -> None:
    assert zone_from_microsoft(name).key == expected


def test_unknown_zone_names_the_fix() -> None:
    with pytest.raises(UnknownTimeZone, match="Outlook"):
        zone_from_microsoft("Middle Earth Standard Time")
