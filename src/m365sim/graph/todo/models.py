"""Microsoft To Do of one mailbox: task lists, tasks and their change tracking.

A ``TodoStore`` (``state.store(tenant, user, "todo", ...)``) starts with the default list
"Tasks" (``wellknownListName`` ``defaultList``). Each list keeps its own change sequence:
every mutation moves the task to the end of ``changelog`` with a new number, deletions
leave a tombstone, so a tasks delta round reads only what changed since its token.

Differences from Microsoft To Do:

- Tasks carry the core properties (title, status, importance, body, due/start/reminder/
  completed dates, categories, isReminderOn); no checklist items, linked resources,
  attachments, recurrence or the "flaggedEmails" list.
- Completing a task sets ``completedDateTime`` to the moment of completion in UTC
  (To Do shows midnight of that day in the user's zone); reopening clears it.
- Date properties are returned in UTC, whatever zone they were written in.
- Only the owner's lists exist (no shared lists); ``isOwner`` is always true.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from m365sim.dates import graph_timestamp
from m365sim.graph.calendar.formats import (
    change_key,
    date_time_tz,
    parse_date_time_tz,
)
from m365sim.graph.delta import fresh
from m365sim.graph.exceptions import SyncStateNotFound
from m365sim.graph.todo.exceptions import (
    DefaultListUndeletable,
    TaskListNotFound,
    TaskNotFound,
    TodoInvalidRequest,
)

__all__ = ["TASK_PROPERTIES", "TaskList", "TodoStore", "TodoTask"]

STATUSES = ("notStarted", "inProgress", "completed", "waitingOnOthers", "deferred")
IMPORTANCE = ("low", "normal", "high")
TASK_PROPERTIES = frozenset(
    {
        "id",
        "title",
        "status",
        "importance",
        "isReminderOn",
        "createdDateTime",
        "lastModifiedDateTime",
        "bodyLastModifiedDateTime",
        "hasAttachments",
        "categories",
        "body",
        "dueDateTime",
        "startDateTime",
        "reminderDateTime",
        "completedDateTime",
    }
)
_DATE_PROPS = {
    "dueDateTime": "due",
    "startDateTime": "start",
    "reminderDateTime": "reminder",
    "completedDateTime": "completed",
}


def _new_id() -> str:
    """A task id, as long as Exchange's immutable ids (about 70 characters)."""
    raw = base64.urlsafe_b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes[:8]).decode().rstrip("=")
    return f"AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A{raw}"


def _new_list_id() -> str:
    """A task list id, as long as Exchange's folder ids (about 120 characters)."""
    raw = base64.urlsafe_b64encode(
        str(uuid.uuid4()).encode() + b"\x00\x2e\x00\x00\x00\x00\x00" + uuid.uuid4().bytes * 3
    ).decode()
    return f"AAMkA{raw.rstrip('=')}AAA="


@dataclass
class TaskList:
    display_name: str
    wellknown: str = "none"
    id: str = field(default_factory=_new_list_id)
    version: int = 1

    def as_json(self) -> dict[str, Any]:
        return {
            "@odata.etag": f'W/"{change_key(self.id, self.version)}"',
            "displayName": self.display_name,
            "isOwner": True,
            "isShared": False,
            "wellknownListName": self.wellknown,
            "id": self.id,
        }


