"""m365sync's mark on the calendar items and tasks it creates over EWS.

Graph makes a retried event create idempotent with ``transactionId``; EWS has nothing of
the kind, so a crash between Exchange's answer to a ``CreateItem`` and the local record of
it would leave a second copy on the retry. Each item m365sync creates carries an extended
(MAPI named) property holding the CRM activity's id, and a create first searches the folder
for an item with that id (``FindItem`` with an ``ExtendedFieldURI`` restriction): found, it
is the answer and nothing is created.
"""

from __future__ import annotations

from exchangelib import CalendarItem, Task
from exchangelib.extended_properties import ExtendedProperty
from exchangelib.folders import Folder

__all__ = ["STAMP_FIELD", "M365SyncId", "find_stamped"]

STAMP_FIELD = "m365sync_id"


class M365SyncId(ExtendedProperty):  # type: ignore[misc]
    """The CRM activity id an item was created for (a string named property in m365sync's
    own property set)."""

    property_set_id = "b9d1c6a4-3f1e-4d0a-9a57-6d3c2f0e8b21"
    property_name = "m365sync-activity-id"
    property_type = "String"


for _model in (CalendarItem, Task):
    if STAMP_FIELD not in {f.name for f in _model.FIELDS}:
        _model.register(STAMP_FIELD, M365SyncId)


def find_stamped(folder: Folder, activity_id: str) -> CalendarItem | Task | None:
    """The item of ``folder`` m365sync created for ``activity_id``, if Exchange has one."""
    for found in folder.filter(**{STAMP_FIELD: activity_id}):
        if isinstance(found, CalendarItem | Task):
            return found
    return None
