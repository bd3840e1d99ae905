"""EWS items ↔ the stores' messages, events and tasks: rendering by shape, parsing for writes.

Rendering follows ``ItemShape``: ``IdOnly`` (the ``ItemId`` alone), ``Default`` or
``AllProperties``, plus the ``AdditionalProperties`` FieldURIs asked for; properties come
out in the order of the ``types`` schema (``ItemType`` then ``MessageType`` /
``CalendarItemType`` / ``TaskType``). FieldURIs that don't apply to an item's type, and
extended or indexed properties, are left out, as Exchange leaves out what an item doesn't
have. ``FindItem`` never returns bodies (Exchange refuses them there; clients use
``GetItem``).

Parsing turns a ``t:CalendarItem`` of ``CreateItem`` (or one property of ``UpdateItem``'s
``SetItemField``) into the Graph-shaped body the calendar backend takes, so an event
written over EWS follows exactly the rules of one written over Graph: the same
invitations, the same attendee copies, the same change tracking. ``t:Message`` updates
become Graph ``message`` PATCH bodies; ``t:Task`` becomes a To Do task body.

Differences from Exchange: no attachments, MIME content, internet headers, extended
properties, response objects or conversation actions; ``Size`` is the body's length;
``DateTimeReceived`` of a calendar item is its creation time; ``IsRecurring`` is true for
occurrences and exceptions only; tasks carry the To Do properties (no delegation,
recurrence or percent complete other than 0/100).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from m365sim.ews import exceptions as errors
from m365sim.ews.mailbox import MailboxView, ews_task_id
from m365sim.ews.soap import child, children, ews_duration, sub, t, text_of
from m365sim.graph.calendar.formats import change_key, zone
from m365sim.graph.calendar.models import Attendee, Event
from m365sim.graph.calendar.recurrence import DAYS, Recurrence
from m365sim.graph.mail.models import Message, html_to_text
from m365sim.graph.timezones import UnknownTimeZone, windows_name
from m365sim.graph.todo.models import TodoTask

__all__ = [
    "ItemShape",
    "calendar_fields_from_xml",
    "message_changes_from_xml",
    "parse_shape",
    "render_event",
    "render_message",
    "render_task",
    "settle_zones",
    "task_fields_from_xml",
]

Address = tuple[str, str]

SHOW_AS_TO_EWS = {
    "free": "Free",
    "tentative": "Tentative",
    "busy": "Busy",
    "oof": "OOF",
    "workingElsewhere": "WorkingElsewhere",
    "unknown": "NoData",
}
EWS_TO_SHOW_AS = {v.lower(): k for k, v in SHOW_AS_TO_EWS.items()}
RESPONSE_TO_EWS = {
    "none": "Unknown",
    "organizer": "Organizer",
    "tentativelyAccepted": "Tentative",
    "accepted": "Accept",
    "declined": "Decline",
    "notResponded": "NoResponseReceived",
}
EVENT_TYPE_TO_EWS = {
    "singleInstance": "Single",
    "occurrence": "Occurrence",
    "exception": "Exception",
    "seriesMaster": "RecurringMaster",
}
FLAG_TO_EWS = {"notFlagged": "NotFlagged", "flagged": "Flagged", "complete": "Complete"}
TASK_STATUS_TO_EWS = {
    "notStarted": "NotStarted",
    "inProgress": "InProgress",
    "completed": "Completed",
    "waitingOnOthers": "WaitingOnOthers",
    "deferred": "Deferred",
}
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
INDEXES = {
    "first": "First",
    "second": "Second",
    "third": "Third",
    "fourth": "Fourth",
    "last": "Last",
}


# -- shapes ------------------------------------------------------------------------------------


@dataclass
class ItemShape:
    base: str = "IdOnly"  # IdOnly | Default | AllProperties
    fields: set[str] = field(default_factory=set)
    body_type: str = "Best"  # Best | HTML | Text
    for_find: bool = False

    def wants(self, uri: str, defaults: frozenset[str], *, explicit_only: bool = False) -> bool:
        if uri in self.fields:
            return not (self.for_find and uri in NEVER_IN_FIND)
        if self.base == "IdOnly" or (self.for_find and uri in NEVER_IN_FIND):
            return False
        if explicit_only:
            return False
        if self.base == "AllProperties":
            return True
        return uri in defaults


NEVER_IN_FIND = frozenset(
    {"item:Body", "item:UniqueBody", "item:TextBody", "item:MimeContent", "item:Attachments"}
)
EXPLICIT_ONLY = frozenset({"item:UniqueBody", "item:TextBody", "item:MimeContent"})


def parse_shape(shape_el: Any, *, for_find: bool = False) -> ItemShape:
    """``m:ItemShape`` → ``ItemShape``; a missing shape is ``IdOnly``."""
    if shape_el is None:
        return ItemShape(for_find=for_find)
    base = text_of(shape_el, t("BaseShape"), "IdOnly") or "IdOnly"
    if base not in ("IdOnly", "Default", "AllProperties"):
        raise errors.ErrorSchemaValidation(
            f"The request failed schema validation: The '{base}' value of BaseShape is invalid."
        )
    wanted: set[str] = set()
    for prop in children(child(shape_el, t("AdditionalProperties"))):
        uri = prop.get("FieldURI")
        if prop.tag == t("FieldURI") and uri:
            wanted.add(str(uri))
    return ItemShape(
        base=base,
        fields=wanted,
        body_type=text_of(shape_el, t("BodyType"), "Best") or "Best",
        for_find=for_find,
    )


# -- shared bits ---------------------------------------------------------------------------------


Emitter = Callable[[Any], None]


def _mailbox(parent: Any, address: Address, tag: str = "Mailbox", kind: str = "OneOff") -> Any:
    box = sub(parent, t(tag))
    sub(box, t("Name"), address[0] or address[1])
    sub(box, t("EmailAddress"), address[1])
    sub(box, t("RoutingType"), "SMTP")
    sub(box, t("MailboxType"), kind)
    return box


def _effective_rights(parent: Any) -> None:
    rights = sub(parent, t("EffectiveRights"))
    for name, value in (
        ("CreateAssociated", False),
        ("CreateContents", False),
        ("CreateHierarchy", False),
        ("Delete", True),
        ("Modify", True),
        ("Read", True),
        ("ViewPrivateItems", True),
    ):
        sub(rights, t(name), value)


def _body(parent: Any, content: str, body_type: str, wanted: str) -> None:
    if wanted == "Text" and body_type == "html":
        sub(parent, t("Body"), html_to_text(content), BodyType="Text", IsTruncated=False)
        return
    if wanted == "HTML" and body_type == "text":
        html = "<html><body>" + content.replace("\n", "<br>") + "</body></html>"
        sub(parent, t("Body"), html, BodyType="HTML", IsTruncated=False)
        return
    sub(
        parent,
        t("Body"),
        content,
        BodyType="HTML" if body_type == "html" else "Text",
        IsTruncated=False,
    )


def _strings(parent: Any, tag: str, values: Iterable[str]) -> None:
    values = list(values)
    if not values:
        return
    holder = sub(parent, t(tag))
    for value in values:
        sub(holder, t("String"), value)


def _emit(
    item: Any, order: list[tuple[str, Emitter]], shape: ItemShape, defaults: frozenset[str]
) -> None:
    for uri, emitter in order:
        if shape.wants(uri, defaults, explicit_only=uri in EXPLICIT_ONLY):
            emitter(item)


# -- messages -----------------------------------------------------------------------------------

MESSAGE_DEFAULT = frozenset(
    {
        "item:Subject",
        "item:Sensitivity",
        "item:HasAttachments",
        "item:IsAssociated",
        "item:DateTimeReceived",
        "message:ToRecipients",
        "message:From",
        "message:IsRead",
    }
)


def render_message(
    parent: Any,
    message: Message,
    view: MailboxView,
    shape: ItemShape,
    *,
    kind_of: Callable[[str], str],
) -> Any:
    """``t:Message`` for ``message``; ``kind_of(address)`` is its MailboxType."""
    key = view.key
    item = sub(parent, t("Message"))
    sub(item, t("ItemId"), Id=message.id_for(False, key), ChangeKey=message.change_key())
    folder_view = view.mail_folder_view(message.folder)
    owner = view.mail.owner

    def box(tag: str, address: Address | None) -> Emitter:
        def emit(parent_: Any) -> None:
            if address is not None:
                _mailbox(sub(parent_, t(tag)), address, kind=kind_of(address[1]))

        return emit

    def boxes(tag: str, addresses: list[Address]) -> Emitter:
        def emit(parent_: Any) -> None:
            if addresses:
                holder = sub(parent_, t(tag))
                for address in addresses:
                    _mailbox(holder, address, kind=kind_of(address[1]))

        return emit

    received = message.folder.well_known not in ("sentitems", "drafts", "outbox")
    order: list[tuple[str, Emitter]] = [
        (
            "item:ParentFolderId",
            lambda p: sub(
                p,
                t("ParentFolderId"),
                Id=message.folder.id,
                ChangeKey=folder_view.change_key if folder_view else None,
            ),
        ),
        ("item:ItemClass", lambda p: sub(p, t("ItemClass"), "IPM.Note")),
        ("item:Subject", lambda p: sub(p, t("Subject"), message.subject)),
        ("item:Sensitivity", lambda p: sub(p, t("Sensitivity"), "Normal")),
        (
            "item:Body",
            lambda p: _body(p, message.body_content, message.body_type, shape.body_type),
        ),
        ("item:DateTimeReceived", lambda p: sub(p, t("DateTimeReceived"), message.received)),
        (
            "item:Size",
            lambda p: sub(p, t("Size"), 512 + len(message.body_content) + len(message.subject)),
        ),
        ("item:Categories", lambda p: _strings(p, "Categories", message.categories)),
        ("item:Importance", lambda p: sub(p, t("Importance"), message.importance.title())),
        ("item:IsSubmitted", lambda p: sub(p, t("IsSubmitted"), False)),
        ("item:IsDraft", lambda p: sub(p, t("IsDraft"), message.is_draft)),
        (
            "item:IsFromMe",
            lambda p: sub(
                p,
                t("IsFromMe"),
                bool(message.from_ and message.from_[1].lower() == owner[1].lower()),
            ),
        ),
        ("item:IsResend", lambda p: sub(p, t("IsResend"), False)),
        ("item:IsUnmodified", lambda p: sub(p, t("IsUnmodified"), not message.is_draft)),
        (
            "item:DateTimeSent",
            lambda p: sub(p, t("DateTimeSent"), message.sent) if message.sent else None,
        ),
        ("item:DateTimeCreated", lambda p: sub(p, t("DateTimeCreated"), message.created)),
        ("item:ReminderIsSet", lambda p: sub(p, t("ReminderIsSet"), False)),
        ("item:ReminderMinutesBeforeStart", lambda p: sub(p, t("ReminderMinutesBeforeStart"), 0)),
        ("item:DisplayCc", lambda p: sub(p, t("DisplayCc"), "; ".join(a[0] for a in message.cc))),
        ("item:DisplayTo", lambda p: sub(p, t("DisplayTo"), "; ".join(a[0] for a in message.to))),
        ("item:HasAttachments", lambda p: sub(p, t("HasAttachments"), message.has_attachments)),
        ("item:Culture", lambda p: sub(p, t("Culture"), "en-US")),
        ("item:EffectiveRights", _effective_rights),
        (
            "item:LastModifiedName",
            lambda p: sub(p, t("LastModifiedName"), owner[0]),
        ),
        ("item:LastModifiedTime", lambda p: sub(p, t("LastModifiedTime"), message.modified)),
        ("item:IsAssociated", lambda p: sub(p, t("IsAssociated"), False)),
        (
            "item:WebClientReadFormQueryString",
            lambda p: sub(
                p,
                t("WebClientReadFormQueryString"),
                "https://mail/owa/?ItemID="
                + message.id_for(False, key)
                + "&exvsurl=1&viewmodel=ReadMessageItem",
            ),
        ),
        (
            "item:ConversationId",
            lambda p: sub(p, t("ConversationId"), Id=message.conversation_id),
        ),
        (
            "item:Flag",
            lambda p: _flag(p, message.flag_status),
        ),
        ("item:Preview", lambda p: sub(p, t("Preview"), message.preview())),
        ("item:TextBody", lambda p: sub(p, t("TextBody"), message.text_body(), BodyType="Text")),
        ("message:Sender", box("Sender", message.sender)),
        ("message:ToRecipients", boxes("ToRecipients", message.to)),
        ("message:CcRecipients", boxes("CcRecipients", message.cc)),
        ("message:BccRecipients", boxes("BccRecipients", message.bcc)),
        (
            "message:IsReadReceiptRequested",
            lambda p: sub(p, t("IsReadReceiptRequested"), message.read_receipt),
        ),
        (
            "message:IsDeliveryReceiptRequested",
            lambda p: sub(p, t("IsDeliveryReceiptRequested"), message.delivery_receipt),
        ),
        (
            "message:ConversationIndex",
            lambda p: sub(p, t("ConversationIndex"), message.conversation_index),
        ),
        (
            "message:ConversationTopic",
            lambda p: sub(p, t("ConversationTopic"), _topic(message.subject)),
        ),
        ("message:From", box("From", message.from_)),
        (
            "message:InternetMessageId",
            lambda p: sub(p, t("InternetMessageId"), message.internet_message_id),
        ),
        ("message:IsRead", lambda p: sub(p, t("IsRead"), message.is_read)),
        ("message:IsResponseRequested", lambda p: sub(p, t("IsResponseRequested"), False)),
        ("message:ReplyTo", boxes("ReplyTo", message.reply_to)),
        ("message:ReceivedBy", box("ReceivedBy", owner if received else None)),
        (
            "message:ReceivedRepresenting",
            box("ReceivedRepresenting", owner if received else None),
        ),
    ]
    _emit(item, order, shape, MESSAGE_DEFAULT)
    return item


def _flag(parent: Any, status: str) -> None:
    flag = sub(parent, t("Flag"))
    sub(flag, t("FlagStatus"), FLAG_TO_EWS.get(status, "NotFlagged"))


def _topic(subject: str) -> str:
    text = subject
    while True:
        lowered = text.lower()
        for prefix in ("re: ", "fw: ", "fwd: "):
            if lowered.startswith(prefix):
                text = text[len(prefix) :]
                break
        else:
            return text


# -- calendar items ------------------------------------------------------------------------------

EVENT_DEFAULT = frozenset(
    {
        "item:Subject",
        "item:Sensitivity",
        "item:HasAttachments",
        "item:IsAssociated",
        "calendar:Start",
        "calendar:End",
        "calendar:LegacyFreeBusyStatus",
        "calendar:Location",
        "calendar:CalendarItemType",
        "calendar:Organizer",
    }
)


def event_change_key(event: Event) -> str:
    key_id = event.series_master_id if event.type == "occurrence" else event.id
    return change_key(key_id or event.id, event.version)


def render_event(
    parent: Any,
    event: Event,
    view: MailboxView,
    shape: ItemShape,
    *,
    kind_of: Callable[[str], str],
) -> Any:
    """``t:CalendarItem`` for a stored event or a computed occurrence."""
    item = sub(parent, t("CalendarItem"))
    sub(item, t("ItemId"), Id=event.id, ChangeKey=event_change_key(event))
    folder_view = view.calendar_folder_view(event.calendar_id)
    organizer = (event.organizer_name, event.organizer_address)
    attendees = [a for a in event.attendees if a.address.lower() != event.organizer_address.lower()]
    required = [a for a in attendees if a.type == "required"]
    optional = [a for a in attendees if a.type == "optional"]
    resources = [a for a in attendees if a.type == "resource"]
    location = str(event.location.get("displayName") or "")
    owner_name = view.user.display_name

    def people(tag: str, group: list[Attendee]) -> Emitter:
        def emit(p: Any) -> None:
            if not group:
                return
            holder = sub(p, t(tag))
            for attendee in group:
                entry = sub(holder, t("Attendee"))
                _mailbox(entry, (attendee.name, attendee.address), kind=kind_of(attendee.address))
                sub(entry, t("ResponseType"), RESPONSE_TO_EWS.get(attendee.response, "Unknown"))
                if attendee.response_time is not None:
                    sub(entry, t("LastResponseTime"), attendee.response_time)

        return emit

    def organizer_el(p: Any) -> None:
        _mailbox(sub(p, t("Organizer")), organizer, kind=kind_of(organizer[1]))

    def start_el(p: Any) -> None:
        sub(p, t("Start"), _all_day_bound(event, event.start) if event.is_all_day else event.start)

    def end_el(p: Any) -> None:
        sub(p, t("End"), _all_day_bound(event, event.end) if event.is_all_day else event.end)

    recurring = event.type in ("occurrence", "exception")
    is_meeting = event.has_attendees or not event.is_organizer
    state_bits = (1 if is_meeting else 0) | (0 if event.is_organizer else 2)
    state_bits |= 4 if event.is_cancelled else 0
    order: list[tuple[str, Emitter]] = [
        (
            "item:ParentFolderId",
            lambda p: sub(
                p,
                t("ParentFolderId"),
                Id=event.calendar_id,
                ChangeKey=folder_view.change_key if folder_view else None,
            ),
        ),
        ("item:ItemClass", lambda p: sub(p, t("ItemClass"), "IPM.Appointment")),
        ("item:Subject", lambda p: sub(p, t("Subject"), event.subject)),
        ("item:Sensitivity", lambda p: sub(p, t("Sensitivity"), event.sensitivity.title())),
        ("item:Body", lambda p: _body(p, event.body, event.body_type, shape.body_type)),
        ("item:DateTimeReceived", lambda p: sub(p, t("DateTimeReceived"), event.created)),
        ("item:Size", lambda p: sub(p, t("Size"), 1024 + len(event.body))),
        ("item:Categories", lambda p: _strings(p, "Categories", event.categories)),
        ("item:Importance", lambda p: sub(p, t("Importance"), event.importance.title())),
        ("item:IsSubmitted", lambda p: sub(p, t("IsSubmitted"), False)),
        ("item:IsDraft", lambda p: sub(p, t("IsDraft"), False)),
        ("item:IsFromMe", lambda p: sub(p, t("IsFromMe"), False)),
        ("item:IsResend", lambda p: sub(p, t("IsResend"), False)),
        ("item:IsUnmodified", lambda p: sub(p, t("IsUnmodified"), False)),
        ("item:DateTimeSent", lambda p: sub(p, t("DateTimeSent"), event.created)),
        ("item:DateTimeCreated", lambda p: sub(p, t("DateTimeCreated"), event.created)),
        (
            "item:ReminderDueBy",
            lambda p: sub(p, t("ReminderDueBy"), event.start) if event.is_reminder_on else None,
        ),
        ("item:ReminderIsSet", lambda p: sub(p, t("ReminderIsSet"), event.is_reminder_on)),
        (
            "item:ReminderMinutesBeforeStart",
            lambda p: sub(p, t("ReminderMinutesBeforeStart"), event.reminder_minutes),
        ),
        (
            "item:DisplayCc",
            lambda p: sub(p, t("DisplayCc"), "; ".join(a.name or a.address for a in optional)),
        ),
        (
            "item:DisplayTo",
            lambda p: sub(p, t("DisplayTo"), "; ".join(a.name or a.address for a in required)),
        ),
        ("item:HasAttachments", lambda p: sub(p, t("HasAttachments"), False)),
        ("item:Culture", lambda p: sub(p, t("Culture"), "en-US")),
        ("item:EffectiveRights", _effective_rights),
        ("item:LastModifiedName", lambda p: sub(p, t("LastModifiedName"), owner_name)),
        (
            "item:LastModifiedTime",
            lambda p: sub(p, t("LastModifiedTime"), event.modified or event.created),
        ),
        ("item:IsAssociated", lambda p: sub(p, t("IsAssociated"), False)),
        (
            "item:Preview",
            lambda p: (
                sub(p, t("Preview"), " ".join(html_to_text(event.body).split())[:255])
                if event.body
                else None
            ),
        ),
        (
            "item:TextBody",
            lambda p: sub(
                p,
                t("TextBody"),
                html_to_text(event.body) if event.body_type == "html" else event.body,
                BodyType="Text",
            ),
        ),
        ("calendar:UID", lambda p: sub(p, t("UID"), event.ical_uid)),
        (
            "calendar:RecurrenceId",
            lambda p: (
                sub(p, t("RecurrenceId"), event.original_start)
                if recurring and event.original_start
                else None
            ),
        ),
        (
            "calendar:DateTimeStamp",
            lambda p: sub(p, t("DateTimeStamp"), event.modified or event.created),
        ),
        ("calendar:Start", start_el),
        ("calendar:End", end_el),
        (
            "calendar:OriginalStart",
            lambda p: (
                sub(p, t("OriginalStart"), event.original_start)
                if recurring and event.original_start
                else None
            ),
        ),
        ("calendar:IsAllDayEvent", lambda p: sub(p, t("IsAllDayEvent"), event.is_all_day)),
        (
            "calendar:LegacyFreeBusyStatus",
            lambda p: sub(p, t("LegacyFreeBusyStatus"), SHOW_AS_TO_EWS.get(event.show_as, "Busy")),
        ),
        ("calendar:Location", lambda p: sub(p, t("Location"), location) if location else None),
        ("calendar:IsMeeting", lambda p: sub(p, t("IsMeeting"), is_meeting)),
        ("calendar:IsCancelled", lambda p: sub(p, t("IsCancelled"), event.is_cancelled)),
        ("calendar:IsRecurring", lambda p: sub(p, t("IsRecurring"), recurring)),
        (
            "calendar:MeetingRequestWasSent",
            lambda p: sub(p, t("MeetingRequestWasSent"), event.is_organizer and is_meeting),
        ),
        (
            "calendar:IsResponseRequested",
            lambda p: sub(p, t("IsResponseRequested"), event.response_requested),
        ),
        (
            "calendar:CalendarItemType",
            lambda p: sub(p, t("CalendarItemType"), EVENT_TYPE_TO_EWS.get(event.type, "Single")),
        ),
        (
            "calendar:MyResponseType",
            lambda p: sub(p, t("MyResponseType"), RESPONSE_TO_EWS.get(event.response, "Unknown")),
        ),
        ("calendar:Organizer", organizer_el),
        ("calendar:RequiredAttendees", people("RequiredAttendees", required)),
        ("calendar:OptionalAttendees", people("OptionalAttendees", optional)),
        ("calendar:Resources", people("Resources", resources)),
        ("calendar:ConflictingMeetingCount", lambda p: sub(p, t("ConflictingMeetingCount"), 0)),
        ("calendar:AdjacentMeetingCount", lambda p: sub(p, t("AdjacentMeetingCount"), 0)),
        (
            "calendar:Duration",
            lambda p: sub(
                p, t("Duration"), ews_duration(int((event.end - event.start).total_seconds() // 60))
            ),
        ),
        (
            "calendar:AppointmentSequenceNumber",
            lambda p: sub(p, t("AppointmentSequenceNumber"), max(0, event.version - 1)),
        ),
        ("calendar:AppointmentState", lambda p: sub(p, t("AppointmentState"), state_bits)),
        (
            "calendar:Recurrence",
            lambda p: _recurrence(p, event.recurrence) if event.recurrence else None,
        ),
        ("calendar:FirstOccurrence", lambda p: _first_last(p, event, view, first=True)),
        ("calendar:LastOccurrence", lambda p: _first_last(p, event, view, first=False)),
        ("calendar:ModifiedOccurrences", lambda p: _modified(p, event, view)),
        ("calendar:DeletedOccurrences", lambda p: _deleted(p, event, view)),
        (
            "calendar:StartTimeZone",
            lambda p: sub(p, t("StartTimeZone"), Id=_windows(event.start_zone)),
        ),
        ("calendar:EndTimeZone", lambda p: sub(p, t("EndTimeZone"), Id=_windows(event.end_zone))),
        ("calendar:ConferenceType", lambda p: sub(p, t("ConferenceType"), 0)),
        (
            "calendar:AllowNewTimeProposal",
            lambda p: sub(p, t("AllowNewTimeProposal"), event.allow_new_time_proposals),
        ),
        (
            "calendar:IsOnlineMeeting",
            lambda p: sub(p, t("IsOnlineMeeting"), event.is_online_meeting),
        ),
        (
            "calendar:StartTimeZoneId",
            lambda p: sub(p, t("StartTimeZoneId"), _windows(event.start_zone)),
        ),
        ("calendar:EndTimeZoneId", lambda p: sub(p, t("EndTimeZoneId"), _windows(event.end_zone))),
        ("calendar:IsOrganizer", lambda p: sub(p, t("IsOrganizer"), event.is_organizer)),
    ]
    _emit(item, order, shape, EVENT_DEFAULT)
    return item


def _windows(name: str) -> str:
    try:
        return windows_name(name)
    except UnknownTimeZone:
        return "UTC"


def _all_day_bound(event: Event, value: datetime) -> datetime:
    """All-day events are floating in the stores; EWS reports midnight in the event's zone."""
    local = value.astimezone(zone(event.start_zone)).date()
    return datetime.combine(local, time(0), tzinfo=zone(event.start_zone))


