"""Extended (MAPI named) properties a client stamps on the calendar items and tasks it
creates: ``t:ExtendedProperty`` in ``CreateItem``, searchable with an ``ExtendedFieldURI``
in a ``FindItem`` restriction, as Exchange keeps them (a client tags its own items this way
to find them again, e.g. after a crash between the create and its own record).

Kept beside the stores, by item id (event and task ids are unique across mailboxes).
Differences from Exchange: only string values are kept; ``UpdateItem`` doesn't change
them; they are not rendered back in ``GetItem``/``FindItem`` shapes (a client can search
on them, not read them) and Graph's ``singleValueExtendedProperties`` doesn't show them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from m365sim.ews.soap import child, children, t, text_of
from m365sim.state import SimState

__all__ = ["ExtendedProperties", "extended_key", "extended_properties"]


def extended_key(uri: Any) -> str:
    """One ``t:ExtendedFieldURI``'s identity: property set (or distinguished set), name or
    id, and type; case-insensitive where Exchange is (GUIDs)."""
    property_set = str(uri.get("PropertySetId") or uri.get("DistinguishedPropertySetId") or "")
    name = str(uri.get("PropertyName") or uri.get("PropertyId") or uri.get("PropertyTag") or "")
    return f"{property_set.lower()}|{name}|{uri.get('PropertyType') or ''}"


@dataclass
class ExtendedProperties:
    values: dict[str, dict[str, str]] = field(default_factory=dict)

    def save(self, item_id: str, item: Any) -> None:
        """Keep the ``t:ExtendedProperty`` children of a created item's XML."""
        for prop in children(item, t("ExtendedProperty")):
            uri = child(prop, t("ExtendedFieldURI"))
            if uri is None:
                continue
            self.values.setdefault(item_id, {})[extended_key(uri)] = text_of(prop, t("Value")) or ""

    def value(self, item: Any, key: str) -> str | None:
        return self.values.get(str(getattr(item, "id", "")), {}).get(key)


def extended_properties(state: SimState) -> ExtendedProperties:
    value: ExtendedProperties = state.extension("ews.extended", ExtendedProperties)
    return value
