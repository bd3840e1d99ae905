"""Mail folder changes: rename (PATCH), move, delete, and ``mailFolders/delta``.

As Graph documents them (https://learn.microsoft.com/graph/api/mailfolder-update,
mailfolder-move, mailfolder-delete, mailfolder-delta):

- ``PATCH`` changes ``displayName`` (the only writable property here); a name a sibling
  already has answers 409 ``ErrorFolderExists``;
- ``move`` takes ``destinationId`` (id or well-known name) and answers 201 with the folder;
  a folder can't move into itself or below itself;
- ``DELETE`` answers 204: the folder and what it holds go to Deleted Items, as Outlook
  does; deleting a folder already in Deleted Items removes it and its messages for good
  (they go to Recoverable Items);
- well-known folders (Inbox, Sent Items...) can be neither renamed, moved nor deleted
  (Exchange's ``ErrorDeleteDistinguishedFolder``; m365sim refuses rename and move too);
- ``mailFolders/delta`` returns every folder of the hierarchy under ``msgfolderroot``
  (flat, child folders included) on the first round, then the folders created, renamed or
  moved since, and ``{"id", "@removed": {"reason": "deleted"}}`` for each one deleted for
  good. Tokens are signed, carry the sync point, and outlive nothing: m365sim does not
  expire them (a difference).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from m365sim.exceptions import GraphError
from m365sim.graph import exceptions as errors
from m365sim.graph.mail import exceptions as mail_errors
from m365sim.graph.mail.models import MailFolder, MailStore

__all__ = [
    "FolderLog",
    "delete_folder",
    "folder_delta_page",
    "move_folder",
    "rename_folder",
]


class DistinguishedFolder(GraphError):
    status = 400
    code = "ErrorDeleteDistinguishedFolder"
    message = "Distinguished folders cannot be deleted."


@dataclass
class FolderLog:
    """When each folder last changed (change numbers of the mailbox) and the folders
    removed for good, for ``mailFolders/delta``."""

    changed: dict[int, int] = field(default_factory=dict)  # folder number -> seq
    removed: list[tuple[int, str]] = field(default_factory=list)  # (seq, folder id)


def folder_log(store: MailStore) -> FolderLog:
    log: FolderLog = store.state.extension(f"mail-folders:{store.key}", FolderLog)
    return log


def _touch(store: MailStore, folder: MailFolder) -> None:
    folder_log(store).changed[folder.number] = store._next_seq()
    folder.changed_seq = store.seq


def note_created(store: MailStore, folder: MailFolder) -> None:
    _touch(store, folder)


def _not_distinguished(folder: MailFolder, action: str) -> None:
    if folder.well_known:
        if action == "delete":
            raise DistinguishedFolder()
        raise errors.BadRequest(
            f"The well-known folder '{folder.well_known}' can't be {action}d; m365sim refuses it "
            "as Outlook does."
        )


def _check_name(parent: MailFolder, name: str, folder: MailFolder | None = None) -> None:
    if any(c is not folder and c.display_name.lower() == name.lower() for c in parent.children):
        raise mail_errors.ErrorFolderExists()


def rename_folder(store: MailStore, folder: MailFolder, changes: Any) -> MailFolder:
    if not isinstance(changes, dict):
        raise errors.BadRequest("The request body must be a JSON object.")
    for name in changes:
        if name.startswith("@odata") or name == "displayName":
            continue
        raise errors.BadRequest(f"The property '{name}' of a mail folder can't be updated.")
    new_name = changes.get("displayName")
    if new_name is None:
        return folder
    if not isinstance(new_name, str) or not new_name.strip():
        raise errors.BadRequest("The displayName property is required.")
    _not_distinguished(folder, "rename")
    assert folder.parent is not None
    _check_name(folder.parent, new_name, folder)
    folder.display_name = new_name
    _touch(store, folder)
    return folder


def _below(folder: MailFolder, ancestor: MailFolder) -> bool:
    node: MailFolder | None = folder
    while node is not None:
        if node is ancestor:
            return True
        node = node.parent
    return False


def _reparent(store: MailStore, folder: MailFolder, destination: MailFolder) -> None:
    assert folder.parent is not None
    folder.parent.children.remove(folder)
    destination.children.append(folder)
    folder.parent = destination
    _touch(store, folder)


def move_folder(store: MailStore, folder: MailFolder, destination: MailFolder) -> MailFolder:
    _not_distinguished(folder, "move")
    if _below(destination, folder):
        raise errors.BadRequest("A folder can't be moved into itself or one of its subfolders.")
    _check_name(destination, folder.display_name)
    _reparent(store, folder, destination)
    return folder


def delete_folder(store: MailStore, folder: MailFolder) -> None:
    _not_distinguished(folder, "delete")
    deleted_items = store.well_known["deleteditems"]
    if not _below(folder, deleted_items):
        _reparent(store, folder, deleted_items)
        return
    recoverable = store.well_known["recoverableitemsdeletions"]
    log = folder_log(store)
    stack = [folder]
    while stack:
        current = stack.pop()
        stack.extend(current.children)
        for message in list(current.messages.values()):
            store.move_message_silently(message, recoverable)
        store.folders.pop(current.number, None)
        store.folders_by_id.pop(current.id, None)
        log.changed.pop(current.number, None)
        log.removed.append((store._next_seq(), current.id))
    assert folder.parent is not None
    folder.parent.children.remove(folder)


def folder_delta_page(
    store: MailStore, token: str | None, *, skip: int, size: int
) -> tuple[list[dict[str, Any]], str | None, str | None]:
    """One page of ``mailFolders/delta``: (items, next skiptoken, deltatoken)."""
    since, point = -1, store.seq
    if token is not None:
        data = store._unsign(token)
        if data.get("kind") != "folders":
            raise errors.SyncStateNotFound(
                "The sync state generation is not found; the token is not for mail folders."
            )
        since = int(data["since"])
        skip = int(data.get("skip", 0))
        point = int(data.get("point", store.seq))
    log = folder_log(store)
    entries: list[tuple[int, dict[str, Any]]] = []
    for folder in store.visible_folders():
        seq = log.changed.get(folder.number, 0)
        if since < 0 or since < seq <= point:
            entries.append((seq, folder.as_json()))
    if since >= 0:
        entries += [
            (seq, {"id": fid, "@removed": {"reason": "deleted"}})
            for seq, fid in log.removed
            if since < seq <= point
        ]
    entries.sort(key=lambda pair: pair[0])
    chunk = [item for _, item in entries[skip : skip + size]]
    if skip + size < len(entries):
        next_token = store._sign(
            {"kind": "folders", "since": since, "skip": skip + size, "point": point}
        )
        return chunk, next_token, None
    return chunk, None, store._sign({"kind": "folders", "since": point, "skip": 0})
