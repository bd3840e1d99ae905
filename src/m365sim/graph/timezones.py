"""Windows ↔ IANA time zone names, as Exchange Online and Microsoft Graph use them.

Graph accepts both kinds of name wherever a time zone is given (``start.timeZone``,
``Prefer: outlook.timezone``, ``getSchedule``), stores Windows names (``originalStartTimeZone``,
``mailboxSettings.timeZone``) and echoes back the name the client used. The mapping is the
Unicode CLDR ``windowsZones`` table (territory ``001`` for the Windows → IANA direction) as
tzlocal ships it (``tzlocal.windows_tz``, regenerated from CLDR with each tzlocal release;
tzlocal comes with exchangelib). exchangelib's own copy (``exchangelib.winzone``) is not used:
it is an older CLDR release that lacks the Alberta, British Columbia and Manitoba zones.

Differences from Exchange: custom time zones (``tzone://Microsoft/Custom``) are not supported,
and a Windows zone is computed with the rules of its IANA zone in the bundled tz database
rather than Windows' own registry rules (they agree for every date since 2007).
"""

from __future__ import annotations

from datetime import UTC, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import tz_win, win_tz

__all__ = ["UnknownTimeZone", "iana_name", "is_known", "to_zone", "windows_name"]


class UnknownTimeZone(ValueError):
    """A time zone name that is neither a Windows nor an IANA name known here."""


WINDOWS_TO_IANA: dict[str, str] = dict(win_tz)
"""Windows zone name → the IANA zone whose rules it follows (CLDR territory ``001``)."""

IANA_TO_WINDOWS: dict[str, str] = {iana: windows for iana, windows in tz_win.items() if iana}
"""IANA zone name (and CLDR aliases) → Windows zone name. tzlocal's table also maps the empty
name (what a Windows machine without a zone reports); an empty name is no zone here."""

_ALIASES = {
    "utc": "UTC",
    "etc/utc": "UTC",
    "gmt": "UTC",
    "z": "UTC",
    "coordinated universal time": "UTC",
}
_WINDOWS_LOWER = {name.lower(): name for name in WINDOWS_TO_IANA}
_IANA_LOWER = {name.lower(): name for name in IANA_TO_WINDOWS}


@lru_cache(maxsize=512)
def _resolve(name: str) -> tuple[str, str]:
    """``(windows_name, iana_name)`` for any accepted spelling of a zone."""
    key = name.strip().lower()
    if key in _ALIASES:
        return "UTC", "UTC"
    if key in _WINDOWS_LOWER:
        windows = _WINDOWS_LOWER[key]
        return windows, WINDOWS_TO_IANA[windows]
    if key in _IANA_LOWER:
        iana = _IANA_LOWER[key]
        return IANA_TO_WINDOWS[iana], iana
    try:
        ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UnknownTimeZone(name) from exc
    return name.strip(), name.strip()


def windows_name(name: str) -> str:
    """The Windows name Exchange stores for ``name`` (a Windows or IANA name)."""
    return _resolve(name)[0]


def iana_name(name: str) -> str:
    """The IANA name whose rules ``name`` (a Windows or IANA name) follows."""
    return _resolve(name)[1]


def to_zone(name: str) -> tzinfo:
    """A ``tzinfo`` for a Windows or IANA name; ``UnknownTimeZone`` when there is none."""
    iana = iana_name(name)
    if iana == "UTC":
        return UTC
    return ZoneInfo(iana)


def is_known(name: str) -> bool:
    try:
        _resolve(name)
    except UnknownTimeZone:
        return False
    return True
