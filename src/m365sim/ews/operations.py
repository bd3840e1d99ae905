"""The EWS operations m365sim serves: parse the request element, act, build the response.

Each handler takes the ``EwsCall`` and the operation's element from the SOAP body and
returns the ``m:<Operation>Response`` element. Per-item failures become that item's
``ResponseMessage`` with ``ResponseClass="Error"`` (the other items still succeed, as in
Exchange); request-wide failures are ``SoapFault`` exceptions the endpoint renders.
Writes go through the Graph backends (``MailBackend``, ``CalendarBackend``,
``TodoBackend``), so EWS and Graph share one set of rules and one change feed.

``OPERATIONS`` maps each operation name to its handler and a one-line description; the
coverage page is generated from it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from m365sim.ews import exceptions as errors
from m365sim.ews.calls import EwsCall, ResolvedItem
from m365sim.ews.extended import extended_properties
from m365sim.ews.items import (
    ItemShape,
    calendar_fields_from_xml,
    cleared_calendar_field,
    message_changes_from_xml,
    parse_shape,
    render_event,
    render_message,
    render_task,
    settle_zones,
    task_fields_from_xml,
)
from m365sim.ews.mailbox import EwsFolder, MailboxView
from m365sim.ews.restrictions import matches
from m365sim.ews.soap import (
    MESSAGES,
    TYPES,
    XSI,
    child,
    children,
    element,
    m,
    sub,
    t,
    text_of,
)
from m365sim.ews.sync import hierarchy_changes, item_changes
from m365sim.ews.tz import parse_serializable_zone, render_definition, serializable_zone
from m365sim.exceptions import GraphError
from m365sim.graph.calendar.backend import CalendarBackend
from m365sim.graph.calendar.exceptions import EventNotFound
from m365sim.graph.calendar.models import Event
from m365sim.graph.ids import compact_item_id, expand_item_id, parse_item_id
from m365sim.graph.mail.backend import MailBackend
from m365sim.graph.mail.models import Message
from m365sim.graph.policies.models import policies_for
from m365sim.graph.timezones import WINDOWS_TO_IANA, UnknownTimeZone, windows_name
from m365sim.graph.todo.backend import TodoBackend

__all__ = ["OPERATIONS", "Operation", "error_response", "graph_error"]

Handler = Callable[[EwsCall, Any], Any]


class Operation:
    def __init__(self, name: str, handler: Handler, summary: str) -> None:
        self.name = name
        self.handler = handler
        self.summary = summary


# -- response helpers --------------------------------------------------------------------------


def _response(name: str) -> tuple[Any, Any]:
    root = element(m(f"{name}Response"), nsmap={"m": MESSAGES, "t": TYPES})
    return root, sub(root, m("ResponseMessages"))


def _message(parent: Any, name: str, error: errors.ResponseError | None = None) -> Any:
    if error is None:
        msg = sub(parent, m(f"{name}ResponseMessage"), ResponseClass="Success")
        sub(msg, m("ResponseCode"), "NoError")
        return msg
    msg = sub(parent, m(f"{name}ResponseMessage"), ResponseClass="Error")
    sub(msg, m("MessageText"), error.detail)
    sub(msg, m("ResponseCode"), error.code)
    sub(msg, m("DescriptiveLinkKey"), 0)
    return msg


def error_response(name: str, error: errors.ResponseError) -> Any:
    """``<name>Response`` with one error message: a refusal of the whole request."""
    root, messages = _response(name)
    msg = _message(messages, name, error)
    if name in ("SyncFolderItems", "SyncFolderHierarchy"):
        # Exchange keeps the sync elements in a failed sync's message; clients read them.
        sub(msg, m("SyncState"))
        last = (
            "IncludesLastItemInRange" if name == "SyncFolderItems" else "IncludesLastFolderInRange"
        )
        sub(msg, m(last), True)
    return root


def graph_error(exc: GraphError) -> errors.ResponseError:
    """A Graph backend's refusal, as the EWS error Exchange gives for the same cause."""
    if isinstance(exc, EventNotFound) or exc.status == 404:
        return errors.ErrorItemNotFound()
    text = exc.detail
    if "end time" in text.lower() and "before" in text.lower():
        return errors.ErrorCalendarEndDateIsEarlierThanStartDate()
    return errors.ErrorInvalidRequest(text)


def _folder_elements(parent: Any) -> list[Any]:
    return [c for c in children(parent) if c.tag in (t("FolderId"), t("DistinguishedFolderId"))]


# -- folders -----------------------------------------------------------------------------------

FOLDER_DEFAULT = frozenset(
    {"folder:DisplayName", "folder:TotalCount", "folder:ChildFolderCount", "folder:UnreadCount"}
)


def _folder_shape(shape_el: Any) -> tuple[str, set[str]]:
    base = text_of(shape_el, t("BaseShape"), "IdOnly") or "IdOnly"
    wanted = {
        str(p.get("FieldURI"))
        for p in children(child(shape_el, t("AdditionalProperties")), t("FieldURI"))
        if p.get("FieldURI")
    }
    return base, wanted


