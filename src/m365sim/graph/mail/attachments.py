"""Attachments, internet message headers, threading and the raw MIME of a message.

What Graph documents and m365sim follows:

- ``attachment`` is a ``fileAttachment`` (``contentBytes``, ``contentId``), an
  ``itemAttachment`` (an attached message, contact or event) or a ``referenceAttachment``
  (a link to a file); every kind has ``id``, ``lastModifiedDateTime``, ``name``,
  ``contentType``, ``size`` and ``isInline``
  (https://learn.microsoft.com/graph/api/resources/attachment).
- A request adding an attachment inline is limited by Graph's 4 MB request size ("The
  maximum request length supported is 4MB."); larger files need an upload session, which
  m365sim does not model.
- ``hasAttachments`` is true when the message has an attachment that is not inline
  (``isInline`` false), as Outlook shows the paper clip.
- ``internetMessageHeaders`` is returned only when ``$select`` names it; custom headers a
  client adds when sending must be named ``X-...`` or ``x-...``
  (https://learn.microsoft.com/graph/api/resources/internetmessageheader).
- Threading: a message that answers another (``In-Reply-To``, else the last known id of
  ``References``) joins that message's conversation, and its ``conversationIndex`` is the
  parent's index plus a five-byte child block, as Exchange builds the Thread-Index.
"""

from __future__ import annotations

import base64
import binascii
import email.policy
import email.utils
import struct
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from m365sim.dates import timestamp_to_second
from m365sim.exceptions import GraphError
from m365sim.graph import exceptions as errors

__all__ = [
    "ATTACHMENT_PROPERTIES",
    "MAX_REQUEST_BYTES",
    "Attachment",
    "RequestTooLarge",
    "child_conversation_index",
    "mime_of",
    "parse_attachment",
    "parse_headers",
]

MAX_REQUEST_BYTES = 4 * 1024 * 1024
"""Graph's request size limit, which bounds an attachment added in one request."""

ATTACHMENT_PROPERTIES = frozenset(
    {
        "id",
        "lastModifiedDateTime",
        "name",
        "contentType",
        "size",
        "isInline",
        "contentBytes",
        "contentId",
        "contentLocation",
        "item",
    }
)

_KINDS = {
    "#microsoft.graph.fileattachment": "file",
    "#microsoft.graph.itemattachment": "item",
    "#microsoft.graph.referenceattachment": "reference",
}


class RequestTooLarge(GraphError):
    """Graph's 4 MB request limit (msgraph docs-contrib issue #682 quotes the text)."""

    status = 413
    code = "BadRequest"
    message = "The maximum request length supported is 4MB."


@dataclass
class Attachment:
    """One attachment of a message; ``content`` holds a file's bytes."""

    id: str
    kind: str  # "file" | "item" | "reference"
    name: str
    content_type: str | None
    modified: datetime
    content: bytes = b""
    is_inline: bool = False
    content_id: str | None = None
    item: dict[str, Any] = field(default_factory=dict)  # an itemAttachment's item
    source_url: str | None = None  # a referenceAttachment's link

    @property
    def size(self) -> int:
        if self.kind == "file":
            return len(self.content)
        if self.kind == "item":
            return len(str(self.item).encode())
        return 0

    def view(self) -> dict[str, Any]:
        """The attachment as Graph serves it (``contentBytes`` for files)."""
        out: dict[str, Any] = {"@odata.type": f"#microsoft.graph.{self.kind}Attachment"}
        if self.kind == "file":
            out["@odata.mediaContentType"] = self.content_type
        out["id"] = self.id
        out["lastModifiedDateTime"] = timestamp_to_second(self.modified)
        out["name"] = self.name
        out["contentType"] = self.content_type
        out["size"] = self.size
        out["isInline"] = self.is_inline
        if self.kind == "file":
            out["contentId"] = self.content_id
            out["contentLocation"] = None
            out["contentBytes"] = base64.b64encode(self.content).decode()
        return out

    def copy(self, now: datetime) -> Attachment:
        """The same attachment on another copy of the message (a new id, as in Exchange)."""
        return Attachment(
            _new_id(),
            self.kind,
            self.name,
            self.content_type,
            now,
            self.content,
            self.is_inline,
            self.content_id,
            dict(self.item),
            self.source_url,
        )


def _new_id() -> str:
    raw = b"\x01\x00\x00\x00" + uuid.uuid4().bytes + uuid.uuid4().bytes + uuid.uuid4().bytes
    return "AAMkA" + base64.urlsafe_b64encode(raw).decode()


