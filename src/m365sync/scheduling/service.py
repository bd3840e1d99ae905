"""Calendar Scheduling: meeting types, open slots from real calendars, booking, cancel, reschedule.

The service never commits. Booking is two steps because Outlook must only hear of a
booking the database has already accepted:

1. ``reserve`` re-reads the hosts' free/busy from Microsoft (the slot must still be free),
   then inserts the booking with its slot claims (``models.BookingClaim``: the database
   refuses a second booking of the same time). The boundary commits.
2. ``confirm`` creates the Outlook event (the invitee as attendee, so Exchange sends the
   invitation) and logs it in the CRM. The boundary commits again.

If the process stops between the two, the booking stays pending and holds its time;
``recover`` (run periodically by ``recovery.PendingBookingRecovery``) finishes or releases it.
Cancel and reschedule follow the same order: local change, commit, then Microsoft.

The async methods (the ones that ask Microsoft) never touch the database on the event loop
and never hold a pooled connection while waiting for Microsoft: their reads and writes run
in worker threads (``_db``), and a read-only transaction is ended before Microsoft is asked
(ending it commits nothing; the session keeps what it loaded). So a crowd of visitors on a
booking page can't starve the connection pool or stall the server: each request holds at
most one connection, and only while it reads or writes. They expect a session without
uncommitted writes (the boundary commits between the steps, as above); their last writes
are left for the boundary to commit.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol, TypeVar

from sqlalchemy.orm import Session

from m365sync.crm.target import (
    CrmTarget,
    EventRecord,
    NewLead,
    Participant,
    PersonMatch,
    normalize_address,
)
from m365sync.errors import Conflict, Forbidden, NotFound, ValidationFailed
from m365sync.microsoft.errors import MicrosoftError
from m365sync.microsoft.scheduling import (
    DEFAULT_WORKING_HOURS,
    CalendarSchedule,
    EventRequest,
    FreeBusyStatus,
    MailboxCalendar,
    Room,
    SchedulingCalendar,
    WorkingHours,
)
from m365sync.microsoft.timezones import UnknownTimeZone, zone_from_microsoft
from m365sync.organizations.models import Member, Organization
from m365sync.scheduling.availability import (
    ROOM_BLOCKING,
    Interval,
    LocalWindow,
    Slot,
    SlotRules,
    blocking_intervals,
    choose_round_robin,
    collective_slots,
    compute_slots,
    round_robin_slots,
    slots_with_a_free_room,
)
from m365sync.scheduling.errors import (
    BookingClosed,
    BookingNotFound,
    CalendarWriteFailed,
    InvalidBooking,
    MeetingTypeNotFound,
    NoRoomFree,
    SchedulingUnavailable,
    SlotUnavailable,
)
from m365sync.scheduling.models import (
    CLAIM_GRANULARITY,
    AvailabilityRule,
    AvailabilitySource,
    Booking,
    BookingStatus,
    DateOverride,
    MeetingKind,
    MeetingType,
    MeetingTypeHost,
    Question,
)
from m365sync.scheduling.repository import LIVE, SchedulingRepository, SlotAlreadyClaimed
from m365sync.scheduling.schemas import EMAIL, InviteeInput, MeetingTypeInput
from m365sync.scheduling.tokens import BookingAction, BookingTokens, InvalidBookingLink

log = logging.getLogger(__name__)

REQUIRED_PERMISSIONS = ("Mail.Read", "Mail.ReadWrite", "Calendars.Read", "Calendars.ReadWrite")
ALTERNATIVES_SHOWN = 6
T = TypeVar("T")


class CalendarAccess(Protocol):
    """Opens a host's calendar through whichever connection reaches their mailbox.

    Raises ``SchedulingUnavailable`` (naming the missing permission or connection) when
    Calendar Scheduling can't use the mailbox. The access owns the Graph clients.
    """

    async def open_calendar(self, member: Member) -> SchedulingCalendar: ...


CrmFactory = Callable[[Session, str], CrmTarget]


@dataclass
class HostAvailability:
    member: Member
    slots: list[Slot]
    time_zone: str


@dataclass
class SlotPage:
    meeting_type: MeetingType
    organization: Organization
    slots: list[Slot]
    hosts: list[Member]
    unavailable: list[str] = field(default_factory=list)  # why some hosts are missing


@dataclass
class BookingView:
    booking: Booking
    meeting_type: MeetingType
    organizer: Member
    view_token: str
    cancel_token: str
    reschedule_token: str


class SchedulingService:
    def __init__(
        self,
        session: Session,
        *,
        calendars: CalendarAccess,
        crm: CrmFactory,
        tokens: BookingTokens,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.session = session
        self.repo = SchedulingRepository(session)
        self.calendars = calendars
        self.crm = crm
        self.tokens = tokens
        self.now = now
        self._open: dict[str, SchedulingCalendar] = {}

    async def _calendar(self, member: Member) -> SchedulingCalendar:
        if member.id not in self._open:
            self._open[member.id] = await self.calendars.open_calendar(member)
        return self._open[member.id]

    # -- the database, off the event loop ---------------------------------------------------
    async def _db(self, work: Callable[[], T], *, writes: bool = False) -> T:
        """Run ``work`` in a worker thread. After reads (``writes=False``) the transaction
        ends, so no pooled connection is held while Microsoft is asked next; after writes
        it stays open for the boundary to commit."""

        def run() -> T:
            try:
                return work()
            finally:
                if not writes:
                    self._end_reads()

        return await asyncio.to_thread(run)

    def _end_reads(self) -> None:
        """Give the connection back to the pool: the transaction only read, so committing
        it changes nothing (and the session keeps its objects loaded: it does not expire
        them on commit). A session with changes not yet flushed is left alone."""
        session = self.session
        if session.in_transaction() and not (session.new or session.dirty or session.deleted):
            session.commit()

    # -- meeting types (rep / admin) ---------------------------------------------------------
    def create_meeting_type(
        self, organization_id: str, data: MeetingTypeInput, *, created_by: str | None
    ) -> MeetingType:
        self._check_meeting_type(organization_id, data, None)
        meeting_type = MeetingType(organization_id=organization_id, created_by_member_id=created_by)
        _fill_meeting_type(meeting_type, data)
        return self.repo.add_meeting_type(meeting_type)

    def _check_meeting_type(
        self, organization_id: str, data: MeetingTypeInput, editing: MeetingType | None
    ) -> None:
        for member_id in data.host_member_ids:
            if self.repo.member(organization_id, member_id) is None:
                raise ValidationFailed(
                    "One of the hosts is not a member of your organization.",
                    fix="Choose hosts from the member list.",
                )
        if (editing is None or editing.slug != data.slug) and self.repo.slug_taken(
            organization_id, data.slug
        ):
            raise Conflict(
                f"The link name {data.slug!r} is already used by another meeting type.",
                fix="Pick a different link name.",
            )

    def meeting_type_to_change(
        self, organization_id: str, meeting_type_id: str, member_id: str, *, is_admin: bool
    ) -> MeetingType:
        """A meeting type the member may change: an admin any of their organization's (team
        types included), a member those they host."""
        meeting_type = self.repo.meeting_type(organization_id, meeting_type_id)
        if meeting_type is None:
            raise MeetingTypeNotFound("That meeting type does not exist.", fix="Reload the list.")
        if not is_admin and member_id not in meeting_type.host_ids:
            raise Forbidden(
                "You can change only the meeting types you host.",
                fix="Ask an admin of your organization to change this one.",
            )
        return meeting_type

    def update_meeting_type(self, meeting_type: MeetingType, data: MeetingTypeInput) -> MeetingType:
        """New settings for a meeting type (from ``meeting_type_to_change``); bookings made
        already keep their time and hosts."""
        self._check_meeting_type(meeting_type.organization_id, data, meeting_type)
        # The old hosts, hours and questions go first: the new rows may repeat their keys.
        meeting_type.hosts, meeting_type.rules = [], []
        meeting_type.overrides, meeting_type.questions = [], []
        self.session.flush()
        _fill_meeting_type(meeting_type, data)
        self.session.flush()
        return meeting_type

    def delete_meeting_type(self, meeting_type: MeetingType) -> None:
        """Delete a meeting type (from ``meeting_type_to_change``), refused while customers
        hold upcoming bookings of it: deleting would delete their bookings with it."""
        upcoming = [
            b
            for b in self.repo.upcoming_bookings(meeting_type.organization_id, None, self.now())
            if b.meeting_type_id == meeting_type.id and b.status in LIVE
        ]
        if upcoming:
            raise Conflict(
                f"“{meeting_type.name}” has {len(upcoming)} upcoming "
                f"booking{'s' if len(upcoming) != 1 else ''}.",
                fix="Switch it off instead (no new bookings; the booked meetings stay), or "
                "cancel its bookings first.",
            )
        self.repo.delete_meeting_type(meeting_type)

    def set_meeting_type_active(
        self, organization_id: str, meeting_type_id: str, active: bool
    ) -> MeetingType:
        meeting_type = self.repo.meeting_type(organization_id, meeting_type_id)
        if meeting_type is None:
            raise MeetingTypeNotFound("That meeting type does not exist.", fix="Reload the list.")
        meeting_type.active = active
        self.session.flush()
        return meeting_type

    def set_member_enabled(self, organization_id: str, member_id: str, enabled: bool) -> None:
        if self.repo.member(organization_id, member_id) is None:
            raise NotFound("No such member in your organization.", fix="Reload the member list.")
        self.repo.set_member_enabled(organization_id, member_id, enabled)

    def member_enabled(self, organization_id: str, member_id: str) -> bool:
        return member_id not in self.repo.disabled_member_ids(organization_id)

    async def check_member(self, member: Member) -> str | None:
        """None when scheduling works for this member's mailbox, else the reason and fix:
        the connection is checked, and their free/busy for the next day read, as a booking
        page would (an unlicensed mailbox fails only there)."""
        if not await self._db(lambda: self.member_enabled(member.organization_id, member.id)):
            return "Scheduling is switched off for this member by an admin."
        try:
            calendar = await self._calendar(member)
            now = self.now()
            await self._free_busy(member, calendar, now, now + timedelta(days=1))
        except SchedulingUnavailable as exc:
            return str(exc)
        return None

    async def _free_busy(
        self, member: Member, calendar: SchedulingCalendar, start: datetime, end: datetime
    ) -> CalendarSchedule:
        """The member's free/busy schedule, or ``SchedulingUnavailable`` saying why not."""
        try:
            schedules = await calendar.get_schedule([member.email], start, end)
        except MicrosoftError as exc:
            raise SchedulingUnavailable(
                f"{member.name or member.email}'s calendar can't be read: {exc.message}",
                fix=exc.fix,
            ) from exc
        schedule = schedules.get(member.email.lower())
        if schedule is None or schedule.error:
            raise SchedulingUnavailable(
                f"Microsoft did not return free/busy for {member.email}"
                + (f": {schedule.error}" if schedule and schedule.error else "."),
                fix="Check that the mailbox exists and is licensed for Exchange Online.",
            )
        return schedule

    # -- finding a booking page ---------------------------------------------------------------
    def booking_page(self, org_slug: str, meeting_slug: str) -> tuple[Organization, MeetingType]:
        organization = self.repo.organization_by_slug(org_slug)
        meeting_type = (
            self.repo.meeting_type_by_slug(organization.id, meeting_slug) if organization else None
        )
        if organization is None or meeting_type is None or not meeting_type.active:
            raise MeetingTypeNotFound(
                "There is no booking page at this address.",
                fix="Check the link you were sent, or ask its sender for a new one.",
            )
        return organization, meeting_type

    def check_requested_time(self, meeting_type: MeetingType, start: datetime) -> None:
        """Refuse a time no booking page could have offered (a mistyped or forged link, a
        year 0001 or 9999) with the field to correct; a time that was offered and has
        passed since is for ``reserve`` to refuse with other times."""
        now = self.now()
        if not (
            now - timedelta(days=1) <= start <= now + timedelta(days=meeting_type.horizon_days + 1)
        ):
            raise InvalidBooking(
                {
                    "start": f"{start.date().isoformat()} is outside the dates this page books "
                    f"(from today up to {meeting_type.horizon_days} days ahead): pick a time "
                    "from the list."
                }
            )

    def _hosts(self, meeting_type: MeetingType) -> list[Member]:
        hosts = []
        for member_id in meeting_type.host_ids:
            member = self.repo.member(meeting_type.organization_id, member_id)
            if member is not None:
                hosts.append(member)
        return hosts

    # -- availability ------------------------------------------------------------------------
    async def _host_slots(
        self,
        meeting_type: MeetingType,
        member: Member,
        range_start: datetime,
        range_end: datetime,
        *,
        ignore_booking: Booking | None = None,
    ) -> HostAvailability:
        calendar = await self._calendar(member)
        before = timedelta(minutes=meeting_type.buffer_before_minutes)
        after = timedelta(minutes=meeting_type.buffer_after_minutes)
        duration = timedelta(minutes=meeting_type.duration_minutes)
        query_start = range_start - before - duration
        query_end = range_end + duration + after
        schedule = await self._free_busy(member, calendar, query_start, query_end)
        blocking = frozenset(FreeBusyStatus(s) for s in meeting_type.blocking_statuses)
        items = schedule.items
        if ignore_booking is not None:
            # When moving a booking, its own Outlook event must not block the new time.
            items = [
                i
                for i in items
                if not (i.start == ignore_booking.start and i.end == ignore_booking.end)
            ]
        hours = schedule.working_hours or await self._mailbox_working_hours(calendar)
        rules = self._rules(meeting_type, hours)

        def booked_through_us() -> tuple[list[Interval], dict[date, int]]:
            ours = self.repo.live_booking_intervals(
                member.id,
                query_start,
                query_end,
                excluding=ignore_booking.id if ignore_booking else None,
            )
            per_day = self.repo.bookings_per_day(
                meeting_type.id,
                member.id,
                rules.time_zone,
                query_start - timedelta(days=1),
                query_end + timedelta(days=1),
            )
            return ours, per_day

        ours, counts = await self._db(booked_through_us)
        busy = blocking_intervals(items, blocking) + ours
        if ignore_booking is not None:
            day = ignore_booking.start.astimezone(rules.time_zone).date()
            if counts.get(day):
                counts[day] -= 1
        slots = compute_slots(
            rules,
            busy,
            now=self.now(),
            range_start=range_start,
            range_end=range_end,
            bookings_per_day=counts,
            member_id=member.id,
        )
        return HostAvailability(member=member, slots=slots, time_zone=str(rules.time_zone))

    async def _mailbox_working_hours(self, calendar: SchedulingCalendar) -> WorkingHours:
        """Working hours and time zone from mailboxSettings, for when getSchedule gave none
        (getSchedule's come from the same mailbox settings and need no extra permission;
        ``/mailboxSettings`` needs MailboxSettings.Read, which a service account may lack)."""
        try:
            settings = await calendar.mailbox_settings()
        except MicrosoftError as exc:
            log.info("mailboxSettings unavailable (%s); using Exchange's default hours", exc)
            return DEFAULT_WORKING_HOURS
        hours = settings.working_hours or DEFAULT_WORKING_HOURS
        if not hours.time_zone or hours.time_zone == "UTC":
            hours = WorkingHours(hours.weekdays, hours.start, hours.end, settings.time_zone)
        return hours

    def _rules(self, meeting_type: MeetingType, hours: WorkingHours) -> SlotRules:
        """The meeting type's rules for one host: windows are wall-clock times in the host's
        Outlook time zone (the one their working hours are expressed in)."""
        try:
            zone = zone_from_microsoft(hours.time_zone)
            if meeting_type.availability_source is AvailabilitySource.OUTLOOK:
                weekly = _outlook_week(hours)
            else:
                grouped: dict[int, list[LocalWindow]] = {}
                for rule in meeting_type.rules:
                    grouped.setdefault(rule.weekday, []).append(
                        LocalWindow(rule.start_time, rule.end_time)
                    )
                weekly = {day: tuple(windows) for day, windows in grouped.items()}
        except UnknownTimeZone as exc:
            raise SchedulingUnavailable(str(exc)) from exc
        overrides: dict[date, list[LocalWindow]] = {}
        for override in meeting_type.overrides:
            windows = overrides.setdefault(override.day, [])
            if override.start_time is not None and override.end_time is not None:
                windows.append(LocalWindow(override.start_time, override.end_time))
        step = meeting_type.slot_interval_minutes
        return SlotRules(
            duration=timedelta(minutes=meeting_type.duration_minutes),
            time_zone=zone,
            weekly=weekly,
            overrides={day: tuple(w) for day, w in overrides.items()},
            interval=timedelta(minutes=step) if step else None,
            buffer_before=timedelta(minutes=meeting_type.buffer_before_minutes),
            buffer_after=timedelta(minutes=meeting_type.buffer_after_minutes),
            minimum_notice=timedelta(minutes=meeting_type.minimum_notice_minutes),
            horizon=timedelta(days=meeting_type.horizon_days),
            daily_limit=meeting_type.daily_limit,
        )

    async def open_slots(
        self,
        meeting_type: MeetingType,
        range_start: datetime,
        range_end: datetime,
        *,
        only_hosts: Sequence[str] | None = None,
        ignore_booking: Booking | None = None,
    ) -> tuple[list[Slot], list[str]]:
        """Open slots of a meeting type (every kind) and why any host had to be left out.

        A range wholly in the past or beyond the meeting type's horizon has no slots, and
        Microsoft is not asked about it."""
        now = self.now()
        latest = now + timedelta(days=meeting_type.horizon_days)
        if range_end <= now or range_start > latest:
            return [], []
        range_start = max(range_start, now - timedelta(days=1))
        range_end = min(range_end, latest + timedelta(days=1))

        def hosts_and_switched_off() -> tuple[list[Member], set[str]]:
            return (
                self._hosts(meeting_type),
                self.repo.disabled_member_ids(meeting_type.organization_id),
            )

        hosts, disabled = await self._db(hosts_and_switched_off)
        per_member: dict[str, list[Slot]] = {}
        problems: list[str] = []
        for member in hosts:
            if only_hosts is not None and member.id not in only_hosts:
                continue
            if member.id in disabled:
                problems.append(
                    f"{member.name or member.email}: scheduling is switched off by an admin."
                )
                continue
            try:
                host = await self._host_slots(
                    meeting_type, member, range_start, range_end, ignore_booking=ignore_booking
                )
            except SchedulingUnavailable as exc:
                log.warning("scheduling unavailable for %s: %s", member.email, exc)
                problems.append(str(exc))
                continue
            per_member[member.id] = host.slots
        if meeting_type.kind is MeetingKind.COLLECTIVE:
            expected = len(only_hosts) if only_hosts is not None else len(meeting_type.host_ids)
            if problems or len(per_member) < expected:
                return [], problems  # a collective meeting needs every host
            slots = collective_slots(per_member)
        else:
            slots = round_robin_slots(per_member)
        if meeting_type.book_room and slots:
            reader = next(m for m in hosts if m.id in per_member)
            slots = await self._with_a_free_room(reader, slots, problems)
        return slots, problems

    async def _with_a_free_room(
        self, reader: Member, slots: list[Slot], problems: list[str]
    ) -> list[Slot]:
        """The slots at which some room is free, read through ``reader``'s connection. When
        rooms can't be read, the slots stay (booking then says why) and the reason joins
        ``problems``."""
        try:
            calendar = await self._calendar(reader)
            rooms = await room_busy(calendar, slots[0].start, max(s.end for s in slots))
        except (MicrosoftError, SchedulingUnavailable) as exc:
            log.warning("meeting rooms unavailable through %s: %s", reader.email, exc)
            problems.append(str(exc))
            return slots
        return slots_with_a_free_room(slots, (busy for _, busy in rooms))

    async def slot_page(
        self, org_slug: str, meeting_slug: str, range_start: datetime, range_end: datetime
    ) -> SlotPage:
        organization, meeting_type = await self._db(
            lambda: self.booking_page(org_slug, meeting_slug)
        )
        slots, problems = await self.open_slots(meeting_type, range_start, range_end)
        return SlotPage(
            meeting_type=meeting_type,
            organization=organization,
            slots=slots,
            hosts=await self._db(lambda: self._hosts(meeting_type)),
            unavailable=problems,
        )

    async def _alternatives(
        self,
        meeting_type: MeetingType,
        around: datetime,
        *,
        only_hosts: Sequence[str] | None = None,
        ignore_booking: Booking | None = None,
    ) -> list[Slot]:
        start = max(self.now(), around - timedelta(days=1))
        slots, _ = await self.open_slots(
            meeting_type,
            start,
            start + timedelta(days=14),
            only_hosts=only_hosts,
            ignore_booking=ignore_booking,
        )
        return sorted(slots, key=lambda s: abs(s.start - around))[:ALTERNATIVES_SHOWN]

    # -- booking ----------------------------------------------------------------------------
    def _validate_invitee(
        self, meeting_type: MeetingType, invitee: InviteeInput
    ) -> list[dict[str, str]]:
        problems: dict[str, str] = {}
        if not invitee.name.strip():
            problems["name"] = "Enter your name."
        if not EMAIL.match(invitee.email.strip()) or normalize_address(invitee.email) is None:
            problems["email"] = "Enter an email address like name@example.com."
        answers: list[dict[str, str]] = []
        for question in meeting_type.questions:
            answer = invitee.answers.get(question.id, "").strip()
            if question.required and not answer:
                problems[f"q_{question.id}"] = f"Please answer: {question.label}"
            answers.append({"question": question.label, "answer": answer[:4000]})
        try:
            zone_from_microsoft(invitee.time_zone)
        except UnknownTimeZone:
            problems["time_zone"] = "Choose your time zone from the list."
        if problems:
            raise InvalidBooking(problems)
        return answers

    async def reserve(
        self, org_slug: str, meeting_slug: str, start: datetime, invitee: InviteeInput
    ) -> Booking:
        """Check the slot against fresh free/busy and claim it. Commit before ``confirm``."""

        def page_and_answers() -> tuple[MeetingType, list[dict[str, str]]]:
            _, meeting_type = self.booking_page(org_slug, meeting_slug)
            answers = self._validate_invitee(meeting_type, invitee)
            self.check_requested_time(meeting_type, start)
            return meeting_type, answers

        meeting_type, answers = await self._db(page_and_answers)
        start = start.astimezone(UTC)
        if (start - datetime(2000, 1, 1, tzinfo=UTC)) % CLAIM_GRANULARITY:
            raise self._taken(meeting_type, start, [])
        duration = timedelta(minutes=meeting_type.duration_minutes)
        # A fresh read of the hosts' calendars: the time must still be free in Outlook.
        slots, _ = await self.open_slots(meeting_type, start, start + timedelta(microseconds=1))
        match = next((s for s in slots if s.start == start), None)
        if match is None:
            raise self._taken(meeting_type, start, await self._alternatives(meeting_type, start))

        def claim() -> Booking | None:
            if meeting_type.kind is MeetingKind.COLLECTIVE:
                attempts = [list(match.member_ids)]
            else:
                counts, last = self.repo.booking_counts(meeting_type.id, match.member_ids)
                attempts = [[m] for m in choose_round_robin(match.member_ids, counts, last)]
            for hosts in attempts:
                booking = Booking(
                    organization_id=meeting_type.organization_id,
                    meeting_type_id=meeting_type.id,
                    organizer_member_id=hosts[0],
                    host_member_ids=hosts,
                    start=start,
                    end=start + duration,
                    status=BookingStatus.PENDING,
                    invitee_name=invitee.name.strip()[:200],
                    invitee_email=normalize_address(invitee.email) or invitee.email.strip(),
                    invitee_time_zone=invitee.time_zone,
                    answers=answers,
                )
                try:
                    self.repo.add_booking_with_claims(booking, hosts)
                except SlotAlreadyClaimed:
                    continue  # booked through us a moment ago: try the next free host
                return booking
            self._end_reads()  # every claim was refused (and rolled back): nothing to keep
            return None

        booking = await self._db(claim, writes=True)
        if booking is None:
            raise self._taken(meeting_type, start, await self._alternatives(meeting_type, start))
        return booking

    def _taken(
        self, meeting_type: MeetingType, start: datetime, alternatives: list[Slot]
    ) -> SlotUnavailable:
        return SlotUnavailable(
            "Sorry, that time was just booked or is no longer available.",
            fix="Pick one of the other times below.",
            alternatives=alternatives,
        )

    async def confirm(self, booking_id: str, *, retry_later: bool = False) -> BookingView:
        """Create the Outlook event for a reserved booking and log it in the CRM.

        When Microsoft refuses, the booking is marked failed and its time released
        (``CalendarWriteFailed``); with ``retry_later`` a retryable refusal (throttled,
        transient) is raised as is and the booking stays pending for the next attempt.
        """

        def load() -> tuple[Booking, Member, EventRequest | None]:
            """The booking, its organizer, and the event to create (None: nothing to do)."""
            booking = self.repo.booking(booking_id)
            if booking is None:
                raise BookingNotFound("That booking does not exist.", fix="Book again.")
            organizer = self._member(booking.organization_id, booking.organizer_member_id)
            if booking.status is not BookingStatus.PENDING:
                return booking, organizer, None
            meeting_type = booking.meeting_type
            others = [self._member(booking.organization_id, m) for m in booking.host_member_ids[1:]]
            return (
                booking,
                organizer,
                EventRequest(
                    subject=f"{meeting_type.name}: {booking.invitee_name}",
                    body_html=self._event_body(booking),
                    start=booking.start,
                    end=booking.end,
                    attendees=[(booking.invitee_email, booking.invitee_name)]
                    + [(m.email, m.name) for m in others],
                    location=meeting_type.location,
                    online_meeting=meeting_type.online_meeting,
                    transaction_id=booking.id,
                ),
            )

        booking, organizer, request = await self._db(load)
        if request is None:
            return await self._db(lambda: self.view(booking))
        room: Room | None = None
        try:
            calendar = await self._calendar(organizer)
            if booking.meeting_type.book_room:
                room = await free_room(calendar, booking.start, booking.end)
                request = with_room(request, room)
            event = await calendar.create_event(request)
        except (MicrosoftError, SchedulingUnavailable) as exc:
            if retry_later and isinstance(exc, MicrosoftError) and exc.retryable:
                raise

            failure = str(exc)

            def failed() -> None:
                booking.status = BookingStatus.FAILED
                booking.failure = failure
                self.repo.release_claims(booking)

            await self._db(failed, writes=True)
            if isinstance(exc, NoRoomFree):
                raise
            raise CalendarWriteFailed(
                f"The meeting could not be added to {organizer.name or organizer.email}'s "
                "calendar, so nothing was booked.",
                fix="Please try again in a few minutes, or contact them directly.",
            ) from exc

        def confirmed() -> BookingView:
            if room is not None:
                booking.room_email, booking.room_name = room.email, room.name
            booking.graph_event_id = event.id
            booking.ical_uid = event.ical_uid
            booking.online_meeting_url = event.online_meeting_url
            booking.status = BookingStatus.CONFIRMED
            self._log_in_crm(booking, organizer)
            self.session.flush()
            return self.view(booking)

        return await self._db(confirmed, writes=True)

    async def recover(self, booking_id: str) -> BookingStatus | None:
        """Finish a booking left pending (the process stopped between committing its claim
        and confirming it), or release its time. Returns its status afterwards (None when
        it no longer exists).

        Safe to repeat, and to race with the request that made the booking: the Outlook
        create carries the booking id as ``transactionId``, so when the first attempt did
        reach Outlook, Graph answers with that event instead of making a second one, and
        the CRM event is upserted by its iCalUId. A booking whose meeting has already
        started is released without touching Outlook (an invitation to a past meeting
        helps nobody). A retryable refusal (throttled, transient) leaves it pending for
        the next attempt; any other refusal releases it, as at booking time.
        """
        booking = await self._db(lambda: self.repo.booking(booking_id))
        if booking is None or booking.status is not BookingStatus.PENDING:
            return booking.status if booking else None
        if booking.start <= self.now():

            def released() -> None:
                booking.status = BookingStatus.FAILED
                booking.failure = (
                    "The meeting time passed before it was added to Outlook, so it was released."
                )
                self.repo.release_claims(booking)
                self.session.flush()

            await self._db(released, writes=True)
            return booking.status
        try:
            await self.confirm(booking.id, retry_later=True)
        except CalendarWriteFailed:
            pass  # marked failed, with the reason, and its time released
        except MicrosoftError as exc:
            log.info("booking %s stays pending, Outlook will be asked again: %s", booking.id, exc)
        return booking.status

    def _member(self, organization_id: str, member_id: str) -> Member:
        member = self.repo.member(organization_id, member_id)
        if member is None:
            raise BookingNotFound("The host of this booking no longer exists.", fix="Book again.")
        return member

    def _event_body(self, booking: Booking) -> str:
        who = f"{html.escape(booking.invitee_name)} ({html.escape(booking.invitee_email)})"
        lines = [f"<p>Booked by {who}.</p>"]
        for item in booking.answers or []:
            question = html.escape(item.get("question", ""))
            answer = html.escape(item.get("answer", ""))
            lines.append(f"<p><b>{question}</b><br>{answer}</p>")
        return "\n".join(lines)

    def _log_in_crm(self, booking: Booking, organizer: Member, *, cancelled: bool = False) -> None:
        crm = self.crm(self.session, booking.organization_id)
        person = self._crm_person(crm, booking, organizer)
        external_id = booking.ical_uid or f"booking:{booking.id}"
        participants = [
            Participant(address=organizer.email.lower(), name=organizer.name, role="organizer"),
            Participant(address=booking.invitee_email, name=booking.invitee_name, role="attendee"),
        ]
        people = [person] if person else []
        crm.upsert_events(
            [
                EventRecord(
                    external_id=external_id,
                    member_id=organizer.id,
                    graph_item_id=booking.graph_event_id or "",
                    change_key=None,
                    subject=f"{booking.meeting_type.name}: {booking.invitee_name}",
                    body=self._event_body(booking),
                    starts_at=booking.start,
                    ends_at=booking.end,
                    is_all_day=False,
                    location=booking.room_name
                    or booking.meeting_type.location
                    or (booking.online_meeting_url or ""),
                    is_cancelled=cancelled,
                    series_key=None,
                    modified_at=self.now(),
                    participants=participants,
                    people=people,
                    account_ids=[p.account_id for p in people if p.account_id],
                    organizer_address=organizer.email.lower(),
                )
            ]
        )
        booking.crm_event_id = external_id
        booking.crm_person_id = person.id if person else None

    def _crm_person(
        self, crm: CrmTarget, booking: Booking, organizer: Member
    ) -> PersonMatch | None:
        found = crm.find_people([booking.invitee_email]).get(booking.invitee_email)
        if found is None and self.repo.settings(booking.organization_id).create_leads:
            created = crm.create_leads(
                [NewLead(email=booking.invitee_email, name=booking.invitee_name)], organizer.id
            )
            found = created.get(booking.invitee_email)
        return found

    def view(self, booking: Booking) -> BookingView:
        def token(action: BookingAction) -> str:
            return self.tokens.issue(
                booking.id,
                action,
                version=booking.version,
                meeting_start=booking.start,
                meeting_end=booking.end,
            )

        return BookingView(
            booking=booking,
            meeting_type=booking.meeting_type,
            organizer=self._member(booking.organization_id, booking.organizer_member_id),
            view_token=token(BookingAction.VIEW),
            cancel_token=token(BookingAction.CANCEL),
            reschedule_token=token(BookingAction.RESCHEDULE),
        )

    # -- the invitee's links ------------------------------------------------------------------
    def booking_from_link(self, token: str, action: BookingAction) -> Booking:
        link = self.tokens.read(token, action, now=self.now())
        booking = self.repo.booking(link.booking_id)
        if booking is None:
            raise InvalidBookingLink(
                "This booking link is not valid.", fix="Open the link from your confirmation email."
            )
        if link.version != booking.version:
            raise InvalidBookingLink(
                "This link is for an earlier time of this meeting, which has since been moved.",
                fix="Use the links on the most recent confirmation.",
            )
        return booking

    def cancel(self, token: str, reason: str = "") -> Booking:
        """Cancel locally; then call ``push_cancellation`` after the commit."""
        booking = self.booking_from_link(token, BookingAction.CANCEL)
        if not booking.active:
            raise BookingClosed("This meeting is already cancelled.", fix="Nothing more to do.")
        booking.status = BookingStatus.CANCELLED
        booking.cancelled_at = self.now()
        booking.cancel_reason = reason.strip()[:2000] or None
        self.repo.release_claims(booking)
        organizer = self._member(booking.organization_id, booking.organizer_member_id)
        self._log_in_crm(booking, organizer, cancelled=True)
        self.session.flush()
        return booking

    async def _booking_in_outlook(self, booking_id: str) -> tuple[Booking, Member, str] | None:
        """The booking, its organizer and its Outlook event's id, when it has one."""

        def load() -> tuple[Booking, Member, str] | None:
            booking = self.repo.booking(booking_id)
            if booking is None or booking.graph_event_id is None:
                return None
            organizer = self._member(booking.organization_id, booking.organizer_member_id)
            return booking, organizer, booking.graph_event_id

        return await self._db(load)

    async def _note_failure(self, booking: Booking, failure: str) -> None:
        def note() -> None:
            booking.failure = failure
            self.session.flush()

        await self._db(note, writes=True)

    async def push_cancellation(self, booking_id: str) -> None:
        found = await self._booking_in_outlook(booking_id)
        if found is None:
            return
        booking, organizer, event_id = found
        comment = "Cancelled by the invitee" + (
            f": {booking.cancel_reason}" if booking.cancel_reason else "."
        )
        try:
            calendar = await self._calendar(organizer)
            await calendar.cancel_event(event_id, comment)
        except (MicrosoftError, SchedulingUnavailable) as exc:
            await self._note_failure(
                booking, f"Outlook was not updated with the cancellation: {exc}"
            )
            log.warning("cancellation of booking %s not written to Outlook: %s", booking.id, exc)

    def movable_booking(self, token: str) -> Booking:
        """The booking a reschedule link names, if it can still be moved."""
        booking = self.booking_from_link(token, BookingAction.RESCHEDULE)
        if not booking.active:
            raise BookingClosed(
                "This meeting was cancelled, so it can't be moved.", fix="Book a new time instead."
            )
        return booking

    async def reschedule_slots(
        self, token: str, range_start: datetime, range_end: datetime
    ) -> tuple[Booking, list[Slot]]:
        booking = await self._db(lambda: self.movable_booking(token))
        slots, _ = await self.open_slots(
            booking.meeting_type,
            range_start,
            range_end,
            only_hosts=booking.host_member_ids,
            ignore_booking=booking,
        )
        return booking, slots

    async def reschedule(self, token: str, start: datetime) -> Booking:
        """Move the booking locally (new claims, new version); ``push_move`` after commit."""

        def movable() -> Booking:
            booking = self.movable_booking(token)
            self.check_requested_time(booking.meeting_type, start)
            return booking

        booking = await self._db(movable)
        start = start.astimezone(UTC)
        meeting_type = booking.meeting_type
        slots, _ = await self.open_slots(
            meeting_type,
            start,
            start + timedelta(microseconds=1),
            only_hosts=booking.host_member_ids,
            ignore_booking=booking,
        )
        if not any(s.start == start for s in slots):
            raise self._taken(
                meeting_type,
                start,
                await self._alternatives(
                    meeting_type, start, only_hosts=booking.host_member_ids, ignore_booking=booking
                ),
            )
        end = start + timedelta(minutes=meeting_type.duration_minutes)

        def move() -> Booking:
            try:
                self.repo.move_claims(booking, booking.host_member_ids, start, end)
            except SlotAlreadyClaimed:
                raise self._taken(meeting_type, start, []) from None
            booking.version += 1
            organizer = self._member(booking.organization_id, booking.organizer_member_id)
            self._log_in_crm(booking, organizer)
            self.session.flush()
            return booking

        return await self._db(move, writes=True)

    async def push_move(self, booking_id: str) -> None:
        found = await self._booking_in_outlook(booking_id)
        if found is None:
            return
        booking, organizer, event_id = found
        try:
            calendar = await self._calendar(organizer)
            await calendar.move_event(event_id, booking.start, booking.end)
        except (MicrosoftError, SchedulingUnavailable) as exc:
            await self._note_failure(booking, f"Outlook was not updated with the new time: {exc}")
            log.warning("move of booking %s not written to Outlook: %s", booking.id, exc)

    # -- the rep's and the admin's view ----------------------------------------------------------
    def upcoming(self, organization_id: str, member_id: str | None) -> list[Booking]:
        return self.repo.upcoming_bookings(organization_id, member_id, self.now())

    def meeting_types_for(self, organization_id: str, member_id: str | None) -> list[MeetingType]:
        if member_id is None:
            return self.repo.meeting_types(organization_id)
        return self.repo.meeting_types_for_member(organization_id, member_id)

    def members(self, organization_id: str) -> list[Member]:
        return self.repo.members(organization_id)


