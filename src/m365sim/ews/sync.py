"""``SyncFolderItems`` and ``SyncFolderHierarchy``: sync states over the stores' change numbers.

A sync state is what Exchange makes it: an opaque blob the client keeps and hands back.
Here it is a signed JSON record, self-contained (nothing is kept on the server per
client): the folder, the change number ``since`` the client is up to date with and, while
a round is being paged, the number ``until`` the round covers and the ``after`` cursor of
the last change served. A round lists the folder's changes with numbers in
``(since, until]``, in change order; each page serves up to ``MaxChangesReturned`` of
them and says ``IncludesLastItemInRange`` false until the round is done. A change made
while a round is paged gets a number above ``until`` and comes in the next round, so
nothing is skipped, and a state the client re-sends (after a crash, before committing
the page) replays the same page.

Change kinds, as Exchange reports them: ``Create`` for an item placed in the folder after
``since`` (moving in counts; the item has a new id), ``Update`` for an item changed
since, ``ReadFlagChange`` when only its read flag changed, ``Delete`` (an ``ItemId``) for
an item that left the folder. Calendar folders hold single items and recurring masters:
editing or deleting one occurrence updates its master. To know whether only the read flag
changed, and when an event or task was created, the journal below listens to the change
feed the stores publish.

Differences from Exchange: a ``Delete`` may be reported for an item that arrived and left
within the same window (Exchange drops those); the first change to a bulk-generated
message that no EWS sync has seen yet is an ``Update`` even when only its read flag
changed; ``SyncScope`` ``NormalAndAssociatedItems`` returns the same as ``NormalItems``
(there are no associated items); states never expire (Exchange's don't either, short of a
mailbox move), but one that is tampered with, truncated, or from another folder answers
``ErrorInvalidSyncStateData``.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from m365sim.ews import exceptions as errors
from m365sim.ews.mailbox import EwsFolder, MailboxView, ews_task_id
from m365sim.graph.calendar.models import CalendarStore, Event
from m365sim.graph.ids import parse_item_id
from m365sim.graph.mail.models import MailFolder, Message, Tombstone
from m365sim.graph.todo.models import TodoTask
from m365sim.state import Change, SimState

__all__ = [
    "ItemChange",
    "SyncJournal",
    "hierarchy_changes",
    "install",
    "item_changes",
]

MAX_CHANGES = 512


# -- signed states -----------------------------------------------------------------------------


def _secret(state: SimState) -> bytes:
    value: bytes = state.extension("ews.sync-secret", lambda: secrets.token_bytes(16))
    return value


def sign(state: SimState, payload: dict[str, Any]) -> str:
    raw = orjson.dumps(payload)
    mac = hmac.new(_secret(state), raw, hashlib.sha256).digest()[:16]
    return base64.b64encode(mac + raw).decode()


def unsign(state: SimState, token: str) -> dict[str, Any]:
    try:
        blob = base64.b64decode(token.strip(), validate=True)
    except ValueError as exc:
        raise errors.ErrorInvalidSyncStateData() from exc
    mac, raw = blob[:16], blob[16:]
    expected = hmac.new(_secret(state), raw, hashlib.sha256).digest()[:16]
    if len(blob) < 17 or not hmac.compare_digest(mac, expected):
        raise errors.ErrorInvalidSyncStateData()
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        raise errors.ErrorInvalidSyncStateData()
    return data


# -- the journal ---------------------------------------------------------------------------------


@dataclass
class SyncJournal:
    """What the change feed tells EWS that the stores don't keep: per message, the number of
    its last change other than the read flag; per event and task, the number it was
    created at."""

    fingerprints: dict[tuple[str, int], int] = field(default_factory=dict)
    content_seq: dict[tuple[str, int], int] = field(default_factory=dict)
    created_seq: dict[tuple[str, str], int] = field(default_factory=dict)


def journal(state: SimState) -> SyncJournal:
    value: SyncJournal = state.extension("ews.journal", SyncJournal)
    return value


def fingerprint(message: Message) -> int:
    """Everything a client syncs about a message, except its read flag."""
    return hash(
        (
            message.subject,
            message.body_content,
            message.body_type,
            tuple(message.categories),
            message.importance,
            message.flag_status,
            tuple(message.to),
            tuple(message.cc),
            tuple(message.bcc),
            tuple(message.reply_to),
            message.from_,
            message.sender,
            message.is_draft,
            message.delivery_receipt,
            message.read_receipt,
            message.inference,
        )
    )


class _JournalListener:
    """Keeps a ``SyncJournal`` up to date from the stores' change feed."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    def __call__(self, change: Change) -> None:
        box = self.state.mailboxes.get(change.user_id)
        if box is None:
            return
        book = journal(self.state)
        if change.resource == "message":
            store = box.stores.get("mail")
            parsed = parse_item_id(change.item_id)
            if store is None or parsed is None or change.change_type == "deleted":
                return
            message = store.messages.get(parsed.number)
            if message is None:
                return
            key = (change.user_id, message.number)
            current = fingerprint(message)
            if change.change_type == "updated" and book.fingerprints.get(key) != current:
                book.content_seq[key] = message.change_seq
            book.fingerprints[key] = current
        elif change.change_type == "created" and change.resource in ("event", "todoTask"):
            store = box.stores.get("calendar" if change.resource == "event" else "todo")
            if store is not None:
                book.created_seq[(change.user_id, change.item_id)] = int(store.seq)