def render_folder(parent: Any, folder: EwsFolder, shape: tuple[str, set[str]]) -> Any:
    base, wanted = shape

    def want(uri: str) -> bool:
        return (
            uri in wanted
            or base == "AllProperties"
            or (base == "Default" and uri in FOLDER_DEFAULT)
        )

    node = sub(parent, t(folder.element_name))
    sub(node, t("FolderId"), Id=folder.id, ChangeKey=folder.change_key)
    if want("folder:ParentFolderId") and folder.parent is not None:
        sub(node, t("ParentFolderId"), Id=folder.parent.id, ChangeKey=folder.parent.change_key)
    if want("folder:FolderClass") and folder.folder_class:
        sub(node, t("FolderClass"), folder.folder_class)
    if want("folder:DisplayName"):
        sub(node, t("DisplayName"), folder.display_name)
    if want("folder:TotalCount"):
        sub(node, t("TotalCount"), folder.total)
    if want("folder:ChildFolderCount"):
        sub(node, t("ChildFolderCount"), len(folder.children))
    if want("folder:EffectiveRights"):
        rights = sub(node, t("EffectiveRights"))
        for name, value in (
            ("CreateAssociated", True),
            ("CreateContents", True),
            ("CreateHierarchy", True),
            ("Delete", folder.distinguished is None),
            ("Modify", True),
            ("Read", True),
            ("ViewPrivateItems", True),
        ):
            sub(rights, t(name), value)
    if "folder:DistinguishedFolderId" in wanted and folder.distinguished:
        sub(node, t("DistinguishedFolderId"), folder.distinguished)
    if want("folder:UnreadCount") and folder.element_name in ("Folder", "TasksFolder"):
        sub(node, t("UnreadCount"), folder.unread)
    return node


def get_folder(call: EwsCall, request: Any) -> Any:
    shape = _folder_shape(child(request, m("FolderShape")))
    root, messages = _response("GetFolder")
    for ref in _folder_elements(child(request, m("FolderIds"))):
        try:
            _view, folder = call.folder(ref)
        except errors.ResponseError as exc:
            msg = _message(messages, "GetFolder", exc)
            sub(msg, m("Folders"))
            continue
        msg = _message(messages, "GetFolder")
        render_folder(sub(msg, m("Folders")), folder, shape)
    return root


def find_folder(call: EwsCall, request: Any) -> Any:
    shape = _folder_shape(child(request, m("FolderShape")))
    deep = (request.get("Traversal") or "Shallow") == "Deep"
    view_el = child(request, m("IndexedPageFolderView"))
    root, messages = _response("FindFolder")
    for ref in _folder_elements(child(request, m("ParentFolderIds"))):
        try:
            _view, parent = call.folder(ref)
        except errors.ResponseError as exc:
            _message(messages, "FindFolder", exc)
            continue
        found = list(parent.walk()) if deep else list(parent.children)
        offset, limit = _paging(view_el, len(found))
        page = found[offset : offset + limit] if limit else found[offset:]
        msg = _message(messages, "FindFolder")
        end = offset + len(page)
        holder = sub(
            msg,
            m("RootFolder"),
            IndexedPagingOffset=end,
            TotalItemsInView=len(found),
            IncludesLastItemInRange=end >= len(found),
        )
        folders = sub(holder, t("Folders"))
        for folder in page:
            render_folder(folders, folder, shape)
    return root


def _paging(view_el: Any, total: int) -> tuple[int, int]:
    """(offset, max entries) of an IndexedPage*View; BasePoint End counts from the end."""
    if view_el is None:
        return 0, 0
    limit = int(view_el.get("MaxEntriesReturned") or 0)
    offset = int(view_el.get("Offset") or 0)
    if (view_el.get("BasePoint") or "Beginning") == "End":
        offset = max(0, total - offset - (limit or total))
    return max(0, offset), max(0, limit)


def create_folder(call: EwsCall, request: Any) -> Any:
    """Mail folders under mail folders; calendars (``IPF.Appointment``) beside Calendar."""
    root, messages = _response("CreateFolder")
    parents = _folder_elements(child(request, m("ParentFolderId")))
    for spec in children(child(request, m("Folders"))):
        name = text_of(spec, t("DisplayName"), "") or ""
        folder_class = text_of(spec, t("FolderClass")) or (
            "IPF.Appointment" if spec.tag == t("CalendarFolder") else "IPF.Note"
        )
        try:
            if not parents:
                raise errors.ErrorInvalidRequest("ParentFolderId is required.")
            view, parent = call.folder(parents[0], write=True)
            if folder_class == "IPF.Appointment":
                created_id = view.calendars.add_calendar(name).id
            elif folder_class in ("IPF.Note", "") and parent.mail is not None:
                created_id = view.mail.create_folder(parent.mail, name).id
            else:
                raise errors.ErrorInvalidRequest(
                    f"m365sim's Exchange creates mail folders and calendars, not {folder_class}."
                )
        except GraphError as exc:
            error: errors.ResponseError = (
                ErrorFolderExists() if "exists" in exc.detail.lower() else graph_error(exc)
            )
            msg = _message(messages, "CreateFolder", error)
            sub(msg, m("Folders"))
            continue
        except errors.ResponseError as exc:
            msg = _message(messages, "CreateFolder", exc)
            sub(msg, m("Folders"))
            continue
        fresh = call.refresh(view).folder(created_id)
        msg = _message(messages, "CreateFolder")
        holder = sub(msg, m("Folders"))
        if fresh is not None:
            render_folder(holder, fresh, ("IdOnly", set()))
    return root


class ErrorFolderExists(errors.ResponseError):
    code = "ErrorFolderExists"
    message = "A folder with the specified name already exists."