async def room_busy(
    calendar: SchedulingCalendar, start: datetime, end: datetime
) -> list[tuple[Room, list[Interval]]]:
    """Each room whose free/busy Microsoft sent, smallest first (then by name), with the
    times in ``[start, end)`` it is taken. Rooms come from the tenant's ``/places``; their
    free/busy from ``getSchedule`` like any mailbox's. ``/places`` is Graph's: a host whose
    mailbox is on an Exchange Server books no room."""
    if not isinstance(calendar, MailboxCalendar):
        raise NoRoomFree(
            "Meeting rooms are found through Microsoft Graph, and this host's mailbox is on "
            "an Exchange Server, so this meeting type can't book a room for them.",
            fix="Turn room booking off for this meeting type, or choose hosts whose mailboxes "
            "are in Exchange Online.",
        )
    try:
        schedules = await calendar.room_schedules(start, end)
    except MicrosoftError as exc:
        if exc.http_status == 403:
            raise NoRoomFree(
                "Meeting rooms can't be looked up, so this meeting type can't book one.",
                fix="An admin grants the service account the Place.Read.All permission "
                "(application) in Microsoft Entra, or turns room booking off for this meeting "
                "type.",
                missing_permissions=["Place.Read.All"],
            ) from exc
        raise
    found = [
        (room, blocking_intervals(schedule.items, ROOM_BLOCKING))
        for room, schedule in schedules
        if schedule is not None and not schedule.error
    ]
    found.sort(key=lambda r: (r[0].capacity if r[0].capacity is not None else 1_000_000, r[0].name))
    return found