def install(state: SimState) -> None:
    """Listen to the stores' change feed (once per state; the journal itself is emptied by
    ``SimState.reset()``)."""
    if not any(isinstance(listener, _JournalListener) for listener in state.change_listeners):
        state.change_listeners.append(_JournalListener(state))


# -- item changes ------------------------------------------------------------------------------


@dataclass
class ItemChange:
    kind: str  # Create | Update | Delete | ReadFlagChange
    item: Any = None  # Message | Event | TodoTask (Create/Update/ReadFlagChange)
    item_id: str = ""  # Delete, ReadFlagChange
    is_read: bool = False


@dataclass
class SyncPage:
    changes: list[ItemChange]
    sync_state: str
    includes_last: bool


def item_changes(
    state: SimState,
    view: MailboxView,
    folder: EwsFolder,
    token: str | None,
    max_changes: int,
    ignore: set[str],
) -> SyncPage:
    """One page of changes to ``folder`` after the sync state ``token``."""
    if not 1 <= max_changes <= MAX_CHANGES:
        raise errors.ErrorInvalidRequest(f"MaxChangesReturned must be between 1 and {MAX_CHANGES}.")
    since, until, after = 0, None, 0
    if token:
        data = unsign(state, token)
        if data.get("f") != folder.id or data.get("k") != "i":
            raise errors.ErrorInvalidSyncStateData()
        since = int(data.get("s", 0))
        until = data.get("u")
        after = int(data.get("a", since))
    if folder.mail is not None:
        source = _MailSource(state, view, folder.mail)
    elif folder.calendar is not None:
        source = _CalendarSource(state, view, folder.calendar.id)  # type: ignore[assignment]
    elif folder.task_list is not None:
        source = _TaskSource(state, view, folder.task_list.id)  # type: ignore[assignment]
    else:
        source = _EmptySource()  # type: ignore[assignment]
    if until is None:
        until = source.current_seq()
        after = since
    changes: list[ItemChange] = []
    cursor = after
    exhausted = True
    for seq, change in source.changes(since, after, int(until)):
        if len(changes) >= max_changes:
            exhausted = False
            break
        cursor = seq
        if change is None or _ignored(change, ignore, view.key):
            continue
        changes.append(change)
    if exhausted:
        new_state = sign(state, {"k": "i", "f": folder.id, "s": int(until)})
    else:
        new_state = sign(state, {"k": "i", "f": folder.id, "s": since, "u": until, "a": cursor})
    return SyncPage(changes, new_state, exhausted)


def _ignored(change: ItemChange, ignore: set[str], mailbox: str) -> bool:
    if not ignore:
        return False
    if isinstance(change.item, Message):
        return change.item.id_for(False, mailbox) in ignore
    if isinstance(change.item, TodoTask):
        return ews_task_id(change.item.id) in ignore
    return (change.item_id or getattr(change.item, "id", "")) in ignore


class _EmptySource:
    def current_seq(self) -> int:
        return 0

    def changes(
        self, since: int, after: int, until: int
    ) -> Iterator[tuple[int, ItemChange | None]]:
        return iter(())


class _MailSource:
    def __init__(self, state: SimState, view: MailboxView, folder: MailFolder) -> None:
        self.state = state
        self.view = view
        self.folder = folder
        self.book = journal(state)
        self.user_id = view.user.id

    def current_seq(self) -> int:
        return int(self.view.mail.seq)

    def _ordered(self) -> tuple[list[int], list[Message]]:
        cache: dict[tuple[str, int], tuple[int, list[int], list[Message]]] = self.state.extension(
            "ews.mail-order", dict
        )
        key = (self.user_id, self.folder.number)
        hit = cache.get(key)
        if hit is not None and hit[0] == self.folder.changed_seq:
            return hit[1], hit[2]
        messages = list(self.folder.messages.values())
        seqs = [m.change_seq for m in messages]
        if len(cache) > 64:
            cache.clear()
        cache[key] = (self.folder.changed_seq, seqs, messages)
        return seqs, messages

    def changes(
        self, since: int, after: int, until: int
    ) -> Iterator[tuple[int, ItemChange | None]]:
        seqs, messages = self._ordered()
        i = bisect.bisect_right(seqs, after)
        tombs = self.folder.tombstones
        j = bisect.bisect_right(self.folder.tombstone_seqs, after)
        while True:
            next_message = seqs[i] if i < len(seqs) and seqs[i] <= until else None
            next_tomb = tombs[j].seq if j < len(tombs) and tombs[j].seq <= until else None
            if next_message is None and next_tomb is None:
                return
            if next_tomb is None or (next_message is not None and next_message < next_tomb):
                message = messages[i]
                i += 1
                if message.folder is not self.folder or message.change_seq > until:
                    yield next_message or 0, None
                    continue
                yield message.change_seq, self._classify(message, since)
            else:
                tomb: Tombstone = tombs[j]
                j += 1
                yield tomb.seq, ItemChange("Delete", item_id=tomb.default_id)

    def _classify(self, message: Message, since: int) -> ItemChange:
        key = (self.user_id, message.number)
        if message.change_seq == message.folder_seq and key not in self.book.fingerprints:
            self.book.fingerprints[key] = fingerprint(message)
        if message.folder_seq > since:
            return ItemChange("Create", item=message)
        content_seq = self.book.content_seq.get(key, message.folder_seq)
        if content_seq <= since:
            return ItemChange(
                "ReadFlagChange",
                item=message,
                item_id=message.id_for(False, self.view.key),
                is_read=message.is_read,
            )
        return ItemChange("Update", item=message)