def sync_folder_hierarchy(call: EwsCall, request: Any) -> Any:
    shape = _folder_shape(child(request, m("FolderShape")))
    refs = _folder_elements(child(request, m("SyncFolderId")))
    if refs:
        view, start = call.folder(refs[0])
    else:
        view = call.mailbox(None)
        start = view.root
    changes, state = hierarchy_changes(call.state, view, start, text_of(request, m("SyncState")))
    root, messages = _response("SyncFolderHierarchy")
    msg = _message(messages, "SyncFolderHierarchy")
    sub(msg, m("SyncState"), state)
    sub(msg, m("IncludesLastFolderInRange"), True)
    holder = sub(msg, m("Changes"))
    for kind, folder in changes:
        node = sub(holder, t(kind))
        if isinstance(folder, EwsFolder):
            render_folder(node, folder, shape)
        else:
            sub(node, t("FolderId"), Id=folder)
    return root


# -- items: reading --------------------------------------------------------------------------


def _render(parent: Any, call: EwsCall, found: ResolvedItem, shape: ItemShape) -> Any:
    if found.message is not None:
        return render_message(parent, found.message, found.view, shape, kind_of=call.kind_of)
    if found.event is not None:
        return render_event(parent, found.event, found.view, shape, kind_of=call.kind_of)
    assert found.task is not None
    return render_task(parent, found.task, found.view, shape)


def _resolve_id(call: EwsCall, ref: Any, *, write: bool = False) -> ResolvedItem:
    """An ``ItemId``, ``OccurrenceItemId`` (master + 1-based index) or ``RecurringMasterItemId``."""
    if ref.tag == t("OccurrenceItemId"):
        master = call.item(str(ref.get("RecurringMasterId") or ""), write=write)
        if master.event is None or master.event.recurrence is None:
            raise errors.ErrorItemNotFound()
        index = int(ref.get("InstanceIndex") or 0)
        if index < 1:
            raise errors.ErrorInvalidRequest("InstanceIndex must be 1 or more.")
        store = master.view.calendars
        far = datetime(4500, 1, 1, tzinfo=UTC)
        for position, (start, _end) in enumerate(
            store.expand_schedule(master.event.schedule, datetime(1900, 1, 1, tzinfo=UTC), far),
            start=1,
        ):
            if position == index:
                occurrence_key = store.materialise(master.event, start).id
                try:
                    return ResolvedItem(master.view, event=store.get(occurrence_key))
                except GraphError as exc:
                    raise errors.ErrorItemNotFound() from exc
            if position > index:
                break
        raise errors.ErrorItemNotFound()
    if ref.tag == t("RecurringMasterItemId"):
        occurrence = call.item(str(ref.get("OccurrenceId") or ""), write=write)
        if occurrence.event is None or not occurrence.event.series_master_id:
            raise errors.ErrorItemNotFound()
        return call.item(occurrence.event.series_master_id, write=write)
    return call.item(str(ref.get("Id") or ""), write=write)


def get_item(call: EwsCall, request: Any) -> Any:
    shape = parse_shape(child(request, m("ItemShape")))
    root, messages = _response("GetItem")
    for ref in children(child(request, m("ItemIds"))):
        try:
            found = _resolve_id(call, ref)
        except errors.ResponseError as exc:
            msg = _message(messages, "GetItem", exc)
            sub(msg, m("Items"))
            continue
        msg = _message(messages, "GetItem")
        _render(sub(msg, m("Items")), call, found, shape)
    return root


def _sort_key(uri: str) -> Callable[[Any], Any]:
    def key(item: Any) -> Any:
        if isinstance(item, Message):
            return {
                "item:Subject": item.subject.lower(),
                "item:DateTimeCreated": item.created,
                "item:DateTimeSent": item.sent or item.received,
                "item:LastModifiedTime": item.modified,
                "item:Importance": item.importance,
            }.get(uri, item.received)
        if isinstance(item, Event):
            return {
                "item:Subject": item.subject.lower(),
                "calendar:End": item.end,
                "item:DateTimeCreated": item.created,
            }.get(uri, item.start)
        return getattr(item, "title", "").lower() if uri == "item:Subject" else item.created

    return key


def find_item(call: EwsCall, request: Any) -> Any:
    shape = parse_shape(child(request, m("ItemShape")), for_find=True)
    calendar_view = child(request, m("CalendarView"))
    paged_view = child(request, m("IndexedPageItemView"))
    restriction = child(request, m("Restriction"))
    order = child(request, m("SortOrder"))
    root, messages = _response("FindItem")
    for ref in _folder_elements(child(request, m("ParentFolderIds"))):
        try:
            view, folder = call.folder(ref)
            items = _folder_items(view, folder, calendar_view)
            if restriction is not None:
                condition = children(restriction)
                stamps = extended_properties(call.state).value
                items = [i for i in items if all(matches(c, i, stamps) for c in condition)]
            if calendar_view is None:
                items = _sorted(items, order)
        except errors.ResponseError as exc:
            _message(messages, "FindItem", exc)
            continue
        msg = _message(messages, "FindItem")
        if calendar_view is not None:
            limit = int(calendar_view.get("MaxEntriesReturned") or 0)
            page = items[:limit] if limit else items
            holder = sub(
                msg,
                m("RootFolder"),
                TotalItemsInView=len(items),
                IncludesLastItemInRange=len(page) == len(items),
            )
        else:
            offset, limit = _paging(paged_view, len(items))
            page = items[offset : offset + limit] if limit else items[offset:]
            end = offset + len(page)
            holder = sub(
                msg,
                m("RootFolder"),
                IndexedPagingOffset=end,
                TotalItemsInView=len(items),
                IncludesLastItemInRange=end >= len(items),
            )
        container = sub(holder, t("Items"))
        for item in page:
            _render(container, call, _wrap(view, item), shape)
    return root


