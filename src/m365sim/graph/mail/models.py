"""A user's Exchange Online mail: folders, messages and change tracking.

``MailStore`` is one mailbox's mail (``MailBackend.store(tenant, user)``). It holds the
rules — where a message lands, how its ids change, what a delta round returns — and
serialises messages exactly as Graph's ``message`` resource, caching each message's JSON
per version so that serving a page of 1,000 messages is a join of cached bytes. It reports
each change to the ``on_change`` it was built with; ``m365sim.graph.mail.backend`` turns
those into the change feed and adds what spans mailboxes (sending).

Change tracking is sequence based: every mutation takes the mailbox's next change number;
each folder keeps its messages ordered by last change (a dict re-inserted on change) and a
tombstone list of what left it. A delta round after sync point ``S`` therefore walks only
the changes after ``S``: O(changes), never O(mailbox).

Where this differs from Exchange Online (see ``docs/m365sim/mail.md`` for the full list):

- attachments, headers, threading and raw MIME live in ``attachments.py``; no
  ``uniqueBody``, multi-value extended properties, extensions or mentions
  (``UNMODELLED_MESSAGE_PROPERTIES``: asking for one is 501 ``NotModelled``);
- ``DELETE`` moves a message to the hidden ``recoverableitemsdeletions`` folder and nothing
  ever purges it; there is no retention policy;
- folder ids are the same under both id types; message ids are short (see ``graph.ids``);
- bulk-generated messages (``generate_messages``) publish no change notifications;
- delta replays and duplicates are deterministic (the last items before the sync point are
  replayed; each page repeats the previous page's last item), not random;
- HTML to text conversion (``Prefer: outlook.body-content-type="text"``) is a plain tag
  stripper, not Exchange's converter.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import html
import random
import re
import secrets
import struct
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import MappingProxyType
from typing import Any, Literal

import orjson

from m365sim.dates import timestamp_to_second
from m365sim.directory.models import Tenant, User
from m365sim.graph import exceptions as errors
from m365sim.graph.delta import SyncGenerations, is_expired, token_lifetime
from m365sim.graph.ids import item_id, mailbox_key, parse_item_id
from m365sim.graph.mail import exceptions as mail_errors
from m365sim.graph.mail.attachments import Attachment, child_conversation_index, mime_of
from m365sim.graph.odata import not_modelled
from m365sim.state import SimState

__all__ = [
    "MESSAGE_PROPERTIES",
    "UNMODELLED_MESSAGE_PROPERTIES",
    "WELL_KNOWN_FOLDERS",
    "DeltaPage",
    "DeltaParams",
    "MailFolder",
    "MailSettings",
    "MailStore",
    "Message",
    "MessageFields",
    "Tombstone",
    "html_to_text",
    "newest_first",
    "parse_item_body",
    "parse_recipient",
    "parse_recipients",
]

WELL_KNOWN_FOLDERS: tuple[tuple[str, str], ...] = (
    ("inbox", "Inbox"),
    ("drafts", "Drafts"),
    ("sentitems", "Sent Items"),
    ("deleteditems", "Deleted Items"),
    ("archive", "Archive"),
    ("junkemail", "Junk Email"),
    ("outbox", "Outbox"),
)
"""Folders every mailbox has under ``msgfolderroot`` (Graph's well-known names)."""

MESSAGE_PROPERTIES = frozenset(
    {
        "id",
        "createdDateTime",
        "lastModifiedDateTime",
        "changeKey",
        "categories",
        "receivedDateTime",
        "sentDateTime",
        "hasAttachments",
        "internetMessageId",
        "subject",
        "bodyPreview",
        "importance",
        "parentFolderId",
        "conversationId",
        "conversationIndex",
        "isDeliveryReceiptRequested",
        "isReadReceiptRequested",
        "isRead",
        "isDraft",
        "webLink",
        "inferenceClassification",
        "body",
        "sender",
        "from",
        "toRecipients",
        "ccRecipients",
        "bccRecipients",
        "replyTo",
        "flag",
        "internetMessageHeaders",
        "singleValueExtendedProperties",
    }
)
"""The ``message`` properties m365sim returns (and accepts in ``$select``/``$filter``)."""

UNMODELLED_MESSAGE_PROPERTIES = frozenset(
    {
        "uniqueBody",
        "multiValueExtendedProperties",
        "extensions",
        "mentions",
    }
)
"""``message`` properties and relations Graph has and m365sim does not simulate: naming one
in a query or a body answers 501 ``NotModelled`` instead of a false "does not exist"."""

FOLDER_PROPERTIES = frozenset(
    {
        "id",
        "displayName",
        "parentFolderId",
        "childFolderCount",
        "unreadItemCount",
        "totalItemCount",
        "sizeInBytes",
        "isHidden",
    }
)

DELTA_FILTER_LIMIT = 5000
"""Graph: "Applying $filter in a delta query returns only up to 5,000 messages"."""

Address = tuple[str, str]  # (name, address)
ChangeListener = Callable[[str, str, str], None]  # (change type, message id, folder id)


# -- settings -------------------------------------------------------------------------------


@dataclass
class MailSettings:
    """Mail-only knobs (``PATCH /_sim/mail/settings``); ``SimConfig.delta_replay`` switches
    replays and duplicates on and off, these say how many."""

    delta_replay_items: int = 1  # already-seen items re-sent at the start of a deltaLink round
    delta_page_overlap: int = 1  # items of the previous page repeated at the start of a page
    delta_max_page_size: int = 1000  # odata.maxpagesize is capped here


# -- helpers --------------------------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0)


_HIDDEN_BLOCKS = re.compile(r"<(style|script|head|title)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_LINE_BREAKS = re.compile(
    r"<(?:br|/p|/div|/tr|/li|/h[1-6]|p|div|tr|li|table)\b[^>]*>", re.IGNORECASE
)
_TAGS = re.compile(r"<[^>]*>")
_BLANKS = re.compile(r"[ \t\r\f\v\xa0]+")
_NEWLINES = re.compile(r"\n\s*\n+")
_WS = re.compile(r"\s+")


def html_to_text(markup: str) -> str:
    """Plain text of an HTML body, roughly as Exchange converts it for ``text`` bodies."""
    text = _HIDDEN_BLOCKS.sub("", markup)
    text = _LINE_BREAKS.sub("\n", text)
    text = html.unescape(_TAGS.sub("", text))
    text = _BLANKS.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _NEWLINES.sub("\n\n", text).strip()


def _recipient(entry: Address) -> dict[str, Any]:
    return {"emailAddress": {"name": entry[0], "address": entry[1]}}


def parse_recipient(value: Any) -> Address:
    """``"a@b.com"``, ``{"address": ...}`` or ``{"emailAddress": {...}}`` → (name, address)."""
    if isinstance(value, str):
        return (value, value)
    if isinstance(value, Mapping):
        inner = value.get("emailAddress", value)
        if isinstance(inner, Mapping) and isinstance(inner.get("address"), str):
            address = str(inner["address"])
            return (str(inner.get("name") or address), address)
    raise errors.BadRequest('A recipient must be an address or {"emailAddress": {"address": ...}}.')


def parse_recipients(value: Any) -> list[Address]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise errors.BadRequest("Recipients must be a list.")
    return [parse_recipient(v) for v in value]


def parse_item_body(fields: Mapping[str, Any]) -> tuple[str, str]:
    """A Graph ``message`` body's ``body`` (an ``itemBody``) → (content, ``html`` | ``text``)."""
    body = fields.get("body") or {}
    if not isinstance(body, dict):
        raise errors.BadRequest("body must be an itemBody object.")
    content_type = str(body.get("contentType", "text")).lower()
    return str(body.get("content", "")), "html" if content_type == "html" else "text"


# -- folders and messages -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A message that left a folder (moved out or deleted) at change number ``seq``."""

    seq: int
    number: int
    default_id: str
    immutable_id: str


class MailFolder:
    """A mail folder. ``messages`` is ordered by last change (oldest first)."""

    def __init__(
        self,
        store: MailStore,
        number: int,
        display_name: str,
        parent: MailFolder | None,
        *,
        well_known: str | None = None,
        hidden: bool = False,
    ) -> None:
        self.number = number
        self.display_name = display_name
        self.parent = parent
        self.well_known = well_known
        self.hidden = hidden
        self.id = item_id("f", store.key, number)
        self.messages: dict[int, Message] = {}
        self.children: list[MailFolder] = []
        self.unread = 0
        self.tombstones: list[Tombstone] = []
        self.tombstone_seqs: list[int] = []
        self.changed_seq = 0  # last change of anything in the folder (for list caches)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "displayName": self.display_name,
            "parentFolderId": self.parent.id if self.parent else None,
            "childFolderCount": len(self.children),
            "unreadItemCount": self.unread,
            "totalItemCount": len(self.messages),
            "sizeInBytes": sum(len(m.body_content) for m in self.messages.values()),
            "isHidden": self.hidden,
        }


