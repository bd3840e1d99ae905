"""Exchange-style item ids, shared by the mail and calendar backends.

Exchange hands out two kinds of ids for the same item (Graph's ``Prefer: IdType``):

- the **default (EWS) id**, which encodes where the item lives: move a message to another
  folder and its id changes, and the old id stops resolving;
- the **immutable id** (``IdType="ImmutableId"``), which never changes while the item
  exists in the mailbox.

Both are opaque base64url strings as long as Exchange's and laid out like them: a default
id is about 150 characters (``AAMkA`` + the mailbox's GUID as text + a folder and item
entry id, ending in ``=`` padding), an immutable one about 70 (``AAkALgAAAAAAHYQDEapmEc2by
ACqAC-EWg0A`` + the item's key). Both use ``-`` and ``_`` as Exchange's do, so a client
that stores ids in short columns or forgets to URL-encode them fails here as it would
against Exchange. What is promised: an id round-trips through ``parse_item_id``; ids of
different mailboxes, kinds or generations never collide; any string that is not one of
ours parses to None (Graph's ``ErrorInvalidIdMalformed``).

Differences from Exchange: the bytes inside are m365sim's (readable to anyone who
base64-decodes them); folder ids do not change between id types.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
import uuid
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "ParsedId",
    "compact_item_id",
    "expand_item_id",
    "item_id",
    "mailbox_key",
    "parse_item_id",
]

# Exchange's ids begin with these bytes; reusing them keeps ids looking familiar in logs.
_DEFAULT_PREFIX = b"\x00\x03\x24\x00"  # "AAMkA"
_IMMUTABLE_PREFIX = bytes.fromhex("0009002e00000000001d840311aa6611cd9bc800aa002f845a0d00")
_ENTRY_MARK = b"\x00\x46\x00\x00\x00\x00\x00"  # an entry id of 0x46 bytes follows
_PAYLOAD = struct.Struct(">5sc6sI")  # mailbox key, kind, item number, generation
_IMMUTABLE_PAYLOAD = struct.Struct(">5sc6s")
_DEFAULT_HEAD = 4 + 36 + len(_ENTRY_MARK) + 22 + 2 + 22 + 2


@dataclass(frozen=True)
class ParsedId:
    kind: str  # one letter: "m" message, "f" mail folder, "e" event, "c" calendar, "t" task...
    mailbox: str  # mailbox_key of the owner
    number: int  # the item's number within its mailbox and kind (stable)
    generation: int  # increments when a default id must change (e.g. a move)
    immutable: bool


def mailbox_key(user_id: str) -> str:
    """A short, stable key for a mailbox (ids embed it so they are unique tenant-wide)."""
    return hashlib.sha1(user_id.encode(), usedforsecurity=False).hexdigest()[:10]


@lru_cache(maxsize=4096)
def _mailbox_head(mailbox: str) -> bytes:
    """What every default id of a mailbox starts with: the mailbox's GUID as text, then a
    store and folder part (stable per mailbox)."""
    guid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"m365sim:{mailbox}")).encode()
    digest = hashlib.sha256(mailbox.encode()).digest()
    return (
        _DEFAULT_PREFIX
        + guid
        + _ENTRY_MARK
        + digest[:22]
        + b"\x07\x00"
        + digest[10:32]
        + b"\x00\x00"
    )


def _pack_number(number: int) -> bytes:
    return number.to_bytes(6, "big")


def item_id(
    kind: str, mailbox: str, number: int, *, generation: int = 0, immutable: bool = False
) -> str:
    """The id of item ``number`` of ``kind`` in ``mailbox``; immutable ids ignore generation."""
    key = bytes.fromhex(mailbox)
    if immutable:
        raw = _IMMUTABLE_PREFIX + _IMMUTABLE_PAYLOAD.pack(key, kind.encode(), _pack_number(number))
        raw += hashlib.sha256(raw).digest()[:8] + b"\x00\x00\x00\x00"
    else:
        raw = _mailbox_head(mailbox) + _PAYLOAD.pack(
            key, kind.encode(), _pack_number(number), generation
        )
        raw += b"\x00\x00"
    return base64.urlsafe_b64encode(raw).decode()


def parse_item_id(value: str) -> ParsedId | None:
    """The parts of an id made by ``item_id``, or None for anything else."""
    try:
        raw = base64.urlsafe_b64decode(value.encode() + b"=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None
    try:
        if raw.startswith(_IMMUTABLE_PREFIX):
            end = len(_IMMUTABLE_PREFIX) + _IMMUTABLE_PAYLOAD.size
            if raw[end : end + 8] != hashlib.sha256(raw[:end]).digest()[:8]:
                return None  # another backend's id with Exchange's prefix (a To Do task)
            key, kind, number = _IMMUTABLE_PAYLOAD.unpack_from(raw, len(_IMMUTABLE_PREFIX))
            return ParsedId(kind.decode(), key.hex(), int.from_bytes(number, "big"), 0, True)
        if raw.startswith(_DEFAULT_PREFIX) and len(raw) >= _DEFAULT_HEAD + _PAYLOAD.size:
            key, kind, number, generation = _PAYLOAD.unpack_from(raw, _DEFAULT_HEAD)
            if raw[:_DEFAULT_HEAD] != _mailbox_head(key.hex()):
                return None
            return ParsedId(
                kind.decode(), key.hex(), int.from_bytes(number, "big"), generation, False
            )
    except (struct.error, UnicodeDecodeError):
        return None
    return None


_COMPACT = struct.Struct(">c5s6sI?")


def compact_item_id(parsed: ParsedId) -> bytes:
    """The 17 bytes that identify an id's item (for short entry ids, e.g. EWS ConvertId)."""
    return _COMPACT.pack(
        parsed.kind.encode(),
        bytes.fromhex(parsed.mailbox),
        _pack_number(parsed.number),
        parsed.generation,
        parsed.immutable,
    )


def expand_item_id(data: bytes) -> str | None:
    """The id ``compact_item_id`` made ``data`` from, or None if it is not such bytes."""
    if len(data) != _COMPACT.size:
        return None
    try:
        kind, key, number, generation, immutable = _COMPACT.unpack(data)
        return item_id(
            kind.decode(),
            key.hex(),
            int.from_bytes(number, "big"),
            generation=generation,
            immutable=immutable,
        )
    except (struct.error, UnicodeDecodeError):
        return None
