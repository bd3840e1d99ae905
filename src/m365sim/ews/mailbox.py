"""One mailbox as EWS sees it: a folder tree over the same stores Graph serves.

``MailboxView`` composes the user's ``MailStore`` (mail folders and messages), the
``CalendarStore`` (each calendar is a folder of class ``IPF.Appointment``) and the
``TodoStore`` (the default To Do list is the ``tasks`` folder, ``IPF.Task``) under the
mailbox root, as Exchange lays them out::

    root                      (distinguished "root"; no class)
    └── Top of Information Store   ("msgfolderroot")
        ├── Inbox, Drafts, Sent Items, Deleted Items, Junk Email, Outbox, Archive, ...
        ├── Calendar          ("calendar", IPF.Appointment; other calendars beside it)
        ├── Contacts          ("contacts", IPF.Contact, always empty)
        └── Tasks             ("tasks", IPF.Task)

Folder and item ids are the ones Graph hands out (Graph's default ids *are* EWS ids in
Exchange), so an id read through one protocol resolves through the other. The root and
Contacts folders exist only in this view and have ids of their own. Tasks are the
exception: To Do names a task with To Do's own id, EWS with an Exchange item id
(``ews_task_id``), and neither API documents a translation from one to the other (Graph's
``translateExchangeIds`` covers Outlook items, not To Do tasks), so a client moving a
mailbox between the protocols cannot match a task by its id.

Differences from Exchange: no search folders, Recoverable Items, Conversation History,
Notes or Journal folders; Contacts is always empty; folders other than mail folders and
calendars cannot be created through EWS.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from m365sim.directory.models import Tenant, User
from m365sim.graph.calendar.backend import CalendarBackend
from m365sim.graph.calendar.formats import change_key
from m365sim.graph.calendar.models import Calendar, CalendarStore
from m365sim.graph.ids import item_id, mailbox_key
from m365sim.graph.mail.backend import MailBackend
from m365sim.graph.mail.models import MailFolder, MailStore
from m365sim.graph.todo.backend import TodoBackend
from m365sim.graph.todo.models import TaskList, TodoStore
from m365sim.state import SimState

__all__ = ["EwsFolder", "MailboxView", "ews_task_id", "todo_task_id"]


def ews_task_id(todo_id: str) -> str:
    """The EWS item id of the To Do task ``todo_id`` (a different string: see the module)."""
    return todo_id.replace("-", "+").replace("_", "/")


def todo_task_id(ews_id: str) -> str:
    """The To Do id of the task whose EWS item id is ``ews_id``."""
    return ews_id.replace("+", "-").replace("/", "_")


_MAIL_DISTINGUISHED = {
    "msgfolderroot": "msgfolderroot",
    "inbox": "inbox",
    "drafts": "drafts",
    "sentitems": "sentitems",
    "deleteditems": "deleteditems",
    "junkemail": "junkemail",
    "outbox": "outbox",
}
"""Graph well-known folder name → EWS DistinguishedFolderId (Graph's "archive" is a plain
folder in EWS: Exchange 2016/2019 have no distinguished id for it)."""

_VIRTUAL_ROOT = 0
_VIRTUAL_CONTACTS = 1


def _folder_change_key(kind: int, number: int, version: int) -> str:
    return base64.b64encode(
        b"\x01\x00\x00\x00\x16\x00\x00\x00" + struct.pack(">BQI", kind, number, version)
    ).decode()


@dataclass
class EwsFolder:
    """A folder of the view, with what EWS reports about it."""

    id: str
    change_key: str
    display_name: str
    folder_class: str  # "" for the root
    parent: EwsFolder | None
    distinguished: str | None = None
    mail: MailFolder | None = None
    calendar: Calendar | None = None
    task_list: TaskList | None = None
    children: list[EwsFolder] = field(default_factory=list)
    total: int = 0
    unread: int = 0

    @property
    def element_name(self) -> str:
        return {
            "IPF.Appointment": "CalendarFolder",
            "IPF.Contact": "ContactsFolder",
            "IPF.Task": "TasksFolder",
        }.get(self.folder_class, "Folder")

    @property
    def kind(self) -> str:
        if self.mail is not None:
            return "mail"
        if self.calendar is not None:
            return "calendar"
        if self.task_list is not None:
            return "tasks"
        return "virtual"

    def walk(self) -> Iterator[EwsFolder]:
        """This folder's descendants, depth first, parents before children."""
        for folder in self.children:
            yield folder
            yield from folder.walk()