class _CalendarSource:
    def __init__(self, state: SimState, view: MailboxView, calendar_id: str) -> None:
        self.view = view
        self.store: CalendarStore = view.calendars
        self.calendar_id = calendar_id
        self.book = journal(state)
        self.user_id = view.user.id

    def current_seq(self) -> int:
        return int(self.store.seq)

    def changes(
        self, since: int, after: int, until: int
    ) -> Iterator[tuple[int, ItemChange | None]]:
        window: list[tuple[str, int]] = []
        for key, seq in reversed(self.store.changelog.items()):
            if seq <= after:
                break
            if seq <= until:
                window.append((key, seq))
        window.reverse()
        for key, seq in window:
            yield seq, self._classify(key, since)

    def _classify(self, key: str, since: int) -> ItemChange | None:
        event = self.store.events.get(key)
        if event is not None:
            if event.calendar_id != self.calendar_id:
                return None
            if event.type == "exception":
                return self._master_update(event.series_master_id)
            created = self.book.created_seq.get((self.user_id, event.id), 0)
            return ItemChange("Create" if created > since else "Update", item=event)
        tomb = self.store.tombstones.get(key)
        if tomb is None or tomb.calendar_id != self.calendar_id:
            return None
        if tomb.master_id is not None:
            return self._master_update(tomb.master_id)
        created = self.book.created_seq.get((self.user_id, key), 0)
        if created > since:
            return None  # created and deleted within the window: the client never saw it
        return ItemChange("Delete", item_id=key)

    def _master_update(self, master_id: str | None) -> ItemChange | None:
        master: Event | None = self.store.events.get(master_id or "")
        if master is None:
            return None
        return ItemChange("Update", item=master)


class _TaskSource:
    def __init__(self, state: SimState, view: MailboxView, list_id: str) -> None:
        self.view = view
        self.list_id = list_id
        self.book = journal(state)
        self.user_id = view.user.id

    def current_seq(self) -> int:
        return int(self.view.todo.seq)

    def changes(
        self, since: int, after: int, until: int
    ) -> Iterator[tuple[int, ItemChange | None]]:
        log = self.view.todo.changelogs.get(self.list_id, {})
        tasks = self.view.todo.tasks.get(self.list_id, {})
        window: list[tuple[str, int]] = []
        for key, seq in reversed(log.items()):
            if seq <= after:
                break
            if seq <= until:
                window.append((key, seq))
        window.reverse()
        for key, seq in window:
            task = tasks.get(key)
            created = self.book.created_seq.get((self.user_id, key), 0)
            if task is None:
                yield (
                    seq,
                    None if created > since else ItemChange("Delete", item_id=ews_task_id(key)),
                )
            else:
                yield seq, ItemChange("Create" if created > since else "Update", item=task)


# -- hierarchy ---------------------------------------------------------------------------------


def hierarchy_changes(
    state: SimState, view: MailboxView, start: EwsFolder, token: str | None
) -> tuple[list[tuple[str, EwsFolder | str]], str]:
    """Folder changes under ``start`` since ``token``: (kind, folder or deleted id)."""
    previous: dict[str, str] = {}
    if token:
        data = unsign(state, token)
        if data.get("k") != "h" or data.get("r") != start.id:
            raise errors.ErrorInvalidSyncStateData()
        previous = dict(data.get("f") or {})
    current = {f.id: f for f in start.walk()}
    changes: list[tuple[str, EwsFolder | str]] = []
    for folder_id, folder in current.items():
        if folder_id not in previous:
            changes.append(("Create", folder))
        elif previous[folder_id] != folder.change_key:
            changes.append(("Update", folder))
    for folder_id in previous:
        if folder_id not in current:
            changes.append(("Delete", folder_id))
    snapshot = {f.id: f.change_key for f in current.values()}
    return changes, sign(state, {"k": "h", "r": start.id, "f": snapshot})
