"""The standard objects sfsim models, with Salesforce's key prefixes and the fields an
email, calendar and task integration touches (a subset of each object's real fields).

Key prefixes are Salesforce's (the same in every org for standard objects). Fields
Salesforce computes (``Name`` of a person, ``IsClosed``, ``ActivityId``...) are neither
createable nor updateable, as in describe.
"""

from __future__ import annotations

from sfsim.schema.fields import FieldDef, ObjectDef, PicklistValue, Schema

KEY_PREFIXES = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Opportunity": "006",
    "OpportunityContactRole": "00K",
    "Lead": "00Q",
    "Task": "00T",
    "Event": "00U",
    "EmailMessage": "02s",
    "EmailMessageRelation": "0Rm",
    "EventRelation": "0RE",
}
ORGANIZATION_PREFIX = "00D"
QUERY_LOCATOR_PREFIX = "01g"
# Objects an activity's WhoId / WhatId may point to.
WHO_OBJECTS = ("Contact", "Lead")
WHAT_OBJECTS = ("Account", "Opportunity")


def _picklist(*values: str, default: str | None = None) -> tuple[PicklistValue, ...]:
    return tuple(PicklistValue(v, default=v == default) for v in values)


def _system_fields(owned: bool) -> list[FieldDef]:
    fields = [
        FieldDef(
            "Id",
            "id",
            label="Record ID",
            length=18,
            nillable=False,
            createable=False,
            updateable=False,
        ),
        FieldDef("IsDeleted", "boolean", label="Deleted", createable=False, updateable=False),
        FieldDef("CreatedDate", "datetime", nillable=False, createable=False, updateable=False),
        FieldDef(
            "CreatedById",
            "reference",
            label="Created By ID",
            nillable=False,
            createable=False,
            updateable=False,
            reference_to=("User",),
            relationship_name="CreatedBy",
        ),
        FieldDef(
            "LastModifiedDate", "datetime", nillable=False, createable=False, updateable=False
        ),
        FieldDef(
            "LastModifiedById",
            "reference",
            label="Last Modified By ID",
            nillable=False,
            createable=False,
            updateable=False,
            reference_to=("User",),
            relationship_name="LastModifiedBy",
        ),
        FieldDef("SystemModstamp", "datetime", nillable=False, createable=False, updateable=False),
    ]
    if owned:
        fields.append(
            FieldDef(
                "OwnerId",
                "reference",
                label="Owner ID",
                nillable=False,
                reference_to=("User",),
                relationship_name="Owner",
                defaulted_on_create=True,
            )
        )
    return fields


def _object(
    name: str, fields: list[FieldDef], *, owned: bool = True, **kwargs: object
) -> ObjectDef:
    all_fields = {f.name: f for f in [*_system_fields(owned), *fields]}
    return ObjectDef(name=name, key_prefix=KEY_PREFIXES[name], fields=all_fields, **kwargs)  # type: ignore[arg-type]


def _ref(name: str, to: tuple[str, ...], relationship: str, **kwargs: object) -> FieldDef:
    return FieldDef(name, "reference", reference_to=to, relationship_name=relationship, **kwargs)  # type: ignore[arg-type]


def _computed(name: str, type_: str, **kwargs: object) -> FieldDef:
    return FieldDef(name, type_, createable=False, updateable=False, **kwargs)  # type: ignore[arg-type]