def _recurrence(parent: Any, recurrence: Recurrence) -> None:
    holder = sub(parent, t("Recurrence"))
    pattern = recurrence.pattern
    days = " ".join(d.title() for d in pattern.days_of_week)
    if pattern.type == "daily":
        node = sub(holder, t("DailyRecurrence"))
        sub(node, t("Interval"), pattern.interval)
    elif pattern.type == "weekly":
        node = sub(holder, t("WeeklyRecurrence"))
        sub(node, t("Interval"), pattern.interval)
        sub(node, t("DaysOfWeek"), days)
        sub(node, t("FirstDayOfWeek"), pattern.first_day_of_week.title())
    elif pattern.type == "absoluteMonthly":
        node = sub(holder, t("AbsoluteMonthlyRecurrence"))
        sub(node, t("Interval"), pattern.interval)
        sub(node, t("DayOfMonth"), pattern.day_of_month)
    elif pattern.type == "relativeMonthly":
        node = sub(holder, t("RelativeMonthlyRecurrence"))
        sub(node, t("Interval"), pattern.interval)
        sub(node, t("DaysOfWeek"), days)
        sub(node, t("DayOfWeekIndex"), INDEXES[pattern.index])
    elif pattern.type == "absoluteYearly":
        node = sub(holder, t("AbsoluteYearlyRecurrence"))
        sub(node, t("DayOfMonth"), pattern.day_of_month)
        sub(node, t("Month"), MONTHS[pattern.month - 1])
    else:
        node = sub(holder, t("RelativeYearlyRecurrence"))
        sub(node, t("DaysOfWeek"), days)
        sub(node, t("DayOfWeekIndex"), INDEXES[pattern.index])
        sub(node, t("Month"), MONTHS[pattern.month - 1])
    span = recurrence.range
    if span.type == "noEnd":
        node = sub(holder, t("NoEndRecurrence"))
        sub(node, t("StartDate"), span.start_date)
    elif span.type == "endDate":
        node = sub(holder, t("EndDateRecurrence"))
        sub(node, t("StartDate"), span.start_date)
        sub(node, t("EndDate"), span.end_date)
    else:
        node = sub(holder, t("NumberedRecurrence"))
        sub(node, t("StartDate"), span.start_date)
        sub(node, t("NumberOfOccurrences"), span.number_of_occurrences)