ViewKey = tuple[bool, bool, bool]  # (immutable ids, text body, delta item)
_NO_PROPERTIES: Mapping[str, str] = MappingProxyType({})


class Message:
    """One message. Mutate only through ``MailStore`` so versions and change numbers move."""

    __slots__ = (
        "_bytes",
        "_preview",
        "_text",
        "attachments",
        "bcc",
        "body_content",
        "body_type",
        "categories",
        "cc",
        "change_seq",
        "conversation_id",
        "conversation_index",
        "created",
        "delivery_receipt",
        "extended",
        "flag_status",
        "folder",
        "folder_seq",
        "from_",
        "generation",
        "headers",
        "importance",
        "inference",
        "internet_message_id",
        "is_draft",
        "is_read",
        "modified",
        "number",
        "read_receipt",
        "received",
        "reply_to",
        "sender",
        "sent",
        "subject",
        "to",
        "version",
    )

    def __init__(self, number: int, folder: MailFolder, now: datetime) -> None:
        self.number = number
        self.folder = folder
        self.generation = 0
        self.version = 1
        self.change_seq = 0
        self.folder_seq = 0
        self.created = now
        self.modified = now
        self.received = now
        self.sent: datetime | None = now
        self.subject = ""
        self.body_content = ""
        self.body_type = "html"
        self.importance = "normal"
        self.sender: Address | None = None
        self.from_: Address | None = None
        self.to: list[Address] = []
        self.cc: list[Address] = []
        self.bcc: list[Address] = []
        self.reply_to: list[Address] = []
        self.categories: list[str] = []
        self.is_read = False
        self.is_draft = False
        # Immutable and shared while empty, so a 100,000-message mailbox allocates nothing
        # for them; replaced, never changed in place.
        self.attachments: tuple[Attachment, ...] = ()
        self.headers: tuple[tuple[str, str], ...] = ()  # internetMessageHeaders, beyond basics
        self.extended: Mapping[str, str] = _NO_PROPERTIES  # singleValueExtendedProperties
        self.delivery_receipt = False
        self.read_receipt = False
        self.internet_message_id = ""
        self.conversation_id = ""
        self.conversation_index = ""
        self.inference = "focused"
        self.flag_status = "notFlagged"
        self._text: str | None = None
        self._preview: str | None = None
        self._bytes: dict[ViewKey, bytes] = {}

    @property
    def has_attachments(self) -> bool:
        """Graph: true when an attachment is not inline."""
        return any(not a.is_inline for a in self.attachments)

    def attachment(self, key: str) -> Attachment:
        for attachment in self.attachments:
            if attachment.id == key:
                return attachment
        raise errors.ErrorItemNotFound()

    def internet_headers(self) -> list[dict[str, str]]:
        """``internetMessageHeaders``: the transport headers, then the message's own."""
        basics = [("Message-ID", self.internet_message_id), ("Subject", self.subject)]
        if self.from_ is not None:
            basics.append(("From", f"{self.from_[0]} <{self.from_[1]}>"))
        if self.to:
            basics.append(("To", ", ".join(f"{n} <{a}>" for n, a in self.to)))
        if self.sent is not None:
            basics.append(("Date", format_datetime(self.sent)))
        basics.append(("Thread-Index", self.conversation_index))
        basics.append(("MIME-Version", "1.0"))
        seen = {name.lower() for name, _ in basics}
        extra = [(n, v) for n, v in self.headers if n.lower() not in seen]
        return [{"name": n, "value": v} for n, v in [*basics, *extra]]

    def mime(self) -> bytes:
        return mime_of(
            subject=self.subject,
            sender=self.from_,
            to=self.to,
            cc=self.cc,
            sent=self.sent,
            message_id=self.internet_message_id,
            headers=[("Thread-Index", self.conversation_index), *self.headers],
            body=self.body_content,
            body_type=self.body_type,
            attachments=self.attachments,
        )

    def id_for(self, immutable: bool, mailbox: str) -> str:
        return item_id("m", mailbox, self.number, generation=self.generation, immutable=immutable)

    def touch(self) -> None:
        """Forget cached renderings; call after any change."""
        self._text = None
        self._preview = None
        self._bytes.clear()

    def change_key(self) -> str:
        return base64.b64encode(
            b"\x09\x00\x00\x00\x16\x00\x00\x00" + struct.pack(">QI", self.number, self.version)
        ).decode()

    def text_body(self) -> str:
        if self._text is None:
            is_html = self.body_type == "html"
            self._text = html_to_text(self.body_content) if is_html else self.body_content
        return self._text

    def preview(self) -> str:
        if self._preview is None:
            self._preview = _WS.sub(" ", self.text_body()).strip()[:255]
        return self._preview

    def view(self, mailbox: str, key: ViewKey) -> dict[str, Any]:
        """The Graph JSON of this message version (a fresh dict the caller may change)."""
        immutable, text, delta = key
        mid = self.id_for(immutable, mailbox)
        change_key = self.change_key()
        content = self.text_body() if text else self.body_content
        content_type = "text" if (text or self.body_type == "text") else "html"
        out: dict[str, Any] = {}
        if delta:
            out["@odata.type"] = "#microsoft.graph.message"
        out["@odata.etag"] = f'W/"{change_key}"'
        out["id"] = mid
        out["createdDateTime"] = timestamp_to_second(self.created)
        out["lastModifiedDateTime"] = timestamp_to_second(self.modified)
        out["changeKey"] = change_key
        out["categories"] = list(self.categories)
        out["receivedDateTime"] = timestamp_to_second(self.received)
        out["sentDateTime"] = timestamp_to_second(self.sent) if self.sent else None
        out["hasAttachments"] = self.has_attachments
        out["internetMessageId"] = self.internet_message_id
        out["subject"] = self.subject
        out["bodyPreview"] = self.preview()
        out["importance"] = self.importance
        out["parentFolderId"] = self.folder.id
        out["conversationId"] = self.conversation_id
        out["conversationIndex"] = self.conversation_index
        out["isDeliveryReceiptRequested"] = self.delivery_receipt
        out["isReadReceiptRequested"] = self.read_receipt
        out["isRead"] = self.is_read
        out["isDraft"] = self.is_draft
        out["webLink"] = (
            f"https://outlook.office365.com/owa/?ItemID={mid.replace('=', '%3D')}"
            "&exvsurl=1&viewmodel=ReadMessageItem"
        )
        out["inferenceClassification"] = self.inference
        out["body"] = {"contentType": content_type, "content": content}
        out["sender"] = _recipient(self.sender) if self.sender else None
        out["from"] = _recipient(self.from_) if self.from_ else None
        out["toRecipients"] = [_recipient(r) for r in self.to]
        out["ccRecipients"] = [_recipient(r) for r in self.cc]
        out["bccRecipients"] = [_recipient(r) for r in self.bcc]
        out["replyTo"] = [_recipient(r) for r in self.reply_to]
        out["flag"] = {"flagStatus": self.flag_status}
        return out

    def view_bytes(self, mailbox: str, key: ViewKey) -> bytes:
        cached = self._bytes.get(key)
        if cached is None:
            cached = self._bytes[key] = orjson.dumps(self.view(mailbox, key))
        return cached