class MailboxView:
    """The EWS folder tree of one user's mailbox (rebuilt per request; it is small)."""

    def __init__(self, state: SimState, tenant: Tenant, user: User) -> None:
        self.state = state
        self.tenant = tenant
        self.user = user
        self.key = mailbox_key(user.id)
        self.mail: MailStore = MailBackend(state).store(tenant, user)
        self.calendars: CalendarStore = CalendarBackend(state).store(tenant, user)
        self.todo: TodoStore = TodoBackend(state).store(tenant, user)
        self.root = self._build()
        self.by_id: dict[str, EwsFolder] = {f.id: f for f in [self.root, *self.root.walk()]}
        self.by_name: dict[str, EwsFolder] = {
            f.distinguished: f for f in self.by_id.values() if f.distinguished
        }

    # -- the tree --------------------------------------------------------------------------
    def _build(self) -> EwsFolder:
        root = EwsFolder(
            id=item_id("f", self.key, _VIRTUAL_ROOT, generation=1),
            change_key=_folder_change_key(0, _VIRTUAL_ROOT, 1),
            display_name="",
            folder_class="",
            parent=None,
            distinguished="root",
        )
        top = self._mail_folder(self.mail.root, root)
        root.children.append(top)
        for calendar in self.calendars.calendars.values():
            top.children.append(
                EwsFolder(
                    id=calendar.id,
                    change_key=change_key(calendar.id, calendar.version),
                    display_name=calendar.name,
                    folder_class="IPF.Appointment",
                    parent=top,
                    distinguished="calendar" if calendar.is_default else None,
                    calendar=calendar,
                    total=sum(
                        1
                        for e in self.calendars.events.values()
                        if e.calendar_id == calendar.id and e.type != "exception"
                    ),
                )
            )
        top.children.append(
            EwsFolder(
                id=item_id("f", self.key, _VIRTUAL_CONTACTS, generation=1),
                change_key=_folder_change_key(0, _VIRTUAL_CONTACTS, 1),
                display_name="Contacts",
                folder_class="IPF.Contact",
                parent=top,
                distinguished="contacts",
            )
        )
        tasks = self.todo.default_list
        top.children.append(
            EwsFolder(
                id=tasks.id,
                change_key=change_key(tasks.id, tasks.version),
                display_name=tasks.display_name,
                folder_class="IPF.Task",
                parent=top,
                distinguished="tasks",
                task_list=tasks,
                total=len(self.todo.tasks.get(tasks.id, {})),
            )
        )
        return root

    def _mail_folder(self, folder: MailFolder, parent: EwsFolder) -> EwsFolder:
        made = EwsFolder(
            id=folder.id,
            change_key=_folder_change_key(1, folder.number, folder.changed_seq),
            display_name=folder.display_name,
            folder_class="IPF.Note",
            parent=parent,
            distinguished=_MAIL_DISTINGUISHED.get(folder.well_known or ""),
            mail=folder,
            total=len(folder.messages),
            unread=folder.unread,
        )
        for sub in folder.children:
            if not sub.hidden:
                made.children.append(self._mail_folder(sub, made))
        return made

    # -- lookups ---------------------------------------------------------------------------
    def folder(self, folder_id: str) -> EwsFolder | None:
        return self.by_id.get(folder_id)

    def distinguished(self, name: str) -> EwsFolder | None:
        return self.by_name.get(name.lower())

    def mail_folder_view(self, folder: MailFolder) -> EwsFolder | None:
        return self.by_id.get(folder.id)

    def calendar_folder_view(self, calendar_id: str) -> EwsFolder | None:
        return self.by_id.get(calendar_id)