@dataclass
class TodoTask:
    list_id: str
    title: str
    created: datetime
    id: str = field(default_factory=_new_id)
    status: str = "notStarted"
    importance: str = "normal"
    is_reminder_on: bool = False
    categories: list[str] = field(default_factory=list)
    body: str = ""
    body_type: str = "text"
    body_modified: datetime | None = None
    modified: datetime | None = None
    due: tuple[datetime, str] | None = None
    start: tuple[datetime, str] | None = None
    reminder: tuple[datetime, str] | None = None
    completed: tuple[datetime, str] | None = None
    version: int = 1

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "@odata.etag": f'W/"{change_key(self.id, self.version)}"',
            "importance": self.importance,
            "isReminderOn": self.is_reminder_on,
            "status": self.status,
            "title": self.title,
            "createdDateTime": graph_timestamp(self.created),
            "lastModifiedDateTime": graph_timestamp(self.modified or self.created),
            "hasAttachments": False,
            "categories": list(self.categories),
            "id": self.id,
            "body": {"content": self.body, "contentType": self.body_type},
            "bodyLastModifiedDateTime": graph_timestamp(self.body_modified or self.created),
        }
        for prop, attr in _DATE_PROPS.items():
            value: tuple[datetime, str] | None = getattr(self, attr)
            if value is not None:
                out[prop] = date_time_tz(value[0], value[1])
        return out