class MessageFields(Mapping[str, Any]):
    """A lazy Graph view of a message for ``$filter``/``$orderby``: only the properties an
    expression reads are built, so filtering a 100,000-message folder allocates little."""

    __slots__ = ("_immutable", "_mailbox", "_message")

    def __init__(self, message: Message, mailbox: str, immutable: bool) -> None:
        self._message = message
        self._mailbox = mailbox
        self._immutable = immutable

    def __getitem__(self, name: str) -> Any:
        if name == "id":
            return self._message.id_for(self._immutable, self._mailbox)
        getter = _FIELD_GETTERS.get(name)
        if getter is None:
            raise KeyError(name)
        return getter(self._message)

    def __iter__(self) -> Iterator[str]:
        return iter(("id", *_FIELD_GETTERS))

    def __len__(self) -> int:
        return len(_FIELD_GETTERS) + 1


_FIELD_GETTERS: dict[str, Any] = {
    "createdDateTime": lambda m: timestamp_to_second(m.created),
    "lastModifiedDateTime": lambda m: timestamp_to_second(m.modified),
    "receivedDateTime": lambda m: timestamp_to_second(m.received),
    "sentDateTime": lambda m: timestamp_to_second(m.sent) if m.sent else None,
    "categories": lambda m: list(m.categories),
    "singleValueExtendedProperties": lambda m: [
        {"id": k, "value": v} for k, v in m.extended.items()
    ],
    "hasAttachments": lambda m: m.has_attachments,
    "internetMessageId": lambda m: m.internet_message_id,
    "subject": lambda m: m.subject,
    "bodyPreview": lambda m: m.preview(),
    "importance": lambda m: m.importance,
    "parentFolderId": lambda m: m.folder.id,
    "conversationId": lambda m: m.conversation_id,
    "isRead": lambda m: m.is_read,
    "isDraft": lambda m: m.is_draft,
    "inferenceClassification": lambda m: m.inference,
    "body": lambda m: {"contentType": m.body_type, "content": m.body_content},
    "sender": lambda m: _recipient(m.sender) if m.sender else None,
    "from": lambda m: _recipient(m.from_) if m.from_ else None,
    "toRecipients": lambda m: [_recipient(r) for r in m.to],
    "ccRecipients": lambda m: [_recipient(r) for r in m.cc],
    "bccRecipients": lambda m: [_recipient(r) for r in m.bcc],
    "flag": lambda m: {"flagStatus": m.flag_status},
    "isDeliveryReceiptRequested": lambda m: m.delivery_receipt,
    "isReadReceiptRequested": lambda m: m.read_receipt,
}