def _wrap(view: MailboxView, item: Any) -> ResolvedItem:
    if isinstance(item, Message):
        return ResolvedItem(view, message=item)
    if isinstance(item, Event):
        return ResolvedItem(view, event=item)
    return ResolvedItem(view, task=item)


def _folder_items(view: MailboxView, folder: EwsFolder, calendar_view: Any) -> list[Any]:
    if folder.mail is not None:
        if calendar_view is not None:
            raise errors.ErrorInvalidRequest("CalendarView can only be used with calendar folders.")
        return list(folder.mail.messages.values())
    if folder.calendar is not None:
        store = view.calendars
        if calendar_view is None:
            return store.list_events(folder.calendar.id)
        try:
            start = _instant(str(calendar_view.get("StartDate")))
            end = _instant(str(calendar_view.get("EndDate")))
        except ValueError as exc:
            raise errors.ErrorInvalidRequest(
                "CalendarView needs a StartDate and an EndDate."
            ) from exc
        if end < start:
            raise errors.ErrorCalendarEndDateIsEarlierThanStartDate()
        if end - start > timedelta(days=2 * 366):
            raise errors.ErrorInvalidRequest(
                "The CalendarView range can't be longer than two years."
            )
        return store.view(folder.calendar.id, start, end)
    if folder.task_list is not None:
        return list(view.todo.tasks.get(folder.task_list.id, {}).values())
    return []


def _instant(text: str) -> datetime:
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    value = datetime.fromisoformat(raw)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _sorted(items: list[Any], order: Any) -> list[Any]:
    orders = children(order, t("FieldOrder")) if order is not None else []
    if not orders:
        if items and isinstance(items[0], Message):
            return sorted(items, key=lambda i: (i.received, i.number), reverse=True)
        return items
    for field_order in reversed(orders):
        uri_el = child(field_order, t("FieldURI"))
        uri = str(uri_el.get("FieldURI")) if uri_el is not None else ""
        items = sorted(
            items, key=_sort_key(uri), reverse=(field_order.get("Order") or "") == "Descending"
        )
    return items


def sync_folder_items(call: EwsCall, request: Any) -> Any:
    shape = parse_shape(child(request, m("ItemShape")))
    refs = _folder_elements(child(request, m("SyncFolderId")))
    root, messages = _response("SyncFolderItems")
    if not refs:
        raise errors.ErrorSchemaValidation(
            "The request failed schema validation: SyncFolderId is required."
        )
    ignore = {str(i.get("Id")) for i in children(child(request, m("Ignore")), t("ItemId"))}
    try:
        view, folder = call.folder(refs[0])
        page = item_changes(
            call.state,
            view,
            folder,
            text_of(request, m("SyncState")),
            int(text_of(request, m("MaxChangesReturned"), "512") or "512"),
            ignore,
        )
    except errors.ResponseError as exc:
        return error_response("SyncFolderItems", exc)
    msg = _message(messages, "SyncFolderItems")
    sub(msg, m("SyncState"), page.sync_state)
    sub(msg, m("IncludesLastItemInRange"), page.includes_last)
    holder = sub(msg, m("Changes"))
    for change in page.changes:
        node = sub(holder, t(change.kind))
        if change.kind == "Delete":
            sub(node, t("ItemId"), Id=change.item_id)
        elif change.kind == "ReadFlagChange":
            assert isinstance(change.item, Message)
            sub(node, t("ItemId"), Id=change.item_id, ChangeKey=change.item.change_key())
            sub(node, t("IsRead"), change.is_read)
        else:
            _render(node, call, _wrap(view, change.item), shape)
    return root


# -- items: writing ----------------------------------------------------------------------------

SEND_CHOICES = (
    "SendToNone",
    "SendOnlyToAll",
    "SendOnlyToChanged",
    "SendToAllAndSaveCopy",
    "SendToChangedAndSaveCopy",
)


def _sends(value: str | None, attribute: str) -> bool:
    if value is None:
        raise errors.ErrorSendMeetingInvitationsRequired(
            f"{attribute} attribute is required for calendar items."
        )
    if value not in SEND_CHOICES:
        raise errors.ErrorSchemaValidation(
            f"The request failed schema validation: The '{attribute}' attribute is invalid - "
            f"The value '{value}' is invalid according to its datatype."
        )
    return value != "SendToNone"


def create_item(call: EwsCall, request: Any) -> Any:
    root, messages = _response("CreateItem")
    target = _folder_elements(child(request, m("SavedItemFolderId")))
    for item in children(child(request, m("Items"))):
        name = item.tag.split("}")[-1]
        found: ResolvedItem | None
        try:
            if target:
                view, folder = call.folder(target[0], write=True)
            else:
                view, folder = call.mailbox(None, write=True), None
            if name == "CalendarItem":
                created: Any = _create_event(call, view, folder, item, request)
                extended_properties(call.state).save(created.id, item)
                found = ResolvedItem(call.refresh(view), event=created)
            elif name == "Message":
                found = _create_message(call, view, folder, item, request)
            elif name == "Task":
                if folder is not None and folder.task_list is None:
                    raise errors.ErrorInvalidRequest("Tasks can only be created in a tasks folder.")
                list_id = (
                    folder.task_list.id
                    if folder and folder.task_list
                    else view.todo.default_list.id
                )
                task = TodoBackend(call.state).create_task(
                    view.tenant,
                    view.user,
                    list_id,
                    task_fields_from_xml(item, default_zone=call.zone_name),
                )
                extended_properties(call.state).save(task.id, item)
                found = ResolvedItem(view, task=task)
            else:
                raise errors.ErrorInvalidRequest(
                    f"m365sim's Exchange creates calendar items, messages and tasks, not {name}."
                )
        except GraphError as exc:
            msg = _message(messages, "CreateItem", graph_error(exc))
            sub(msg, m("Items"))
            continue
        except errors.ResponseError as exc:
            msg = _message(messages, "CreateItem", exc)
            sub(msg, m("Items"))
            continue
        msg = _message(messages, "CreateItem")
        holder = sub(msg, m("Items"))
        if found is not None:
            _render(holder, call, found, ItemShape())
    return root


