"""Graph mail routes: parse the request, call ``MailBackend`` or the ``MailStore`` it hands
out, serialise the answer.

Every route authorizes through ``resolve_mailbox(..., "Mail", write=...)`` first, so
access policies, unreachable mailboxes and missing permissions answer before anything
else, as they do in Exchange Online.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from starlette.requests import Request
from starlette.responses import Response

from m365sim.directory.models import User
from m365sim.graph import exceptions as errors
from m365sim.graph.auth import Caller, resolve_mailbox
from m365sim.graph.exceptions import PropertyNotFound, UnsupportedFilter
from m365sim.graph.ids import parse_item_id
from m365sim.graph.mail import exceptions as mail_errors
from m365sim.graph.mail import folders, search
from m365sim.graph.mail.attachments import (
    ATTACHMENT_PROPERTIES,
    MAX_REQUEST_BYTES,
    RequestTooLarge,
    parse_attachment,
    parse_headers,
)
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
    newest_first,
    parse_item_body,
    parse_recipient,
    parse_recipients,
)
from m365sim.graph.odata import (
    AnyOf,
    Comparison,
    Logical,
    ODataQuery,
    OrderBy,
    apply_orderby,
    compile_filter,
    filter_properties,
    metadata_url,
    next_link,
    not_modelled,
    page,
    parse_filter,
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

    def render(
        self,
        message: Message,
        *,
        select: tuple[str, ...] | None = None,
        expand: Expansions | None = None,
    ) -> dict[str, Any]:
        view = message.view(self.store.key, (self.prefs.immutable, self.prefs.text, False))
        if select and "internetMessageHeaders" in select:
            view["internetMessageHeaders"] = message.internet_headers()
        if select and "singleValueExtendedProperties" in select:
            raise errors.BadRequest(
                "singleValueExtendedProperties is a navigation property: use $expand."
            )
        out = select_fields(view, select)
        if expand is not None:
            out.update(expand.render(message))
        return out


@dataclass(frozen=True)
class Expansions:
    """``$expand`` on messages: ``attachments`` (optionally ``($select=...)``) and
    ``singleValueExtendedProperties($filter=id eq '...')``, as Graph documents them."""

    attachments: bool = False
    attachment_select: tuple[str, ...] | None = None
    extended: bool = False
    extended_ids: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> Expansions | None:
        if not text:
            return None
        attachments = extended = False
        attachment_select: tuple[str, ...] | None = None
        extended_ids: tuple[str, ...] = ()
        for name, options in _split_expand(text):
            if name == "attachments":
                attachments = True
                selected = options.get("select")
                if selected:
                    attachment_select = tuple(n.strip() for n in selected.split(","))
                    for field_name in attachment_select:
                        if field_name not in ATTACHMENT_PROPERTIES:
                            raise PropertyNotFound(
                                f"Could not find a property named '{field_name}' on type "
                                "'microsoft.graph.attachment'."
                            )
            elif name == "singleValueExtendedProperties":
                extended = True
                wanted = options.get("filter")
                if wanted is not None:
                    extended_ids = tuple(_extended_ids(wanted))
            else:
                raise PropertyNotFound(
                    f"Could not find a property named '{name}' on type 'microsoft.graph.message'."
                )
        return cls(attachments, attachment_select, extended, extended_ids)

    def render(self, message: Message) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.attachments:
            out["attachments"] = [
                select_fields(a.view(), self.attachment_select) for a in message.attachments
            ]
        if self.extended:
            wanted = {i.lower() for i in self.extended_ids}
            out["singleValueExtendedProperties"] = [
                {"id": key, "value": value}
                for key, value in message.extended.items()
                if not wanted or key.lower() in wanted
            ]
        return out


def _split_expand(text: str) -> list[tuple[str, dict[str, str]]]:
    """``a($select=x,y),b($filter=...)`` → ``[("a", {"select": "x,y"}), ("b", ...)]``."""
    parts: list[tuple[str, dict[str, str]]] = []
    depth, start = 0, 0
    pieces: list[str] = []
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            pieces.append(text[start:index])
            start = index + 1
    pieces.append(text[start:])
    for piece in pieces:
        name, _, rest = piece.strip().partition("(")
        options: dict[str, str] = {}
        for option in rest.rstrip(")").split(";") if rest else []:
            key, _, value = option.partition("=")
            options[key.strip().lstrip("$").lower()] = value.strip()
        parts.append((name.strip(), options))
    return parts


def _extended_ids(text: str) -> list[str]:
    """The ids of ``id eq '...' [or id eq '...']`` (the filter Graph accepts here)."""
    expr = parse_filter(text)
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Comparison) and node.path == ("id",) and node.op == "eq":
            found.append(str(node.value))
        elif isinstance(node, Logical) and node.op == "or":
            walk(node.left)
            walk(node.right)
        else:
            raise UnsupportedFilter()

    walk(expr)
    return found


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
    folders.note_created(ctx.store, folder)
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


async def update_mail_folder(request: Request) -> Response:
    """Rename a mail folder (``displayName``)."""
    ctx = _mail(request, write=True)
    folder = ctx.store.folder(request.path_params["folder_id"])
    folders.rename_folder(ctx.store, folder, await json_body(request))
    body = {"@odata.context": ctx.context(request, "mailFolders/$entity"), **folder.as_json()}
    return _json(body)


async def move_mail_folder(request: Request) -> Response:
    """Move a mail folder under another (``destinationId``); 201 with the folder."""
    ctx = _mail(request, write=True)
    folder = ctx.store.folder(request.path_params["folder_id"])
    body = await json_body(request)
    destination_id = body.get("destinationId") if isinstance(body, dict) else None
    if not isinstance(destination_id, str) or not destination_id:
        raise errors.BadRequest("The destinationId parameter is required.")
    folders.move_folder(ctx.store, folder, ctx.store.folder(destination_id))
    out = {"@odata.context": ctx.context(request, "mailFolders/$entity"), **folder.as_json()}
    return _json(out, status=201)


async def delete_mail_folder(request: Request) -> Response:
    """Delete a mail folder: to Deleted Items, or for good from there."""
    ctx = _mail(request, write=True)
    folders.delete_folder(ctx.store, ctx.store.folder(request.path_params["folder_id"]))
    return Response(status_code=204)


async def mail_folder_delta(request: Request) -> Response:
    """``mailFolders/delta``: the folder hierarchy, then what changed in it."""
    ctx = _mail(request)
    query = ODataQuery.from_request(
        request,
        allowed={"select", "skiptoken", "deltatoken"},
        entity="mailFolder",
        properties=FOLDER_PROPERTIES,
    )
    size = min(
        ctx.prefs.max_page_size or DEFAULT_PAGE_SIZE, ctx.backend.settings.delta_max_page_size
    )
    items, skiptoken, deltatoken = folders.folder_delta_page(
        ctx.store, query.skiptoken or query.deltatoken, skip=0, size=size
    )
    base = str(request.url.replace(query=""))
    body = render_collection(
        metadata_url(request, "Collection(mailFolder)"),
        [i if "@removed" in i else select_fields(i, query.select) for i in items],
        next_link=f"{base}?$skiptoken={skiptoken}" if skiptoken else None,
        delta_link=f"{base}?$deltatoken={deltatoken}" if deltatoken else None,
    )
    extra = (f"odata.maxpagesize={size}",) if ctx.prefs.max_page_size else ()
    return _collection(body, ctx.prefs.headers(*extra))


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


LAMBDA_COLLECTIONS = frozenset({"categories", "singleValueExtendedProperties"})
"""Collections Graph lets ``any`` range over on messages (recipients it refuses)."""


def _has_lambda(expr: Any) -> bool:
    if expr is None:
        return False
    if isinstance(expr, AnyOf):
        return expr.collection[0] not in LAMBDA_COLLECTIONS
    return any(_has_lambda(getattr(expr, side, None)) for side in ("left", "right", "operand"))


async def list_messages(request: Request) -> Response:
    """List messages in a folder, or across the mailbox (newest first by default)."""
    ctx = _mail(request)
    folder_key = request.path_params.get("folder_id")
    folder = ctx.store.folder(folder_key) if folder_key is not None else None
    query = ODataQuery.from_request(
        request,
        allowed={"select", "top", "skip", "filter", "orderby", "count", "expand", "search"}
        | ({"skiptoken"} if _searching(request) else set()),
        entity="message",
        properties=MESSAGE_PROPERTIES,
        unmodelled=UNMODELLED_MESSAGE_PROPERTIES,
    )
    _check_message_filter(query)
    expand = Expansions.parse(query.expand)
    if query.search is not None:
        return _search_messages(request, ctx, query, folder, expand)
    store, immutable = ctx.store, ctx.prefs.immutable
    orderby = query.orderby or NEWEST_FIRST

    def build(source: Iterable[Message]) -> list[Message]:
        items = list(source)
        if query.filter is not None:
            predicate = compile_filter(query.filter)
            items = [m for m in items if predicate(MessageFields(m, store.key, immutable))]
        if orderby == NEWEST_FIRST:
            return newest_first(items)
        return apply_orderby(items, orderby, lambda m: MessageFields(m, store.key, immutable))

    window = _received_window(query.filter) if orderby == NEWEST_FIRST else None
    if window is not None:
        listing = store.received_since(folder, window[0], inclusive=window[1])
    else:
        cache_key = (query.filter_text, tuple(orderby), immutable)
        listing = store.listing(folder, cache_key, build)
    size = query.top or DEFAULT_PAGE_SIZE
    chunk, next_skip = page(listing, size, query.skip)
    key = (immutable, ctx.prefs.text, False)
    values: list[dict[str, Any] | bytes] = (
        [m.view_bytes(store.key, key) for m in chunk]
        if query.select is None and expand is None
        else [ctx.render(m, select=query.select, expand=expand) for m in chunk]
    )
    tail = f"mailFolders('{folder_key}')/messages" if folder_key is not None else "messages"
    body = render_collection(
        ctx.context(request, tail),
        values,
        next_link=next_link(request, **{"$skip": next_skip}) if next_skip is not None else None,
        count=len(listing) if query.count else None,
    )
    return _collection(body, ctx.prefs.headers())


def _received_window(expr: Any) -> tuple[datetime, bool] | None:
    """``receivedDateTime ge|gt <moment>`` alone: the moment and whether it is inclusive."""
    if (
        isinstance(expr, Comparison)
        and expr.path == ("receivedDateTime",)
        and expr.op in ("ge", "gt")
        and isinstance(expr.value, datetime)
    ):
        return expr.value, expr.op == "ge"
    return None


def _searching(request: Request) -> bool:
    return any(k.lstrip("$").lower() == "search" for k in request.query_params)


def _search_messages(
    request: Request,
    ctx: MailContext,
    query: ODataQuery,
    folder: MailFolder | None,
    expand: Expansions | None,
) -> Response:
    """``$search``: KQL subset, newest sent first, at most 1,000, paged by ``$skiptoken``."""
    assert query.search is not None
    combined = [
        name
        for name, given in (
            ("filter", query.filter is not None),
            ("orderby", bool(query.orderby)),
            ("skip", query.skip > 0),
        )
        if given
    ]
    search.refuse_combinations(combined)
    predicate = search.compile_search(query.search)
    source = folder.messages.values() if folder is not None else _mailbox_messages(ctx.store)
    found = [m for m in source if predicate(m)]
    found.sort(key=lambda m: (m.sent or m.received, m.number), reverse=True)
    found = found[: search.SEARCH_LIMIT]
    offset = int(query.skiptoken) if query.skiptoken and query.skiptoken.isdigit() else 0
    size = query.top or DEFAULT_PAGE_SIZE
    chunk = found[offset : offset + size]
    more = offset + size < len(found)
    folder_key = request.path_params.get("folder_id")
    tail = f"mailFolders('{folder_key}')/messages" if folder_key is not None else "messages"
    body = render_collection(
        ctx.context(request, tail),
        [ctx.render(m, select=query.select, expand=expand) for m in chunk],
        next_link=next_link(request, **{"$skiptoken": str(offset + size)}) if more else None,
        count=len(found) if query.count else None,
    )
    return _collection(body, ctx.prefs.headers())


def _mailbox_messages(store: MailStore) -> Iterable[Message]:
    for folder in store.visible_folders():
        yield from folder.messages.values()


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
        allowed={"select", "expand"},
        entity="message",
        properties=MESSAGE_PROPERTIES,
        unmodelled=UNMODELLED_MESSAGE_PROPERTIES,
    )
    message = _message_in_scope(ctx, request)
    body = {
        "@odata.context": ctx.context(request, "messages/$entity"),
        **ctx.render(message, select=query.select, expand=Expansions.parse(query.expand)),
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
        "attachments",
        "internetMessageHeaders",
        "singleValueExtendedProperties",
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
    now = ctx.store.now()
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
        attachments=[parse_attachment(a, now) for a in fields.get("attachments") or []],
        headers=parse_headers(fields.get("internetMessageHeaders"), custom_only=True),
    )
    if fields.get("singleValueExtendedProperties"):
        ctx.store.update_message(
            message, {"singleValueExtendedProperties": fields["singleValueExtendedProperties"]}
        )
    out = {"@odata.context": ctx.context(request, "messages/$entity"), **ctx.render(message)}
    return _json(out, status=201, headers=ctx.prefs.headers())


async def send_mail(request: Request) -> Response:
    """Send a message: recipients in any sim tenant receive it; a copy goes to Sent Items."""
    ctx = _mail(request, permission="Mail.Send")
    await _within_request_limit(request)
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("message"), dict):
        raise errors.BadRequest("Empty Payload. JSON content expected.")
    fields = _message_fields(body["message"])
    save = body.get("saveToSentItems", True)
    save = save if isinstance(save, bool) else str(save).lower() != "false"
    ctx.backend.send(ctx.store, fields, save_to_sent_items=save)
    return Response(status_code=202)


async def _within_request_limit(request: Request) -> None:
    if len(await request.body()) > MAX_REQUEST_BYTES:
        raise RequestTooLarge()


def _thread_headers(parent: Message) -> list[tuple[str, str]]:
    """``In-Reply-To`` and ``References`` of an answer to ``parent`` (RFC 5322 3.6.4)."""
    named = {name.lower(): value for name, value in parent.headers}
    references = [*named.get("references", "").split(), parent.internet_message_id]
    return [("In-Reply-To", parent.internet_message_id), ("References", " ".join(references))]


def _answer_fields(parent: Message, body: Mapping[str, Any], *, forward: bool) -> dict[str, Any]:
    """The message a ``reply``/``forward``/``createReply`` sends: Graph's ``RE:``/``FW:``
    subject, the comment above the quoted original, the parent's sender as recipient (or
    the given ``toRecipients``), the parent's attachments on a forward."""
    extra = body.get("message")
    fields = _message_fields(dict(extra) if isinstance(extra, dict) else {})
    prefix = "FW: " if forward else "RE: "
    fields.setdefault("subject", prefix + parent.subject)
    comment = str(body.get("comment") or "")
    original = parent.text_body() if parent.body_type == "text" else parent.body_content
    fields.setdefault(
        "body", {"contentType": parent.body_type, "content": f"{comment}\n\n{original}"}
    )
    if body.get("toRecipients") is not None:
        fields["toRecipients"] = body["toRecipients"]
    if not forward and "toRecipients" not in fields:
        target = parent.reply_to[0] if parent.reply_to else parent.from_ or parent.sender
        if target is not None:
            fields["toRecipients"] = [{"emailAddress": {"name": target[0], "address": target[1]}}]
    if forward:
        carried = [a.view() for a in parent.attachments if a.kind == "file"]
        fields["attachments"] = [*(fields.get("attachments") or []), *carried]
    return fields


