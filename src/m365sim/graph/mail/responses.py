"""Graph mail routes: parse the request, call ``MailBackend`` or the ``MailStore`` it hands
out, serialise the answer.

Every route authorizes through ``resolve_mailbox(..., "Mail", write=...)`` first, so
access policies, unreachable mailboxes and missing permissions answer before anything
else, as they do in Exchange Online.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from starlette.requests import Request
from starlette.responses import Response

from m365sim.directory.models import User
from m365sim.graph import exceptions as errors
from m365sim.graph.auth import Caller, resolve_mailbox
from m365sim.graph.exceptions import UnsupportedFilter
from m365sim.graph.ids import parse_item_id
from m365sim.graph.mail import exceptions as mail_errors
from m365sim.graph.mail.backend import MailBackend
from m365sim.graph.mail.models import (
    FOLDER_PROPERTIES,
    MESSAGE_PROPERTIES,
    UNMODELLED_MESSAGE_PROPERTIES,
    DeltaParams,
    MailFolder,
    MailStore,
    Message,
    MessageFields,
    parse_item_body,
    parse_recipient,
    parse_recipients,
)
from m365sim.graph.odata import (
    AnyOf,
    Comparison,
    ODataQuery,
    OrderBy,
    apply_orderby,
    compile_filter,
    filter_properties,
    metadata_url,
    next_link,
    not_modelled,
    page,
    parse_prefer,
    render_collection,
    select_fields,
)
from m365sim.graph.routing import user_key
from m365sim.http import JSONResponse, json_body, sim_state

DEFAULT_PAGE_SIZE = 10  # Graph's default for messages, mailFolders and message delta
NEWEST_FIRST = (OrderBy(("receivedDateTime",), True),)


@dataclass(frozen=True)
class Preferences:
    """The ``Prefer`` header values the mail routes honour, and what to echo back."""

    immutable: bool
    text: bool
    max_page_size: int | None
    applied: tuple[str, ...]

    def headers(self, *extra: str) -> dict[str, str]:
        applied = [*self.applied, *extra]
        return {"Preference-Applied": ", ".join(applied)} if applied else {}


def preferences(request: Request) -> Preferences:
    prefs = parse_prefer(request)
    applied: list[str] = []
    immutable = prefs.get("idtype", "").lower() == "immutableid"
    if immutable:
        applied.append('IdType="ImmutableId"')
    body_type = prefs.get("outlook.body-content-type", "").lower()
    if body_type in ("text", "html"):
        applied.append(f'outlook.body-content-type="{body_type}"')
    max_page: int | None = None
    raw = prefs.get("odata.maxpagesize", "")
    if raw.isdigit() and int(raw) > 0:
        max_page = int(raw)
    return Preferences(immutable, body_type == "text", max_page, tuple(applied))


@dataclass(frozen=True)
class MailContext:
    caller: Caller
    owner: User
    backend: MailBackend
    store: MailStore
    prefs: Preferences

    def context(self, request: Request, tail: str) -> str:
        key = user_key(request) or self.owner.id
        return metadata_url(request, f"users('{key}')/{tail}")

    def render(self, message: Message, *, select: tuple[str, ...] | None = None) -> dict[str, Any]:
        view = message.view(self.store.key, (self.prefs.immutable, self.prefs.text, False))
        return select_fields(view, select)


def _mail(request: Request, *, write: bool = False, permission: str | None = None) -> MailContext:
    caller, owner = resolve_mailbox(
        request, user_key(request), "Mail", write=write, permission=permission
    )
    backend = MailBackend(sim_state(request))
    store = backend.store(caller.tenant, owner)
    return MailContext(caller, owner, backend, store, preferences(request))


def _json(body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def _collection(body: bytes, headers: Mapping[str, str]) -> Response:
    return Response(body, media_type="application/json", headers=dict(headers))


# -- mail folders ---------------------------------------------------------------------------


def _folder_page(
    request: Request, ctx: MailContext, folders: list[MailFolder], tail: str
) -> Response:
    query = ODataQuery.from_request(
        request,
        allowed={"select", "top", "skip", "filter", "count", "orderby"},
        entity="mailFolder",
        properties=FOLDER_PROPERTIES,
    )
    views = [f.as_json() for f in folders]
    if request.query_params.get("includeHiddenFolders", "").lower() != "true":
        views = [v for v in views if not v["isHidden"]]
    if query.filter is not None:
        predicate = compile_filter(query.filter)
        views = [v for v in views if predicate(v)]
    if query.orderby:
        views = apply_orderby(views, query.orderby, lambda v: v)
    chunk, next_skip = page(views, query.top or DEFAULT_PAGE_SIZE, query.skip)
    body = render_collection(
        ctx.context(request, tail),
        [select_fields(v, query.select) for v in chunk],
        next_link=next_link(request, **{"$skip": next_skip}) if next_skip is not None else None,
        count=len(views) if query.count else None,
    )
    return _collection(body, ctx.prefs.headers())


async def list_mail_folders(request: Request) -> Response:
    """List the mailbox's top-level mail folders (children of msgfolderroot)."""
    ctx = _mail(request)
    return _folder_page(request, ctx, list(ctx.store.root.children), "mailFolders")