# -- delta ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeltaParams:
    """What the initial delta request asked for; carried by every token of the round."""

    select: tuple[str, ...] | None = None
    change_type: Literal["created", "updated", "deleted"] | None = None
    received_op: Literal["ge", "gt"] | None = None
    received_value: datetime | None = None
    order_desc: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "s": list(self.select) if self.select is not None else None,
            "c": self.change_type,
            "o": self.received_op,
            "v": self.received_value.isoformat() if self.received_value else None,
            "d": self.order_desc,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DeltaParams:
        return cls(
            select=tuple(data["s"]) if data.get("s") is not None else None,
            change_type=data.get("c"),
            received_op=data.get("o"),
            received_value=datetime.fromisoformat(data["v"]) if data.get("v") else None,
            order_desc=bool(data.get("d")),
        )


Entry = int | Tombstone  # a message number, or a removal


@dataclass
class _Round:
    """One delta round: the changes between two sync points, snapshotted when it began."""

    folder_number: int
    since_seq: int
    until_seq: int
    params: DeltaParams
    entries: list[Entry]
    last_used: datetime


@dataclass
class _SyncPoint:
    """What a ``$deltatoken`` stands for: a folder, a change number and the round's options."""

    folder_number: int
    seq: int
    params: DeltaParams
    last_used: datetime


@dataclass
class DeltaPage:
    """A page of a delta round, ready to render; ``items`` are JSON dicts or cached bytes."""

    items: list[dict[str, Any] | bytes]
    skiptoken: str | None
    deltatoken: str | None


# -- the store ------------------------------------------------------------------------------


