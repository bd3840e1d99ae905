"""The mail backend: mail operations on a ``SimState``, and what spans mailboxes.

Per-mailbox rules (folders, ids, change numbers, delta rounds) live in ``MailStore``; this
layer adds the rest. Every change a store reports becomes a ``Change`` on the state's feed
(resource ``message``, folder = the folder's id), so subscriptions see mail like they see
events and tasks. ``send`` is ``sendMail``: a copy in the sender's Sent Items and one in
the Inbox of each recipient whose mailbox is in a simulated tenant; mail for anyone else is
logged as ``OutboundMail`` (``GET /_sim/mail/outbound``) and never delivered.

Differences from Exchange Online: no non-delivery reports (unknown and unreachable
recipients are only logged), no transport rules or journaling, and Send As / Send on Behalf
rights are not modelled.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from m365sim.dates import timestamp_to_second
from m365sim.directory.models import Tenant, User
from m365sim.graph.mail import exceptions as mail_errors
from m365sim.graph.mail.attachments import parse_attachment, parse_headers
from m365sim.graph.mail.models import (
    MailSettings,
    MailStore,
    Message,
    parse_item_body,
    parse_recipients,
)
from m365sim.state import Change, SimState

__all__ = ["MailBackend", "OutboundMail"]

SETTINGS = "mail.settings"
OUTBOUND = "mail.outbound"


@dataclass
class OutboundMail:
    """Mail sent to addresses outside every sim tenant (or to unreachable mailboxes)."""

    sender: str
    recipients: list[str]
    subject: str
    internet_message_id: str
    sent_at: datetime
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {
            "sender": self.sender,
            "recipients": self.recipients,
            "subject": self.subject,
            "internetMessageId": self.internet_message_id,
            "sentDateTime": timestamp_to_second(self.sent_at),
            "reason": self.reason,
        }


class MailBackend:
    """Mail operations on a ``SimState``; route handlers call these and the stores they hand
    out, and nothing else."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    # -- access ----------------------------------------------------------------------------
    def store(self, tenant: Tenant, user: User) -> MailStore:
        """The mail of ``user``'s mailbox, created on first use."""
        return self.state.store(
            tenant,
            user,
            "mail",
            lambda: MailStore(
                self.state,
                tenant,
                user,
                settings=self.settings,
                on_change=lambda change_type, item_id, folder_id: self._publish(
                    tenant, user, change_type, item_id, folder_id
                ),
            ),
        )

    @property
    def settings(self) -> MailSettings:
        """The mail knobs (``PATCH /_sim/mail/settings``), shared by every mailbox."""
        return self.state.extension(SETTINGS, MailSettings)

    @property
    def outbound(self) -> list[OutboundMail]:
        log: list[OutboundMail] = self.state.extension(OUTBOUND, list)
        return log

    def _publish(
        self, tenant: Tenant, user: User, change_type: str, item_id: str, folder_id: str
    ) -> None:
        self.state.publish(
            Change(
                tenant_id=tenant.id,
                user_id=user.id,
                resource="message",
                change_type=change_type,
                item_id=item_id,
                folder_id=folder_id,
            )
        )

    # -- sending ---------------------------------------------------------------------------
    def send(
        self,
        store: MailStore,
        fields: Mapping[str, Any],
        *,
        save_to_sent_items: bool,
        thread_headers: list[tuple[str, str]] | None = None,
    ) -> Message | None:
        """``sendMail`` from ``store``'s mailbox: the Sent Items copy (returned, unless not
        saved) and one copy per recipient, each with the attachments. ``thread_headers``
        (``In-Reply-To``, ``References``) come from ``reply``/``forward``."""
        thread_headers = thread_headers or []
        to = parse_recipients(fields.get("toRecipients"))
        cc = parse_recipients(fields.get("ccRecipients"))
        bcc = parse_recipients(fields.get("bccRecipients"))
        if not (to or cc or bcc):
            raise mail_errors.ErrorInvalidRecipients()
        content, body_type = parse_item_body(fields)
        subject = str(fields.get("subject") or "")
        sender = store.owner
        now = store.now()
        imid = fields.get("internetMessageId") or None
        sent_copy: Message | None = None
        attachments = [parse_attachment(a, now) for a in fields.get("attachments") or []]
        headers = parse_headers(fields.get("internetMessageHeaders"), custom_only=True)
        common: dict[str, Any] = {
            "subject": subject,
            "body": content,
            "body_type": body_type,
            "sender": sender,
            "to": to,
            "cc": cc,
            "reply_to": parse_recipients(fields.get("replyTo")),
            "importance": str(fields.get("importance") or "normal"),
            "received": now,
            "sent": now,
            "headers": [*headers, *thread_headers],
        }
        if save_to_sent_items:
            sent_copy = store.add_message(
                store.well_known["sentitems"],
                **common,
                bcc=bcc,
                is_read=True,
                internet_message_id=imid,
                categories=[str(c) for c in fields.get("categories") or []],
                attachments=attachments,
            )
            imid = sent_copy.internet_message_id
        if imid is None:
            imid = f"<{uuid.uuid4().hex}@{sender[1].rpartition('@')[2]}>"
        outside: list[str] = []
        seen: set[str] = set()
        for _name, address in [*to, *cc, *bcc]:
            lowered = address.lower()
            if lowered in seen:
                continue
            seen.add(lowered)
            found = self.state.find_user_anywhere(address)
            if found is None:
                outside.append(address)
                continue
            tenant, user = found
            if user.soft_deleted or not user.licensed or user.mailbox_location != "cloud":
                outside.append(address)
                continue
            inbox_store = self.store(tenant, user)
            inbox_store.add_message(
                inbox_store.well_known["inbox"],
                **common,
                internet_message_id=imid,
                conversation_id=sent_copy.conversation_id if sent_copy else None,
                attachments=[a.copy(now) for a in attachments],
            )
        if outside:
            self.outbound.append(
                OutboundMail(
                    sender[1], outside, subject, imid, now, "not a mailbox in any sim tenant"
                )
            )
        return sent_copy
