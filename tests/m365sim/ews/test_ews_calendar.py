"""Calendars over EWS with unmodified exchangelib: views of recurring series, writes that
send (or don't send) meeting messages, and free/busy."""

from __future__ import annotations

import datetime

import httpx
from exchangelib import Attendee, CalendarItem, EWSDateTime, EWSTimeZone, Mailbox
from exchangelib.recurrence import Recurrence, WeeklyPattern

from support.ews_clients import AccountFactory

UTC = EWSTimeZone("UTC")


def invitations(control: httpx.Client) -> list[dict[str, object]]:
    value: list[dict[str, object]] = control.get("/_sim/invitations").json()["value"]
    return value


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> EWSDateTime:
    return EWSDateTime(year, month, day, hour, minute, tzinfo=UTC)


def test_calendar_view_expands_a_weekly_series(ews: AccountFactory) -> None:
    """The demo's "Pipeline review" is every Monday 09:00 Pacific since 2026-01-05: one
    occurrence a week in the view, at 17:00 UTC in winter and 16:00 UTC in summer."""
    account = ews("adele@contoso.com")
    january = list(account.calendar.view(start=utc(2026, 1, 1), end=utc(2026, 2, 1)))
    reviews = [i for i in january if i.subject == "Pipeline review"]
    assert [i.start for i in reviews] == [utc(2026, 1, d, 17) for d in (5, 12, 19, 26)]
    assert {i.type for i in reviews} == {"Occurrence"}
    assert len({i.id for i in reviews}) == 4
    july = list(account.calendar.view(start=utc(2026, 7, 1), end=utc(2026, 7, 8)))
    assert [(i.subject, i.start) for i in july] == [("Pipeline review", utc(2026, 7, 6, 16))]
    master = reviews[0].recurring_master()
    master.refresh()
    assert master.type == "RecurringMaster"
    assert master.recurrence.pattern.weekdays == [1]  # Monday
    assert master._start_timezone.ms_id == "Pacific Standard Time"


def test_an_edited_occurrence_becomes_an_exception_of_its_master(
    ews: AccountFactory, control: httpx.Client
) -> None:
    account = ews("adele@contoso.com")
    occurrence = next(
        i
        for i in account.calendar.view(start=utc(2026, 3, 1), end=utc(2026, 3, 10))
        if i.subject == "Pipeline review"
    )
    occurrence.subject = "Pipeline review (quarter end)"
    occurrence.save(update_fields=["subject"], send_meeting_invitations="SendToNone")
    march = [
        i
        for i in account.calendar.view(start=utc(2026, 3, 1), end=utc(2026, 3, 31))
        if i.subject.startswith("Pipeline review")
    ]
    assert [i.type for i in march] == [
        "Exception",
        "Occurrence",
        "Occurrence",
        "Occurrence",
        "Occurrence",
    ]
    assert march[0].subject == "Pipeline review (quarter end)"
    master = march[1].recurring_master()
    master.refresh()
    assert [o.start for o in master.modified_occurrences] == [march[0].start]
    assert invitations(control) == []


def test_create_update_delete_with_send_to_none_sends_nothing(
    ews: AccountFactory, control: httpx.Client
) -> None:
    account = ews("adele@contoso.com", as_service=True)
    start = utc(2026, 12, 15, 14)
    meeting = CalendarItem(
        account=account,
        folder=account.calendar,
        subject="Renewal call (logged from the CRM)",
        start=start,
        end=start + datetime.timedelta(hours=1),
        location="Teams",
        required_attendees=[Attendee(mailbox=Mailbox(email_address="kim@fabrikam.com"))],
        optional_attendees=[Attendee(mailbox=Mailbox(email_address="diego@contoso.com"))],
    )
    meeting.save(send_meeting_invitations="SendToNone")
    fetched = account.calendar.get(id=meeting.id)
    assert fetched.subject == "Renewal call (logged from the CRM)"
    assert fetched.location == "Teams"
    assert fetched.start == start
    assert [a.mailbox.email_address for a in fetched.required_attendees] == ["kim@fabrikam.com"]
    assert fetched.organizer.email_address == "adele@contoso.com"
    fetched.start = start + datetime.timedelta(days=1)
    fetched.end = fetched.start + datetime.timedelta(hours=1)
    fetched.save(update_fields=["start", "end"], send_meeting_invitations="SendToNone")
    moved = account.calendar.get(id=meeting.id)
    assert moved.start == start + datetime.timedelta(days=1)
    moved.delete(send_meeting_cancellations="SendToNone")
    assert not list(account.calendar.filter(subject="Renewal call (logged from the CRM)"))
    assert invitations(control) == []
    # Diego never received a copy: nothing was sent.
    diego = ews("diego@contoso.com")
    assert not [
        i
        for i in diego.calendar.view(start=utc(2026, 12, 1), end=utc(2027, 1, 1))
        if "Renewal call" in i.subject
    ]


def test_sending_invitations_records_them_like_graph(
    ews: AccountFactory, control: httpx.Client
) -> None:
    account = ews("adele@contoso.com")
    start = utc(2026, 12, 16, 9)
    meeting = CalendarItem(
        account=account,
        folder=account.calendar,
        subject="Kick-off",
        start=start,
        end=start + datetime.timedelta(minutes=30),
        required_attendees=[Attendee(mailbox=Mailbox(email_address="diego@contoso.com"))],
    )
    meeting.save(send_meeting_invitations="SendToAllAndSaveCopy")
    sent = invitations(control)
    assert [(i["kind"], i["to"], i["subject"]) for i in sent] == [
        ("request", ["diego@contoso.com"], "Kick-off")
    ]
    diego = ews("diego@contoso.com")
    copy = [i for i in diego.calendar.view(start=utc(2026, 12, 16), end=utc(2026, 12, 17))]
    meeting.refresh()
    assert [(c.subject, c.my_response_type, c.uid) for c in copy] == [
        ("Kick-off", "NoResponseReceived", meeting.uid)
    ]
    meeting.delete(send_meeting_cancellations="SendToAllAndSaveCopy")
    assert [i["kind"] for i in invitations(control)] == ["request", "cancellation"]