async def free_room(calendar: SchedulingCalendar, start: datetime, end: datetime) -> Room:
    """A room free for ``[start, end)``: the smallest (then by name) with nothing in the way."""
    wanted = Interval(start.astimezone(UTC), end.astimezone(UTC))
    for room, busy in await room_busy(calendar, start, end):
        if not any(interval.overlaps(wanted) for interval in busy):
            return room
    raise NoRoomFree(
        "No meeting room is free at that time, so nothing was booked.",
        fix="Please pick another time.",
    )


def with_room(request: EventRequest, room: Room) -> EventRequest:
    """The event with ``room`` invited as a resource and named as the location."""
    return replace(request, resources=[(room.email, room.name)], location=room.name)


def _fill_meeting_type(meeting_type: MeetingType, data: MeetingTypeInput) -> None:
    """A meeting type's settings from the form (new or edited): its hosts, weekly hours,
    date overrides and questions replaced as a whole."""
    meeting_type.slug = data.slug
    meeting_type.name = data.name
    meeting_type.description = data.description
    meeting_type.kind = data.kind
    meeting_type.duration_minutes = data.duration_minutes
    meeting_type.slot_interval_minutes = data.slot_interval_minutes
    meeting_type.location = data.location
    meeting_type.online_meeting = data.online_meeting
    meeting_type.book_room = data.book_room
    meeting_type.availability_source = data.availability_source
    meeting_type.buffer_before_minutes = data.buffer_before_minutes
    meeting_type.buffer_after_minutes = data.buffer_after_minutes
    meeting_type.minimum_notice_minutes = data.minimum_notice_minutes
    meeting_type.horizon_days = data.horizon_days
    meeting_type.daily_limit = data.daily_limit
    meeting_type.blocking_statuses = list(data.blocking_statuses)
    meeting_type.hosts = [
        MeetingTypeHost(member_id=m, position=i) for i, m in enumerate(data.host_member_ids)
    ]
    meeting_type.rules = [
        AvailabilityRule(weekday=w.weekday, start_time=w.start, end_time=w.end)
        for w in data.windows
    ]
    meeting_type.overrides = [
        DateOverride(day=o.day, start_time=o.start, end_time=o.end) for o in data.overrides
    ]
    meeting_type.questions = [
        Question(position=i, label=q.label, required=q.required, multiline=q.multiline)
        for i, q in enumerate(data.questions)
    ]