async def reply(request: Request) -> Response:
    """``reply`` / ``forward``: send the answer at once (202), threaded under the parent."""
    forward = request.url.path.rstrip("/").endswith("/forward")
    ctx = _mail(request, permission="Mail.Send")
    parent = _message_in_scope(ctx, request)
    body = await json_body(request)
    body = body if isinstance(body, dict) else {}
    if (
        forward
        and not body.get("toRecipients")
        and not (body.get("message") or {}).get("toRecipients")
    ):
        raise mail_errors.ErrorInvalidRecipients()
    fields = _answer_fields(parent, body, forward=forward)
    ctx.backend.send(
        ctx.store, fields, save_to_sent_items=True, thread_headers=_thread_headers(parent)
    )
    return Response(status_code=202)


async def create_reply(request: Request) -> Response:
    """``createReply`` / ``createForward``: a draft in Drafts, threaded under the parent."""
    forward = request.url.path.rstrip("/").endswith("/createForward")
    ctx = _mail(request, write=True)
    parent = _message_in_scope(ctx, request)
    body = await json_body(request) if await request.body() else {}
    body = body if isinstance(body, dict) else {}
    fields = _answer_fields(parent, body, forward=forward)
    content, body_type = parse_item_body(fields)
    now = ctx.store.now()
    draft = ctx.store.add_message(
        ctx.store.well_known["drafts"],
        subject=str(fields.get("subject") or ""),
        body=content,
        body_type=body_type,
        sender=ctx.store.owner,
        to=parse_recipients(fields.get("toRecipients")),
        is_read=True,
        is_draft=True,
        attachments=[parse_attachment(a, now) for a in fields.get("attachments") or []],
        headers=_thread_headers(parent),
    )
    out = {"@odata.context": ctx.context(request, "messages/$entity"), **ctx.render(draft)}
    return _json(out, status=201, headers=ctx.prefs.headers())


