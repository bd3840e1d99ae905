"""Run Test for Salesforce: small named checks, run in order, each with a cause and a fix.

1. ``sign_in``: the connection's sign-in works (the flow's own refusal names the cause).
2. ``api_access``: the integration user may use the REST API; who it is.
3. ``enhanced_email``: whether emails become EmailMessages (Enhanced Email) or, without
   it, Tasks with TaskSubtype Email (a warning, not a failure).
4. ``read_people``: the integration user reads Contacts, Leads, Accounts and Users.
5. ``email_writes`` / ``calendar_writes`` / ``task_writes``: every object and field the
   enabled features write is there and writable.
6. ``external_id:<Object>.<Field>``: each External ID field m365sync upserts by exists and
   is marked External ID (named, with how to create it).
7. ``api_budget``: the org's API requests left in the rolling 24 hours, and m365sync's
   share of them.

A failed sign-in or API access skips the rest. About a dozen API requests in all (describes
are cached by the client), outside the organization's budget: an admin asked for them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from m365sync.crm.models import EmailTarget
from m365sync.crm.salesforce_schemas import CheckOutcome, SalesforceCheck, SalesforceTestReport
from m365sync.salesforce import SalesforceClient, SalesforceError, quote_soql
from m365sync.salesforce.errors import PERMISSIONS_HINT
from m365sync.salesforce.limits import allowance

__all__ = [
    "EMAIL_MESSAGE_FIELDS",
    "EXTERNAL_IDS",
    "FEATURES",
    "run_salesforce_checks",
]

FEATURES = ("email", "calendar", "tasks")

EMAIL_MESSAGE_FIELDS = (
    "Subject",
    "TextBody",
    "HtmlBody",
    "FromAddress",
    "FromName",
    "ToAddress",
    "CcAddress",
    "BccAddress",
    "MessageDate",
    "MessageIdentifier",
    "Status",
    "Incoming",
    "RelatedToId",
)
EMAIL_RELATION_FIELDS = ("EmailMessageId", "RelationId", "RelationType")
EMAIL_TASK_FIELDS = (
    "Subject",
    "Description",
    "ActivityDate",
    "Status",
    "TaskSubtype",
    "WhoId",
    "WhatId",
    "OwnerId",
)
EVENT_FIELDS = (
    "Subject",
    "StartDateTime",
    "EndDateTime",
    "IsAllDayEvent",
    "ActivityDate",
    "DurationInMinutes",
    "Location",
    "Description",
    "WhoId",
    "WhatId",
    "OwnerId",
)
EVENT_RELATION_FIELDS = ("EventId", "RelationId", "IsInvitee", "IsParent")
TODO_FIELDS = (
    "Subject",
    "Description",
    "ActivityDate",
    "Status",
    "Priority",
    "TaskSubtype",
    "OwnerId",
)
PEOPLE_FIELDS = {
    "Contact": ("Email", "FirstName", "LastName", "AccountId"),
    "Lead": ("Email", "FirstName", "LastName", "Company", "IsConverted"),
    "Account": ("Name",),
    "User": ("Email", "Username", "Name", "IsActive"),
}


@dataclass(frozen=True)
class ExternalIdField:
    sobject: str
    field: str
    label: str
    holds: str
    setup_object: str
    """Where Setup → Object Manager defines it (Task and Event share Activity's fields)."""
    unique: bool


EXTERNAL_IDS = {
    ("email", EmailTarget.EMAIL_MESSAGE): ExternalIdField(
        "EmailMessage",
        "M365Sync_Message_Id__c",
        "M365Sync Message Id",
        "each email's Internet Message-ID, so an email is logged once however many "
        "mailboxes hold it",
        "Email Message",
        True,
    ),
    ("email", EmailTarget.TASK): ExternalIdField(
        "Task",
        "M365Sync_Message_Id__c",
        "M365Sync Message Id",
        "each email's Internet Message-ID, so an email is logged once however many "
        "mailboxes hold it",
        "Activity",
        False,
    ),
    ("calendar", None): ExternalIdField(
        "Event",
        "M365Sync_Event_Id__c",
        "M365Sync Event Id",
        "each meeting's iCalUId, so a meeting is one Event however many calendars hold it",
        "Activity",
        False,
    ),
    ("tasks", None): ExternalIdField(
        "Task",
        "M365Sync_Todo_Id__c",
        "M365Sync Todo Id",
        "each Microsoft To Do task's id, so a task is written once",
        "Activity",
        False,
    ),
}


class _Stop(Exception):
    """This check failed, and the ones after it cannot run."""

    def __init__(self, check: SalesforceCheck) -> None:
        super().__init__(check.message)
        self.check = check


@dataclass
class _Context:
    client: SalesforceClient
    features: frozenset[str]
    share: float
    email_target: EmailTarget | None = None
    username: str = ""
    objects: dict[str, dict[str, Any]] | None = None
    api_used: int | None = None
    api_limit: int | None = None

    def global_objects(self) -> dict[str, dict[str, Any]]:
        if self.objects is None:
            answer = self.client.describe_global()
            self.objects = {
                str(o.get("name")): o for o in answer.get("sobjects") or [] if isinstance(o, dict)
            }
        return self.objects

    def fields(self, sobject: str) -> dict[str, dict[str, Any]] | None:
        """The object's fields as the integration user sees them; None: no such object."""
        if sobject not in self.global_objects():
            return None
        answer = self.client.describe(sobject)
        return {str(f.get("name")): f for f in answer.get("fields") or [] if isinstance(f, dict)}


def _check(name: str, title: str) -> Callable[..., SalesforceCheck]:
    def make(outcome: CheckOutcome, message: str, fix: str = "") -> SalesforceCheck:
        return SalesforceCheck(name, title, outcome, message, fix)

    return make


def check_sign_in(ctx: _Context) -> SalesforceCheck:
    make = _check("sign_in", "Sign in")
    try:
        token = ctx.client.token
    except SalesforceError as error:
        raise _Stop(make(CheckOutcome.FAILED, error.message, error.fix or "")) from error
    return make(
        CheckOutcome.PASSED,
        f"m365sync signed in to the Salesforce org {token.org_id or '(unknown)'} at "
        f"{token.instance_url}.",
    )


def check_api_access(ctx: _Context) -> SalesforceCheck:
    make = _check("api_access", "API access")
    try:
        user_id = ctx.client.token.user_id
        users = ctx.client.query_all(
            f"SELECT Id, Username, Name FROM User WHERE Id = {quote_soql(user_id)}"  # noqa: S608
        )
        limits = ctx.client.limits()
    except SalesforceError as error:
        raise _Stop(make(CheckOutcome.FAILED, error.message, error.fix or "")) from error
    daily = limits.get("DailyApiRequests") or {}
    if isinstance(daily, dict) and "Max" in daily and "Remaining" in daily:
        ctx.api_limit = int(daily["Max"])
        ctx.api_used = max(0, ctx.api_limit - int(daily["Remaining"]))
    who = str(users[0].get("Username") or user_id) if users else user_id
    ctx.username = who
    return make(CheckOutcome.PASSED, f"m365sync uses Salesforce's REST API as {who}.")


def check_enhanced_email(ctx: _Context) -> SalesforceCheck | None:
    if "email" not in ctx.features:
        return None
    make = _check("enhanced_email", "Enhanced Email")
    objects = ctx.global_objects()
    email = objects.get("EmailMessage") or {}
    relation = objects.get("EmailMessageRelation") or {}
    fields = ctx.fields("EmailMessage") if email else None
    related_to = (fields or {}).get("RelatedToId") or {}
    if email.get("createable") and relation.get("createable") and related_to.get("createable"):
        ctx.email_target = EmailTarget.EMAIL_MESSAGE
        return make(
            CheckOutcome.PASSED,
            "Enhanced Email is on: each email becomes one EmailMessage, related to every "
            "contact, lead and user it involves.",
        )
    ctx.email_target = EmailTarget.TASK
    return make(
        CheckOutcome.WARNING,
        "Enhanced Email is off in this org: m365sync logs each email as a completed Task "
        "(TaskSubtype Email), related to one contact or lead.",
        "To log each email once with everyone it involves, turn on Enhanced Email (Setup → "
        "Enhanced Email → Enable Enhanced Email), then Run Test again.",
    )


def _missing(
    ctx: _Context, sobject: str, wanted: Collection[str], *, update: bool = False
) -> list[str] | None:
    """The fields of ``wanted`` the integration user can't write (None: no such object)."""
    fields = ctx.fields(sobject)
    if fields is None:
        return None
    missing = []
    for name in wanted:
        described = fields.get(name) or {}
        writable = bool(described.get("createable")) and (
            not update or name == "TaskSubtype" or bool(described.get("updateable"))
        )
        if not writable:
            missing.append(name)
    return missing


def _writes(
    ctx: _Context, name: str, title: str, needs: list[tuple[str, Collection[str], bool]]
) -> SalesforceCheck:
    make = _check(name, title)
    problems = []
    for sobject, wanted, update in needs:
        missing = _missing(ctx, sobject, wanted, update=update)
        if missing is None:
            problems.append(f"the integration user can't see the {sobject} object")
        elif missing:
            problems.append(f"{sobject}: {', '.join(missing)}")
    objects = ", ".join(dict.fromkeys(sobject for sobject, _, _ in needs))
    if problems:
        return make(
            CheckOutcome.FAILED,
            f"m365sync can't write everything {title.lower()} needs ({'; '.join(problems)}).",
            f"Give the integration user Create, Read and Edit on {objects} and Edit on those "
            "fields (its permission set → Object Settings → the object → Field Permissions).",
        )
    return make(CheckOutcome.PASSED, f"The integration user can write {objects}.")


def check_read_people(ctx: _Context) -> SalesforceCheck:
    make = _check("read_people", "Reading contacts, leads, accounts and users")
    problems = []
    for sobject, wanted in PEOPLE_FIELDS.items():
        fields = ctx.fields(sobject)
        if fields is None:
            problems.append(f"the {sobject} object")
            continue
        missing = [f for f in wanted if f not in fields]
        if missing:
            problems.append(f"{sobject}: {', '.join(missing)}")
    if problems:
        return make(
            CheckOutcome.FAILED,
            f"The integration user can't read {'; '.join(problems)}: m365sync finds whom an "
            "email or meeting concerns there.",
            "Give the integration user Read on Contact, Lead, Account and User and on those "
            "fields (its permission set's Object Settings).",
        )
    return make(CheckOutcome.PASSED, "The integration user reads contacts, leads and accounts.")


def check_email_writes(ctx: _Context) -> SalesforceCheck | None:
    if "email" not in ctx.features:
        return None
    if ctx.email_target == EmailTarget.TASK:
        return _writes(ctx, "email_writes", "Email Sync", [("Task", EMAIL_TASK_FIELDS, False)])
    return _writes(
        ctx,
        "email_writes",
        "Email Sync",
        [
            ("EmailMessage", EMAIL_MESSAGE_FIELDS, False),
            ("EmailMessageRelation", EMAIL_RELATION_FIELDS, False),
        ],
    )


def check_calendar_writes(ctx: _Context) -> SalesforceCheck | None:
    if "calendar" not in ctx.features:
        return None
    return _writes(
        ctx,
        "calendar_writes",
        "Calendar Sync",
        [("Event", EVENT_FIELDS, True), ("EventRelation", EVENT_RELATION_FIELDS, False)],
    )


def check_task_writes(ctx: _Context) -> SalesforceCheck | None:
    if "tasks" not in ctx.features:
        return None
    return _writes(ctx, "task_writes", "Task Sync", [("Task", TODO_FIELDS, True)])


def _external_id(ctx: _Context, wanted: ExternalIdField) -> SalesforceCheck:
    make = _check(
        f"external_id:{wanted.sobject}.{wanted.field}",
        f"External ID {wanted.sobject}.{wanted.field}",
    )
    described = (ctx.fields(wanted.sobject) or {}).get(wanted.field)
    unique = " and Unique (case sensitive)" if wanted.unique else ""
    create = (
        f"Create it: Setup → Object Manager → {wanted.setup_object} → Fields & Relationships → "
        f"New → Text, Length 255, Field Label '{wanted.label}' (Field Name "
        f"{wanted.field.removesuffix('__c')}), tick External ID{unique}; then give the "
        "integration user Read and Edit on it (Set Field-Level Security, or its permission "
        "set's Field Permissions)."
    )
    if described is None:
        return make(
            CheckOutcome.FAILED,
            f"Salesforce has no field {wanted.field} on {wanted.sobject} that the integration "
            f"user can see. m365sync writes by it: it holds {wanted.holds}.",
            create,
        )
    if not described.get("externalId"):
        return make(
            CheckOutcome.FAILED,
            f"{wanted.sobject}.{wanted.field} exists but is not marked External ID, so "
            "m365sync can't write by it.",
            f"Setup → Object Manager → {wanted.setup_object} → Fields & Relationships → "
            f"{wanted.label} → Edit: tick External ID{unique}.",
        )
    if not (described.get("createable") and described.get("updateable")):
        return make(
            CheckOutcome.FAILED,
            f"The integration user can't edit {wanted.sobject}.{wanted.field}.",
            "Give the integration user Read and Edit on the field (Set Field-Level Security, "
            "or its permission set's Field Permissions).",
        )
    return make(CheckOutcome.PASSED, f"{wanted.sobject}.{wanted.field} is an External ID field.")


def check_external_ids(ctx: _Context) -> list[SalesforceCheck]:
    checks = []
    for (feature, target), wanted in EXTERNAL_IDS.items():
        if feature not in ctx.features or (target is not None and target != ctx.email_target):
            continue
        checks.append(_external_id(ctx, wanted))
    return checks


def check_api_budget(ctx: _Context) -> SalesforceCheck:
    make = _check("api_budget", "API requests")
    if ctx.api_used is None or not ctx.api_limit:
        return make(CheckOutcome.WARNING, "Salesforce did not say how many API requests are left.")
    cap = allowance(ctx.api_limit, ctx.share)
    left = cap - ctx.api_used
    said = (
        f"The org has used {ctx.api_used:,} of its {ctx.api_limit:,} API requests in the last "
        f"24 hours; m365sync uses it only up to {ctx.share:.0%} ({cap:,})"
    )
    if left <= 0:
        return make(
            CheckOutcome.WARNING,
            f"{said}, so it would pause its Salesforce writes now.",
            "Wait until the rolling 24-hour window frees calls, or raise m365sync's Salesforce "
            "API share for this organization.",
        )
    return make(CheckOutcome.PASSED, f"{said}: {left:,} requests are m365sync's to use now.")


STEPS = (
    ("sign_in", "Sign in"),
    ("api_access", "API access"),
    ("enhanced_email", "Enhanced Email"),
    ("read_people", "Reading contacts, leads, accounts and users"),
    ("email_writes", "Email Sync"),
    ("calendar_writes", "Calendar Sync"),
    ("task_writes", "Task Sync"),
    ("api_budget", "API requests"),
)


FEATURE_OF = {
    "enhanced_email": "email",
    "email_writes": "email",
    "calendar_writes": "calendar",
    "task_writes": "tasks",
}


def _skipped(after: str, features: Collection[str]) -> list[SalesforceCheck]:
    """The checks a failed ``after`` leaves unchecked (those of enabled features)."""
    names = [name for name, _ in STEPS]
    return [
        SalesforceCheck(name, title, CheckOutcome.SKIPPED, "Not checked: the check above failed.")
        for name, title in STEPS[names.index(after) + 1 :]
        if FEATURE_OF.get(name) is None or FEATURE_OF[name] in features
    ]


def run_salesforce_checks(
    client: SalesforceClient, *, features: Collection[str] = FEATURES, share: float
) -> SalesforceTestReport:
    """Every check, in order; a failed sign-in or API access skips the rest."""
    ctx = _Context(client=client, features=frozenset(features), share=share)
    checks: list[SalesforceCheck] = []
    for step in (check_sign_in, check_api_access):
        try:
            checks.append(step(ctx))
        except _Stop as stop:
            checks.append(stop.check)
            checks.extend(_skipped(stop.check.name, ctx.features))
            return SalesforceTestReport(checks=checks)
    try:
        for single in (
            check_enhanced_email,
            check_read_people,
            check_email_writes,
            check_calendar_writes,
            check_task_writes,
        ):
            found = single(ctx)
            if found is not None:
                checks.append(found)
        checks.extend(check_external_ids(ctx))
    except SalesforceError as error:
        checks.append(
            SalesforceCheck(
                "describe",
                "Reading the org's objects",
                CheckOutcome.FAILED,
                error.message,
                error.fix or PERMISSIONS_HINT,
            )
        )
    checks.append(check_api_budget(ctx))
    return SalesforceTestReport(
        checks=checks,
        email_target=ctx.email_target,
        username=ctx.username,
        api_used=ctx.api_used,
        api_limit=ctx.api_limit,
    )
