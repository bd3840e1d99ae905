"""One EWS request in progress: who acts, in which mailbox, and how ids resolve.

``EwsCall`` is built by the endpoint once the caller is authenticated and the SOAP
header is read. Every operation resolves folders and items through it, so the access
rules live in one place:

- The acting account is the impersonated user under ``ExchangeImpersonation`` (checked
  against the ``ApplicationImpersonation`` role when the call is built), else the caller.
- The acting account reaches its own mailbox, and another mailbox only with a
  ``FullAccess`` (or, for reads, ``ReadPermission``) mailbox permission on it → else
  ``ErrorAccessDenied``.
- A mailbox must be on this server (see ``ExchangeOrganization.hosts_mailbox``) → else
  ``ErrorNonExistentMailbox``.

Item ids carry their mailbox for messages (as Exchange's do); calendar items and tasks
are looked up in the acting mailbox first, then in the mailboxes it has rights to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from m365sim.directory.models import Tenant, User
from m365sim.ews import exceptions as errors
from m365sim.ews.auth import Principal
from m365sim.ews.mailbox import EwsFolder, MailboxView, todo_task_id
from m365sim.ews.models import ExchangeOrganization
from m365sim.ews.soap import child, t, text_of
from m365sim.exceptions import GraphError
from m365sim.graph.calendar.models import Event
from m365sim.graph.ids import mailbox_key, parse_item_id
from m365sim.graph.mail.models import Message
from m365sim.graph.policies.models import policies_for
from m365sim.graph.todo.models import TodoTask
from m365sim.state import SimState

__all__ = ["EwsCall", "ResolvedItem"]


@dataclass
class ResolvedItem:
    view: MailboxView
    message: Message | None = None
    event: Event | None = None
    task: TodoTask | None = None

    @property
    def kind(self) -> str:
        if self.message is not None:
            return "message"
        if self.event is not None:
            return "event"
        return "task"


@dataclass
class EwsCall:
    state: SimState
    principal: Principal
    acting: User
    impersonating: bool
    zone_name: str = "UTC"
    requested_version: str = "Exchange2007"
    _views: dict[str, MailboxView] = field(default_factory=dict)
    _keys: dict[str, User] | None = None

    @property
    def tenant(self) -> Tenant:
        return self.principal.tenant

    @property
    def organization(self) -> ExchangeOrganization:
        return self.principal.organization

    # -- mailboxes ---------------------------------------------------------------------------
    def kind_of(self, address: str) -> str:
        """``MailboxType`` of an address: a mailbox of this organization, or a one-off."""
        return "Mailbox" if self.tenant.find_user(address) is not None else "OneOff"

    def view_of(self, user: User, *, write: bool = False) -> MailboxView:
        if not self.organization.hosts_mailbox(user):
            raise errors.ErrorNonExistentMailbox()
        if user.id != self.acting.id and not policies_for(self.state, self.tenant).shared_access(
            user, self.acting, write
        ):
            raise errors.ErrorAccessDenied()
        view = self._views.get(user.id)
        if view is None:
            view = self._views[user.id] = MailboxView(self.state, self.tenant, user)
        return view

    def mailbox(self, address: str | None, *, write: bool = False) -> MailboxView:
        if not address:
            return self.view_of(self.acting, write=write)
        user = self.tenant.find_user(address)
        if user is None:
            raise errors.ErrorNonExistentMailbox()
        return self.view_of(user, write=write)

    def refresh(self, view: MailboxView) -> MailboxView:
        """A rebuilt view (after a write changed the folder tree or counts)."""
        self._views.pop(view.user.id, None)
        return self.view_of(view.user)

    def _user_by_key(self, key: str) -> User | None:
        if self._keys is None:
            self._keys = {mailbox_key(u.id): u for u in self.tenant.users.values()}
        return self._keys.get(key)

    def _candidate_views(self, write: bool) -> list[MailboxView]:
        views = [self.view_of(self.acting, write=write)]
        for permission in policies_for(self.state, self.tenant).mailbox_permissions:
            if permission.user_id != self.acting.id:
                continue
            owner = self.tenant.users.get(permission.mailbox_id)
            if owner is not None and self.organization.hosts_mailbox(owner):
                try:
                    views.append(self.view_of(owner, write=write))
                except errors.ResponseError:
                    continue
        return views

    # -- folders -----------------------------------------------------------------------------
    def folder(self, element: Any, *, write: bool = False) -> tuple[MailboxView, EwsFolder]:
        """A ``t:FolderId`` or ``t:DistinguishedFolderId`` (with its optional ``t:Mailbox``)."""
        if element.tag == t("DistinguishedFolderId"):
            address = text_of(child(element, t("Mailbox")), t("EmailAddress"))
            view = self.mailbox(address, write=write)
            found = view.distinguished(str(element.get("Id") or ""))
            if found is None:
                raise errors.ErrorFolderNotFound()
            return view, found
        folder_id = str(element.get("Id") or "")
        if not folder_id:
            raise errors.ErrorInvalidIdMalformed()
        parsed = parse_item_id(folder_id)
        if parsed is not None:
            owner = self._user_by_key(parsed.mailbox)
            if owner is None:
                raise errors.ErrorFolderNotFound()
            view = self.view_of(owner, write=write)
            found = view.folder(folder_id)
            if found is None:
                raise errors.ErrorFolderNotFound()
            return view, found
        if not folder_id.startswith("AA"):
            raise errors.ErrorInvalidIdMalformed()
        for view in self._candidate_views(write):
            found = view.folder(folder_id)
            if found is not None:
                return view, found
        raise errors.ErrorFolderNotFound()

    # -- items -------------------------------------------------------------------------------
    def item(self, item_id: str, *, write: bool = False) -> ResolvedItem:
        """A message, calendar item (occurrences too) or task by its EWS id."""
        if not item_id:
            raise errors.ErrorInvalidIdMalformed()
        parsed = parse_item_id(item_id)
        if parsed is not None:
            if parsed.kind != "m":
                raise errors.ErrorItemNotFound()
            owner = self._user_by_key(parsed.mailbox)
            if owner is None:
                raise errors.ErrorItemNotFound()
            view = self.view_of(owner, write=write)
            try:
                return ResolvedItem(view, message=view.mail.message(item_id))
            except GraphError as exc:
                raise errors.ErrorItemNotFound() from exc
        if not item_id.startswith("AA"):
            raise errors.ErrorInvalidIdMalformed()
        for view in self._candidate_views(write):
            try:
                return ResolvedItem(view, event=view.calendars.get(item_id))
            except GraphError:
                pass
            for tasks in view.todo.tasks.values():
                found = tasks.get(todo_task_id(item_id))
                if found is not None:
                    return ResolvedItem(view, task=found)
        raise errors.ErrorItemNotFound()