def _occurrence_el(
    parent: Any, tag: str, item_id: str, ck: str, start: datetime, end: datetime, original: datetime
) -> None:
    node = sub(parent, t(tag))
    sub(node, t("ItemId"), Id=item_id, ChangeKey=ck)
    sub(node, t("Start"), start)
    sub(node, t("End"), end)
    sub(node, t("OriginalStart"), original)


def _first_last(parent: Any, event: Event, view: MailboxView, *, first: bool) -> None:
    if event.type != "seriesMaster" or event.recurrence is None:
        return
    store = view.calendars
    far = datetime(4500, 1, 1, tzinfo=UTC)
    if first:
        for start, end in store.expand_schedule(
            event.schedule, datetime(1900, 1, 1, tzinfo=UTC), far
        ):
            occurrence = store.materialise(event, start)
            _occurrence_el(
                parent, "FirstOccurrence", occurrence.id, event_change_key(event), start, end, start
            )
            return
        return
    if event.recurrence.range.type == "noEnd":
        return
    last: tuple[datetime, datetime] | None = None
    for bounds in store.expand_schedule(event.schedule, datetime(1900, 1, 1, tzinfo=UTC), far):
        last = bounds
    if last is not None:
        occurrence = store.materialise(event, last[0])
        _occurrence_el(
            parent,
            "LastOccurrence",
            occurrence.id,
            event_change_key(event),
            last[0],
            last[1],
            last[0],
        )