async def list_child_folders(request: Request) -> Response:
    """List a mail folder's child folders."""
    ctx = _mail(request)
    folder = ctx.store.folder(request.path_params["folder_id"])
    return _folder_page(request, ctx, list(folder.children), "mailFolders")


async def _new_folder(request: Request, ctx: MailContext, parent: MailFolder) -> Response:
    body = await json_body(request)
    name = body.get("displayName") if isinstance(body, dict) else None
    if not isinstance(name, str):
        raise errors.BadRequest("The displayName property is required.")
    folder = ctx.store.create_folder(parent, name, hidden=bool(body.get("isHidden", False)))
    return _json(
        {"@odata.context": ctx.context(request, "mailFolders/$entity"), **folder.as_json()},
        status=201,
    )


async def create_mail_folder(request: Request) -> Response:
    """Create a top-level mail folder."""
    ctx = _mail(request, write=True)
    return await _new_folder(request, ctx, ctx.store.root)


async def create_child_folder(request: Request) -> Response:
    """Create a child folder under a mail folder."""
    ctx = _mail(request, write=True)
    return await _new_folder(request, ctx, ctx.store.folder(request.path_params["folder_id"]))


async def get_mail_folder(request: Request) -> Response:
    """Get a mail folder by id or well-known name."""
    ctx = _mail(request)
    query = ODataQuery.from_request(
        request, allowed={"select"}, entity="mailFolder", properties=FOLDER_PROPERTIES
    )
    folder = ctx.store.folder(request.path_params["folder_id"])
    body = select_fields(folder.as_json(), query.select)
    return _json({"@odata.context": ctx.context(request, "mailFolders/$entity"), **body})


# -- messages -------------------------------------------------------------------------------


def _check_message_filter(query: ODataQuery) -> None:
    """Exchange's rules for ``$filter``: no lambda operators on recipients, and with
    ``$orderby`` the sorted properties must come first in the filter, in the same order."""
    if query.filter is None:
        return
    paths = filter_properties(query.filter)
    if _has_lambda(query.filter):
        raise UnsupportedFilter()
    if query.orderby:
        leading = [p[0] for p in paths[: len(query.orderby)]]
        if leading != [clause.path[0] for clause in query.orderby]:
            raise mail_errors.InefficientFilter()


def _has_lambda(expr: Any) -> bool:
    if expr is None:
        return False
    if isinstance(expr, AnyOf):
        return True
    return any(_has_lambda(getattr(expr, side, None)) for side in ("left", "right", "operand"))