def _choice(body: dict[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = str(body[key])
    for option in allowed:
        if option.lower() == value.lower():
            return option
    raise TodoInvalidRequest(f"Invalid value '{value}' for property '{key}'.")


def apply_task_fields(task: TodoTask, body: dict[str, Any], now: datetime) -> None:
    """Set the writable properties of ``body`` on ``task`` (read-only ones are ignored)."""
    if not isinstance(body, dict):
        raise TodoInvalidRequest("The request body must be a JSON object.")
    if "title" in body:
        task.title = str(body["title"] or "")
    if "importance" in body:
        task.importance = _choice(body, "importance", IMPORTANCE)
    if "isReminderOn" in body:
        task.is_reminder_on = bool(body["isReminderOn"])
    if "categories" in body:
        if not isinstance(body["categories"], list):
            raise TodoInvalidRequest("categories must be a list of strings.")
        task.categories = [str(c) for c in body["categories"]]
    if "body" in body:
        raw = body["body"] or {}
        if not isinstance(raw, dict):
            raise TodoInvalidRequest("body must be an itemBody object.")
        task.body = str(raw.get("content") or "")
        task.body_type = str(raw.get("contentType") or "text").lower()
        task.body_modified = now
    for prop, attr in _DATE_PROPS.items():
        if prop in body:
            raw_date = body[prop]
            # To Do keeps dates in UTC whatever zone they were given in.
            setattr(
                task,
                attr,
                None if raw_date is None else (parse_date_time_tz(raw_date, prop)[0], "UTC"),
            )
    if "status" in body:
        status = _choice(body, "status", STATUSES)
        if status == "completed" and task.status != "completed" and "completedDateTime" not in body:
            task.completed = (now.astimezone(UTC), "UTC")
        if status != "completed":
            task.completed = None
        task.status = status


Entry = tuple[str, str]  # ("task" | "removed", task id)


@dataclass
class DeltaState:
    """A ``$skiptoken`` (a page of a round) or a ``$deltatoken`` (a list as of ``seq``)."""

    id: str
    list_id: str
    seq: int
    last_used: datetime
    entries: list[Entry] = field(default_factory=list)


class TodoStore:
    def __init__(self, now: datetime) -> None:
        default = TaskList(display_name="Tasks", wellknown="defaultList")
        self.lists: dict[str, TaskList] = {default.id: default}
        self.tasks: dict[str, dict[str, TodoTask]] = {default.id: {}}
        self.changelogs: dict[str, dict[str, int]] = {default.id: {}}
        self.seq = 0
        self.deleted: set[str] = set()
        self.rounds: dict[str, DeltaState] = {}
        self.points: dict[str, DeltaState] = {}
        self.created = now

    @property
    def default_list(self) -> TaskList:
        return next(t for t in self.lists.values() if t.wellknown == "defaultList")

    # -- lists -----------------------------------------------------------------------------
    def task_list(self, list_id: str) -> TaskList:
        if list_id == "default":
            return self.default_list
        found = self.lists.get(list_id)
        if found is None:
            raise TaskListNotFound()
        return found

    def add_list(self, display_name: str) -> TaskList:
        if not display_name.strip():
            raise TodoInvalidRequest("displayName is required.")
        created = TaskList(display_name=display_name)
        self.lists[created.id] = created
        self.tasks[created.id] = {}
        self.changelogs[created.id] = {}
        return created

    def rename_list(self, list_id: str, display_name: str) -> TaskList:
        found = self.task_list(list_id)
        if not display_name.strip():
            raise TodoInvalidRequest("displayName is required.")
        found.display_name = display_name
        found.version += 1
        return found

    def delete_list(self, list_id: str) -> TaskList:
        found = self.task_list(list_id)
        if found.wellknown == "defaultList":
            raise DefaultListUndeletable()
        del self.lists[found.id]
        del self.tasks[found.id]
        del self.changelogs[found.id]
        return found

    # -- tasks -----------------------------------------------------------------------------
    def _touch(self, list_id: str, task_id: str) -> None:
        self.seq += 1
        log = self.changelogs[list_id]
        log.pop(task_id, None)
        log[task_id] = self.seq

    def task(self, list_id: str, task_id: str) -> TodoTask:
        found = self.tasks[self.task_list(list_id).id].get(task_id)
        if found is None:
            raise TaskNotFound()
        return found

    def list_tasks(self, list_id: str) -> list[TodoTask]:
        return list(self.tasks[self.task_list(list_id).id].values())

    def add_task(self, list_id: str, body: dict[str, Any], now: datetime) -> TodoTask:
        target = self.task_list(list_id)
        if not isinstance(body, dict) or not str(body.get("title") or "").strip():
            raise TodoInvalidRequest("A task needs a title.")
        task = TodoTask(list_id=target.id, title="", created=now)
        apply_task_fields(task, body, now)
        self.tasks[target.id][task.id] = task
        self._touch(target.id, task.id)
        return task

    def update_task(
        self, list_id: str, task_id: str, body: dict[str, Any], now: datetime
    ) -> TodoTask:
        task = self.task(list_id, task_id)
        trial = TodoTask(**{k: getattr(task, k) for k in task.__dataclass_fields__})
        trial.categories = list(task.categories)
        apply_task_fields(trial, body, now)  # validate first: a bad body changes nothing
        apply_task_fields(task, body, now)
        task.version += 1
        task.modified = now
        self._touch(task.list_id, task.id)
        return task

    def delete_task(self, list_id: str, task_id: str) -> TodoTask:
        task = self.task(list_id, task_id)
        del self.tasks[task.list_id][task.id]
        self.deleted.add(task.id)
        self._touch(task.list_id, task.id)
        return task

    # -- delta -----------------------------------------------------------------------------
    def start_round(self, list_id: str, now: datetime) -> DeltaState:
        target = self.task_list(list_id)
        entries = [("task", t) for t in self.tasks[target.id]]
        return self._round(target.id, entries, now)

    def resume_round(self, point: DeltaState, now: datetime) -> DeltaState:
        log = self.changelogs.get(point.list_id)
        if log is None:
            raise SyncStateNotFound()
        changed: list[str] = []
        for task_id, seq in reversed(log.items()):
            if seq <= point.seq:
                break
            changed.append(task_id)
        changed.reverse()
        entries = [
            ("task", t) if t in self.tasks[point.list_id] else ("removed", t) for t in changed
        ]
        return self._round(point.list_id, entries, now)

    def _round(self, list_id: str, entries: list[Entry], now: datetime) -> DeltaState:
        state = DeltaState(secrets.token_urlsafe(12), list_id, self.seq, now, entries)
        self.rounds[state.id] = state
        return state

    def delta_point(self, round_state: DeltaState, now: datetime) -> DeltaState:
        point = DeltaState(secrets.token_urlsafe(12), round_state.list_id, round_state.seq, now)
        self.points[point.id] = point
        return point

    def round(self, key: str, now: datetime, lifetime: timedelta) -> DeltaState:
        return fresh(self.rounds, key, now, lifetime)

    def point(self, key: str, now: datetime, lifetime: timedelta) -> DeltaState:
        return fresh(self.points, key, now, lifetime)
