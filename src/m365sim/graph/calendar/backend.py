"""The calendar backend: event operations across mailboxes, and the meeting messages they send.

Per-mailbox rules live in ``CalendarStore``; this layer adds what spans mailboxes. Whenever
an organizer creates, updates, cancels or deletes a meeting with attendees, Exchange sends
meeting requests, updates or cancellations; m365sim records each one as an ``Invitation``
(``GET /_sim/invitations``) so tests can prove what the product caused to be sent, and
delivers it like Exchange to attendees who have a mailbox in a simulated tenant: a
tentative copy of the meeting (same ``iCalUId``) appears in their calendar, later
updated or marked cancelled. Responses (accept/tentative/decline with
``sendResponse``) are recorded too, and update the organizer's attendee status.

Differences from Exchange Online: no meeting-request messages appear in anyone's Inbox
(only the calendar side is delivered); exceptions of a series are delivered to attendee
copies only when the organizer edits them after the series was delivered; forwarding,
new-time proposals and delegates are not modelled; updates are sent only when a property
other than the organizer's personal ones (categories, reminder, showAs) changes, and a
pure attendee-list change only notifies the added and removed attendees.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from m365sim.dates import graph_timestamp
from m365sim.directory.models import Tenant, User
from m365sim.exceptions import GraphError
from m365sim.graph.calendar.exceptions import CalendarInvalidRequest
from m365sim.graph.calendar.formats import new_item_id, occurrence_id
from m365sim.graph.calendar.models import (
    PERSONAL_PROPERTIES,
    SCHEDULE_PROPERTIES,
    Attendee,
    CalendarStore,
    Event,
    apply_fields,
)
from m365sim.state import Change, SimState

__all__ = ["CalendarBackend", "Invitation"]

INVITATIONS = "calendar.invitations"
RESPONSE_KINDS = {
    "accepted": ("accept", "Accepted: "),
    "tentativelyAccepted": ("tentative", "Tentative: "),
    "declined": ("decline", "Declined: "),
}


@dataclass
class Invitation:
    """One meeting message Exchange would have sent."""

    kind: str  # request | update | cancellation | accept | tentative | decline
    tenant_id: str
    sender: str
    recipients: list[str]
    subject: str
    ical_uid: str
    event_id: str
    sent_at: datetime
    occurrence_start: datetime | None = None
    comment: str = ""
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "tenantId": self.tenant_id,
            "from": self.sender,
            "to": list(self.recipients),
            "subject": self.subject,
            "iCalUId": self.ical_uid,
            "eventId": self.event_id,
            "occurrenceStart": graph_timestamp(self.occurrence_start)
            if self.occurrence_start
            else None,
            "comment": self.comment,
            "sentDateTime": graph_timestamp(self.sent_at),
        }


class CalendarBackend:
    """Calendar operations on a ``SimState``; route handlers call these and nothing else."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    # -- access ----------------------------------------------------------------------------
    def store(self, tenant: Tenant, user: User) -> CalendarStore:
        return self.state.store(
            tenant,
            user,
            "calendar",
            lambda: CalendarStore(user.display_name, user.address, self.state.now()),
        )

    @property
    def invitations(self) -> list[Invitation]:
        log: list[Invitation] = self.state.extension(INVITATIONS, list)
        return log

    def _publish(self, tenant: Tenant, user: User, change_type: str, event: Event) -> None:
        item_id = event.id if event.type != "occurrence" else event.series_master_id or event.id
        self.state.publish(
            Change(
                tenant_id=tenant.id,
                user_id=user.id,
                resource="event",
                change_type=change_type,
                item_id=item_id,
                folder_id=event.calendar_id,
            )
        )

    # -- operations ------------------------------------------------------------------------
    def create_event(
        self,
        tenant: Tenant,
        user: User,
        body: dict[str, Any],
        *,
        calendar_id: str | None = None,
        organizer: tuple[str, str] | None = None,
        send_invitations: bool = True,
    ) -> Event:
        """Create an event; the mailbox owner organizes it unless ``organizer`` says who does
        (a meeting someone else sent, as the control API plays it)."""
        store = self.store(tenant, user)
        now = self.state.now()
        transaction = body.get("transactionId") if isinstance(body, dict) else None
        if transaction and transaction in store.by_transaction:
            existing = store.events.get(store.by_transaction[str(transaction)])
            if existing is not None:
                return existing  # Graph's idempotent create: a retried POST is not a second event
        name, address = organizer or (user.display_name, user.address)
        owner_organizes = address.lower() == user.address.lower()
        event = Event(
            calendar_id=store.calendar(calendar_id).id,
            start=now,
            end=now,
            start_zone="UTC",
            end_zone="UTC",
            organizer_name=name,
            organizer_address=address,
            created=now,
            is_organizer=owner_organizes,
        )
        if not owner_organizes:
            event.response = "notResponded"
            event.show_as = "tentative"
        apply_fields(event, body, creating=True)
        if isinstance(body.get("iCalUId"), str) and body["iCalUId"]:
            event.ical_uid = body["iCalUId"]  # control API only: the organizer's meeting id
        store.add(event)
        self._publish(tenant, user, "created", event)
        if send_invitations and event.is_organizer and event.has_attendees:
            self._send(tenant, user, "request", event, self._recipients(event))
        return event

    def update_event(
        self,
        tenant: Tenant,
        user: User,
        event_id: str,
        body: dict[str, Any],
        *,
        send_invitations: bool = True,
    ) -> Event:
        store = self.store(tenant, user)
        now = self.state.now()
        target = store.get(event_id)
        before_recipients = self._recipients(target)
        if target.type == "occurrence":
            master = store.events[target.series_master_id or ""]
            candidate = copy.deepcopy(target)
            changed = apply_fields(candidate, body, creating=False)
            candidate.type = "exception"
            candidate.created = now
            candidate.touch(now)
            assert candidate.original_start is not None
            master.exceptions[candidate.original_start] = candidate.id
            store.add(candidate)
            updated = candidate
        else:
            candidate = copy.deepcopy(target)
            snapshot = target.schedule
            changed = apply_fields(candidate, body, creating=False)
            if changed & SCHEDULE_PROPERTIES and (target.recurrence or candidate.recurrence):
                store.history.setdefault(target.id, []).append((store.seq + 1, snapshot))
                store.drop_exceptions(candidate)
            candidate.touch(now)
            store.events[candidate.id] = candidate
            store.touch(candidate.id)
            updated = candidate
        self._publish(tenant, user, "updated", updated)
        if send_invitations and updated.is_organizer and not updated.is_cancelled:
            after = self._recipients(updated)
            added = [a for a in after if a.lower() not in {b.lower() for b in before_recipients}]
            removed = [b for b in before_recipients if b.lower() not in {a.lower() for a in after}]
            kept = [a for a in after if a not in added]
            if removed:
                self._send(tenant, user, "cancellation", updated, removed)
            if added:
                self._send(tenant, user, "request", updated, added)
            if kept and changed - PERSONAL_PROPERTIES - {"attendees"}:
                self._send(
                    tenant,
                    user,
                    "update",
                    updated,
                    kept,
                    schedule_changed=bool(changed & SCHEDULE_PROPERTIES),
                )
        return updated

    def delete_event(
        self,
        tenant: Tenant,
        user: User,
        event_id: str,
        *,
        send_invitations: bool = True,
        comment: str = "",
    ) -> Event:
        """Delete; as organizer of a meeting this sends cancellations, as Graph documents."""
        store = self.store(tenant, user)
        event = store.get(event_id)
        store.remove(event_id)
        self._publish(tenant, user, "deleted", event)
        if (
            send_invitations
            and event.is_organizer
            and not event.is_cancelled
            and event.has_attendees
        ):
            self._send(
                tenant, user, "cancellation", event, self._recipients(event), comment=comment
            )
        return event

    def cancel_event(self, tenant: Tenant, user: User, event_id: str, comment: str = "") -> Event:
        """``POST /events/{id}/cancel``: organizer only; sends cancellations, then deletes."""
        event = self.store(tenant, user).get(event_id)
        if not event.is_organizer:
            raise CalendarInvalidRequest(
                "Your request can't be completed. You need to be an organizer to cancel a meeting."
            )
        return self.delete_event(tenant, user, event_id, comment=comment)

    def mark_cancelled(self, tenant: Tenant, user: User, event_id: str) -> Event:
        """A cancellation arriving from the organizer: the attendee's copy stays, cancelled."""
        store = self.store(tenant, user)
        event = store.get(event_id)
        if event.type == "occurrence":
            store.remove(event_id)
            self._publish(tenant, user, "deleted", event)
            return event
        if not event.is_cancelled:
            event.is_cancelled = True
            if not event.subject.startswith("Canceled: "):
                event.subject = f"Canceled: {event.subject}"
            event.touch(self.state.now())
            store.touch(event.id)
            self._publish(tenant, user, "updated", event)
        return event

    def respond(
        self,
        tenant: Tenant,
        user: User,
        event_id: str,
        response: str,
        *,
        comment: str = "",
        send_response: bool = True,
    ) -> None:
        """accept / tentativelyAccept / decline a meeting the mailbox owner was invited to."""
        store = self.store(tenant, user)
        event = store.get(event_id)
        if event.is_organizer:
            raise CalendarInvalidRequest(
                "Your request can't be completed. You can't respond to this meeting because "
                "you're the meeting organizer."
            )
        now = self.state.now()
        if response == "declined":
            store.remove(event_id)
            self._publish(tenant, user, "deleted", event)
        else:
            if event.type == "occurrence":
                event = self.update_event(tenant, user, event_id, {}, send_invitations=False)
            event.response, event.response_time = response, now
            event.show_as = "busy" if response == "accepted" else "tentative"
            event.touch(now)
            store.touch(event.id)
            self._publish(tenant, user, "updated", event)
        if not send_response:
            return
        kind, prefix = RESPONSE_KINDS[response]
        self.invitations.append(
            Invitation(
                kind=kind,
                tenant_id=tenant.id,
                sender=user.address,
                recipients=[event.organizer_address],
                subject=prefix + event.subject,
                ical_uid=event.ical_uid,
                event_id=event.id,
                sent_at=now,
                occurrence_start=event.original_start,
                comment=comment,
            )
        )
        found = self.state.find_user_anywhere(event.organizer_address)
        if found is None:
            return
        org_tenant, organizer = found
        org_store = self.store(org_tenant, organizer)
        org_event = org_store.find_by_uid(event.ical_uid)
        if org_event is None:
            return
        for attendee in org_event.attendees:
            if attendee.address.lower() == user.address.lower():
                attendee.response, attendee.response_time = response, now
                org_event.touch(now)
                org_store.touch(org_event.id)
                self._publish(org_tenant, organizer, "updated", org_event)

    # -- meeting messages ------------------------------------------------------------------
    @staticmethod
    def _recipients(event: Event) -> list[str]:
        return [
            a.address
            for a in event.attendees
            if a.address.lower() != event.organizer_address.lower()
        ]

    def _send(
        self,
        tenant: Tenant,
        user: User,
        kind: str,
        event: Event,
        recipients: list[str],
        *,
        comment: str = "",
        schedule_changed: bool = False,
    ) -> None:
        subject = f"Canceled: {event.subject}" if kind == "cancellation" else event.subject
        occurrence = event.original_start if event.type in ("occurrence", "exception") else None
        invitation = Invitation(
            kind=kind,
            tenant_id=tenant.id,
            sender=user.address,
            recipients=list(recipients),
            subject=subject,
            ical_uid=event.ical_uid,
            event_id=event.id,
            sent_at=self.state.now(),
            occurrence_start=occurrence,
            comment=comment,
        )
        self.invitations.append(invitation)
        for address in recipients:
            found = self.state.find_user_anywhere(address)
            if found is None or found[1].id == user.id:
                continue
            self._deliver(found[0], found[1], kind, event, schedule_changed)

    def _deliver(
        self, tenant: Tenant, attendee: User, kind: str, source: Event, schedule_changed: bool
    ) -> None:
        store = self.store(tenant, attendee)
        master_copy = store.find_by_uid(source.ical_uid)
        if source.type in ("occurrence", "exception"):
            if (
                master_copy is None
                or master_copy.recurrence is None
                or source.original_start is None
            ):
                return
            occurrence = source.original_start
            local_id = occurrence_id(master_copy.id, occurrence)
            if kind == "cancellation":
                try:
                    self.mark_cancelled(tenant, attendee, local_id)
                except GraphError:  # already gone on the attendee's side
                    return
                return
            try:
                self.update_event(
                    tenant, attendee, local_id, _meeting_fields(source), send_invitations=False
                )
            except GraphError:  # the attendee deleted that occurrence
                return
            return
        if kind == "cancellation":
            if master_copy is not None:
                self.mark_cancelled(tenant, attendee, master_copy.id)
            return
        if master_copy is None:
            copy_event = copy.deepcopy(source)
            copy_event.id = new_item_id()
            copy_event.calendar_id = store.default_calendar_id
            copy_event.is_organizer = False
            copy_event.response, copy_event.response_time = "notResponded", None
            copy_event.show_as = "tentative"
            copy_event.categories = []
            copy_event.transaction_id = None
            copy_event.exceptions = {}
            copy_event.created = copy_event.modified = self.state.now()
            copy_event.version = 1
            store.add(copy_event)
            self._publish(tenant, attendee, "created", copy_event)
            return
        updated = self.update_event(
            tenant, attendee, master_copy.id, _meeting_fields(source), send_invitations=False
        )
        if schedule_changed:
            updated.response, updated.response_time = "notResponded", None
            updated.show_as = "tentative"


def _meeting_fields(source: Event) -> dict[str, Any]:
    """The organizer-owned properties of a meeting, as an update body for a copy."""
    body = source.as_json("UTC")
    wanted = (
        "subject",
        "body",
        "start",
        "end",
        "isAllDay",
        "location",
        "locations",
        "attendees",
        "importance",
        "sensitivity",
        "isOnlineMeeting",
        "responseRequested",
        "allowNewTimeProposals",
    )
    fields = {k: body[k] for k in wanted}
    fields["start"] = {**fields["start"], "timeZone": "UTC"}
    fields["end"] = {**fields["end"], "timeZone": "UTC"}
    if source.is_all_day:
        fields["start"]["timeZone"] = fields["end"]["timeZone"] = source.start_zone
    if source.recurrence is not None:
        fields["recurrence"] = source.recurrence.as_json()
    fields["attendees"] = [a.as_json() for a in source.attendees if isinstance(a, Attendee)]
    return fields