def _create_event(
    call: EwsCall, view: MailboxView, folder: EwsFolder | None, item: Any, request: Any
) -> Event:
    send = _sends(request.get("SendMeetingInvitations"), "SendMeetingInvitations")
    if folder is not None and folder.calendar is None:
        raise errors.ErrorInvalidRequest("Calendar items can only be created in a calendar folder.")
    body = calendar_fields_from_xml(item, default_zone=call.zone_name)
    if "start" not in body or "end" not in body:
        raise errors.ErrorInvalidRequest("A calendar item needs a Start and an End.")
    return CalendarBackend(call.state).create_event(
        view.tenant,
        view.user,
        body,
        calendar_id=folder.calendar.id if folder and folder.calendar else None,
        send_invitations=send,
    )


def _create_message(
    call: EwsCall, view: MailboxView, folder: EwsFolder | None, item: Any, request: Any
) -> ResolvedItem | None:
    disposition = request.get("MessageDisposition") or ""
    if disposition not in ("SaveOnly", "SendOnly", "SendAndSaveCopy"):
        raise errors.ErrorInvalidRequest("MessageDisposition is required for messages.")
    fields = message_changes_from_xml(item)
    backend = MailBackend(call.state)
    if disposition == "SaveOnly":
        target = folder.mail if folder and folder.mail else view.mail.well_known["drafts"]
        content = fields.get("body") or {}

        def addresses(key: str) -> list[tuple[str, str]]:
            return [
                (str(r["emailAddress"]["name"]), str(r["emailAddress"]["address"]))
                for r in fields.get(key) or []
            ]

        message = view.mail.add_message(
            target,
            subject=str(fields.get("subject") or ""),
            body=str(content.get("content") or ""),
            body_type=str(content.get("contentType") or "text"),
            sender=view.mail.owner,
            to=addresses("toRecipients"),
            cc=addresses("ccRecipients"),
            bcc=addresses("bccRecipients"),
            is_draft=True,
            is_read=True,
            categories=[str(c) for c in fields.get("categories") or []],
        )
        return ResolvedItem(view, message=message)
    # Exchange answers a sent message's CreateItem with no item (it is in Sent Items, if kept).
    backend.send(view.mail, fields, save_to_sent_items=disposition == "SendAndSaveCopy")
    return None


def update_item(call: EwsCall, request: Any) -> Any:
    root, messages = _response("UpdateItem")
    resolution = request.get("ConflictResolution") or "AutoResolve"
    invitations = request.get("SendMeetingInvitationsOrCancellations")
    for change in children(child(request, m("ItemChanges")), t("ItemChange")):
        ref = next(
            (
                c
                for c in children(change)
                if c.tag in (t("ItemId"), t("OccurrenceItemId"), t("RecurringMasterItemId"))
            ),
            None,
        )
        try:
            if ref is None:
                raise errors.ErrorInvalidIdMalformed()
            found = _resolve_id(call, ref, write=True)
            _check_change_key(found, ref.get("ChangeKey"), resolution)
            updates = children(child(change, t("Updates")))
            if found.event is not None:
                updated_event = _update_event(call, found, updates, invitations)
                result = ResolvedItem(call.refresh(found.view), event=updated_event)
            elif found.message is not None:
                _update_message(call, found, updates)
                result = found
            else:
                assert found.task is not None
                body: dict[str, Any] = {}
                for update in updates:
                    item = next((c for c in children(update) if c.tag == t("Task")), None)
                    if item is not None:
                        body.update(task_fields_from_xml(item, default_zone=call.zone_name))
                task = TodoBackend(call.state).update_task(
                    found.view.tenant, found.view.user, found.task.list_id, found.task.id, body
                )
                result = ResolvedItem(found.view, task=task)
        except GraphError as exc:
            msg = _message(messages, "UpdateItem", graph_error(exc))
            sub(msg, m("Items"))
            continue
        except errors.ResponseError as exc:
            msg = _message(messages, "UpdateItem", exc)
            sub(msg, m("Items"))
            continue
        msg = _message(messages, "UpdateItem")
        _render(sub(msg, m("Items")), call, result, ItemShape())
        conflicts = sub(msg, m("ConflictResults"))
        sub(conflicts, t("Count"), 0)
    return root


def _current_change_key(found: ResolvedItem) -> str:
    from m365sim.ews.items import event_change_key
    from m365sim.graph.calendar.formats import change_key

    if found.message is not None:
        return found.message.change_key()
    if found.event is not None:
        return event_change_key(found.event)
    assert found.task is not None
    return change_key(found.task.id, found.task.version)


