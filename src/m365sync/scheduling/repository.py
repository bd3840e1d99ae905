"""Every database query Calendar Scheduling makes. Nothing here commits."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from datetime import date, datetime, tzinfo

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from m365sync.organizations.models import Member, Organization
from m365sync.scheduling.availability import Interval
from m365sync.scheduling.models import (
    CLAIM_GRANULARITY,
    Booking,
    BookingClaim,
    BookingStatus,
    MeetingType,
    MeetingTypeHost,
    MemberScheduling,
    SchedulingSettings,
)

LIVE = (BookingStatus.PENDING, BookingStatus.CONFIRMED)


class SlotAlreadyClaimed(Exception):
    """Another live booking holds part of this time for one of the hosts."""


def claim_blocks(start: datetime, end: datetime) -> list[datetime]:
    blocks: list[datetime] = []
    at = start
    while at < end:
        blocks.append(at)
        at += CLAIM_GRANULARITY
    return blocks


class SchedulingRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- organizations and members ---------------------------------------------------------
    def organization_by_slug(self, slug: str) -> Organization | None:
        return self.session.scalar(select(Organization).where(Organization.slug == slug))

    def organization(self, organization_id: str) -> Organization | None:
        return self.session.get(Organization, organization_id)

    def member(self, organization_id: str, member_id: str) -> Member | None:
        return self.session.scalar(
            select(Member).where(Member.organization_id == organization_id, Member.id == member_id)
        )

    def members(self, organization_id: str) -> list[Member]:
        return list(
            self.session.scalars(
                select(Member)
                .where(Member.organization_id == organization_id)
                .order_by(Member.name)
            )
        )

    def settings(self, organization_id: str) -> SchedulingSettings:
        found = self.session.get(SchedulingSettings, organization_id)
        if found is None:
            found = SchedulingSettings(organization_id=organization_id, create_leads=True)
            self.session.add(found)
            self.session.flush()
        return found

    def disabled_member_ids(self, organization_id: str) -> set[str]:
        return set(
            self.session.scalars(
                select(MemberScheduling.member_id).where(
                    MemberScheduling.organization_id == organization_id,
                    MemberScheduling.enabled.is_(False),
                )
            )
        )

    def set_member_enabled(self, organization_id: str, member_id: str, enabled: bool) -> None:
        row = self.session.get(MemberScheduling, member_id)
        if row is None:
            row = MemberScheduling(member_id=member_id, organization_id=organization_id)
            self.session.add(row)
        row.enabled = enabled
        self.session.flush()

    # -- meeting types -----------------------------------------------------------------------
    def add_meeting_type(self, meeting_type: MeetingType) -> MeetingType:
        self.session.add(meeting_type)
        self.session.flush()
        return meeting_type

    def delete_meeting_type(self, meeting_type: MeetingType) -> None:
        self.session.delete(meeting_type)
        self.session.flush()

    def slug_taken(self, organization_id: str, slug: str) -> bool:
        return (
            self.session.scalar(
                select(MeetingType.id).where(
                    MeetingType.organization_id == organization_id, MeetingType.slug == slug
                )
            )
            is not None
        )

    def meeting_type(self, organization_id: str, meeting_type_id: str) -> MeetingType | None:
        return self.session.scalar(
            select(MeetingType).where(
                MeetingType.organization_id == organization_id, MeetingType.id == meeting_type_id
            )
        )

    def meeting_type_by_slug(self, organization_id: str, slug: str) -> MeetingType | None:
        return self.session.scalar(
            select(MeetingType).where(
                MeetingType.organization_id == organization_id, MeetingType.slug == slug
            )
        )

    def meeting_types_for_member(self, organization_id: str, member_id: str) -> list[MeetingType]:
        return list(
            self.session.scalars(
                select(MeetingType)
                .join(MeetingTypeHost, MeetingTypeHost.meeting_type_id == MeetingType.id)
                .where(
                    MeetingType.organization_id == organization_id,
                    MeetingTypeHost.member_id == member_id,
                )
                .order_by(MeetingType.name)
            )
        )

    def meeting_types(self, organization_id: str) -> list[MeetingType]:
        return list(
            self.session.scalars(
                select(MeetingType)
                .where(MeetingType.organization_id == organization_id)
                .order_by(MeetingType.name)
            )
        )

    # -- bookings ---------------------------------------------------------------------------
    def booking(self, booking_id: str) -> Booking | None:
        """By id alone: the public pages reach a booking through a signed link, which is
        the authority (it names the booking and was issued by us)."""
        return self.session.get(Booking, booking_id)

    def booking_in_org(self, organization_id: str, booking_id: str) -> Booking | None:
        return self.session.scalar(
            select(Booking).where(
                Booking.organization_id == organization_id, Booking.id == booking_id
            )
        )

    def add_booking_with_claims(self, booking: Booking, host_ids: Sequence[str]) -> None:
        """Insert the booking and its claims; ``SlotAlreadyClaimed`` if any block is taken.
        Runs in a savepoint so a refusal leaves the session usable."""
        try:
            with self.session.begin_nested():
                self.session.add(booking)
                self.session.flush()
                self._add_claims(booking, host_ids)
        except IntegrityError as exc:
            raise SlotAlreadyClaimed from exc

    def move_claims(
        self, booking: Booking, host_ids: Sequence[str], start: datetime, end: datetime
    ) -> None:
        """Swap the booking's claims for the new time, atomically (``SlotAlreadyClaimed``)."""
        try:
            with self.session.begin_nested():
                self.release_claims(booking)
                booking.start, booking.end = start, end
                self.session.flush()
                self._add_claims(booking, host_ids)
        except IntegrityError as exc:
            self.session.refresh(booking)
            raise SlotAlreadyClaimed from exc

    def _add_claims(self, booking: Booking, host_ids: Sequence[str]) -> None:
        for member_id in host_ids:
            for block in claim_blocks(booking.start, booking.end):
                self.session.add(
                    BookingClaim(booking_id=booking.id, member_id=member_id, block_start=block)
                )
        self.session.flush()

    def release_claims(self, booking: Booking) -> None:
        self.session.execute(delete(BookingClaim).where(BookingClaim.booking_id == booking.id))
        self.session.flush()

    def stale_pending_bookings(self, created_before: datetime, limit: int = 100) -> list[str]:
        """Ids of bookings still pending that were made before ``created_before``, oldest
        first: the process that made them stopped before Outlook heard of them."""
        return list(
            self.session.scalars(
                select(Booking.id)
                .where(Booking.status == BookingStatus.PENDING, Booking.created_at < created_before)
                .order_by(Booking.created_at)
                .limit(limit)
            )
        )

    def live_booking_intervals(
        self, member_id: str, start: datetime, end: datetime, *, excluding: str | None = None
    ) -> list[Interval]:
        """Times the member is booked through us (Outlook may not show them yet)."""
        query = select(Booking.start, Booking.end, Booking.host_member_ids).where(
            Booking.status.in_(LIVE), Booking.start < end, Booking.end > start
        )
        if excluding:
            query = query.where(Booking.id != excluding)
        rows = self.session.execute(query).all()
        return [Interval(s, e) for s, e, hosts in rows if member_id in (hosts or [])]

    def bookings_per_day(
        self, meeting_type_id: str, member_id: str, zone: tzinfo, start: datetime, end: datetime
    ) -> dict[date, int]:
        rows = self.session.execute(
            select(Booking.start, Booking.host_member_ids).where(
                Booking.meeting_type_id == meeting_type_id,
                Booking.status.in_(LIVE),
                Booking.start >= start,
                Booking.start < end,
            )
        ).all()
        counts: Counter[date] = Counter(
            s.astimezone(zone).date() for s, hosts in rows if member_id in (hosts or [])
        )
        return dict(counts)

    def booking_counts(
        self, meeting_type_id: str, member_ids: Collection[str]
    ) -> tuple[dict[str, int], dict[str, datetime]]:
        """Live bookings per organizer for a meeting type, and when each was last booked."""
        rows = self.session.execute(
            select(Booking.organizer_member_id, func.count(), func.max(Booking.created_at))
            .where(
                Booking.meeting_type_id == meeting_type_id,
                Booking.status.in_(LIVE),
                Booking.organizer_member_id.in_(list(member_ids)),
            )
            .group_by(Booking.organizer_member_id)
        ).all()
        counts = {member_id: int(count) for member_id, count, _ in rows}
        last = {member_id: when for member_id, _, when in rows if when is not None}
        return counts, last

    def upcoming_bookings(
        self, organization_id: str, member_id: str | None, now: datetime, limit: int = 100
    ) -> list[Booking]:
        query = (
            select(Booking)
            .where(
                Booking.organization_id == organization_id,
                Booking.end > now,
                Booking.status.in_((*LIVE, BookingStatus.CANCELLED, BookingStatus.FAILED)),
            )
            .order_by(Booking.start)
            .limit(limit)
        )
        bookings = list(self.session.scalars(query))
        if member_id is None:
            return bookings
        return [b for b in bookings if member_id in (b.host_member_ids or [])]