def _modified(parent: Any, event: Event, view: MailboxView) -> None:
    if event.type != "seriesMaster" or not event.exceptions:
        return
    holder = sub(parent, t("ModifiedOccurrences"))
    for original, exception_id in sorted(event.exceptions.items()):
        exception = view.calendars.events.get(exception_id)
        if exception is None:
            continue
        _occurrence_el(
            holder,
            "Occurrence",
            exception.id,
            event_change_key(exception),
            exception.start,
            exception.end,
            original,
        )


def _deleted(parent: Any, event: Event, view: MailboxView) -> None:
    if event.type != "seriesMaster" or not event.cancelled:
        return
    holder = sub(parent, t("DeletedOccurrences"))
    for original in sorted(event.cancelled):
        node = sub(holder, t("DeletedOccurrence"))
        sub(node, t("Start"), original)


# -- tasks ---------------------------------------------------------------------------------------

TASK_DEFAULT = frozenset({"item:Subject", "task:Status", "task:DueDate", "item:Importance"})


def render_task(parent: Any, task: TodoTask, view: MailboxView, shape: ItemShape) -> Any:
    item = sub(parent, t("Task"))
    sub(item, t("ItemId"), Id=ews_task_id(task.id), ChangeKey=change_key(task.id, task.version))
    folder_view = view.folder(task.list_id)
    complete = task.status == "completed"
    order: list[tuple[str, Emitter]] = [
        (
            "item:ParentFolderId",
            lambda p: sub(
                p,
                t("ParentFolderId"),
                Id=task.list_id,
                ChangeKey=folder_view.change_key if folder_view else None,
            ),
        ),
        ("item:ItemClass", lambda p: sub(p, t("ItemClass"), "IPM.Task")),
        ("item:Subject", lambda p: sub(p, t("Subject"), task.title)),
        ("item:Sensitivity", lambda p: sub(p, t("Sensitivity"), "Normal")),
        ("item:Body", lambda p: _body(p, task.body, task.body_type, shape.body_type)),
        ("item:DateTimeReceived", lambda p: sub(p, t("DateTimeReceived"), task.created)),
        ("item:Categories", lambda p: _strings(p, "Categories", task.categories)),
        ("item:Importance", lambda p: sub(p, t("Importance"), task.importance.title())),
        ("item:DateTimeCreated", lambda p: sub(p, t("DateTimeCreated"), task.created)),
        ("item:ReminderIsSet", lambda p: sub(p, t("ReminderIsSet"), task.is_reminder_on)),
        ("item:HasAttachments", lambda p: sub(p, t("HasAttachments"), False)),
        (
            "item:LastModifiedTime",
            lambda p: sub(p, t("LastModifiedTime"), task.modified or task.created),
        ),
        (
            "task:CompleteDate",
            lambda p: sub(p, t("CompleteDate"), task.completed[0]) if task.completed else None,
        ),
        ("task:DueDate", lambda p: sub(p, t("DueDate"), task.due[0]) if task.due else None),
        ("task:IsComplete", lambda p: sub(p, t("IsComplete"), complete)),
        ("task:PercentComplete", lambda p: sub(p, t("PercentComplete"), 100 if complete else 0)),
        ("task:StartDate", lambda p: sub(p, t("StartDate"), task.start[0]) if task.start else None),
        (
            "task:Status",
            lambda p: sub(p, t("Status"), TASK_STATUS_TO_EWS.get(task.status, "NotStarted")),
        ),
    ]
    _emit(item, order, shape, TASK_DEFAULT)
    return item