def _check_change_key(found: ResolvedItem, given: str | None, resolution: str) -> None:
    if given and resolution == "NeverOverwrite" and given != _current_change_key(found):
        raise errors.ErrorIrresolvableConflict()


def _update_event(
    call: EwsCall, found: ResolvedItem, updates: list[Any], invitations: str | None
) -> Event:
    event = found.event
    assert event is not None
    send = _sends(invitations, "SendMeetingInvitationsOrCancellations")
    body: dict[str, Any] = {}
    for update in updates:
        name = update.tag.split("}")[-1]
        uri_el = child(update, t("FieldURI"))
        uri = str(uri_el.get("FieldURI")) if uri_el is not None else ""
        if name in ("SetItemField", "AppendToItemField"):
            item = next((c for c in children(update) if c.tag == t("CalendarItem")), None)
            if item is None:
                raise errors.ErrorInvalidRequest("SetItemField needs a CalendarItem.")
            body.update(calendar_fields_from_xml(item, default_zone=call.zone_name, current=event))
        elif name == "DeleteItemField":
            if uri in (
                "calendar:RequiredAttendees",
                "calendar:OptionalAttendees",
                "calendar:Resources",
            ):
                kind = {
                    "calendar:RequiredAttendees": "required",
                    "calendar:OptionalAttendees": "optional",
                }.get(uri, "resource")
                body["attendees"] = [a.as_json() for a in event.attendees if a.type != kind]
            else:
                body.update(cleared_calendar_field(uri))
    return CalendarBackend(call.state).update_event(
        found.view.tenant,
        found.view.user,
        event.id,
        settle_zones(body, event),
        send_invitations=send,
    )


def _update_message(call: EwsCall, found: ResolvedItem, updates: list[Any]) -> None:
    message = found.message
    assert message is not None
    changes: dict[str, Any] = {}
    for update in updates:
        name = update.tag.split("}")[-1]
        uri_el = child(update, t("FieldURI"))
        uri = str(uri_el.get("FieldURI")) if uri_el is not None else ""
        if name in ("SetItemField", "AppendToItemField"):
            item = next((c for c in children(update) if c.tag == t("Message")), None)
            if item is None:
                raise errors.ErrorInvalidRequest("SetItemField needs a Message.")
            changes.update(message_changes_from_xml(item))
        elif name == "DeleteItemField":
            if uri == "item:Categories":
                changes["categories"] = []
            elif uri == "item:Flag":
                changes["flag"] = {"flagStatus": "notFlagged"}
            else:
                raise errors.ErrorInvalidPropertySet(f"The property '{uri}' can't be deleted.")
    store = found.view.mail
    if {"subject", "body"} & set(changes) and not message.is_draft:
        # Exchange lets the owner edit any item's subject and body; Graph only drafts'.
        message.is_draft = True
        try:
            store.update_message(message, changes)
        finally:
            message.is_draft = False
            message.touch()
        return
    store.update_message(message, changes)


def delete_item(call: EwsCall, request: Any) -> Any:
    root, messages = _response("DeleteItem")
    delete_type = request.get("DeleteType") or "MoveToDeletedItems"
    cancellations = request.get("SendMeetingCancellations")
    for ref in children(child(request, m("ItemIds"))):
        try:
            found = _resolve_id(call, ref, write=True)
            if found.event is not None:
                send = _sends(cancellations, "SendMeetingCancellations")
                CalendarBackend(call.state).delete_event(
                    found.view.tenant, found.view.user, found.event.id, send_invitations=send
                )
            elif found.message is not None:
                store = found.view.mail
                if (
                    delete_type == "MoveToDeletedItems"
                    and found.message.folder is not store.well_known["deleteditems"]
                ):
                    store.move_message(found.message, store.well_known["deleteditems"])
                else:
                    store.delete_message(found.message)
            else:
                assert found.task is not None
                TodoBackend(call.state).delete_task(
                    found.view.tenant, found.view.user, found.task.list_id, found.task.id
                )
        except GraphError as exc:
            _message(messages, "DeleteItem", graph_error(exc))
            continue
        except errors.ResponseError as exc:
            _message(messages, "DeleteItem", exc)
            continue
        _message(messages, "DeleteItem")
    return root


# -- availability ------------------------------------------------------------------------------

FREE_BUSY_DIGIT = {
    "free": 0,
    "tentative": 1,
    "busy": 2,
    "oof": 3,
    "workingElsewhere": 4,
    "unknown": 5,
}
BUSY_TYPE = {
    "free": "Free",
    "tentative": "Tentative",
    "busy": "Busy",
    "oof": "OOF",
    "workingElsewhere": "WorkingElsewhere",
    "unknown": "NoData",
}
_RANK = {"free": 0, "workingElsewhere": 1, "tentative": 2, "busy": 3, "oof": 4, "unknown": 0}