class MailStore:
    """One mailbox's mail. All mutation goes through here so change tracking stays right."""

    MAX_SYNC_STATES = 256

    def __init__(
        self,
        state: SimState,
        tenant: Tenant,
        user: User,
        *,
        settings: MailSettings,
        on_change: ChangeListener,
    ) -> None:
        self.state = state
        self.settings = settings
        self.on_change = on_change
        self.tenant_id = tenant.id
        self.user_id = user.id
        self.owner: Address = (user.display_name, user.address)
        self.key = mailbox_key(user.id)
        self.seq = 0
        self._next_number = 1
        self._secret = secrets.token_bytes(16)
        self.messages: dict[int, Message] = {}
        self.by_internet_id: dict[str, Message] = {}  # threading: internetMessageId -> first
        self.folders: dict[int, MailFolder] = {}
        self.folders_by_id: dict[str, MailFolder] = {}
        self.well_known: dict[str, MailFolder] = {}
        self._rounds: dict[str, _Round] = {}
        self._points: dict[str, _SyncPoint] = {}
        self._generations = SyncGenerations()
        self._list_cache: dict[tuple[Any, ...], tuple[int, list[Message]]] = {}
        self.root = self._add_folder("Top of Information Store", None, well_known="msgfolderroot")
        for name, display in WELL_KNOWN_FOLDERS:
            self._add_folder(display, self.root, well_known=name)
        self._add_folder("Deletions", None, well_known="recoverableitemsdeletions", hidden=True)

    # -- numbering, time, notifications ------------------------------------------------------
    def _number(self) -> int:
        number = self._next_number
        self._next_number += 1
        return number

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def now(self) -> datetime:
        return self.state.now().replace(microsecond=0)

    def _publish(self, change_type: str, item: str, folder: MailFolder) -> None:
        self.on_change(change_type, item, folder.id)

    # -- folders ------------------------------------------------------------------------------
    def _add_folder(
        self,
        display_name: str,
        parent: MailFolder | None,
        *,
        well_known: str | None = None,
        hidden: bool = False,
    ) -> MailFolder:
        folder = MailFolder(
            self, self._number(), display_name, parent, well_known=well_known, hidden=hidden
        )
        self.folders[folder.number] = folder
        self.folders_by_id[folder.id] = folder
        if well_known:
            self.well_known[well_known] = folder
        if parent is not None:
            parent.children.append(folder)
        return folder

    def folder(self, key: str) -> MailFolder:
        """A folder by id or well-known name (case-insensitive), as Graph resolves them."""
        found = self.folders_by_id.get(key) or self.well_known.get(key.lower())
        if found is not None:
            return found
        parsed = parse_item_id(key)
        if parsed is None:
            if key.lower() in _OTHER_WELL_KNOWN:
                raise errors.ErrorItemNotFound()
            raise errors.ErrorInvalidIdMalformed()
        raise errors.ErrorItemNotFound()

    def create_folder(
        self, parent: MailFolder, display_name: str, *, hidden: bool = False
    ) -> MailFolder:
        if not display_name.strip():
            raise errors.BadRequest("The displayName property is required.")
        if any(c.display_name.lower() == display_name.lower() for c in parent.children):
            raise mail_errors.ErrorFolderExists()
        return self._add_folder(display_name, parent, hidden=hidden)

    def visible_folders(self) -> Iterator[MailFolder]:
        """Every folder under msgfolderroot (what ``/messages`` spans)."""
        stack = list(reversed(self.root.children))
        while stack:
            folder = stack.pop()
            yield folder
            stack.extend(reversed(folder.children))

    # -- messages: lookup -----------------------------------------------------------------------
    def message(self, key: str) -> Message:
        """A message by default or immutable id. A default id from before a move no longer
        resolves (``ErrorItemNotFound``), as in Exchange."""
        parsed = parse_item_id(key)
        if parsed is None or parsed.kind != "m":
            raise errors.ErrorInvalidIdMalformed()
        found = self.messages.get(parsed.number) if parsed.mailbox == self.key else None
        if found is None or (not parsed.immutable and parsed.generation != found.generation):
            raise errors.ErrorItemNotFound()
        return found

    # -- messages: mutation -------------------------------------------------------------------
    def _place(self, message: Message, folder: MailFolder) -> None:
        seq = self._next_seq()
        message.folder = folder
        message.change_seq = seq
        message.folder_seq = seq
        folder.messages[message.number] = message
        folder.changed_seq = seq
        if not message.is_read:
            folder.unread += 1

    def _unplace(self, message: Message) -> Tombstone:
        folder = message.folder
        seq = self._next_seq()
        del folder.messages[message.number]
        if not message.is_read:
            folder.unread -= 1
        tomb = Tombstone(
            seq, message.number, message.id_for(False, self.key), message.id_for(True, self.key)
        )
        folder.tombstones.append(tomb)
        folder.tombstone_seqs.append(seq)
        folder.changed_seq = seq
        return tomb

    def add_message(
        self,
        folder: MailFolder,
        *,
        subject: str = "",
        body: str = "",
        body_type: str = "html",
        sender: Address | None = None,
        to: Iterable[Address] = (),
        cc: Iterable[Address] = (),
        bcc: Iterable[Address] = (),
        reply_to: Iterable[Address] = (),
        received: datetime | None = None,
        sent: datetime | None = None,
        is_read: bool = False,
        is_draft: bool = False,
        importance: str = "normal",
        categories: Iterable[str] = (),
        internet_message_id: str | None = None,
        conversation_id: str | None = None,
        flag_status: str = "notFlagged",
        attachments: Iterable[Attachment] = (),
        headers: Iterable[tuple[str, str]] = (),
        publish: bool = True,
    ) -> Message:
        """Create a message in ``folder`` (delivery, a draft, a seeded item). Its
        conversation follows ``In-Reply-To``/``References`` among ``headers`` (see
        ``thread``) unless ``conversation_id`` is given."""
        now = self.now()
        message = Message(self._number(), folder, now)
        message.subject = subject
        message.body_content = body
        message.body_type = "text" if body_type.lower() == "text" else "html"
        message.sender = sender
        message.from_ = sender
        message.to = list(to)
        message.cc = list(cc)
        message.bcc = list(bcc)
        message.reply_to = list(reply_to)
        message.received = _utc(received) if received else now
        message.sent = None if is_draft else (_utc(sent) if sent else message.received)
        message.is_read = is_read
        message.is_draft = is_draft
        message.importance = importance
        message.categories = list(categories)
        message.flag_status = flag_status
        message.attachments = tuple(attachments)
        message.headers = tuple(headers)
        domain = (sender[1] if sender else self.owner[1]).rpartition("@")[2] or "contoso.com"
        message.internet_message_id = internet_message_id or f"<{uuid.uuid4().hex}@{domain}>"
        self.thread(message, conversation_id)
        self.messages[message.number] = message
        self.by_internet_id.setdefault(message.internet_message_id, message)
        self._place(message, folder)
        if publish:
            self._publish("created", message.id_for(False, self.key), folder)
        return message

    def thread(self, message: Message, conversation_id: str | None) -> None:
        """Set the conversation as Exchange does: the parent named by ``In-Reply-To`` (else
        the newest known id in ``References``) lends its conversation and its index plus a
        child block; with no parent here, the thread's root id (the first of
        ``References``) names the conversation, so later replies still join it."""
        when = message.sent or message.received
        if conversation_id:
            message.conversation_id = conversation_id
            message.conversation_index = _conversation_index(when, conversation_id)
            return
        named = {name.lower(): value for name, value in message.headers}
        references = named.get("references", "").split()
        parents = [named.get("in-reply-to", "").strip(), *reversed(references)]
        for key in parents:
            parent = self.by_internet_id.get(key) if key else None
            if parent is not None and parent is not message:
                message.conversation_id = parent.conversation_id
                message.conversation_index = child_conversation_index(
                    parent.conversation_index, parent.sent or parent.received, when
                )
                return
        root = (references[0] if references else parents[0]) or message.internet_message_id
        message.conversation_id = _conversation_id(self.key, root)
        message.conversation_index = _conversation_index(when, message.conversation_id)

    def update_message(self, message: Message, changes: Mapping[str, Any]) -> Message:
        """Apply a Graph PATCH body; recipients, subject and body change only on drafts."""
        draft_only = {
            "subject",
            "body",
            "toRecipients",
            "ccRecipients",
            "bccRecipients",
            "replyTo",
            "from",
            "sender",
        }
        allowed = draft_only | {
            "isRead",
            "singleValueExtendedProperties",
            "categories",
            "importance",
            "flag",
            "inferenceClassification",
            "isDeliveryReceiptRequested",
            "isReadReceiptRequested",
        }
        for name in changes:
            if name.startswith("@odata"):
                continue
            if name not in allowed:
                if name in UNMODELLED_MESSAGE_PROPERTIES:
                    raise not_modelled(name, "message")
                if name in MESSAGE_PROPERTIES:
                    raise errors.BadRequest(
                        f"The property '{name}' is read-only and cannot be set."
                    )
                raise mail_errors.ErrorInvalidRequestBody(
                    f"The property '{name}' does not exist on type 'microsoft.graph.message'. "
                    "Make sure to only use property names that are defined by the type."
                )
            if name in draft_only and not message.is_draft and name not in ("from", "sender"):
                raise errors.BadRequest(
                    "ErrorInvalidPropertyUpdateSentMessage: Update operation on a sent or received "
                    f"message is not allowed for property '{name}'."
                )
        folder = message.folder
        was_read = message.is_read
        for name, value in changes.items():
            if name == "isRead":
                message.is_read = bool(value)
            elif name == "categories":
                message.categories = [str(c) for c in value or []]
            elif name == "singleValueExtendedProperties":
                message.extended = {**message.extended, **parse_extended(value)}
            elif name == "importance":
                if value not in ("low", "normal", "high"):
                    raise errors.BadRequest(f"Invalid importance '{value}'.")
                message.importance = str(value)
            elif name == "flag":
                status = (value or {}).get("flagStatus", "notFlagged")
                if status not in ("notFlagged", "complete", "flagged"):
                    raise errors.BadRequest(f"Invalid flagStatus '{status}'.")
                message.flag_status = status
            elif name == "inferenceClassification":
                message.inference = "other" if value == "other" else "focused"
            elif name == "isDeliveryReceiptRequested":
                message.delivery_receipt = bool(value)
            elif name == "isReadReceiptRequested":
                message.read_receipt = bool(value)
            elif name == "subject":
                message.subject = str(value or "")
            elif name == "body":
                message.body_content = str((value or {}).get("content", ""))
                message.body_type = (
                    "text"
                    if str((value or {}).get("contentType", "html")).lower() == "text"
                    else "html"
                )
            elif name == "toRecipients":
                message.to = parse_recipients(value)
            elif name == "ccRecipients":
                message.cc = parse_recipients(value)
            elif name == "bccRecipients":
                message.bcc = parse_recipients(value)
            elif name == "replyTo":
                message.reply_to = parse_recipients(value)
            elif name in ("from", "sender"):
                parsed = parse_recipient(value) if value else None
                if name == "from":
                    message.from_ = parsed
                else:
                    message.sender = parsed
        if was_read != message.is_read:
            folder.unread += -1 if message.is_read else 1
        self._changed(message)
        self._publish("updated", message.id_for(False, self.key), folder)
        return message

    def add_attachment(self, message: Message, attachment: Attachment) -> Attachment:
        """Attach to a draft (Exchange refuses changes to sent or received mail)."""
        if not message.is_draft:
            raise errors.BadRequest(
                "ErrorInvalidPropertyUpdateSentMessage: Update operation on a sent or received "
                "message is not allowed for property 'attachments'."
            )
        message.attachments = (*message.attachments, attachment)
        self._changed(message)
        self._publish("updated", message.id_for(False, self.key), message.folder)
        return attachment

    def delete_attachment(self, message: Message, attachment: Attachment) -> None:
        if not message.is_draft:
            raise errors.BadRequest(
                "ErrorInvalidPropertyUpdateSentMessage: Update operation on a sent or received "
                "message is not allowed for property 'attachments'."
            )
        message.attachments = tuple(a for a in message.attachments if a is not attachment)
        self._changed(message)
        self._publish("updated", message.id_for(False, self.key), message.folder)

    def _changed(self, message: Message) -> None:
        folder = message.folder
        seq = self._next_seq()
        message.change_seq = seq
        message.version += 1
        message.modified = self.now()
        message.touch()
        del folder.messages[message.number]
        folder.messages[message.number] = message
        folder.changed_seq = seq

    def move_message(self, message: Message, destination: MailFolder) -> Message:
        """Move to another folder: the default id changes, the immutable id does not."""
        if destination is message.folder:
            return message
        source = message.folder
        old_id = message.id_for(False, self.key)
        self._unplace(message)
        message.generation += 1
        message.version += 1
        message.modified = self.now()
        message.touch()
        self._place(message, destination)
        self._publish("deleted", old_id, source)
        self._publish("created", message.id_for(False, self.key), destination)
        return message

    def delete_message(self, message: Message) -> None:
        """Graph's DELETE: the message goes to Recoverable Items (Deletions), out of sight."""
        self.move_message_silently(message, self.well_known["recoverableitemsdeletions"])

    def move_message_silently(self, message: Message, destination: MailFolder) -> None:
        source = message.folder
        old_id = message.id_for(False, self.key)
        self._unplace(message)
        message.generation += 1
        message.version += 1
        message.touch()
        self._place(message, destination)
        self._publish("deleted", old_id, source)

    # -- bulk generation ------------------------------------------------------------------------
    def generate_messages(
        self,
        folder: MailFolder,
        count: int,
        *,
        correspondents: list[Address] | None = None,
        days: float = 30,
        seed: int = 1,
        read_ratio: float = 0.6,
    ) -> int:
        """Add ``count`` plausible messages spread over the last ``days`` (oldest first), fast
        (no notifications, one change number each). Deterministic for a given ``seed``."""
        rng = random.Random(seed)  # noqa: S311 (reproducible test data, not secrets)
        people = correspondents or _DEFAULT_CORRESPONDENTS
        now = self.now()
        span = max(1.0, days * 86400.0)
        offsets = sorted((rng.random() * span for _ in range(count)), reverse=True)
        owner = self.owner
        first_name = owner[0].split(" ")[0]
        key = self.key
        messages = self.messages
        folder_messages = folder.messages
        conversation = ""
        conversation_left = 0
        subject = ""
        unread = 0
        for offset in offsets:
            number = self._next_number
            self._next_number += 1
            self.seq += 1
            received = now - timedelta(seconds=int(offset))
            message = Message(number, folder, received)
            correspondent = people[rng.randrange(len(people))]
            if conversation_left <= 0:
                conversation_left = rng.randint(1, 4)
                topic = _SUBJECTS[rng.randrange(len(_SUBJECTS))]
                subject = f"{topic} #{number}"
                conversation = _conversation_id(key, f"gen-{seed}-{number}")
            else:
                subject = subject if subject.startswith("RE: ") else f"RE: {subject}"
            conversation_left -= 1
            message.subject = subject
            line = _LINES[number % len(_LINES)]
            message.body_content = (
                f"<html><body><p>Hi {first_name},</p><p>{line}</p>"
                f"<p>Regards,<br>{correspondent[0]}</p></body></html>"
            )
            message._text = f"Hi {first_name},\n\n{line}\n\nRegards,\n{correspondent[0]}"
            message.sender = correspondent
            message.from_ = correspondent
            message.to = [owner]
            message.received = received
            message.sent = received - timedelta(seconds=rng.randint(1, 90))
            message.modified = received
            message.is_read = rng.random() < read_ratio
            if not message.is_read:
                unread += 1
            domain = correspondent[1].rpartition("@")[2]
            message.internet_message_id = f"<{rng.getrandbits(64):016x}.{number}@{domain}>"
            message.conversation_id = conversation
            message.conversation_index = _conversation_index(received, conversation)
            message.change_seq = self.seq
            message.folder_seq = self.seq
            messages[number] = message
            folder_messages[number] = message
        folder.unread += unread
        folder.changed_seq = self.seq
        return count

    # -- listing --------------------------------------------------------------------------------
    def listing(
        self, folder: MailFolder | None, cache_key: tuple[Any, ...], build: Any
    ) -> list[Message]:
        """A cached, filtered and sorted message list; rebuilt only when the mailbox changed,
        so paging through one query costs O(page) after the first page."""
        full_key = (folder.number if folder else None, *cache_key)
        cached = self._list_cache.get(full_key)
        if cached is not None and cached[0] == self.seq:
            return cached[1]
        source: Iterable[Message]
        if folder is not None:
            source = folder.messages.values()
        else:
            source = (m for f in self.visible_folders() for m in f.messages.values())
        result: list[Message] = build(source)
        if len(self._list_cache) > 32:
            self._list_cache.clear()
        self._list_cache[full_key] = (self.seq, result)
        return result

    def received_since(
        self, folder: MailFolder | None, since: datetime, *, inclusive: bool
    ) -> list[Message]:
        """``receivedDateTime ge since`` (``gt`` unless ``inclusive``), newest first: the
        head of the folder's messages sorted by arrival, which is sorted once per mailbox
        version, whatever the window. A window's list or ``$count`` (a first sync asks for
        one per folder, with a new ``since`` each time) then costs a binary search, not a
        pass over every message. Compared to the second, as the rendered
        ``receivedDateTime`` the filter reads."""
        newest = self.listing(folder, ("received, newest first",), newest_first)
        bound = -since.timestamp()
        # Ascending in -seconds (newest first): the window is the head up to ``bound``.
        search = bisect.bisect_right if inclusive else bisect.bisect_left
        end = search(newest, bound, key=_minus_second)
        return newest[:end]

    # -- delta ----------------------------------------------------------------------------------
    def _sign(self, payload: dict[str, Any]) -> str:
        raw = orjson.dumps(payload)
        mac = hmac.new(self._secret, raw, hashlib.sha256).digest()[:12]
        return (
            base64.urlsafe_b64encode(raw).decode().rstrip("=")
            + "."
            + base64.urlsafe_b64encode(mac).decode().rstrip("=")
        )

    def _unsign(self, token: str) -> dict[str, Any]:
        body, _, mac = token.partition(".")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            given = base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))
        except (ValueError, TypeError) as exc:
            raise errors.SyncStateNotFound(
                "The sync state generation is not found; the token is not valid."
            ) from exc
        expected = hmac.new(self._secret, raw, hashlib.sha256).digest()[:12]
        if not hmac.compare_digest(given, expected):
            raise errors.SyncStateNotFound(
                "The sync state generation is not found; generation=0;[highest=0]."
            )
        data: dict[str, Any] = orjson.loads(raw)
        return data

    def _expired(self, last_used: datetime) -> bool:
        return is_expired(last_used, self.state.now(), token_lifetime(self.state))

    def _prune(self) -> None:
        for table in (self._rounds, self._points):
            if len(table) > self.MAX_SYNC_STATES:
                stale = [k for k, v in table.items() if self._expired(v.last_used)]
                for k in stale:
                    del table[k]
                while len(table) > self.MAX_SYNC_STATES:
                    del table[next(iter(table))]  # oldest first

    def start_delta(self, folder: MailFolder, params: DeltaParams) -> str:
        """Begin a first (full) round on ``folder`` and a new sync state (generation 0);
        returns a skiptoken for its first page."""
        chain, _ = self._generations.start()
        return self._begin_round(folder, 0, params, chain, 0)

    def resume_delta(self, folder: MailFolder, deltatoken: str) -> str:
        """Begin a round after the sync point a ``$deltatoken`` names."""
        data = self._unsign(deltatoken)
        point_id = str(data.get("p", ""))
        point = self._points.get(point_id)
        if point is None or data.get("k") != "d":
            raise _sync_state_gone(data.get("g", 0), self.seq)
        chain, generation = str(data.get("c", "")), int(data.get("n", 0))
        self._generations.serve(chain, generation)  # 410 for a stale generation
        if self._expired(point.last_used):
            del self._points[point_id]
            raise _sync_state_gone(point.seq, self.seq)
        if point.folder_number != folder.number:
            raise errors.SyncStateNotFound(
                "The sync state generation is not found; the token belongs to another folder."
            )
        point.last_used = self.state.now()
        return self._begin_round(folder, point.seq, point.params, chain, generation)

    def _begin_round(
        self, folder: MailFolder, since: int, params: DeltaParams, chain: str, generation: int
    ) -> str:
        until = self.seq
        entries: list[Entry]
        if since == 0:
            changed = list(folder.messages.values())
            removed: list[Tombstone] = []
        else:
            changed = []
            replay_pool: list[Message] = []
            for message in reversed(folder.messages.values()):
                if message.change_seq <= since:
                    break
                changed.append(message)
            changed.reverse()
            if params.change_type == "created":
                changed = [m for m in changed if m.folder_seq > since]
            elif params.change_type == "updated":
                changed = [m for m in changed if m.folder_seq <= since]
            elif params.change_type == "deleted":
                changed = []
            start = bisect.bisect_right(folder.tombstone_seqs, since)
            removed = folder.tombstones[start:] if params.change_type in (None, "deleted") else []
            replays = self.settings.delta_replay_items if self.state.config.delta_replay else 0
            if replays > 0 and params.change_type in (None, "updated"):
                for message in reversed(folder.messages.values()):
                    if message.change_seq > since:
                        continue
                    replay_pool.append(message)
                    if len(replay_pool) >= replays:
                        break
                replay_pool.reverse()
            changed = replay_pool + changed
        if params.received_op is not None and params.received_value is not None:
            bound = params.received_value
            if params.received_op == "ge":
                changed = [m for m in changed if m.received >= bound]
            else:
                changed = [m for m in changed if m.received > bound]
        if params.order_desc:
            changed.sort(key=lambda m: m.received, reverse=True)
        if params.received_op is not None:
            changed = changed[:DELTA_FILTER_LIMIT]
        if params.order_desc:
            entries = [*removed, *(m.number for m in changed)]
        else:
            entries = _merge_by_seq(changed, removed)
        round_id = secrets.token_hex(8)
        self._rounds[round_id] = _Round(
            folder.number, since, until, params, entries, self.state.now()
        )
        self._prune()
        return self._sign({"k": "s", "r": round_id, "o": 0, "c": chain, "n": generation})

    def delta_page(
        self, folder: MailFolder, skiptoken: str, page_size: int, *, immutable: bool, text: bool
    ) -> DeltaPage:
        """Serve one page of a round: cached bytes when no ``$select``, dicts otherwise."""
        data = self._unsign(skiptoken)
        round_id = str(data.get("r", ""))
        current = self._rounds.get(round_id)
        if current is None or data.get("k") != "s":
            raise errors.SyncStateNotFound(
                f"The sync state generation is not found; generation=0;[highest={self.seq}]."
            )
        if self._expired(current.last_used):
            del self._rounds[round_id]
            raise _sync_state_gone(current.until_seq, self.seq)
        if current.folder_number != folder.number:
            raise errors.SyncStateNotFound(
                "The sync state generation is not found; the token belongs to another folder."
            )
        chain = str(data.get("c", ""))
        generation = self._generations.serve(chain, int(data.get("n", 0)))
        current.last_used = self.state.now()
        offset = int(data.get("o", 0))
        overlap = 0
        if offset > 0 and self.state.config.delta_replay:
            # Repeat the previous page's last item(s), within the page size: a page holds
            # at most ``page_size`` items, as odata.maxpagesize promises.
            overlap = min(self.settings.delta_page_overlap, page_size - 1, offset)
        start = offset - overlap
        end = min(start + page_size, len(current.entries))
        key: ViewKey = (immutable, text, True)
        select = current.params.select
        items: list[dict[str, Any] | bytes] = []
        messages = self.messages
        for entry in current.entries[start:end]:
            if isinstance(entry, Tombstone):
                items.append(
                    {
                        "@odata.type": "#microsoft.graph.message",
                        "id": entry.immutable_id if immutable else entry.default_id,
                        "@removed": {"reason": "deleted"},
                    }
                )
                continue
            message = messages.get(entry)
            if message is None or message.folder.number != folder.number:
                continue  # it left the folder during the round; the next round says so
            if select is None:
                items.append(message.view_bytes(self.key, key))
            else:
                view = message.view(self.key, key)
                items.append(
                    {k: v for k, v in view.items() if k in select or k == "id" or k.startswith("@")}
                )
        if end < len(current.entries):
            next_page = {"k": "s", "r": round_id, "o": end, "c": chain, "n": generation}
            return DeltaPage(items, self._sign(next_page), None)
        # The round is kept (not deleted) so a retry of its last page is served again while
        # its generation is kept; pruning and expiry forget it.
        point_id = secrets.token_hex(8)
        self._points[point_id] = _SyncPoint(
            folder.number, current.until_seq, current.params, self.state.now()
        )
        self._prune()
        deltatoken = {"k": "d", "p": point_id, "g": current.until_seq, "c": chain, "n": generation}
        return DeltaPage(items, None, self._sign(deltatoken))