# -- parsing for writes ------------------------------------------------------------------------


def _parse_instant(text: str, zone_name: str) -> datetime:
    """An ``xs:dateTime`` (or ``xs:date``) from a request; without an offset it is read in
    ``zone_name`` (the request's TimeZoneContext or the item's start zone)."""
    raw = text.strip()
    try:
        if "T" not in raw:
            day = date.fromisoformat(raw[:10])
            return datetime.combine(day, time(0), tzinfo=zone(zone_name)).astimezone(UTC)
        if raw.endswith(("Z", "z")):
            raw = raw[:-1] + "+00:00"
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise errors.ErrorSchemaValidation(
            f"The request failed schema validation: '{text}' is not a valid xs:dateTime."
        ) from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone(zone_name))
    return value.astimezone(UTC)


def _graph_time(instant: datetime, zone_name: str) -> dict[str, str]:
    local = instant.astimezone(zone(zone_name))
    return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": zone_name}


def _zone_of(item: Any, tag: str) -> str | None:
    found = child(item, t(tag))
    if found is not None and (found.get("Id") or found.get("Name")):
        name = str(found.get("Id") or found.get("Name"))
        try:
            return windows_name(name)
        except UnknownTimeZone as exc:
            raise errors.ErrorInvalidRequest(f"The time zone '{name}' is not valid.") from exc
    zone_id = text_of(item, t(tag + "Id"))
    if zone_id:
        try:
            return windows_name(zone_id)
        except UnknownTimeZone as exc:
            raise errors.ErrorInvalidRequest(f"The time zone '{zone_id}' is not valid.") from exc
    meeting = child(item, t("MeetingTimeZone"))
    if meeting is not None and meeting.get("TimeZoneName"):
        try:
            return windows_name(str(meeting.get("TimeZoneName")))
        except UnknownTimeZone:
            return None
    return None