def get_user_availability(call: EwsCall, request: Any) -> Any:
    zone_info = parse_serializable_zone(child(request, t("TimeZone")))
    options = child(request, t("FreeBusyViewOptions"))
    window = child(options, t("TimeWindow"))
    if options is None or window is None:
        raise errors.ErrorSchemaValidation(
            "The request failed schema validation: FreeBusyViewOptions/TimeWindow is required."
        )

    def local(text: str | None) -> datetime:
        value = datetime.fromisoformat((text or "").replace("Z", "+00:00"))
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone_info)
        return value.astimezone(UTC)

    try:
        start = local(text_of(window, t("StartTime")))
        end = local(text_of(window, t("EndTime")))
    except ValueError as exc:
        raise errors.ErrorSchemaValidation(
            "The request failed schema validation: StartTime and EndTime are xs:dateTime."
        ) from exc
    if end <= start:
        raise errors.ErrorInvalidRequest("The EndTime must be after the StartTime.")
    if end - start > timedelta(days=62):
        raise errors.ErrorInvalidRequest("The time window can't be longer than 62 days.")
    interval = int(text_of(options, t("MergedFreeBusyIntervalInMinutes"), "30") or "30")
    requested = text_of(options, t("RequestedView"), "DetailedMerged") or "DetailedMerged"
    root = element(m("GetUserAvailabilityResponse"), nsmap={"m": MESSAGES, "t": TYPES})
    array = sub(root, m("FreeBusyResponseArray"))
    for data in children(child(request, m("MailboxDataArray")), t("MailboxData")):
        address = text_of(child(data, t("Email")), t("Address"), "") or ""
        response = sub(array, m("FreeBusyResponse"))
        user = call.tenant.find_user(address) if address else None
        if user is None or not call.organization.hosts_mailbox(user):
            error = errors.ErrorMailRecipientNotFound(
                f"The e-mail address {address} cannot be found."
            )
            message = sub(response, m("ResponseMessage"), ResponseClass="Error")
            sub(message, m("MessageText"), error.detail)
            sub(message, m("ResponseCode"), error.code)
            sub(message, m("DescriptiveLinkKey"), 0)
            continue
        message = sub(response, m("ResponseMessage"), ResponseClass="Success")
        sub(message, m("ResponseCode"), "NoError")
        _free_busy_view(
            call, sub(response, m("FreeBusyView")), user, start, end, interval, requested, zone_info
        )
    return root


def _free_busy_view(
    call: EwsCall,
    node: Any,
    user: Any,
    start: datetime,
    end: datetime,
    interval: int,
    requested: str,
    zone_info: Any,
) -> None:
    store = CalendarBackend(call.state).store(call.tenant, user)
    events = [e for e in store.view(None, start, end) if not e.is_cancelled]
    sub(node, t("FreeBusyViewType"), requested)
    detailed = requested in ("Detailed", "DetailedMerged")
    may_see = user.id == call.acting.id or policies_for(call.state, call.tenant).shared_access(
        user, call.acting, False
    )
    if requested in ("MergedOnly", "FreeBusyMerged", "DetailedMerged"):
        step = timedelta(minutes=max(5, interval))
        digits: list[str] = []
        slot = start
        while slot < end:
            slot_end = min(slot + step, end)
            best = "free"
            for event in events:
                if event.overlaps(slot, slot_end) and _RANK[event.show_as] > _RANK[best]:
                    best = event.show_as
            digits.append(str(FREE_BUSY_DIGIT[best]))
            slot = slot_end
        sub(node, t("MergedFreeBusy"), "".join(digits))
    if requested != "MergedOnly":
        array = sub(node, t("CalendarEventArray"))
        for event in events:
            entry = sub(array, t("CalendarEvent"))
            sub(entry, t("StartTime"), _naive(event.start, zone_info))
            sub(entry, t("EndTime"), _naive(event.end, zone_info))
            sub(entry, t("BusyType"), BUSY_TYPE.get(event.show_as, "Busy"))
            if detailed and may_see and event.sensitivity not in ("private", "confidential"):
                details = sub(entry, t("CalendarEventDetails"))
                sub(details, t("ID"), event.id)
                sub(details, t("Subject"), event.subject)
                sub(details, t("Location"), str(event.location.get("displayName") or ""))
                sub(details, t("IsMeeting"), event.has_attendees)
                sub(details, t("IsRecurring"), event.type in ("occurrence", "exception"))
                sub(details, t("IsException"), event.type == "exception")
                sub(details, t("IsReminderSet"), event.is_reminder_on)
                sub(details, t("IsPrivate"), False)
    hours = store.working_hours
    working = sub(node, t("WorkingHours"))
    try:
        owner_zone = windows_name(user.time_zone)
    except UnknownTimeZone:
        owner_zone = "UTC"
    serializable_zone(working, owner_zone, start.year)
    periods = sub(working, t("WorkingPeriodArray"))
    period = sub(periods, t("WorkingPeriod"))
    sub(period, t("DayOfWeek"), " ".join(d.title() for d in hours.days))
    sub(period, t("StartTimeInMinutes"), hours.start.hour * 60 + hours.start.minute)
    sub(period, t("EndTimeInMinutes"), hours.end.hour * 60 + hours.end.minute)


def _naive(value: datetime, zone_info: Any) -> str:
    return value.astimezone(zone_info).strftime("%Y-%m-%dT%H:%M:%S")


def get_server_time_zones(call: EwsCall, request: Any) -> Any:
    full = (request.get("ReturnFullTimeZoneData") or "true").lower() in ("true", "1")
    ids = [i.text or "" for i in children(child(request, m("Ids")), t("Id"))]
    root, messages = _response("GetServerTimeZones")
    wanted = ids or sorted(WINDOWS_TO_IANA)
    msg = _message(messages, "GetServerTimeZones")
    holder = sub(msg, m("TimeZoneDefinitions"))
    year = call.state.now().year
    for zone_id in wanted:
        if zone_id not in WINDOWS_TO_IANA and zone_id != "UTC":
            continue
        if full:
            render_definition(holder, zone_id, year)
        else:
            sub(holder, t("TimeZoneDefinition"), Id=zone_id, Name=zone_id)
    return root


