"""Field and object definitions, and their describe JSON.

Field names are case-insensitive everywhere in Salesforce (``lastname`` finds
``LastName``); answers always use the field's own spelling, so lookups go through
``ObjectDef.field()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Salesforce field types sfsim models, with the SOAP type describe reports for each.
SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "string": "xsd:string",
    "textarea": "xsd:string",
    "email": "xsd:string",
    "phone": "xsd:string",
    "url": "xsd:string",
    "picklist": "xsd:string",
    "boolean": "xsd:boolean",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "double": "xsd:double",
    "currency": "xsd:double",
    "int": "xsd:int",
}
FIELD_TYPES = frozenset(SOAP_TYPES)
_DEFAULT_LENGTHS = {"string": 255, "email": 80, "phone": 40, "url": 255, "textarea": 32000}


@dataclass(frozen=True)
class PicklistValue:
    value: str
    default: bool = False
    active: bool = True

    def as_json(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "defaultValue": self.default,
            "label": self.value,
            "validFor": None,
            "value": self.value,
        }


@dataclass
class FieldDef:
    """One field. ``nillable=False`` with ``createable`` and no default means required."""

    name: str
    type: str
    label: str = ""
    length: int | None = None
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    external_id: bool = False
    unique: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    picklist: tuple[PicklistValue, ...] = ()
    restricted_picklist: bool = False
    default: Any = None
    custom: bool = False
    calculated: bool = False
    precision: int = 0
    scale: int = 0
    defaulted_on_create: bool = False  # Salesforce fills it (OwnerId: the running user)

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            raise ValueError(f"unknown field type {self.type!r}")
        if self.length is None and self.type in _DEFAULT_LENGTHS:
            self.length = _DEFAULT_LENGTHS[self.type]
        if not self.label:
            self.label = self.name.removesuffix("__c").removesuffix("Id").replace("_", " ")
        if self.type == "boolean":
            self.nillable = False
            if self.default is None:
                self.default = False
        if self.type == "picklist" and self.default is None:
            defaults = [p.value for p in self.picklist if p.default]
            self.default = defaults[0] if defaults else None

    @property
    def required(self) -> bool:
        """Salesforce's "required": not nillable, createable, and without a default."""
        return (
            not self.nillable
            and self.createable
            and self.default is None
            and not self.defaulted_on_create
        )

    @property
    def filterable(self) -> bool:
        return self.type != "textarea" or (self.length or 0) <= 255

    def picklist_values(self) -> set[str]:
        return {p.value for p in self.picklist if p.active}

    def describe(self) -> dict[str, Any]:
        return {
            "aggregatable": self.type not in ("textarea", "boolean"),
            "autoNumber": False,
            "byteLength": (self.length or 0) * 3 if self.length else 0,
            "calculated": self.calculated,
            "caseSensitive": False,
            "createable": self.createable,
            "custom": self.custom,
            "defaultValue": self.default if self.type != "boolean" else bool(self.default),
            "defaultedOnCreate": self.default is not None or self.defaulted_on_create,
            "digits": 0,
            "externalId": self.external_id,
            "filterable": self.filterable,
            "groupable": self.type not in ("textarea", "double", "currency", "datetime"),
            "idLookup": self.type == "id" or self.external_id or self.name in ("Email",),
            "label": self.label,
            "length": self.length or 0,
            "name": self.name,
            "nameField": self.name == "Name",
            "nillable": self.nillable,
            "picklistValues": [p.as_json() for p in self.picklist],
            "polymorphicForeignKey": len(self.reference_to) > 1,
            "precision": self.precision,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "restrictedPicklist": self.restricted_picklist,
            "scale": self.scale,
            "soapType": SOAP_TYPES[self.type],
            "sortable": self.filterable,
            "type": self.type,
            "unique": self.unique,
            "updateable": self.updateable,
        }


@dataclass
class ObjectDef:
    """One sObject type: its name, key prefix, fields and what the API may do with it."""

    name: str
    key_prefix: str
    label: str = ""
    label_plural: str = ""
    fields: dict[str, FieldDef] = field(default_factory=dict)
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    custom: bool = False

    def __post_init__(self) -> None:
        self.label = self.label or self.name
        self.label_plural = self.label_plural or f"{self.label}s"
        self._by_lower = {name.lower(): f for name, f in self.fields.items()}
        self._by_relationship = {
            f.relationship_name.lower(): f for f in self.fields.values() if f.relationship_name
        }

    def add_field(self, definition: FieldDef) -> None:
        self.fields[definition.name] = definition
        self._by_lower[definition.name.lower()] = definition
        if definition.relationship_name:
            self._by_relationship[definition.relationship_name.lower()] = definition

    def field(self, name: str) -> FieldDef | None:
        return self._by_lower.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        """The reference field behind a relationship name (``Account`` → ``AccountId``)."""
        return self._by_relationship.get(name.lower())

    def external_id_fields(self) -> list[FieldDef]:
        return [f for f in self.fields.values() if f.external_id or f.type == "id"]

    def urls(self, version: str) -> dict[str, str]:
        base = f"/services/data/v{version}/sobjects/{self.name}"
        return {
            "rowTemplate": f"{base}/{{ID}}",
            "defaultValues": f"{base}/defaultValues?recordTypeId&fields",
            "describe": f"{base}/describe",
            "sobject": base,
        }

    def summary(self, version: str) -> dict[str, Any]:
        """The entry for this object in the global describe."""
        return {
            "activateable": False,
            "createable": self.createable,
            "custom": self.custom,
            "customSetting": False,
            "deletable": self.deletable,
            "deprecatedAndHidden": False,
            "feedEnabled": False,
            "hasSubtypes": False,
            "isSubtype": False,
            "keyPrefix": self.key_prefix,
            "label": self.label,
            "labelPlural": self.label_plural,
            "layoutable": True,
            "mergeable": self.name in ("Account", "Contact", "Lead"),
            "mruEnabled": True,
            "name": self.name,
            "queryable": True,
            "replicateable": True,
            "retrieveable": True,
            "searchable": True,
            "triggerable": True,
            "undeletable": self.deletable,
            "updateable": self.updateable,
            "urls": self.urls(version),
        }

    def describe(self, version: str) -> dict[str, Any]:
        return {
            **self.summary(version),
            "childRelationships": [],
            "fields": [f.describe() for f in self.fields.values()],
            "recordTypeInfos": [],
            "supportedScopes": [{"label": "All", "name": "everything"}],
        }


class Schema:
    """Every sObject type of one org, found case-insensitively by name or key prefix."""

    def __init__(self, objects: list[ObjectDef]) -> None:
        self.objects: dict[str, ObjectDef] = {}
        self._by_lower: dict[str, ObjectDef] = {}
        self._by_prefix: dict[str, ObjectDef] = {}
        for obj in objects:
            self.add(obj)

    def add(self, obj: ObjectDef) -> None:
        self.objects[obj.name] = obj
        self._by_lower[obj.name.lower()] = obj
        self._by_prefix[obj.key_prefix] = obj

    def remove(self, name: str) -> None:
        """The org lacks this object (a feature it has switched off)."""
        obj = self.objects.pop(name, None)
        if obj is not None:
            self._by_lower.pop(obj.name.lower(), None)
            self._by_prefix.pop(obj.key_prefix, None)

    def get(self, name: str) -> ObjectDef | None:
        return self._by_lower.get(name.lower())

    def by_prefix(self, record_id: str) -> ObjectDef | None:
        return self._by_prefix.get(record_id[:3])