def parse_attachment(raw: Any, now: datetime) -> Attachment:
    """A Graph ``attachment`` body (``@odata.type`` picks the kind) → ``Attachment``."""
    if not isinstance(raw, Mapping):
        raise errors.BadRequest("An attachment must be a JSON object.")
    odata_type = str(raw.get("@odata.type") or "").lower()
    kind = _KINDS.get(odata_type)
    if kind is None:
        raise errors.BadRequest(
            "The attachment's @odata.type must be #microsoft.graph.fileAttachment, "
            "#microsoft.graph.itemAttachment or #microsoft.graph.referenceAttachment."
        )
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise errors.BadRequest("The attachment's name is required.")
    content = b""
    if kind == "file":
        encoded = raw.get("contentBytes")
        if not isinstance(encoded, str):
            raise errors.BadRequest("A fileAttachment needs contentBytes (base64).")
        try:
            content = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise errors.BadRequest("contentBytes is not valid base64.") from exc
    item = raw.get("item") if kind == "item" else None
    if kind == "item" and not isinstance(item, Mapping):
        raise errors.BadRequest("An itemAttachment needs an item.")
    content_type = raw.get("contentType")
    if kind == "file" and not content_type:
        content_type = "application/octet-stream"
    return Attachment(
        id=_new_id(),
        kind=kind,
        name=name,
        content_type=str(content_type) if content_type else None,
        modified=now,
        content=content,
        is_inline=bool(raw.get("isInline", False)),
        content_id=str(raw["contentId"]) if raw.get("contentId") else None,
        item=dict(item) if isinstance(item, Mapping) else {},
        source_url=str(raw["sourceUrl"]) if raw.get("sourceUrl") else None,
    )


def parse_headers(raw: Any, *, custom_only: bool) -> list[tuple[str, str]]:
    """``internetMessageHeaders`` (``[{"name", "value"}]``). A client sending mail may add
    only ``X-`` headers (Graph: 400 ``InvalidInternetMessageHeader``); deliveries from the
    control API may carry any header, ``In-Reply-To`` and ``References`` included."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise errors.BadRequest("internetMessageHeaders must be a list of {name, value}.")
    out: list[tuple[str, str]] = []
    for entry in raw:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise errors.BadRequest("Each internet message header needs a name and a value.")
        name, value = entry["name"].strip(), str(entry.get("value") or "")
        if custom_only and not name.lower().startswith("x-"):
            raise InvalidHeader(
                f"The internet message header name '{name}' should start with 'x-' or 'X-'."
            )
        out.append((name, value))
    return out


class InvalidHeader(GraphError):
    status = 400
    code = "InvalidInternetMessageHeader"
    message = "The internet message header name should start with 'x-' or 'X-'."


def child_conversation_index(parent_index: str, parent_time: datetime, when: datetime) -> str:
    """The parent's Thread-Index plus a five-byte child block (the time since the parent
    in 1.6384 ms units, as MS-OXOMSG describes the ConversationIndex)."""
    try:
        raw = base64.b64decode(parent_index)
    except (binascii.Error, ValueError):
        raw = b""
    delta = max(0, int((when - parent_time).total_seconds() * 10_000_000)) >> 18
    block = struct.pack(">Q", delta & 0x7FFFFFFFFF)[3:]
    return base64.b64encode(raw + block).decode()


def _address(entry: tuple[str, str] | None) -> str:
    if entry is None:
        return ""
    return email.utils.formataddr(entry)


def mime_of(
    *,
    subject: str,
    sender: tuple[str, str] | None,
    to: Iterable[tuple[str, str]],
    cc: Iterable[tuple[str, str]],
    sent: datetime | None,
    message_id: str,
    headers: Iterable[tuple[str, str]],
    body: str,
    body_type: str,
    attachments: Iterable[Attachment],
) -> bytes:
    """The message as RFC 5322 MIME (``GET .../messages/{id}/$value``)."""
    mime = EmailMessage(policy=email.policy.SMTP)
    skip = {"from", "to", "cc", "subject", "date", "message-id", "mime-version", "content-type"}
    if sender is not None:
        mime["From"] = _address(sender)
    to_list = [_address(a) for a in to]
    cc_list = [_address(a) for a in cc]
    if to_list:
        mime["To"] = ", ".join(to_list)
    if cc_list:
        mime["Cc"] = ", ".join(cc_list)
    mime["Subject"] = subject
    if sent is not None:
        mime["Date"] = email.utils.format_datetime(sent)
    mime["Message-ID"] = message_id
    for name, value in headers:
        if name.lower() not in skip:
            mime[name] = value
    mime.set_content(body, subtype="html" if body_type == "html" else "plain")
    for attachment in attachments:
        if attachment.kind != "file":
            continue
        maintype, _, subtype = (attachment.content_type or "application/octet-stream").partition(
            "/"
        )
        mime.add_attachment(
            attachment.content,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=attachment.name,
            disposition="inline" if attachment.is_inline else "attachment",
            cid=f"<{attachment.content_id}>" if attachment.content_id else None,
        )
    return mime.as_bytes()