async def list_messages(request: Request) -> Response:
    """List messages in a folder, or across the mailbox (newest first by default)."""
    ctx = _mail(request)
    folder_key = request.path_params.get("folder_id")
    folder = ctx.store.folder(folder_key) if folder_key is not None else None
    query = ODataQuery.from_request(
        request,
        allowed={"select", "top", "skip", "filter", "orderby", "count"},
        entity="message",
        properties=MESSAGE_PROPERTIES,
        unmodelled=UNMODELLED_MESSAGE_PROPERTIES,
    )
    _check_message_filter(query)
    store, immutable = ctx.store, ctx.prefs.immutable
    orderby = query.orderby or NEWEST_FIRST

    def build(source: Iterable[Message]) -> list[Message]:
        items = list(source)
        if query.filter is not None:
            predicate = compile_filter(query.filter)
            items = [m for m in items if predicate(MessageFields(m, store.key, immutable))]
        if orderby == NEWEST_FIRST:
            items.sort(key=lambda m: (m.received, m.number), reverse=True)
            return items
        return apply_orderby(items, orderby, lambda m: MessageFields(m, store.key, immutable))

    cache_key = (query.filter_text, tuple(orderby), immutable)
    listing = store.listing(folder, cache_key, build)
    size = query.top or DEFAULT_PAGE_SIZE
    chunk, next_skip = page(listing, size, query.skip)
    key = (immutable, ctx.prefs.text, False)
    values: list[dict[str, Any] | bytes] = (
        [m.view_bytes(store.key, key) for m in chunk]
        if query.select is None
        else [select_fields(m.view(store.key, key), query.select) for m in chunk]
    )
    tail = f"mailFolders('{folder_key}')/messages" if folder_key is not None else "messages"
    body = render_collection(
        ctx.context(request, tail),
        values,
        next_link=next_link(request, **{"$skip": next_skip}) if next_skip is not None else None,
        count=len(listing) if query.count else None,
    )
    return _collection(body, ctx.prefs.headers())


def _message_in_scope(ctx: MailContext, request: Request) -> Message:
    message = ctx.store.message(request.path_params["message_id"])
    folder_key = request.path_params.get("folder_id")
    if folder_key is not None and ctx.store.folder(folder_key) is not message.folder:
        raise errors.ErrorItemNotFound()
    return message


async def get_message(request: Request) -> Response:
    """Get a message by id (default or immutable)."""
    ctx = _mail(request)
    query = ODataQuery.from_request(
        request,
        allowed={"select"},
        entity="message",
        properties=MESSAGE_PROPERTIES,
        unmodelled=UNMODELLED_MESSAGE_PROPERTIES,
    )
    message = _message_in_scope(ctx, request)
    body = {
        "@odata.context": ctx.context(request, "messages/$entity"),
        **ctx.render(message, select=query.select),
    }
    return _json(body, headers=ctx.prefs.headers())


async def update_message(request: Request) -> Response:
    """Update a message (isRead, categories, flag...; subject/body/recipients on drafts)."""
    ctx = _mail(request, write=True)
    message = _message_in_scope(ctx, request)
    changes = await json_body(request)
    if not isinstance(changes, dict):
        raise errors.BadRequest("The request body must be a JSON object.")
    ctx.store.update_message(message, changes)
    body = {"@odata.context": ctx.context(request, "messages/$entity"), **ctx.render(message)}
    return _json(body, headers=ctx.prefs.headers())


async def delete_message(request: Request) -> Response:
    """Delete a message (it moves to Recoverable Items, as in Exchange Online)."""
    ctx = _mail(request, write=True)
    message = _message_in_scope(ctx, request)
    ctx.store.delete_message(message)
    return Response(status_code=204)


async def move_message(request: Request) -> Response:
    """Move a message to another folder; its default id changes, its immutable id doesn't."""
    ctx = _mail(request, write=True)
    message = _message_in_scope(ctx, request)
    body = await json_body(request)
    destination_id = body.get("destinationId") if isinstance(body, dict) else None
    if not isinstance(destination_id, str) or not destination_id:
        raise errors.BadRequest("The destinationId parameter is required.")
    destination = ctx.store.folder(destination_id)
    ctx.store.move_message(message, destination)
    out = {"@odata.context": ctx.context(request, "messages/$entity"), **ctx.render(message)}
    return _json(out, status=201, headers=ctx.prefs.headers())


