"""Errors Calendar Scheduling raises on purpose; each names the cause and the fix.

::

    SchedulingError                 root (an M365SyncError)
    ├── MeetingTypeNotFound         404: no such booking page (or it was switched off)
    ├── BookingNotFound             404
    ├── SchedulingUnavailable       409: the host's mailbox can't be used for scheduling
    │                               (missing permission, no connection, switched off by
    │                               an admin); ``missing_permissions`` names what to grant
    │   └── NoRoomFree              409: the meeting type books a room and none is free
    │                               (or rooms can't be read: Place.Read.All)
    ├── SlotUnavailable             409: the time stopped being free; ``alternatives``
    │                               holds the open slots to offer instead
    ├── BookingClosed               409: the booking was cancelled or has already happened
    ├── InvalidBooking              422: a form field is missing or wrong (``fields``)
    └── CalendarWriteFailed         502: Microsoft refused the calendar change
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from m365sync.errors import M365SyncError

if TYPE_CHECKING:
    from m365sync.scheduling.availability import Slot


class SchedulingError(M365SyncError):
    status = 400


class MeetingTypeNotFound(SchedulingError):
    status = 404


class BookingNotFound(SchedulingError):
    status = 404


class SchedulingUnavailable(SchedulingError):
    status = 409

    def __init__(
        self, message: str, *, fix: str | None = None, missing_permissions: Sequence[str] = ()
    ) -> None:
        super().__init__(message, fix=fix)
        self.missing_permissions = list(missing_permissions)


class NoRoomFree(SchedulingUnavailable):
    """The meeting type books a room and none can be booked for the time chosen."""


class SlotUnavailable(SchedulingError):
    status = 409

    def __init__(
        self, message: str, *, fix: str | None = None, alternatives: Sequence[Slot] = ()
    ) -> None:
        super().__init__(message, fix=fix)
        self.alternatives = list(alternatives)


class BookingClosed(SchedulingError):
    status = 409


class InvalidBooking(SchedulingError):
    status = 422

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(
            "Some answers are missing or not valid.",
            fix="Correct the highlighted fields and book again.",
        )
        self.fields = fields


class CalendarWriteFailed(SchedulingError):
    status = 502