def _bool(text: str | None) -> bool:
    return (text or "").strip().lower() in ("true", "1")


def _attendees(item: Any) -> list[dict[str, Any]] | None:
    found: list[dict[str, Any]] | None = None
    for tag, kind in (
        ("RequiredAttendees", "required"),
        ("OptionalAttendees", "optional"),
        ("Resources", "resource"),
    ):
        holder = child(item, t(tag))
        if holder is None:
            continue
        found = found or []
        for attendee in children(holder, t("Attendee")):
            box = child(attendee, t("Mailbox"))
            address = text_of(box, t("EmailAddress"))
            if not address:
                raise errors.ErrorInvalidRequest("Each attendee needs an EmailAddress.")
            found.append(
                {
                    "type": kind,
                    "emailAddress": {
                        "name": text_of(box, t("Name")) or address,
                        "address": address,
                    },
                }
            )
    return found


def _recurrence_json(node: Any) -> dict[str, Any]:
    pattern: dict[str, Any] | None = None
    span: dict[str, Any] | None = None
    for part in children(node):
        name = part.tag.split("}")[-1]
        days = [d.lower() for d in (text_of(part, t("DaysOfWeek")) or "").split()]
        interval = int(text_of(part, t("Interval"), "1") or "1")
        index = (text_of(part, t("DayOfWeekIndex")) or "First").lower()
        month_name = text_of(part, t("Month"))
        month = MONTHS.index(month_name) + 1 if month_name in MONTHS else 0
        if name == "DailyRecurrence":
            pattern = {"type": "daily", "interval": interval}
        elif name == "WeeklyRecurrence":
            pattern = {
                "type": "weekly",
                "interval": interval,
                "daysOfWeek": days,
                "firstDayOfWeek": (text_of(part, t("FirstDayOfWeek")) or "Sunday").lower(),
            }
        elif name == "AbsoluteMonthlyRecurrence":
            pattern = {
                "type": "absoluteMonthly",
                "interval": interval,
                "dayOfMonth": int(text_of(part, t("DayOfMonth"), "0") or "0"),
            }
        elif name == "RelativeMonthlyRecurrence":
            pattern = {
                "type": "relativeMonthly",
                "interval": interval,
                "daysOfWeek": _expand_days(days),
                "index": index,
            }
        elif name == "AbsoluteYearlyRecurrence":
            pattern = {
                "type": "absoluteYearly",
                "interval": 1,
                "dayOfMonth": int(text_of(part, t("DayOfMonth"), "0") or "0"),
                "month": month,
            }
        elif name == "RelativeYearlyRecurrence":
            pattern = {
                "type": "relativeYearly",
                "interval": 1,
                "daysOfWeek": _expand_days(days),
                "index": index,
                "month": month,
            }
        elif name in ("NoEndRecurrence", "EndDateRecurrence", "NumberedRecurrence"):
            start = (text_of(part, t("StartDate")) or "")[:10]
            span = {"type": "noEnd", "startDate": start}
            if name == "EndDateRecurrence":
                span = {
                    "type": "endDate",
                    "startDate": start,
                    "endDate": (text_of(part, t("EndDate")) or "")[:10],
                }
            elif name == "NumberedRecurrence":
                span = {
                    "type": "numbered",
                    "startDate": start,
                    "numberOfOccurrences": int(text_of(part, t("NumberOfOccurrences"), "0") or "0"),
                }
        else:
            raise errors.ErrorInvalidRequest(f"The recurrence pattern '{name}' is not supported.")
    if pattern is None or span is None:
        raise errors.ErrorInvalidRequest("A recurrence needs a pattern and a range.")
    return {"pattern": pattern, "range": span}