_CREATE_FIELDS = frozenset(
    {
        "subject",
        "body",
        "toRecipients",
        "ccRecipients",
        "bccRecipients",
        "replyTo",
        "importance",
        "categories",
        "isDeliveryReceiptRequested",
        "isReadReceiptRequested",
        "flag",
        "from",
        "sender",
        "internetMessageId",
        "inferenceClassification",
    }
)


def _message_fields(body: Any) -> dict[str, Any]:
    """A Graph ``message`` body checked against the properties one may set on creation."""
    if not isinstance(body, dict):
        raise errors.BadRequest("The request body must be a JSON object.")
    for name in body:
        if name.startswith("@odata"):
            continue
        if name in UNMODELLED_MESSAGE_PROPERTIES:
            raise not_modelled(name, "message")
        if name not in _CREATE_FIELDS:
            raise mail_errors.ErrorInvalidRequestBody(
                f"The property '{name}' does not exist on type 'microsoft.graph.message'. Make "
                "sure to only use property names that are defined by the type or mark the type "
                "as open type."
            )
    return body


async def create_message(request: Request) -> Response:
    """Create a draft (in Drafts, or in the folder addressed)."""
    ctx = _mail(request, write=True)
    folder_key = request.path_params.get("folder_id")
    folder = ctx.store.folder(folder_key) if folder_key else ctx.store.well_known["drafts"]
    fields = _message_fields(await json_body(request))
    content, body_type = parse_item_body(fields)
    sender = parse_recipient(fields["from"]) if fields.get("from") else ctx.store.owner
    message = ctx.store.add_message(
        folder,
        subject=str(fields.get("subject") or ""),
        body=content,
        body_type=body_type,
        sender=sender,
        to=parse_recipients(fields.get("toRecipients")),
        cc=parse_recipients(fields.get("ccRecipients")),
        bcc=parse_recipients(fields.get("bccRecipients")),
        reply_to=parse_recipients(fields.get("replyTo")),
        importance=str(fields.get("importance") or "normal"),
        categories=[str(c) for c in fields.get("categories") or []],
        internet_message_id=fields.get("internetMessageId"),
        is_read=True,
        is_draft=True,
    )
    out = {"@odata.context": ctx.context(request, "messages/$entity"), **ctx.render(message)}
    return _json(out, status=201, headers=ctx.prefs.headers())


async def send_mail(request: Request) -> Response:
    """Send a message: recipients in any sim tenant receive it; a copy goes to Sent Items."""
    ctx = _mail(request, permission="Mail.Send")
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("message"), dict):
        raise errors.BadRequest("Empty Payload. JSON content expected.")
    fields = _message_fields(body["message"])
    save = body.get("saveToSentItems", True)
    save = save if isinstance(save, bool) else str(save).lower() != "false"
    ctx.backend.send(ctx.store, fields, save_to_sent_items=save)
    return Response(status_code=202)


# -- delta ----------------------------------------------------------------------------------


def _delta_params(query: ODataQuery) -> DeltaParams:
    """Graph's limits on message delta: ``$filter`` only ``receivedDateTime ge|gt``,
    ``$orderby`` only ``receivedDateTime desc``, ``changeType`` created|updated|deleted."""
    received_op: Literal["ge", "gt"] | None = None
    received_value = None
    if query.filter is not None:
        expr = query.filter
        if not (
            isinstance(expr, Comparison)
            and expr.path == ("receivedDateTime",)
            and expr.op in ("ge", "gt")
            and hasattr(expr.value, "tzinfo")
        ):
            raise UnsupportedFilter(
                "The query filter contains one or more invalid nodes. Delta supports only "
                "'receivedDateTime ge {value}' and 'receivedDateTime gt {value}'."
            )
        received_op = cast(Literal["ge", "gt"], expr.op)
        received_value = expr.value
    order_desc = False
    if query.orderby:
        if query.orderby != (OrderBy(("receivedDateTime",), True),):
            raise errors.BadRequest(
                "The only supported $orderby expression for delta is 'receivedDateTime desc'."
            )
        order_desc = True
    change_type = query.custom.get("changetype")
    if change_type is not None and change_type not in ("created", "updated", "deleted"):
        raise errors.BadRequest(
            f"Invalid value '{change_type}' for changeType; use created, updated or deleted."
        )
    return DeltaParams(
        select=query.select,
        change_type=cast(Literal["created", "updated", "deleted"] | None, change_type),
        received_op=received_op,
        received_value=received_value if received_op else None,  # type: ignore[arg-type]
        order_desc=order_desc,
    )


