"""Mail over EWS: a folder's changes page by page (``SyncFolderItems``), as the sync engine
reads Graph's delta pages.

A page is one ``SyncFolderItems`` call (``IdOnly`` plus ``DateTimeReceived``, so items
outside the backfill window are never fetched) and one ``GetItem`` for the created or
changed messages inside it, as Microsoft's synchronization guide does: the sync state
that ends the page is the cursor to commit with it. Messages come back in Graph's shape
(``id``, ``internetMessageId``, ``from``, ``toRecipients``..., ``@removed`` for a
deletion), so the engine's page writer stores either protocol's pages alike. A change of
the read flag alone changes nothing the CRM keeps and is not returned.

Blocking (exchangelib): callers on an event loop use ``asyncio.to_thread``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from exchangelib import Account, Message
from exchangelib.folders import Folder
from exchangelib.properties import ItemId
from exchangelib.services import SyncFolderItems

from m365sync.microsoft import errors as ms
from m365sync.microsoft.ews._errors import classify_ews_error
from m365sync.microsoft.ews.client import ExchangeServer

MAX_CHANGES = 512
"""``MaxChangesReturned`` accepts 1 to 512."""

HEADER_FIELDS = (
    "message_id",
    "subject",
    "author",
    "to_recipients",
    "cc_recipients",
    "bcc_recipients",
    "datetime_received",
    "datetime_sent",
    "is_draft",
)
BODY_FIELDS = (*HEADER_FIELDS, "text_body")

_FOLDERS: dict[str, Callable[[Account], Folder]] = {
    "inbox": lambda account: account.inbox,
    "sentitems": lambda account: account.sent,
    "drafts": lambda account: account.drafts,
    "deleteditems": lambda account: account.trash,
    "junkemail": lambda account: account.junk,
    "outbox": lambda account: account.outbox,
}


@dataclass(slots=True)
class MessagePage:
    """One page of a folder's changes: Graph-shaped items, the sync state that ends it, and
    whether it ends the round (``IncludesLastItemInRange``)."""

    items: list[dict[str, Any]]
    sync_state: str
    last: bool
    requests: int


def mail_folder(account: Account, name: str) -> Folder:
    """A well-known mail folder by the name Graph and EWS share (``inbox``, ``sentitems``...);
    exchangelib looks it up (GetFolder) the first time an account is asked for it."""
    try:
        return _FOLDERS[name.lower()](account)
    except KeyError:
        raise ms.ItemNotFound(
            f"The mail folder '{name}' can't be synced over Exchange Web Services.",
            fix="Sync the well-known folders (Inbox, Sent Items, Drafts, Deleted Items, Junk "
            "Email) for mailboxes on Exchange Server.",
        ) from None


def _instant(value: Any) -> str | None:
    if not isinstance(value, datetime):
        return None
    instant = datetime.fromtimestamp(value.timestamp(), UTC)  # EWSDateTime knows only EWS zones
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def _address(mailbox: Any) -> dict[str, Any] | None:
    address = getattr(mailbox, "email_address", None)
    if not address:
        return None
    return {"emailAddress": {"address": address, "name": getattr(mailbox, "name", None) or ""}}


def _addresses(mailboxes: Any) -> list[dict[str, Any]]:
    return [found for found in map(_address, mailboxes or []) if found is not None]


def graph_message(item: Message, *, headers_only: bool) -> dict[str, Any]:
    """An EWS message in the shape of a Graph message (the fields Email Sync reads)."""
    shaped: dict[str, Any] = {
        "id": item.id,
        "internetMessageId": item.message_id,
        "subject": item.subject or "",
        "from": _address(item.author),
        "toRecipients": _addresses(item.to_recipients),
        "ccRecipients": _addresses(item.cc_recipients),
        "bccRecipients": _addresses(item.bcc_recipients),
        "receivedDateTime": _instant(item.datetime_received),
        "sentDateTime": _instant(item.datetime_sent),
        "isDraft": bool(item.is_draft),
    }
    if not headers_only:
        shaped["body"] = {"contentType": "text", "content": item.text_body or ""}
    return shaped


def message_changes(
    server: ExchangeServer,
    account: Account,
    folder_name: str,
    sync_state: str | None,
    *,
    page_size: int = MAX_CHANGES,
    since: datetime | None = None,
    headers_only: bool = False,
) -> MessagePage:
    """The page of ``folder_name``'s changes after ``sync_state`` (None: from the start). An
    expired or unreadable state raises ``SyncStateExpired``."""
    folder = server.call(lambda: mail_folder(account, folder_name))  # GetFolder, once

    def in_window(item: Any) -> bool:
        arrived = getattr(item, "datetime_received", None)
        return not (
            since is not None
            and isinstance(arrived, datetime)
            and arrived.timestamp() < since.timestamp()
        )

    return folder_changes(
        server,
        account,
        folder,
        sync_state,
        page_size=page_size,
        sync_fields=("datetime_received",),
        keep=in_window,
        fields=HEADER_FIELDS if headers_only else BODY_FIELDS,
        shape=lambda found: (
            graph_message(found, headers_only=headers_only) if isinstance(found, Message) else None
        ),
    )


def folder_changes(
    server: ExchangeServer,
    account: Account,
    folder: Folder,
    sync_state: str | None,
    *,
    page_size: int,
    fields: tuple[str, ...],
    shape: Callable[[Any], dict[str, Any] | None],
    sync_fields: tuple[str, ...] = (),
    keep: Callable[[Any], bool] = lambda item: True,
) -> MessagePage:
    """One page of ``folder``'s changes after ``sync_state``: a ``SyncFolderItems``
    (``IdOnly`` plus ``sync_fields``, which ``keep`` may look at) and a ``GetItem`` of
    ``fields`` for the created or changed items kept, each ``shape``d (None: left out);
    deletions as ``@removed``. An expired or unreadable state raises ``SyncStateExpired``."""
    additional = set(folder.normalize_fields(fields=list(sync_fields))) if sync_fields else None
    requests = 0

    def sync_page() -> tuple[list[tuple[str, Any]], str, bool]:
        nonlocal requests
        requests += 1
        service = SyncFolderItems(account=account)
        changes = list(
            service.call(
                folder=folder,
                shape="IdOnly",
                additional_fields=additional,
                sync_state=sync_state,
                ignore=None,
                max_changes_returned=max(1, min(page_size, MAX_CHANGES)),
                sync_scope=None,
            )
        )
        return changes, str(service.sync_state), bool(service.includes_last_item_in_range)

    changes, state, last = server.call(sync_page)
    last = last or state == sync_state  # no progress: the round can't go further
    wanted: dict[str, tuple[str, str | None]] = {}
    removed: list[str] = []
    for kind, item in changes:
        if kind == SyncFolderItems.DELETE and isinstance(item, ItemId):
            removed.append(item.id)
            wanted.pop(item.id, None)
        elif kind in (SyncFolderItems.CREATE, SyncFolderItems.UPDATE):
            item_id = getattr(item, "id", None)
            if isinstance(item_id, str) and item_id and keep(item):
                wanted[item_id] = (item_id, getattr(item, "changekey", None))
    items: list[dict[str, Any]] = []
    if wanted:

        def get_items() -> list[Any]:
            nonlocal requests
            requests += 1
            return list(
                account.fetch(
                    ids=list(wanted.values()),
                    folder=folder,
                    only_fields=list(fields),
                    chunk_size=len(wanted),
                )
            )

        for found in server.call(get_items):
            if isinstance(found, Exception):
                error = classify_ews_error(found)
                if isinstance(error, ms.ItemNotFound):
                    continue  # deleted since the sync page was read: its Delete comes next
                raise error from found
            shaped = shape(found)
            if shaped is not None:
                items.append(shaped)
    items.extend({"id": item_id, "@removed": {"reason": "deleted"}} for item_id in removed)
    return MessagePage(items, state, last, requests)


__all__ = [
    "BODY_FIELDS",
    "HEADER_FIELDS",
    "MAX_CHANGES",
    "MessagePage",
    "folder_changes",
    "graph_message",
    "mail_folder",
    "message_changes",
]