def parse_extended(value: Any) -> dict[str, str]:
    """``singleValueExtendedProperties``: ``[{"id": "String {guid} Name x", "value": "..."}]``."""
    if not isinstance(value, list):
        raise errors.BadRequest("singleValueExtendedProperties must be a list of {id, value}.")
    out: dict[str, str] = {}
    for entry in value:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("id"), str):
            raise errors.BadRequest("Each extended property needs an id and a value.")
        out[entry["id"]] = str(entry.get("value") if entry.get("value") is not None else "")
    return out


def _sync_state_gone(generation: Any, highest: int) -> errors.SyncStateNotFound:
    return errors.SyncStateNotFound(
        f"The sync state generation is not found; generation={generation};[highest={highest}]."
    )


def _merge_by_seq(changed: list[Message], removed: list[Tombstone]) -> list[Entry]:
    if not removed:
        return [m.number for m in changed]
    merged: list[tuple[int, Entry]] = [(m.change_seq, m.number) for m in changed]
    merged += [(t.seq, t) for t in removed]
    merged.sort(key=lambda pair: pair[0])
    return [entry for _, entry in merged]


def _conversation_id(mailbox: str, seed: str) -> str:
    digest = hashlib.sha256(f"{mailbox}:{seed}".encode()).digest()[:24]
    return "AAQk" + base64.urlsafe_b64encode(digest).decode()