async def send_draft(request: Request) -> Response:
    """``send`` a draft: it goes out like ``sendMail`` and leaves Drafts."""
    ctx = _mail(request, permission="Mail.Send")
    draft = _message_in_scope(ctx, request)
    if not draft.is_draft:
        raise errors.BadRequest("Only a draft can be sent.")
    view = draft.view(ctx.store.key, (False, False, False))
    fields = {
        key: view[key]
        for key in ("subject", "body", "toRecipients", "ccRecipients", "bccRecipients", "replyTo")
    }
    fields["attachments"] = [a.view() for a in draft.attachments]
    custom = [(n, v) for n, v in draft.headers if n.lower().startswith("x-")]
    fields["internetMessageHeaders"] = [{"name": n, "value": v} for n, v in custom]
    thread = [(n, v) for n, v in draft.headers if n.lower() in ("in-reply-to", "references")]
    ctx.backend.send(ctx.store, fields, save_to_sent_items=True, thread_headers=thread)
    ctx.store.delete_message(draft)
    return Response(status_code=202)


# -- attachments and raw content ------------------------------------------------------------


async def list_attachments(request: Request) -> Response:
    """A message's attachments (``$select`` supported; files carry ``contentBytes``)."""
    ctx = _mail(request)
    query = ODataQuery.from_request(
        request,
        allowed={"select", "top", "skip", "filter", "count"},
        entity="attachment",
        properties=ATTACHMENT_PROPERTIES,
    )
    message = _message_in_scope(ctx, request)
    views = [a.view() for a in message.attachments]
    if query.filter is not None:
        predicate = compile_filter(query.filter)
        views = [v for v in views if predicate(v)]
    chunk, next_skip = page(views, query.top or len(views) or 1, query.skip)
    tail = f"messages('{request.path_params['message_id']}')/attachments"
    body = render_collection(
        ctx.context(request, tail),
        [select_fields(v, query.select) for v in chunk],
        next_link=next_link(request, **{"$skip": next_skip}) if next_skip is not None else None,
        count=len(views) if query.count else None,
    )
    return _collection(body, ctx.prefs.headers())