def test_a_recurring_series_created_over_ews(ews: AccountFactory) -> None:
    account = ews("diego@contoso.com")
    start = utc(2027, 1, 4, 15)
    series = CalendarItem(
        account=account,
        folder=account.calendar,
        subject="Weekly forecast",
        start=start,
        end=start + datetime.timedelta(minutes=45),
        recurrence=Recurrence(
            pattern=WeeklyPattern(interval=1, weekdays=[1, 3]), start=start.date(), number=4
        ),
    )
    series.save(send_meeting_invitations="SendToNone")
    instances = [
        i
        for i in account.calendar.view(start=utc(2027, 1, 1), end=utc(2027, 2, 1))
        if i.subject == "Weekly forecast"
    ]
    assert [i.start.date().isoformat() for i in instances] == [
        "2027-01-04",
        "2027-01-06",
        "2027-01-11",
        "2027-01-13",
    ]


def test_free_busy_and_working_hours(ews: AccountFactory, control: httpx.Client) -> None:
    account = ews("adele@contoso.com")
    start = utc(2026, 12, 15, 8)
    meeting = CalendarItem(
        account=account,
        folder=account.calendar,
        subject="Busy block",
        start=start + datetime.timedelta(hours=1),
        end=start + datetime.timedelta(hours=2),
        legacy_free_busy_status="Busy",
    )
    meeting.save(send_meeting_invitations="SendToNone")
    views = list(
        account.protocol.get_free_busy_info(
            accounts=[
                ("adele@contoso.com", "Organizer", False),
                ("ghost@contoso.com", "Required", False),
            ],
            start=start,
            end=start + datetime.timedelta(hours=4),
            merged_free_busy_interval=30,
        )
    )
    adele, ghost = views
    assert adele.merged == "00220000"
    busy = [e for e in adele.calendar_events if e.busy_type == "Busy"]
    assert [(e.start, e.end) for e in busy] == [
        (start + datetime.timedelta(hours=1), start + datetime.timedelta(hours=2))
    ]
    assert busy[0].details.subject == "Busy block"
    assert adele.working_hours[0].start == datetime.time(8, 0)
    assert adele.working_hours_timezone.bias == 480  # Pacific: UTC = local + 8h
    assert type(ghost).__name__ == "ErrorMailRecipientNotFound"
    # The same window asked in Pacific time: the request's time zone rules are honoured.
    pacific = EWSTimeZone("America/Los_Angeles")
    local_start = start.astimezone(pacific)
    (same,) = account.protocol.get_free_busy_info(
        accounts=[("adele@contoso.com", "Organizer", False)],
        start=local_start,
        end=local_start + datetime.timedelta(hours=4),
    )
    assert same.merged == "00220000"
    assert [e.start for e in same.calendar_events if e.busy_type == "Busy"] == [
        local_start + datetime.timedelta(hours=1)
    ]


def test_sync_items_on_the_calendar(ews: AccountFactory, control: httpx.Client) -> None:
    """A calendar syncs its single items and series masters; editing one occurrence updates
    the master, and events created or deleted through Graph's side come as Create/Delete."""
    account = ews("adele@contoso.com", as_service=True)
    calendar = account.calendar
    first = list(calendar.sync_items(max_changes_returned=2, only_fields=["subject", "type"]))
    assert sorted((kind, item.subject, item.type) for kind, item in first) == [
        ("create", "Discovery call with Fabrikam", "Single"),
        ("create", "Northwind renewal (they organize)", "Single"),
        ("create", "Pipeline review", "RecurringMaster"),
    ]
    master = next(item for _, item in first if item.type == "RecurringMaster")
    state = calendar.item_sync_state

    created = control.post(
        "/_sim/mailboxes/adele@contoso.com/events",
        json={
            "subject": "Booked by a prospect",
            "start": {"dateTime": "2026-12-21T10:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-12-21T10:30:00", "timeZone": "UTC"},
            "sendInvitations": False,
        },
    ).json()
    occurrence = next(
        i
        for i in calendar.view(start=utc(2026, 12, 14), end=utc(2026, 12, 15))
        if i.subject == "Pipeline review"
    )
    occurrence.delete(send_meeting_cancellations="SendToNone")
    discovery = next(item for _, item in first if item.subject == "Discovery call with Fabrikam")
    control.delete(
        f"/_sim/mailboxes/adele@contoso.com/events/{discovery.id}",
        params={"sendInvitations": "false"},
    )
    second = list(calendar.sync_items(sync_state=state, only_fields=["subject"]))
    summary = sorted((kind, getattr(item, "subject", None) or item.id) for kind, item in second)
    assert summary == sorted(
        [
            ("create", "Booked by a prospect"),
            ("update", "Pipeline review"),
            ("delete", discovery.id),
        ]
    )
    assert next(item for kind, item in second if kind == "create").id == created["id"]
    assert next(item for kind, item in second if kind == "update").id == master.id
