"""Time zone names as Microsoft gives them: Windows (``Pacific Standard Time``) or IANA.

Outlook lets users pick either kind, and Graph hands back whichever the mailbox holds
(``mailboxSettings.timeZone``, working hours, ``dateTimeTimeZone.timeZone``). The Windows →
IANA map is Unicode CLDR's ``windowsZones`` table as tzlocal ships it
(``tzlocal.windows_tz``), the same table the emulator uses.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import win_tz

__all__ = ["UnknownTimeZone", "zone_from_microsoft"]


class UnknownTimeZone(ValueError):
    """A time zone name that is neither IANA nor a Windows name we can map."""


_UTC_NAMES = frozenset({"utc", "coordinated universal time", "etc/utc"})


def zone_from_microsoft(name: str | None) -> ZoneInfo:
    """A ``ZoneInfo`` for a name Microsoft returns: Windows, IANA or UTC (no name is UTC)."""
    if not name or name.lower() in _UTC_NAMES:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(win_tz.get(name) or name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UnknownTimeZone(
            f"The time zone {name!r} is not known. Pick a standard time zone in Outlook "
            "(Settings → Calendar → Time zone) or in the meeting type."
        ) from exc