# -- ids -----------------------------------------------------------------------------------------

ID_FORMATS = ("EwsLegacyId", "EwsId", "EntryId", "HexEntryId", "StoreId", "OwaId")
_ENTRY_HEADER = b"\x00\x00\x00\x00"
_COMPACT_MARK = b"\x01"  # an entry id body holding ``compact_item_id`` bytes


def _store_guid(mailbox: str) -> bytes:
    return hashlib.md5(mailbox.lower().encode(), usedforsecurity=False).digest()


def _to_ews(value: str, source: str, mailbox: str) -> str:
    if source in ("EwsId", "EwsLegacyId", "OwaId"):
        return value
    try:
        if source == "HexEntryId":
            raw = bytes.fromhex(value)
        else:
            raw = base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise errors.ErrorInvalidIdMalformed() from exc
    if source == "StoreId":
        return raw.decode("ascii", errors="replace")
    if not raw.startswith(_ENTRY_HEADER) or raw[4:20] != _store_guid(mailbox):
        raise errors.ErrorInvalidIdMalformed()
    body = raw[20:]
    if body[:1] == _COMPACT_MARK:
        expanded = expand_item_id(body[1:])
        if expanded is None:
            raise errors.ErrorInvalidIdMalformed()
        return expanded
    return body.decode("ascii", errors="replace")


def _from_ews(value: str, destination: str, mailbox: str) -> str:
    if destination in ("EwsId", "EwsLegacyId", "OwaId"):
        return value
    if destination == "StoreId":
        return base64.b64encode(value.encode()).decode()
    # Mail ids are as long as Exchange's EWS ids; an entry id (about 70 bytes in Exchange)
    # carries only what identifies the item.
    parsed = parse_item_id(value)
    body = _COMPACT_MARK + compact_item_id(parsed) if parsed else value.encode()
    entry = _ENTRY_HEADER + _store_guid(mailbox) + body
    if destination == "HexEntryId":
        return entry.hex().upper()
    return base64.b64encode(entry).decode()


def convert_id(call: EwsCall, request: Any) -> Any:
    destination = request.get("DestinationFormat") or ""
    if destination not in ID_FORMATS:
        raise errors.ErrorSchemaValidation(
            f"The request failed schema validation: DestinationFormat '{destination}' is invalid."
        )
    root, messages = _response("ConvertId")
    for source in children(child(request, m("SourceIds"))):
        fmt = source.get("Format") or ""
        value = source.get("Id") or ""
        mailbox = source.get("Mailbox") or ""
        try:
            if fmt not in ID_FORMATS:
                raise errors.ErrorInvalidRequest(f"The id format '{fmt}' is not supported.")
            user = call.tenant.find_user(mailbox)
            if user is None or not call.organization.hosts_mailbox(user):
                raise errors.ErrorNonExistentMailbox()
            ews_id = _to_ews(value, fmt, mailbox)
            if not _is_folder_id(call, ews_id):
                call.item(ews_id)  # an id that names nothing is ErrorItemNotFound
            converted = _from_ews(ews_id, destination, mailbox)
        except errors.ResponseError as exc:
            _message(messages, "ConvertId", exc)
            continue
        msg = _message(messages, "ConvertId")
        alt = sub(msg, m("AlternateId"), Format=destination, Id=converted, Mailbox=mailbox)
        alt.set(f"{{{XSI}}}type", "t:AlternateIdType")
    return root


def _is_folder_id(call: EwsCall, value: str) -> bool:
    try:
        call.folder(element(t("FolderId"), Id=value))
    except errors.ResponseError:
        return False
    return True


# -- the table -----------------------------------------------------------------------------------


def _ops(entries: Iterable[tuple[str, Handler, str]]) -> dict[str, Operation]:
    return {name: Operation(name, handler, summary) for name, handler, summary in entries}


OPERATIONS: dict[str, Operation] = _ops(
    [
        ("GetFolder", get_folder, "Folders by id or distinguished name."),
        ("FindFolder", find_folder, "Subfolders (Shallow or Deep), IndexedPageFolderView."),
        ("CreateFolder", create_folder, "Mail folders and calendars."),
        ("SyncFolderHierarchy", sync_folder_hierarchy, "Folder changes since a sync state."),
        (
            "SyncFolderItems",
            sync_folder_items,
            "Item changes (Create/Update/Delete/ReadFlagChange) since a sync state, paged by "
            "MaxChangesReturned.",
        ),
        ("GetItem", get_item, "Messages, calendar items (occurrences too) and tasks by id."),
        (
            "FindItem",
            find_item,
            "Items of folders: IndexedPageItemView, CalendarView (recurrences expanded), "
            "SortOrder, Restriction.",
        ),
        (
            "CreateItem",
            create_item,
            "Calendar items (SendMeetingInvitations), messages (MessageDisposition) and tasks.",
        ),
        (
            "UpdateItem",
            update_item,
            "Set/append/delete item fields (SendMeetingInvitationsOrCancellations, "
            "ConflictResolution).",
        ),
        ("DeleteItem", delete_item, "Delete items (DeleteType, SendMeetingCancellations)."),
        (
            "GetUserAvailability",
            get_user_availability,
            "Free/busy (merged, detailed) and working hours.",
        ),
        ("GetServerTimeZones", get_server_time_zones, "Time zone definitions."),
        ("ConvertId", convert_id, "Ids between EwsId, EntryId, HexEntryId, StoreId, OwaId."),
    ]
)
