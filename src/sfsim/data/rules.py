"""Validation rules and duplicate rules an org's admin can switch on (through the seed).

Salesforce's validation rules are formulas; sfsim offers the three shapes integrations
meet most (a field that must be filled, must match a pattern, or must not equal a
value), each failing with ``FIELD_CUSTOM_VALIDATION_EXCEPTION`` and the admin's message.
Duplicate rules match on equal values (case-insensitive) of the listed fields among
live records of the same object; ``block`` refuses the save, ``alert`` refuses it unless
the request says ``Sforce-Duplicate-Rule-Header: allowSave=true``, as the API does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

VALIDATION_KINDS = ("required", "pattern", "notEqual")
DUPLICATE_ACTIONS = ("block", "alert")


@dataclass
class ValidationRule:
    object: str
    name: str
    field: str
    kind: str = "required"
    message: str = "Validation failed."
    pattern: str = ""
    value: Any = None
    active: bool = True
    on_update: bool = True

    def __post_init__(self) -> None:
        if self.kind not in VALIDATION_KINDS:
            raise ValueError(f"validation rule kind must be one of {', '.join(VALIDATION_KINDS)}")
        self.compiled = re.compile(self.pattern) if self.kind == "pattern" else None

    def violated_by(self, record: dict[str, Any]) -> bool:
        value = record.get(self.field)
        if self.kind == "required":
            return value in (None, "")
        if self.kind == "pattern":
            assert self.compiled is not None
            return value not in (None, "") and not self.compiled.fullmatch(str(value))
        return bool(value == self.value)

    def as_json(self) -> dict[str, Any]:
        return {
            "object": self.object,
            "name": self.name,
            "field": self.field,
            "kind": self.kind,
            "message": self.message,
            "pattern": self.pattern,
            "value": self.value,
            "active": self.active,
        }


@dataclass
class DuplicateRule:
    object: str
    name: str
    fields: list[str] = field(default_factory=lambda: ["Email"])
    action: str = "block"
    active: bool = True
    matching_rule: str = ""

    def __post_init__(self) -> None:
        if self.action not in DUPLICATE_ACTIONS:
            raise ValueError(f"duplicate rule action must be one of {', '.join(DUPLICATE_ACTIONS)}")
        self.matching_rule = self.matching_rule or f"{self.name}_Match_Rule"

    def key(self, record: dict[str, Any]) -> tuple[str, ...] | None:
        values = [record.get(name) for name in self.fields]
        if any(value in (None, "") for value in values):
            return None
        return tuple(str(value).strip().lower() for value in values)

    def as_json(self) -> dict[str, Any]:
        return {
            "object": self.object,
            "name": self.name,
            "fields": self.fields,
            "action": self.action,
            "active": self.active,
        }
