"""The org's schema: sObjects, their fields and how describe presents them."""

from sfsim.schema.fields import FieldDef, ObjectDef, PicklistValue, Schema
from sfsim.schema.standard import standard_schema

__all__ = ["FieldDef", "ObjectDef", "PicklistValue", "Schema", "standard_schema"]
