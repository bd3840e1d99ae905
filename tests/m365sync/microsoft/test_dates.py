"""Graph's two ways of writing an instant, read into one UTC ``datetime``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from m365sync.microsoft.dates import graph_date_time_zone, read_graph_datetime
from m365sync.microsoft.timezones import UnknownTimeZone


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-12T17:30:00Z",
        "2026-01-12T18:30:00+01:00",
        "2026-01-12T17:30:00.0000000Z",
        {"dateTime": "2026-01-12T17:30:00.0000000", "timeZone": "UTC"},
        {"dateTime": "2026-01-12T09:30:00.0000000", "timeZone": "Pacific Standard Time"},
        {"dateTime": "2026-01-12T18:30:00.0000000", "timeZone": "Europe/Berlin"},
        {"dateTime": "2026-01-12T17:30:00.0000000"},
    ],
)
def test_every_form_graph_sends_is_the_same_instant(value: object) -> None:
    parsed = read_graph_datetime(value)
    assert parsed == datetime(2026, 1, 12, 17, 30, tzinfo=UTC)
    assert parsed is not None and parsed.utcoffset() is not None


@pytest.mark.parametrize("value", [None, "", {}, {"dateTime": None, "timeZone": "UTC"}])
def test_an_absent_date_is_none(value: object) -> None:
    assert read_graph_datetime(value) is None


@pytest.mark.parametrize(
    "value", ["next Tuesday", 1736703000, {"dateTime": "2026-01-12T09:30:00", "timeZone": "Mars"}]
)
def test_something_that_is_not_a_date_is_refused(value: object) -> None:
    with pytest.raises(ValueError):
        read_graph_datetime(value)


def test_an_unknown_zone_says_so() -> None:
    with pytest.raises(UnknownTimeZone, match="Outlook"):
        read_graph_datetime({"dateTime": "2026-01-12T09:30:00", "timeZone": "Middle Earth"})


def test_what_we_write_reads_back_as_the_same_instant() -> None:
    instant = datetime(2026, 3, 29, 1, 15, tzinfo=UTC)
    written = graph_date_time_zone(instant)
    assert written == {"dateTime": "2026-03-29T01:15:00.0000000", "timeZone": "UTC"}
    assert read_graph_datetime(written) == instant