def _expand_days(days: list[str]) -> list[str]:
    """EWS's ``Day``/``Weekday``/``WeekendDay`` shorthands, as Graph lists days."""
    out: list[str] = []
    for day in days:
        if day == "day":
            out += list(DAYS)
        elif day == "weekday":
            out += list(DAYS[1:6])
        elif day == "weekendday":
            out += ["sunday", "saturday"]
        else:
            out.append(day)
    return out


def calendar_fields_from_xml(
    item: Any, *, default_zone: str, current: Event | None = None
) -> dict[str, Any]:
    """The Graph event body a ``t:CalendarItem`` (whole, or one property) describes."""
    body: dict[str, Any] = {}
    start_zone = _zone_of(item, "StartTimeZone") or (current.start_zone if current else None)
    start_zone = start_zone or default_zone
    end_zone = _zone_of(item, "EndTimeZone") or start_zone
    if child(item, t("Subject")) is not None:
        body["subject"] = text_of(item, t("Subject"), "") or ""
    body_el = child(item, t("Body"))
    if body_el is not None:
        kind = "html" if (body_el.get("BodyType") or "Text").lower() == "html" else "text"
        body["body"] = {"contentType": kind, "content": body_el.text or ""}
    if child(item, t("Categories")) is not None:
        body["categories"] = [
            s.text or "" for s in children(child(item, t("Categories")), t("String"))
        ]
    if child(item, t("Importance")) is not None:
        body["importance"] = (text_of(item, t("Importance"), "Normal") or "Normal").lower()
    if child(item, t("Sensitivity")) is not None:
        body["sensitivity"] = (text_of(item, t("Sensitivity"), "Normal") or "Normal").lower()
    if child(item, t("ReminderIsSet")) is not None:
        body["isReminderOn"] = _bool(text_of(item, t("ReminderIsSet")))
    if child(item, t("ReminderMinutesBeforeStart")) is not None:
        body["reminderMinutesBeforeStart"] = int(
            text_of(item, t("ReminderMinutesBeforeStart"), "0") or "0"
        )
    if child(item, t("IsAllDayEvent")) is not None:
        body["isAllDay"] = _bool(text_of(item, t("IsAllDayEvent")))
    if child(item, t("Start")) is not None:
        instant = _parse_instant(text_of(item, t("Start"), "") or "", start_zone)
        body["start"] = _graph_time(instant, start_zone)
    if child(item, t("End")) is not None:
        instant = _parse_instant(text_of(item, t("End"), "") or "", end_zone)
        body["end"] = _graph_time(instant, end_zone)
    if current is not None:
        # A zone set on its own (UpdateItem sends it beside Start/End) re-expresses the
        # time in that zone; ``settle_zones`` applies it once all changes are read.
        tags = _tags(item)
        if "StartTimeZone" in tags or "StartTimeZoneId" in tags:
            body["@startZone"] = start_zone
        if "EndTimeZone" in tags or "EndTimeZoneId" in tags:
            body["@endZone"] = end_zone
    if child(item, t("LegacyFreeBusyStatus")) is not None:
        status = (text_of(item, t("LegacyFreeBusyStatus"), "Busy") or "Busy").lower()
        body["showAs"] = EWS_TO_SHOW_AS.get(status, "busy")
    if child(item, t("Location")) is not None:
        name = text_of(item, t("Location"), "") or ""
        body["location"] = {"displayName": name} if name else {}
    attendees = _attendees(item)
    if attendees is not None:
        if current is not None:
            # SetItemField replaces one attendee collection; keep the others.
            replaced = {
                kind
                for tag, kind in (
                    ("RequiredAttendees", "required"),
                    ("OptionalAttendees", "optional"),
                    ("Resources", "resource"),
                )
                if child(item, t(tag)) is not None
            }
            kept = [a.as_json() for a in current.attendees if a.type not in replaced]
            attendees = kept + attendees
        body["attendees"] = attendees
    if child(item, t("Recurrence")) is not None:
        raw = _recurrence_json(child(item, t("Recurrence")))
        raw["range"].setdefault("recurrenceTimeZone", start_zone)
        body["recurrence"] = raw
    if child(item, t("IsResponseRequested")) is not None:
        body["responseRequested"] = _bool(text_of(item, t("IsResponseRequested")))
    if child(item, t("AllowNewTimeProposal")) is not None:
        body["allowNewTimeProposals"] = _bool(text_of(item, t("AllowNewTimeProposal")))
    if child(item, t("UID")) is not None and current is None:
        body["iCalUId"] = text_of(item, t("UID"), "") or ""
    return body