async def get_attachment(request: Request) -> Response:
    """One attachment by id."""
    ctx = _mail(request)
    query = ODataQuery.from_request(
        request, allowed={"select"}, entity="attachment", properties=ATTACHMENT_PROPERTIES
    )
    message = _message_in_scope(ctx, request)
    attachment = message.attachment(request.path_params["attachment_id"])
    tail = f"messages('{request.path_params['message_id']}')/attachments/$entity"
    return _json(
        {
            "@odata.context": ctx.context(request, tail),
            **select_fields(attachment.view(), query.select),
        }
    )


async def attachment_value(request: Request) -> Response:
    """A file attachment's raw bytes (``.../attachments/{id}/$value``)."""
    ctx = _mail(request)
    message = _message_in_scope(ctx, request)
    attachment = message.attachment(request.path_params["attachment_id"])
    if attachment.kind != "file":
        raise errors.BadRequest("Only file attachments have raw content.")
    return Response(
        attachment.content, media_type=attachment.content_type or "application/octet-stream"
    )


async def add_attachment(request: Request) -> Response:
    """Add an attachment to a draft (up to Graph's 4 MB request size)."""
    ctx = _mail(request, write=True)
    await _within_request_limit(request)
    message = _message_in_scope(ctx, request)
    attachment = parse_attachment(await json_body(request), ctx.store.now())
    ctx.store.add_attachment(message, attachment)
    tail = f"messages('{request.path_params['message_id']}')/attachments/$entity"
    return _json({"@odata.context": ctx.context(request, tail), **attachment.view()}, status=201)


async def delete_attachment(request: Request) -> Response:
    """Remove an attachment from a draft."""
    ctx = _mail(request, write=True)
    message = _message_in_scope(ctx, request)
    ctx.store.delete_attachment(message, message.attachment(request.path_params["attachment_id"]))
    return Response(status_code=204)


async def message_value(request: Request) -> Response:
    """The message as MIME (``GET .../messages/{id}/$value``)."""
    ctx = _mail(request)
    message = _message_in_scope(ctx, request)
    return Response(message.mime(), media_type="text/plain")


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