def _conversation_index(when: datetime, conversation: str) -> str:
    ticks = int(when.timestamp() * 10_000_000) + 116_444_736_000_000_000
    raw = (
        b"\x01"
        + struct.pack(">Q", ticks)[1:6]
        + hashlib.md5(conversation.encode(), usedforsecurity=False).digest()
    )
    return base64.b64encode(raw).decode()


_OTHER_WELL_KNOWN = frozenset(
    {
        "clutter",
        "conflicts",
        "conversationhistory",
        "localfailures",
        "recoverableitemsroot",
        "scheduled",
        "searchfolders",
        "serverfailures",
        "syncissues",
    }
)

_DEFAULT_CORRESPONDENTS: list[Address] = [
    ("Ana Ruiz", "ana.ruiz@fabrikam.com"),
    ("Ben Walters", "ben@northwindtraders.com"),
    ("Chloe Martin", "chloe.martin@tailspintoys.com"),
    ("Dev Patel", "dev.patel@wingtiptoys.com"),
    ("Emma Larsen", "emma@adventure-works.com"),
]

_SUBJECTS = (
    "Quote for the Q3 renewal",
    "Follow-up on yesterday's demo",
    "Contract redlines",
    "Pricing question",
    "Onboarding schedule",
    "Invoice 2024-118",
    "Intro: our procurement lead",
    "Meeting notes",
)

_LINES = (
    "Thanks for the call earlier, attaching the figures we discussed.",
    "Could you send over the updated proposal when you have a moment?",
    "We reviewed the contract and have a few small changes.",
    "Looping in my colleague who owns the budget for this.",
    "Just checking in on the status of our order.",
    "Happy to set up a follow-up meeting next week.",
)


def newest_first(source: Iterable[Message]) -> list[Message]:
    """Messages in Graph's default order for a message list: received, newest first."""
    return sorted(source, key=lambda m: (m.received, m.number), reverse=True)


def _minus_second(message: Message) -> int:
    return -int(message.received.timestamp() // 1)