async def message_delta(request: Request) -> Response:
    """Track changes to a folder's messages (``delta`` and ``delta()``), page by page."""
    ctx = _mail(request)
    folder = ctx.store.folder(request.path_params["folder_id"])
    query = ODataQuery.from_request(
        request,
        allowed={"select", "top", "filter", "orderby", "skiptoken", "deltatoken"},
        entity="message",
        properties=MESSAGE_PROPERTIES,
        unmodelled=UNMODELLED_MESSAGE_PROPERTIES,
        custom=("changeType",),
    )
    settings = ctx.backend.settings
    size = ctx.prefs.max_page_size or query.top or DEFAULT_PAGE_SIZE
    size = min(size, settings.delta_max_page_size)
    store = ctx.store
    if query.skiptoken:
        skiptoken = query.skiptoken
    elif query.deltatoken:
        skiptoken = store.resume_delta(folder, query.deltatoken)
    else:
        skiptoken = store.start_delta(folder, _delta_params(query))
    result = store.delta_page(
        folder, skiptoken, size, immutable=ctx.prefs.immutable, text=ctx.prefs.text
    )
    base = str(request.url.replace(query=""))
    body = render_collection(
        metadata_url(request, "Collection(message)"),
        result.items,
        next_link=f"{base}?$skiptoken={result.skiptoken}" if result.skiptoken else None,
        delta_link=f"{base}?$deltatoken={result.deltatoken}" if result.deltatoken else None,
    )
    extra = (f"odata.maxpagesize={size}",) if ctx.prefs.max_page_size else ()
    return _collection(body, ctx.prefs.headers(*extra))


async def mailbox_delta_unsupported(request: Request) -> Response:
    """Message delta across the whole mailbox: not supported by Graph (delta is per folder)."""
    _mail(request)
    raise errors.BadRequest("Change tracking is not supported against 'microsoft.graph.message'.")


# -- id translation -------------------------------------------------------------------------


async def translate_exchange_ids(request: Request) -> Response:
    """Translate message ids between restId and restImmutableEntryId."""
    ctx = _mail(request)
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("inputIds"), list):
        raise errors.BadRequest("inputIds is required.")
    kinds = {"restid": False, "restimmutableentryid": True}
    source = str(body.get("sourceIdType", "")).lower()
    target = str(body.get("targetIdType", "")).lower()
    if source not in kinds or target not in kinds:
        raise errors.BadRequest("m365sim translates only between restId and restImmutableEntryId.")
    values: list[dict[str, Any]] = []
    for raw in body["inputIds"]:
        parsed = parse_item_id(str(raw))
        entry: dict[str, Any] = {"sourceId": raw}
        try:
            if parsed is None or parsed.immutable != kinds[source]:
                raise errors.ErrorInvalidIdMalformed()
            message = ctx.store.message(str(raw))
            entry["targetId"] = message.id_for(kinds[target], ctx.store.key)
        except errors.ErrorInvalidIdMalformed:
            entry["errorDetails"] = {
                "code": "ErrorInvalidIdMalformed",
                "message": "Id is malformed.",
            }
        except errors.ErrorItemNotFound:
            entry["errorDetails"] = {
                "code": "ErrorItemNotFound",
                "message": "The specified object was not found in the store.",
            }
        values.append(entry)
    return _json(
        {
            "@odata.context": metadata_url(request, "Collection(microsoft.graph.convertIdResult)"),
            "value": values,
        }
    )