def settle_zones(body: dict[str, Any], current: Event) -> dict[str, Any]:
    """Apply the zones an update set on their own to its start and end."""
    for key, zone_key, instant in (
        ("start", "@startZone", current.start),
        ("end", "@endZone", current.end),
    ):
        zone_name = body.pop(zone_key, None)
        if zone_name is None:
            continue
        if key in body:
            given = body[key]
            moment = datetime.fromisoformat(given["dateTime"]).replace(
                tzinfo=zone(given["timeZone"])
            )
            body[key] = _graph_time(moment.astimezone(UTC), zone_name)
        else:
            body[key] = _graph_time(instant, zone_name)
    return body


def _tags(item: Any) -> set[str]:
    return {c.tag.split("}")[-1] for c in children(item)}


def cleared_calendar_field(uri: str) -> dict[str, Any]:
    """The Graph body that ``DeleteItemField`` of ``uri`` amounts to."""
    cleared: dict[str, dict[str, Any]] = {
        "item:Body": {"body": {"contentType": "text", "content": ""}},
        "item:Categories": {"categories": []},
        "calendar:Location": {"location": {}},
        "calendar:Recurrence": {"recurrence": None},
        "item:ReminderIsSet": {"isReminderOn": False},
    }
    if uri not in cleared:
        raise errors.ErrorInvalidPropertySet(f"The property '{uri}' can't be deleted.")
    return cleared[uri]


MESSAGE_SETTABLE = {
    "message:IsRead": "isRead",
    "item:Categories": "categories",
    "item:Importance": "importance",
    "item:Flag": "flag",
    "message:IsReadReceiptRequested": "isReadReceiptRequested",
    "message:IsDeliveryReceiptRequested": "isDeliveryReceiptRequested",
    "item:Subject": "subject",
    "item:Body": "body",
    "message:ToRecipients": "toRecipients",
    "message:CcRecipients": "ccRecipients",
    "message:BccRecipients": "bccRecipients",
    "message:ReplyTo": "replyTo",
    "message:From": "from",
}


def _recipients(holder: Any) -> list[dict[str, Any]]:
    out = []
    for box in children(holder, t("Mailbox")):
        address = text_of(box, t("EmailAddress"))
        if address:
            out.append(
                {"emailAddress": {"name": text_of(box, t("Name")) or address, "address": address}}
            )
    return out


def message_changes_from_xml(item: Any) -> dict[str, Any]:
    """The Graph ``message`` PATCH body a ``t:Message`` (whole or one property) describes."""
    changes: dict[str, Any] = {}
    for node in children(item):
        name = node.tag.split("}")[-1]
        if name == "IsRead":
            changes["isRead"] = _bool(node.text)
        elif name == "Categories":
            changes["categories"] = [s.text or "" for s in children(node, t("String"))]
        elif name == "Importance":
            changes["importance"] = (node.text or "Normal").lower()
        elif name == "Flag":
            status = text_of(node, t("FlagStatus"), "NotFlagged") or "NotFlagged"
            changes["flag"] = {"flagStatus": status[0].lower() + status[1:]}
        elif name == "IsReadReceiptRequested":
            changes["isReadReceiptRequested"] = _bool(node.text)
        elif name == "IsDeliveryReceiptRequested":
            changes["isDeliveryReceiptRequested"] = _bool(node.text)
        elif name == "Subject":
            changes["subject"] = node.text or ""
        elif name == "Body":
            kind = "html" if (node.get("BodyType") or "Text").lower() == "html" else "text"
            changes["body"] = {"contentType": kind, "content": node.text or ""}
        elif name in ("ToRecipients", "CcRecipients", "BccRecipients", "ReplyTo"):
            changes[name[0].lower() + name[1:]] = _recipients(node)
        elif name in ("From", "Sender"):
            found = _recipients(node)
            changes[name.lower()] = found[0] if found else None
        else:
            raise errors.ErrorInvalidPropertySet(
                f"The property '{name}' can't be set on a message through m365sim."
            )
    return changes


def task_fields_from_xml(item: Any, *, default_zone: str) -> dict[str, Any]:
    """The To Do task body a ``t:Task`` (whole or one property) describes."""
    body: dict[str, Any] = {}
    status_map = {v.lower(): k for k, v in TASK_STATUS_TO_EWS.items()}
    for node in children(item):
        name = node.tag.split("}")[-1]
        if name == "Subject":
            body["title"] = node.text or ""
        elif name == "Body":
            kind = "html" if (node.get("BodyType") or "Text").lower() == "html" else "text"
            body["body"] = {"contentType": kind, "content": node.text or ""}
        elif name == "Importance":
            body["importance"] = (node.text or "Normal").lower()
        elif name == "Categories":
            body["categories"] = [s.text or "" for s in children(node, t("String"))]
        elif name == "ReminderIsSet":
            body["isReminderOn"] = _bool(node.text)
        elif name in ("DueDate", "StartDate", "CompleteDate"):
            prop = {
                "DueDate": "dueDateTime",
                "StartDate": "startDateTime",
                "CompleteDate": "completedDateTime",
            }[name]
            body[prop] = _graph_time(_parse_instant(node.text or "", default_zone), "UTC")
        elif name == "Status":
            body["status"] = status_map.get((node.text or "").lower(), "notStarted")
        elif (name == "IsComplete" and _bool(node.text)) or (
            name == "PercentComplete" and float(node.text or 0) >= 100
        ):
            body["status"] = "completed"
    return body
