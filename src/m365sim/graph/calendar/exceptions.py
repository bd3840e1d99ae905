"""Calendar-specific Graph errors (the shared ones live in ``m365sim.graph.exceptions``).

::

    GraphError
    ├── TimeZoneNotSupported        400 an unknown Windows/IANA zone name
    ├── CalendarInvalidParameter    400 ErrorInvalidParameter (calendarView window missing/bad)
    ├── CalendarInvalidRequest      400 ErrorInvalidRequest (malformed event, bad action)
    ├── InvalidRecurrence           400 ErrorPropertyValidationFailure on ``recurrence``
    ├── DeltaQueryNotSupported      400 ErrorInvalidUrlQuery ($select & co. on calendarView delta)
    ├── DeltaTopNotSupported        400 ErrorInvalidUrlQuery ($top on calendarView delta)
    ├── CalendarNotFound            404 ErrorItemNotFound for a calendar id
    ├── EventNotFound               404 ErrorItemNotFound for an event id
    └── DefaultCalendarUndeletable  400 ErrorInvalidRequest deleting the default calendar
"""

from __future__ import annotations

from m365sim.exceptions import GraphError

__all__ = [
    "CalendarInvalidParameter",
    "CalendarInvalidRequest",
    "CalendarNotFound",
    "DefaultCalendarUndeletable",
    "DeltaQueryNotSupported",
    "DeltaTopNotSupported",
    "EventNotFound",
    "InvalidRecurrence",
    "TimeZoneNotSupported",
]


class TimeZoneNotSupported(GraphError):
    status = 400
    code = "TimeZoneNotSupportedException"
    message = (
        "A valid TimeZone value must be specified. "
        "The following TimeZone value is not supported: ''."
    )

    @classmethod
    def named(cls, name: str) -> TimeZoneNotSupported:
        return cls(
            "A valid TimeZone value must be specified. "
            f"The following TimeZone value is not supported: '{name}'."
        )


class CalendarInvalidParameter(GraphError):
    status = 400
    code = "ErrorInvalidParameter"
    message = (
        "This request requires a time window specified by the query string parameters "
        "StartDateTime and EndDateTime."
    )


class CalendarInvalidRequest(GraphError):
    status = 400
    code = "ErrorInvalidRequest"
    message = "Your request can't be completed."


class InvalidRecurrence(GraphError):
    status = 400
    code = "ErrorPropertyValidationFailure"
    message = "At least one property failed validation."


class DeltaQueryNotSupported(GraphError):
    status = 400
    code = "ErrorInvalidUrlQuery"
    message = (
        "The following parameters are not supported with change tracking over the "
        "'CalendarView' resource: '$orderby, $filter, $select, $expand, $search'."
    )


class DeltaTopNotSupported(GraphError):
    status = 400
    code = "ErrorInvalidUrlQuery"
    message = (
        "The '$top' parameter is not supported with change tracking over the 'CalendarView' "
        "resource as page size cannot be guaranteed. Express page size preferences using the "
        "Prefer: odata.maxpagesize= header instead."
    )


class CalendarNotFound(GraphError):
    status = 404
    code = "ErrorItemNotFound"
    message = "The specified object was not found in the store."


class EventNotFound(GraphError):
    status = 404
    code = "ErrorItemNotFound"
    message = "The specified object was not found in the store."


class DefaultCalendarUndeletable(GraphError):
    status = 400
    code = "ErrorInvalidRequest"
    message = "The default calendar cannot be deleted."
