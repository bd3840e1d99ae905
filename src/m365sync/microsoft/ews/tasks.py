"""Tasks over EWS, in the shape Task Sync reads from Microsoft To Do.

Exchange keeps a mailbox's tasks in its Tasks folder, the folder To Do's default list
shows. A page is one ``SyncFolderItems`` on that folder and one ``GetItem`` for the created
or changed tasks (``mail.folder_changes``), its SyncState the cursor; tasks come back as
To Do tasks (``title``, ``status``, ``importance``, ``dueDateTime``, ``@odata.etag`` from
the ``ChangeKey``...), and ``ExchangeTasks`` writes To Do task bodies as EWS tasks.

Blocking (exchangelib) except ``ExchangeTasks``, whose methods run it in a thread.
"""

from __future__ import annotations

import asyncio
from typing import Any

from exchangelib import Account, Body, Task

from m365sync.microsoft import errors as ms
from m365sync.microsoft.dates import read_graph_datetime
from m365sync.microsoft.ews.client import ExchangeServer
from m365sync.microsoft.ews.mail import MAX_CHANGES, MessagePage, _instant, folder_changes
from m365sync.microsoft.ews.stamp import STAMP_FIELD, find_stamped

TASK_FIELDS = (
    "subject",
    "text_body",
    "due_date",
    "status",
    "importance",
    "complete_date",
    "last_modified_time",
)

_STATUS = {
    "NotStarted": "notStarted",
    "InProgress": "inProgress",
    "Completed": "completed",
    "WaitingOnOthers": "waitingOnOthers",
    "Deferred": "deferred",
}
_EWS_STATUS = {graph: ews for ews, graph in _STATUS.items()}
_IMPORTANCE = {"Low": "low", "Normal": "normal", "High": "high"}
_EWS_IMPORTANCE = {graph: ews for ews, graph in _IMPORTANCE.items()}


def todo_task(item: Task) -> dict[str, Any]:
    """An EWS task in the shape of a To Do task (the fields Task Sync reads). A due date
    is a day, as in To Do: midnight UTC of that day."""
    due = item.due_date
    return {
        "id": item.id,
        "@odata.etag": item.changekey,
        "title": item.subject or "",
        "body": {"contentType": "text", "content": item.text_body or ""},
        "status": _STATUS.get(str(item.status), "notStarted"),
        "importance": _IMPORTANCE.get(str(item.importance), "normal"),
        "dueDateTime": (
            {"dateTime": f"{due.isoformat()[:10]}T00:00:00.0000000", "timeZone": "UTC"}
            if due is not None
            else None
        ),
        "completedDateTime": (
            {"dateTime": completed.removesuffix("Z"), "timeZone": "UTC"}
            if (completed := _instant(item.complete_date))
            else None
        ),
        "lastModifiedDateTime": _instant(item.last_modified_time),
    }


def task_changes(
    server: ExchangeServer, account: Account, sync_state: str | None, *, page_size: int
) -> MessagePage:
    """The page of the Tasks folder's changes after ``sync_state`` (None: from the start)."""
    folder = server.call(lambda: account.tasks)  # GetFolder, once per account
    return folder_changes(
        server,
        account,
        folder,
        sync_state,
        page_size=min(page_size, MAX_CHANGES),
        fields=TASK_FIELDS,
        shape=lambda found: todo_task(found) if isinstance(found, Task) else None,
    )


def _apply(item: Task, body: dict[str, Any]) -> list[str]:
    """Set ``item``'s fields from a To Do task body; the fields set."""
    item.subject = str(body.get("title") or "")
    item.body = Body(str((body.get("body") or {}).get("content") or ""))
    item.status = _EWS_STATUS.get(str(body.get("status") or ""), "NotStarted")
    item.importance = _EWS_IMPORTANCE.get(str(body.get("importance") or ""), "Normal")
    due = read_graph_datetime(body.get("dueDateTime"))
    item.due_date = due.date() if due is not None else None
    return ["subject", "body", "status", "importance", "due_date"]


class ExchangeTasks:
    """A mailbox's Tasks folder as ``sync.push`` writes to it (To Do bodies in, To Do-shaped
    answers out)."""

    def __init__(self, server: ExchangeServer, account: Account) -> None:
        self.server = server
        self.account = account

    def _get(self, item_id: str) -> Task:
        found = self.account.tasks.get(id=item_id)
        if not isinstance(found, Task):
            raise ms.ItemNotFound("The task is no longer in the mailbox.")
        return found

    def _create(self, body: dict[str, Any], stamp: str | None) -> dict[str, Any]:
        if stamp is not None:
            made = find_stamped(self.account.tasks, stamp)
            if isinstance(made, Task):
                return {"id": made.id, "@odata.etag": made.changekey}  # created before a crash
        item = Task(account=self.account, folder=self.account.tasks)
        _apply(item, body)
        if stamp is not None:
            setattr(item, STAMP_FIELD, stamp)
        item.save()
        return {"id": item.id, "@odata.etag": item.changekey}

    def _update(self, item_id: str, body: dict[str, Any]) -> dict[str, Any]:
        item = self._get(item_id)
        item.save(update_fields=_apply(item, body))
        return {"id": item.id, "@odata.etag": item.changekey}

    async def create(
        self, body: dict[str, Any], *, transaction_id: str | None = None
    ) -> dict[str, Any]:
        """``transaction_id`` stamps the task, and a task already stamped with it is the
        answer (``ews.stamp``)."""
        return await asyncio.to_thread(self.server.call, lambda: self._create(body, transaction_id))

    async def update(self, item_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(self.server.call, lambda: self._update(item_id, body))

    async def delete(self, item_id: str, *, notify: bool = False) -> None:
        await asyncio.to_thread(self.server.call, lambda: self._get(item_id).delete())


__all__ = ["TASK_FIELDS", "ExchangeTasks", "task_changes", "todo_task"]
