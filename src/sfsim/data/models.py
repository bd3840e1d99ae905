"""RecordStore: the org's records and every rule Salesforce applies when they change.

One store per org (``SfState.records``). Route handlers call ``insert``, ``update``,
``upsert``, ``delete`` and ``get``; everything Salesforce checks on a save happens here,
in Salesforce's order: unknown and read-only fields, types and lengths, restricted
picklists, references (right object, existing, not deleted; owners must be active
users), required fields, object semantics, validation rules, uniqueness, duplicate rules,
storage. ``atomic()`` gives all-or-none saves (composite, sObject Collections): every
change is journalled and undone on failure.

Deleted records stay in the recycle bin (``IsDeleted = true``): ``queryAll`` sees them,
``/deleted/`` lists them, and saving to one answers ``ENTITY_IS_DELETED``.

Differences from Salesforce are listed in ``docs/sfsim.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sfsim.data import exceptions as err
from sfsim.data.rules import DuplicateRule, ValidationRule
from sfsim.data.values import coerce, format_value
from sfsim.ids import make_id, normalize
from sfsim.schema.fields import FieldDef, ObjectDef
from sfsim.schema.standard import standard_schema

if TYPE_CHECKING:
    from sfsim.state import SfState

Record = dict[str, Any]
RECORD_BYTES = 2048  # Salesforce counts most records as 2 KB of data storage
CLOSED_STAGES = {"Closed Won": True, "Closed Lost": False}
MAX_EVENT_MINUTES = 14 * 24 * 60
DRAFT_STATUS = "5"  # EmailMessage.Status of a draft


class RecordStore:
    def __init__(self, state: SfState) -> None:
        self.state = state
        self.schema = standard_schema()
        self.records: dict[str, dict[str, Record]] = {name: {} for name in self.schema.objects}
        self.sequence = 0
        self.created_at = state.now()
        self.validation_rules: list[ValidationRule] = []
        self.duplicate_rules: list[DuplicateRule] = []
        self._journals: list[list[tuple[str, str, Record | None]]] = []
        self._indexes: dict[tuple[str, str], dict[str, set[str]]] = {}
        """(object, field) → lowercased value → ids, for External ID and unique fields
        (Salesforce indexes them): built on first lookup, then kept by ``_put``. It may
        hold ids whose value changed since; ``find_by`` checks each record it names."""

    # -- schema -------------------------------------------------------------------------
    def object(self, name: str) -> ObjectDef:
        obj = self.schema.get(name)
        if obj is None:
            raise err.NotFound()
        return obj

    def add_custom_field(self, object_name: str, definition: FieldDef) -> None:
        if not definition.name.endswith("__c"):
            raise ValueError(f"custom field names end in __c: {definition.name!r}")
        definition.custom = True
        self.object(object_name).add_field(definition)

    # -- reading ------------------------------------------------------------------------
    def live(self, object_name: str) -> Iterator[Record]:
        return (r for r in self.records[object_name].values() if not r["IsDeleted"])

    def all(self, object_name: str) -> Iterator[Record]:
        return iter(self.records[object_name].values())

    def find(self, record_id: str) -> tuple[ObjectDef, Record] | None:
        """Any record (deleted ones too) by a 15- or 18-character id."""
        full = normalize(record_id)
        if full is None:
            return None
        obj = self.schema.by_prefix(full)
        if obj is None:
            return None
        record = self.records[obj.name].get(full)
        return (obj, record) if record is not None else None

    def get(self, obj: ObjectDef, record_id: str) -> Record:
        """A live record of ``obj``; 404 ``NOT_FOUND`` for anything else (as GET answers)."""
        found = self.find(record_id)
        if found is None or found[0] is not obj or found[1]["IsDeleted"]:
            raise err.NotFound()
        return found[1]

    def find_by(self, obj: ObjectDef, definition: FieldDef, value: Any) -> list[Record]:
        """Live records whose ``definition`` equals ``value`` (external ids: case-insensitive)."""
        if definition.type == "id":
            full = normalize(str(value))
            record = self.records[obj.name].get(full) if full else None
            return [record] if record is not None and not record["IsDeleted"] else []
        wanted = str(value).lower()
        if definition.external_id or definition.unique:
            index = self._index(obj.name, definition.name)
            table = self.records[obj.name]
            candidates: Iterable[Record] = (
                table[i] for i in sorted(index.get(wanted, ())) if i in table
            )
        else:
            candidates = self.all(obj.name)
        return [
            r
            for r in candidates
            if not r["IsDeleted"]
            and r.get(definition.name) is not None
            and str(r[definition.name]).lower() == wanted
        ]

    def _index(self, object_name: str, field_name: str) -> dict[str, set[str]]:
        key = (object_name, field_name)
        index = self._indexes.get(key)
        if index is None:
            index = {}
            for record in self.records[object_name].values():
                if record.get(field_name) is not None:
                    index.setdefault(str(record[field_name]).lower(), set()).add(record["Id"])
            self._indexes[key] = index
        return index

    def _indexed(self, object_name: str, record: Record) -> None:
        for (indexed_object, field_name), index in self._indexes.items():
            if indexed_object == object_name and record.get(field_name) is not None:
                index.setdefault(str(record[field_name]).lower(), set()).add(record["Id"])

    def render(
        self, obj: ObjectDef, record: Record, version: str, fields: list[str] | None = None
    ) -> dict[str, Any]:
        """A record as the REST API returns it: ``attributes`` then each field."""
        names = [f.name for f in obj.fields.values()] if fields is None else fields
        body: dict[str, Any] = {
            "attributes": {
                "type": obj.name,
                "url": f"/services/data/v{version}/sobjects/{obj.name}/{record['Id']}",
            }
        }
        for name in names:
            definition = obj.field(name)
            if definition is None:
                raise err.InvalidField(f"No such column '{name}' on sobject of type {obj.name}")
            body[definition.name] = format_value(record.get(definition.name))
        return body

    # -- transactions -------------------------------------------------------------------
    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Everything saved inside is undone if the block raises."""
        journal: list[tuple[str, str, Record | None]] = []
        self._journals.append(journal)
        try:
            yield
        except BaseException:
            self._journals.pop()
            for object_name, record_id, before in reversed(journal):
                if before is None:
                    self.records[object_name].pop(record_id, None)
                else:
                    self.records[object_name][record_id] = before
                    self._indexed(object_name, before)
            raise
        self._journals.pop()
        if self._journals:
            self._journals[-1].extend(journal)

    def _put(self, object_name: str, record: Record) -> None:
        if self._journals:
            before = self.records[object_name].get(record["Id"])
            self._journals[-1].append(
                (object_name, record["Id"], dict(before) if before is not None else None)
            )
        self.records[object_name][record["Id"]] = record
        self._indexed(object_name, record)

    # -- writing ------------------------------------------------------------------------
    def new_id(self, obj: ObjectDef) -> str:
        self.sequence += 1
        return make_id(obj.key_prefix, self.sequence)

    def insert(
        self,
        obj: ObjectDef,
        values: dict[str, Any],
        *,
        user_id: str,
        allow_duplicates: bool = False,
    ) -> Record:
        if not obj.createable:
            raise err.InvalidInput(f"entity type {obj.name} does not support insert")
        changes = self._read_values(obj, values, creating=True)
        self._check_storage()
        now = self.state.now()
        record: Record = {f.name: f.default for f in obj.fields.values()}
        record.update(
            Id=self.new_id(obj),
            IsDeleted=False,
            CreatedDate=now,
            CreatedById=user_id,
            LastModifiedDate=now,
            LastModifiedById=user_id,
            SystemModstamp=now,
        )
        if obj.field("OwnerId") is not None:
            record["OwnerId"] = user_id
        record.update(changes)
        self._validate(
            obj, record, creating=True, changed=set(changes), allow_duplicates=allow_duplicates
        )
        self._put(obj.name, record)
        self._after_insert(obj, record, user_id)
        return record

    def update(
        self,
        obj: ObjectDef,
        record_id: str,
        values: dict[str, Any],
        *,
        user_id: str,
        allow_duplicates: bool = False,
    ) -> Record:
        current = self._writable(obj, record_id)
        if obj.name == "Lead" and current.get("IsConverted"):
            raise err.CannotUpdateConvertedLead()
        changes = self._read_values(obj, values, creating=False)
        if obj.name == "EmailMessage" and current.get("Status") != DRAFT_STATUS:
            self._check_sent_email_update(obj, current, changes)
        record = {**current, **changes}
        self._validate(
            obj, record, creating=False, changed=set(changes), allow_duplicates=allow_duplicates
        )
        now = self.state.now()
        record.update(LastModifiedDate=now, LastModifiedById=user_id, SystemModstamp=now)
        self._put(obj.name, record)
        return record

    def upsert(
        self,
        obj: ObjectDef,
        field_name: str,
        value: str,
        values: dict[str, Any],
        *,
        user_id: str,
        allow_duplicates: bool = False,
    ) -> tuple[Record, bool]:
        """Update the one record whose external id ``field_name`` is ``value``, or create it.

        Returns ``(record, created)``. Several matches answer 300 (the caller lists them).
        """
        definition = self.external_id_field(obj, field_name)
        body_value = next(
            (v for k, v in values.items() if k.lower() == definition.name.lower()), None
        )
        if body_value is not None and str(body_value) != value and definition.type != "id":
            raise err.InvalidField(
                f"The value of the {definition.name} field in the request body doesn't match "
                f"the value in the URL: {value}",
                fields=[definition.name],
            )
        matches = self.find_by(obj, definition, value)
        if len(matches) > 1:
            raise err.DuplicateExternalId(
                extra={"ids": [m["Id"] for m in matches]},
                message=f"More than one record found for external id field {definition.name}",
            )
        rest = {k: v for k, v in values.items() if k.lower() != definition.name.lower()}
        if matches:
            record = self.update(
                obj, matches[0]["Id"], rest, user_id=user_id, allow_duplicates=allow_duplicates
            )
            return record, False
        if definition.type == "id":
            raise err.NotFound(
                f"Provided external ID field does not exist or is not accessible: {value}"
            )
        record = self.insert(
            obj,
            {**rest, definition.name: value},
            user_id=user_id,
            allow_duplicates=allow_duplicates,
        )
        return record, True

    def external_id_field(self, obj: ObjectDef, field_name: str) -> FieldDef:
        definition = obj.field(field_name)
        if definition is None or not (definition.external_id or definition.type == "id"):
            raise err.NotFound(
                f"Provided external ID field does not exist or is not accessible: {field_name}"
            )
        return definition

    def delete(self, obj: ObjectDef, record_id: str, *, user_id: str) -> None:
        if not obj.deletable:
            raise err.InvalidInput(f"entity type {obj.name} does not support delete")
        record = dict(self._writable(obj, record_id))
        now = self.state.now()
        record.update(
            IsDeleted=True,
            LastModifiedById=user_id,
            SystemModstamp=now,
            LastModifiedDate=now,
            _deleted_at=now,
        )
        self._put(obj.name, record)
        self._after_delete(obj, record, user_id)

    @staticmethod
    def _check_sent_email_update(obj: ObjectDef, current: Record, changes: Record) -> None:
        """An email that is not a draft keeps what it was sent with: only custom fields
        change, and ``Status`` only from New to Read (Salesforce's rule for EmailMessage)."""
        refused = [
            name
            for name, value in changes.items()
            if not obj.fields[name].custom
            and value != current.get(name)
            and not (name == "Status" and current.get("Status") == "0" and value == "1")
        ]
        if refused:
            raise err.InsufficientAccessOrReadonly(
                "You can't edit an email message that isn't a draft: only its custom fields "
                f"can change ({', '.join(refused)}).",
                fields=refused,
            )

    def _writable(self, obj: ObjectDef, record_id: str) -> Record:
        found = self.find(record_id)
        if found is None or found[0] is not obj:
            raise err.NotFound()
        if found[1]["IsDeleted"]:
            raise err.EntityIsDeleted()
        return found[1]

    # -- the checks of a save -----------------------------------------------------------
    def _read_values(self, obj: ObjectDef, values: dict[str, Any], *, creating: bool) -> Record:
        changes: Record = {}
        locked: list[str] = []
        for name, value in values.items():
            if name == "attributes":
                continue
            definition = obj.field(name)
            if definition is None:
                raise err.InvalidField(f"No such column '{name}' on sobject of type {obj.name}")
            if not (definition.createable if creating else definition.updateable):
                locked.append(definition.name)
                continue
            changes[definition.name] = coerce(definition, value)
        if locked:
            raise err.InvalidFieldForInsertUpdate(
                f"Unable to create/update fields: {', '.join(locked)}. Please check the security "
                "settings of this field and verify that it is read/write for your profile or "
                "permission set.",
                fields=locked,
            )
        for name, value in changes.items():
            definition = obj.fields[name]
            if (
                definition.type == "picklist"
                and value is not None
                and definition.restricted_picklist
            ) and value not in definition.picklist_values():
                raise err.InvalidRestrictedPicklist(
                    f"{definition.label}: bad value for restricted picklist field: {value}",
                    fields=[name],
                )
            if definition.type == "reference" and value is not None:
                changes[name] = self._check_reference(definition, value)
        return changes

    def _check_reference(self, definition: FieldDef, value: str) -> str:
        full = normalize(value)
        target = self.schema.by_prefix(full) if full else None
        if full is None or target is None or target.name not in definition.reference_to:
            raise err.MalformedId(
                f"{definition.label}: id value of incorrect type: {value}", fields=[definition.name]
            )
        record = self.records[target.name].get(full)
        if record is None:
            raise err.InvalidCrossReferenceKey(
                f"{definition.label}: invalid cross reference id", fields=[definition.name]
            )
        if record["IsDeleted"]:
            raise err.EntityIsDeleted("entity is deleted", fields=[definition.name])
        if target.name == "User" and definition.name == "OwnerId" and not record["IsActive"]:
            raise err.InactiveOwnerOrUser()
        if target.name == "Lead" and record.get("IsConverted") and definition.name == "WhoId":
            raise err.FieldIntegrityException(
                "You can't associate a converted lead with an activity.", fields=[definition.name]
            )
        return full

    def _validate(
        self,
        obj: ObjectDef,
        record: Record,
        *,
        creating: bool,
        changed: set[str],
        allow_duplicates: bool,
    ) -> None:
        self._derive(obj, record, changed)
        missing = [
            f.name for f in obj.fields.values() if f.required and record.get(f.name) in (None, "")
        ]
        if missing:
            raise err.RequiredFieldMissing(
                f"Required fields are missing: [{', '.join(missing)}]", fields=missing
            )
        for rule in self.validation_rules:
            applies = rule.active and rule.object == obj.name and (creating or rule.on_update)
            if applies and rule.violated_by(record):
                raise err.FieldCustomValidationException(rule.message, fields=[rule.field])
        for definition in obj.fields.values():
            if (
                definition.unique
                and record.get(definition.name) is not None
                and (creating or definition.name in changed)
            ):
                clash = [
                    r
                    for r in self.find_by(obj, definition, record[definition.name])
                    if r["Id"] != record["Id"]
                ]
                if clash:
                    raise err.DuplicateValue(
                        f"duplicate value found: {definition.name} duplicates value on record "
                        f"with id: {clash[0]['Id']}"
                    )
        if obj.name == "EventRelation":
            for other in self.live("EventRelation"):
                if other["Id"] != record["Id"] and (other["EventId"], other["RelationId"]) == (
                    record["EventId"],
                    record["RelationId"],
                ):
                    raise err.DuplicateValue(
                        f"duplicate value found: <unknown> duplicates value on record with id: "
                        f"{other['Id']}"
                    )
        self._check_duplicate_rules(obj, record, allow_duplicates)

    def _check_duplicate_rules(
        self, obj: ObjectDef, record: Record, allow_duplicates: bool
    ) -> None:
        for rule in self.duplicate_rules:
            if not rule.active or rule.object != obj.name:
                continue
            key = rule.key(record)
            if key is None:
                continue
            matches = [
                r for r in self.live(obj.name) if r["Id"] != record["Id"] and rule.key(r) == key
            ]
            if not matches:
                continue
            allow_save = rule.action == "alert"
            if allow_save and allow_duplicates:
                continue
            version = "59.0"
            raise err.DuplicatesDetected(
                extra={
                    "duplicateResult": {
                        "allowSave": allow_save,
                        "duplicateRule": rule.name,
                        "duplicateRuleEntityType": obj.name,
                        "errorMessage": err.DuplicatesDetected.message,
                        "matchResults": [
                            {
                                "entityType": obj.name,
                                "errors": [],
                                "matchEngine": "ExactMatchEngine",
                                "matchRecords": [
                                    {
                                        "additionalInformation": [],
                                        "fieldDiffs": [],
                                        "matchConfidence": 100.0,
                                        "record": {
                                            "attributes": {
                                                "type": obj.name,
                                                "url": f"/services/data/v{version}/sobjects/"
                                                f"{obj.name}/{m['Id']}",
                                            },
                                            "Id": m["Id"],
                                        },
                                    }
                                    for m in matches
                                ],
                                "rule": rule.matching_rule,
                                "size": len(matches),
                                "success": True,
                            }
                        ],
                    }
                }
            )

    def _check_storage(self) -> None:
        stored = sum(len(records) for records in self.records.values())
        if (stored + 1) * RECORD_BYTES > self.state.config.data_storage_mb * 1024 * 1024:
            raise err.StorageLimitExceeded()

    def storage_used_mb(self) -> int:
        stored = sum(len(records) for records in self.records.values())
        return (stored * RECORD_BYTES) // (1024 * 1024)

    # -- object semantics ---------------------------------------------------------------
    def _derive(self, obj: ObjectDef, record: Record, changed: set[str]) -> None:
        """Fields Salesforce computes, and the rules of one object's shape."""
        if obj.name in ("Contact", "Lead", "User"):
            record["Name"] = (
                " ".join(p for p in (record.get("FirstName"), record.get("LastName")) if p) or None
            )
        if obj.name == "Opportunity":
            stage = record.get("StageName")
            record["IsClosed"] = stage in CLOSED_STAGES
            record["IsWon"] = CLOSED_STAGES.get(stage or "", False)
        if obj.name == "Task":
            record["IsClosed"] = record.get("Status") == "Completed"
        if obj.name == "Event":
            self._derive_event(record, changed)
        if obj.name == "EmailMessageRelation":
            relation = record.get("RelationId")
            target = self.schema.by_prefix(relation) if relation else None
            record["RelationObjectType"] = target.name if target else None
            if relation is None and not record.get("RelationAddress"):
                raise err.RequiredFieldMissing(
                    "Required fields are missing: [RelationId]", fields=["RelationId"]
                )

    def _derive_event(self, record: Record, changed: set[str]) -> None:
        if record.get("IsAllDayEvent"):
            start_day = record.get("ActivityDate") or (
                record["StartDateTime"].date() if record.get("StartDateTime") else None
            )
            if start_day is None:
                raise err.RequiredFieldMissing(
                    "Required fields are missing: [ActivityDate]", fields=["ActivityDate"]
                )
            end = record.get("EndDateTime")
            days = (
                max(1, (end.date() - start_day).days + 1)
                if isinstance(end, datetime)
                else max(1, (record.get("DurationInMinutes") or 1440) // 1440)
            )
            midnight = datetime(
                start_day.year, start_day.month, start_day.day, tzinfo=self.state.now().tzinfo
            )
            record.update(
                ActivityDate=start_day,
                ActivityDateTime=None,
                StartDateTime=midnight,
                EndDateTime=midnight + timedelta(days=days - 1),
                DurationInMinutes=days * 1440,
            )
            return
        start = record.get("StartDateTime") or record.get("ActivityDateTime")
        if start is None:
            raise err.RequiredFieldMissing(
                "Required fields are missing: [ActivityDateTime]", fields=["ActivityDateTime"]
            )
        end = record.get("EndDateTime")
        duration = record.get("DurationInMinutes")
        if end is None and duration is None:
            raise err.RequiredFieldMissing(
                "Required fields are missing: [DurationInMinutes]", fields=["DurationInMinutes"]
            )
        # The end follows the duration unless the end itself is what this save sets.
        if end is None or (duration is not None and "EndDateTime" not in changed):
            end = start + timedelta(minutes=duration or 0)
        duration = int((end - start).total_seconds() // 60)
        if duration < 0:
            raise err.FieldIntegrityException(
                "End Date Time: End time can't be before start time.", fields=["EndDateTime"]
            )
        if duration > MAX_EVENT_MINUTES:
            raise err.FieldIntegrityException(
                "Event duration can't be longer than 14 days.", fields=["DurationInMinutes"]
            )
        record.update(
            StartDateTime=start,
            ActivityDateTime=start,
            ActivityDate=start.date(),
            EndDateTime=end,
            DurationInMinutes=duration,
        )

    def _after_insert(self, obj: ObjectDef, record: Record, user_id: str) -> None:
        if obj.name == "EmailMessage" and record.get("Status") != DRAFT_STATUS:
            self._create_email_task(record, user_id)
        if obj.name == "Event" and record.get("WhoId"):
            self._relate_event_who(record, user_id)

    def _relate_event_who(self, event: Record, user_id: str) -> None:
        """Shared Activities: an Event's contact or lead (``WhoId``) is one of its
        EventRelations (``IsParent``, not an invitee); relating it again is a duplicate."""
        relation_obj = self.object("EventRelation")
        relation: Record = {f.name: f.default for f in relation_obj.fields.values()}
        relation.update(
            Id=self.new_id(relation_obj),
            IsDeleted=False,
            CreatedDate=event["CreatedDate"],
            CreatedById=user_id,
            LastModifiedDate=event["CreatedDate"],
            LastModifiedById=user_id,
            SystemModstamp=event["CreatedDate"],
            EventId=event["Id"],
            RelationId=event["WhoId"],
            IsParent=True,
            IsInvitee=False,
            IsWhat=False,
        )
        self._put("EventRelation", relation)

    def _create_email_task(self, email: Record, user_id: str) -> None:
        """Enhanced Email: every email message saved (not a draft) gets its Task."""
        task_obj = self.object("Task")
        when = email.get("MessageDate") or email["CreatedDate"]
        subject = email.get("Subject") or ""
        task: Record = {f.name: f.default for f in task_obj.fields.values()}
        what = email.get("RelatedToId")
        task.update(
            Id=self.new_id(task_obj),
            IsDeleted=False,
            CreatedDate=email["CreatedDate"],
            CreatedById=user_id,
            LastModifiedDate=email["CreatedDate"],
            LastModifiedById=user_id,
            SystemModstamp=email["CreatedDate"],
            OwnerId=user_id,
            Subject=f"Email: {subject}"[:255],
            Status="Completed",
            Priority="Normal",
            TaskSubtype="Email",
            ActivityDate=when.date(),
            IsClosed=True,
            WhatId=what,
            Description=(email.get("TextBody") or "")[:32000] or None,
        )
        self._put("Task", task)
        updated = {**email, "ActivityId": task["Id"]}
        self._put("EmailMessage", updated)
        email["ActivityId"] = task["Id"]

    def _after_delete(self, obj: ObjectDef, record: Record, user_id: str) -> None:
        if obj.name == "EmailMessage" and record.get("ActivityId"):
            task = self.records["Task"].get(record["ActivityId"])
            if task is not None and not task["IsDeleted"]:
                self.delete(self.object("Task"), task["Id"], user_id=user_id)
        if obj.name in ("Event", "EmailMessage"):
            child, parent_field = (
                ("EventRelation", "EventId")
                if obj.name == "Event"
                else ("EmailMessageRelation", "EmailMessageId")
            )
            for relation in list(self.live(child)):
                if relation[parent_field] == record["Id"]:
                    self.delete(self.object(child), relation["Id"], user_id=user_id)

    # -- lead conversion (Salesforce does it in Apex or the UI, not over REST) ----------
    def convert_lead(
        self,
        lead_id: str,
        *,
        user_id: str,
        account_id: str | None = None,
        create_opportunity: bool = True,
    ) -> Record:
        lead_obj = self.object("Lead")
        lead = self._writable(lead_obj, lead_id)
        if lead.get("IsConverted"):
            raise err.CannotUpdateConvertedLead()
        with self.atomic():
            if account_id is None:
                account = self.insert(
                    self.object("Account"), {"Name": lead["Company"]}, user_id=user_id
                )
                account_id = account["Id"]
            contact = self.insert(
                self.object("Contact"),
                {
                    "FirstName": lead.get("FirstName"),
                    "LastName": lead["LastName"],
                    "Email": lead.get("Email"),
                    "Phone": lead.get("Phone"),
                    "Title": lead.get("Title"),
                    "AccountId": account_id,
                },
                user_id=user_id,
                allow_duplicates=True,
            )
            opportunity_id = None
            if create_opportunity:
                opportunity = self.insert(
                    self.object("Opportunity"),
                    {
                        "Name": f"{lead['Company']}-",
                        "AccountId": account_id,
                        "StageName": "Prospecting",
                        "CloseDate": (self.state.now().date() + timedelta(days=30)).isoformat(),
                    },
                    user_id=user_id,
                )
                opportunity_id = opportunity["Id"]
            now = self.state.now()
            converted = {
                **lead,
                "IsConverted": True,
                "ConvertedDate": now.date(),
                "Status": "Closed - Converted",
                "ConvertedAccountId": account_id,
                "ConvertedContactId": contact["Id"],
                "ConvertedOpportunityId": opportunity_id,
                "SystemModstamp": now,
                "LastModifiedDate": now,
                "LastModifiedById": user_id,
            }
            self._put("Lead", converted)
        return converted