def _outlook_week(hours: WorkingHours) -> dict[int, tuple[LocalWindow, ...]]:
    """Outlook's working hours as weekly windows (an end at or before the start: midnight)."""
    end = hours.end if hours.end > hours.start else time(0)
    return {day: (LocalWindow(hours.start, end),) for day in hours.weekdays}


def local_day_bounds(day: date, zone_name: str) -> tuple[datetime, datetime]:
    zone = zone_from_microsoft(zone_name)
    start = datetime.combine(day, time(0), tzinfo=zone)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def unavailable_reason(missing: Sequence[str], who: str) -> SchedulingUnavailable:
    """The error for a mailbox whose connection lacks some of the four permissions."""
    names = ", ".join(missing)
    return SchedulingUnavailable(
        f"Calendar Scheduling is unavailable for {who}: the connection lacks the {names} "
        f"permission{'s' if len(missing) > 1 else ''}.",
        fix=(
            "An admin adds it under App registrations → your app → API permissions → Microsoft "
            "Graph (then Grant admin consent), or the user reconnects their Office 365."
        ),
        missing_permissions=missing,
    )


def creates_leads(session: Session, organization_id: str) -> bool:
    """Whether a booking by an invitee the CRM doesn't know creates a lead for them."""
    return SchedulingRepository(session).settings(organization_id).create_leads


def set_creates_leads(session: Session, organization_id: str, enabled: bool) -> None:
    SchedulingRepository(session).settings(organization_id).create_leads = enabled


__all__ = [
    "REQUIRED_PERMISSIONS",
    "BookingView",
    "CalendarAccess",
    "CrmFactory",
    "SchedulingService",
    "SlotPage",
    "creates_leads",
    "local_day_bounds",
    "set_creates_leads",
    "unavailable_reason",
]