def standard_schema() -> Schema:
    """A fresh copy of the standard objects (custom fields are added to it per org)."""
    user = _object(
        "User",
        [
            FieldDef("Username", "string", length=80, nillable=False, unique=True),
            FieldDef("FirstName", "string", length=40),
            FieldDef("LastName", "string", length=80, nillable=False),
            _computed("Name", "string", length=121, nillable=False, calculated=True),
            FieldDef("Email", "email", length=128, nillable=False),
            FieldDef("Alias", "string", length=8, nillable=False),
            FieldDef("IsActive", "boolean", label="Active", default=True),
            FieldDef(
                "TimeZoneSidKey",
                "picklist",
                nillable=False,
                picklist=_picklist(
                    "America/Los_Angeles",
                    "America/New_York",
                    "Europe/London",
                    "Europe/Berlin",
                    "GMT",
                    default="America/Los_Angeles",
                ),
            ),
            FieldDef("Title", "string", length=80),
        ],
        owned=False,
        label_plural="Users",
    )
    account = _object(
        "Account",
        [
            FieldDef("Name", "string", nillable=False, label="Account Name"),
            FieldDef(
                "Type",
                "picklist",
                label="Account Type",
                picklist=_picklist(
                    "Prospect", "Customer - Direct", "Customer - Channel", "Partner", "Other"
                ),
            ),
            FieldDef(
                "Industry",
                "picklist",
                picklist=_picklist(
                    "Technology", "Finance", "Healthcare", "Manufacturing", "Retail", "Other"
                ),
            ),
            FieldDef("Website", "url"),
            FieldDef("Phone", "phone", label="Account Phone"),
            FieldDef("BillingCity", "string", length=40),
            FieldDef("BillingCountry", "string", length=80),
            FieldDef("Description", "textarea"),
        ],
    )
    contact = _object(
        "Contact",
        [
            FieldDef("FirstName", "string", length=40),
            FieldDef("LastName", "string", length=80, nillable=False),
            _computed(
                "Name", "string", length=121, nillable=False, calculated=True, label="Full Name"
            ),
            FieldDef("Email", "email"),
            FieldDef("Phone", "phone", label="Business Phone"),
            FieldDef("Title", "string", length=128),
            _ref("AccountId", ("Account",), "Account", label="Account ID"),
            FieldDef("Description", "textarea"),
        ],
    )
    lead = _object(
        "Lead",
        [
            FieldDef("FirstName", "string", length=40),
            FieldDef("LastName", "string", length=80, nillable=False),
            _computed(
                "Name", "string", length=121, nillable=False, calculated=True, label="Full Name"
            ),
            FieldDef("Company", "string", nillable=False),
            FieldDef("Email", "email"),
            FieldDef("Phone", "phone"),
            FieldDef("Title", "string", length=128),
            FieldDef(
                "Status",
                "picklist",
                nillable=False,
                label="Lead Status",
                picklist=_picklist(
                    "Open - Not Contacted",
                    "Working - Contacted",
                    "Closed - Converted",
                    "Closed - Not Converted",
                    default="Open - Not Contacted",
                ),
            ),
            _computed("IsConverted", "boolean", label="Converted"),
            _computed("ConvertedDate", "date"),
            _ref(
                "ConvertedAccountId",
                ("Account",),
                "ConvertedAccount",
                createable=False,
                updateable=False,
            ),
            _ref(
                "ConvertedContactId",
                ("Contact",),
                "ConvertedContact",
                createable=False,
                updateable=False,
            ),
            _ref(
                "ConvertedOpportunityId",
                ("Opportunity",),
                "ConvertedOpportunity",
                createable=False,
                updateable=False,
            ),
        ],
    )
    opportunity = _object(
        "Opportunity",
        [
            FieldDef("Name", "string", length=120, nillable=False),
            _ref("AccountId", ("Account",), "Account", label="Account ID"),
            FieldDef(
                "StageName",
                "picklist",
                nillable=False,
                label="Stage",
                restricted_picklist=True,
                picklist=_picklist(
                    "Prospecting",
                    "Qualification",
                    "Needs Analysis",
                    "Proposal/Price Quote",
                    "Negotiation/Review",
                    "Closed Won",
                    "Closed Lost",
                ),
            ),
            FieldDef("CloseDate", "date", nillable=False),
            FieldDef("Amount", "currency", precision=18, scale=2),
            _computed("IsClosed", "boolean", label="Closed"),
            _computed("IsWon", "boolean", label="Won"),
            FieldDef("Description", "textarea"),
        ],
    )
    contact_role = _object(
        "OpportunityContactRole",
        [
            _ref(
                "OpportunityId", ("Opportunity",), "Opportunity", nillable=False, updateable=False
            ),
            _ref("ContactId", ("Contact",), "Contact", nillable=False),
            FieldDef(
                "Role",
                "picklist",
                picklist=_picklist(
                    "Business User",
                    "Decision Maker",
                    "Economic Buyer",
                    "Economic Decision Maker",
                    "Evaluator",
                    "Executive Sponsor",
                    "Influencer",
                    "Technical Buyer",
                    "Other",
                ),
            ),
            FieldDef("IsPrimary", "boolean", label="Primary"),
        ],
        owned=False,
        label="Opportunity Contact Role",
    )
    task = _object(
        "Task",
        [
            FieldDef("Subject", "string", length=255),
            FieldDef(
                "Status",
                "picklist",
                nillable=False,
                picklist=_picklist(
                    "Not Started",
                    "In Progress",
                    "Completed",
                    "Waiting on someone else",
                    "Deferred",
                    default="Not Started",
                ),
            ),
            FieldDef(
                "Priority",
                "picklist",
                nillable=False,
                picklist=_picklist("High", "Normal", "Low", default="Normal"),
            ),
            FieldDef(
                "TaskSubtype",
                "picklist",
                updateable=False,
                restricted_picklist=True,
                picklist=_picklist("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn"),
            ),
            _ref("WhoId", WHO_OBJECTS, "Who", label="Name ID"),
            _ref("WhatId", WHAT_OBJECTS, "What", label="Related To ID"),
            FieldDef("ActivityDate", "date", label="Due Date Only"),
            FieldDef("Description", "textarea"),
            _computed("IsClosed", "boolean", label="Closed"),
        ],
    )
    event = _object(
        "Event",
        [
            FieldDef("Subject", "string", length=255),
            FieldDef("StartDateTime", "datetime", label="Start"),
            FieldDef("EndDateTime", "datetime", label="End"),
            FieldDef("IsAllDayEvent", "boolean", label="All-Day Event"),
            FieldDef("DurationInMinutes", "int", label="Duration"),
            FieldDef(
                "IsRecurrence",
                "boolean",
                updateable=False,
                label="Create Recurring Series of Events",
            ),
            FieldDef("ActivityDateTime", "datetime", label="Due Date Time"),
            FieldDef("ActivityDate", "date", label="Due Date Only"),
            FieldDef("Location", "string", length=255),
            FieldDef("Description", "textarea"),
            _ref("WhoId", WHO_OBJECTS, "Who", label="Name ID"),
            _ref("WhatId", WHAT_OBJECTS, "What", label="Related To ID"),
        ],
    )
    event_relation = _object(
        "EventRelation",
        [
            _ref("EventId", ("Event",), "Event", nillable=False, updateable=False),
            _ref(
                "RelationId",
                ("Contact", "Lead", "User"),
                "Relation",
                nillable=False,
                updateable=False,
            ),
            FieldDef("IsInvitee", "boolean", default=True),
            FieldDef("IsParent", "boolean"),
            FieldDef("IsWhat", "boolean", updateable=False),
            FieldDef(
                "Status",
                "picklist",
                restricted_picklist=True,
                picklist=_picklist("New", "Accepted", "Declined", default="New"),
            ),
            FieldDef("Response", "string", length=255),
        ],
        owned=False,
        label="Event Relation",
    )
    email = _object(
        "EmailMessage",
        [
            FieldDef("Subject", "string", length=3000),
            FieldDef("TextBody", "textarea", length=131072),
            FieldDef("HtmlBody", "textarea", length=131072),
            FieldDef("FromAddress", "email", length=1000),
            FieldDef("FromName", "string", length=1000),
            FieldDef("ToAddress", "string", length=4000),
            FieldDef("CcAddress", "string", length=4000),
            FieldDef("BccAddress", "string", length=4000),
            FieldDef("MessageDate", "datetime"),
            FieldDef("MessageIdentifier", "string", length=255),
            FieldDef("ThreadIdentifier", "string", length=255),
            FieldDef(
                "Status",
                "picklist",
                nillable=False,
                restricted_picklist=True,
                picklist=_picklist("0", "1", "2", "3", "4", "5"),
            ),
            FieldDef("Incoming", "boolean", updateable=False),
            _ref("RelatedToId", ("Account", "Opportunity"), "RelatedTo"),
            _ref("ActivityId", ("Task",), "Activity", createable=False, updateable=False),
        ],
        owned=False,
        label="Email Message",
    )
    email_relation = _object(
        "EmailMessageRelation",
        [
            _ref(
                "EmailMessageId",
                ("EmailMessage",),
                "EmailMessage",
                nillable=False,
                updateable=False,
            ),
            _ref("RelationId", ("Contact", "Lead", "User"), "Relation", updateable=False),
            FieldDef(
                "RelationType",
                "picklist",
                nillable=False,
                restricted_picklist=True,
                updateable=False,
                picklist=_picklist("FromAddress", "ToAddress", "CcAddress", "BccAddress"),
            ),
            FieldDef("RelationAddress", "email", length=1000, updateable=False),
            _computed("RelationObjectType", "string", length=40),
        ],
        owned=False,
        label="Email Message Relation",
    )
    return Schema(
        [
            user,
            account,
            contact,
            lead,
            opportunity,
            contact_role,
            task,
            event,
            event_relation,
            email,
            email_relation,
        ]
    )
