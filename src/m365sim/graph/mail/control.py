"""Control endpoints and the seed section for mail: the world changing while the product syncs.

``/_sim/mailboxes/{user}/messages...`` deliver mail as if it arrived from outside, generate
large mailboxes, and move, update or delete items as the mailbox owner would in Outlook.
They need no token and bypass access policies; they publish the same change notifications
as Graph mutations (bulk generation excepted). ``{user}`` is a user id, UPN or address in
any sim tenant.
"""

from __future__ import annotations

import base64
import gc
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from m365sim.dates import parse_when
from m365sim.directory.models import Tenant, User
from m365sim.graph import exceptions as errors
from m365sim.graph.mail.attachments import Attachment, parse_attachment, parse_headers
from m365sim.graph.mail.backend import MailBackend
from m365sim.graph.mail.models import (
    MailSettings,
    MailStore,
    Message,
    parse_recipient,
    parse_recipients,
)
from m365sim.http import JSONResponse, json_body, sim_state
from m365sim.state import SimState


def _received(value: Any, now: datetime) -> datetime:
    """A message's ``receivedDateTime``: ISO 8601, or relative to now (``"-2d"``, ``"-3h"``)."""
    try:
        return parse_when(value, now)
    except (ValueError, TypeError) as exc:
        raise errors.BadRequest(f"'{str(value).strip()}' is not a date-time.") from exc


def _owner(state: SimState, key: str) -> tuple[Tenant, User]:
    found = state.find_user_anywhere(key)
    if found is None:
        raise errors.ErrorInvalidUser(f"The requested user '{key}' is invalid.")
    return found


def _store(request: Request) -> MailStore:
    state = sim_state(request)
    tenant, user = _owner(state, request.path_params["user"])
    return MailBackend(state).store(tenant, user)


def deliver_from_spec(store: MailStore, spec: dict[str, Any]) -> Message:
    """Put one message into a mailbox from a control/seed spec (see ``docs/m365sim/mail.md``)."""
    known = {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "body",
        "bodyType",
        "receivedDateTime",
        "folder",
        "internetMessageId",
        "conversationId",
        "isRead",
        "isDraft",
        "categories",
        "importance",
        "attachments",
        "internetMessageHeaders",
    }
    unknown = set(spec) - known
    if unknown:
        raise errors.BadRequest(f"Unknown message fields: {', '.join(sorted(unknown))}")
    body = str(spec.get("body", ""))
    body_type = str(spec.get("bodyType") or ("html" if "<" in body else "text"))
    sender = parse_recipient(spec["from"]) if spec.get("from") else None
    to = parse_recipients(spec.get("to")) if spec.get("to") is not None else [store.owner]
    received = (
        _received(spec["receivedDateTime"], store.now()) if spec.get("receivedDateTime") else None
    )
    return store.add_message(
        store.folder(str(spec.get("folder", "inbox"))),
        subject=str(spec.get("subject", "")),
        body=body,
        body_type=body_type,
        sender=sender,
        to=to,
        cc=parse_recipients(spec.get("cc")),
        bcc=parse_recipients(spec.get("bcc")),
        received=received,
        is_read=bool(spec.get("isRead", False)),
        is_draft=bool(spec.get("isDraft", False)),
        importance=str(spec.get("importance", "normal")),
        categories=[str(c) for c in spec.get("categories") or []],
        internet_message_id=spec.get("internetMessageId"),
        conversation_id=spec.get("conversationId"),
        attachments=[_attachment(a, store.now()) for a in spec.get("attachments") or []],
        headers=parse_headers(spec.get("internetMessageHeaders"), custom_only=False),
    )


def _attachment(raw: Any, now: datetime) -> Attachment:
    """A Graph attachment body; ``@odata.type`` defaults to a file, and a file may give
    ``content`` (text) or ``size`` (that many bytes) instead of ``contentBytes``."""
    if not isinstance(raw, dict):
        raise errors.BadRequest("Each attachment is an object.")
    spec = {"@odata.type": "#microsoft.graph.fileAttachment", **raw}
    if "contentBytes" not in spec and spec["@odata.type"].lower().endswith("fileattachment"):
        data = (
            str(spec.pop("content")).encode()
            if "content" in spec
            else b"x" * int(spec.pop("size", 0) or 0)
        )
        spec["contentBytes"] = base64.b64encode(data).decode()
    return parse_attachment(spec, now)


def generate_from_spec(store: MailStore, spec: dict[str, Any]) -> int:
    count = spec.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or not 0 < count <= 2_000_000:
        raise errors.BadRequest("count must be an integer between 1 and 2,000,000.")
    correspondents = spec.get("correspondents")
    return store.generate_messages(
        store.folder(str(spec.get("folder", "inbox"))),
        count,
        correspondents=[parse_recipient(c) for c in correspondents] if correspondents else None,
        days=float(spec.get("days", 30)),
        seed=int(spec.get("seed", 1)),
        read_ratio=float(spec.get("readRatio", 0.6)),
    )


def _summary(store: MailStore, message: Message) -> dict[str, Any]:
    view = message.view(store.key, (False, False, False))
    view["immutableId"] = message.id_for(True, store.key)
    view["folder"] = message.folder.well_known or message.folder.display_name
    return view


async def deliver(request: Request) -> Response:
    """Deliver a message into a mailbox, as mail from outside arrives."""
    store = _store(request)
    spec = await json_body(request)
    if not isinstance(spec, dict):
        raise errors.BadRequest("A message spec is a JSON object.")
    message = deliver_from_spec(store, spec)
    return JSONResponse(_summary(store, message), status_code=201)


BULK_MAILBOX = 1_000
"""From this many generated messages on, the heap is settled afterwards (``_settle_heap``)."""


def _settle_heap(state: SimState) -> None:
    """Take what is alive now (a bulk-generated mailbox, mostly) out of the cyclic garbage
    collector's sight: its full collections walk every tracked object, so without this a
    delta page served from a 50,000-message mailbox cost more than the same page from a
    5,000-message one. Collected first, so no garbage is kept; messages deleted later are
    still freed by reference counting, and a reset hands everything back to the collector
    (m365sim may share its process with its tests)."""
    gc.collect()
    gc.freeze()
    if gc.unfreeze not in state.reset_listeners:
        state.reset_listeners.append(gc.unfreeze)


async def generate(request: Request) -> Response:
    """Bulk-generate messages into a folder (no notifications; 100,000 in a few seconds)."""
    store = _store(request)
    spec = await json_body(request)
    if not isinstance(spec, dict):
        raise errors.BadRequest("A generate spec is a JSON object.")
    created = generate_from_spec(store, spec)
    if created >= BULK_MAILBOX:
        _settle_heap(sim_state(request))
    folder = store.folder(str(spec.get("folder", "inbox")))
    return JSONResponse({"created": created, "folderTotal": len(folder.messages)}, status_code=201)


async def list_messages(request: Request) -> Response:
    """List a mailbox's messages (``?folder=inbox`` to narrow), with both ids of each."""
    store = _store(request)
    folder_key = request.query_params.get("folder")
    if folder_key:
        messages = list(store.folder(folder_key).messages.values())
    else:
        messages = list(store.messages.values())
    limit = int(request.query_params.get("limit", "1000"))
    return JSONResponse(
        {"count": len(messages), "value": [_summary(store, m) for m in messages[:limit]]}
    )


async def update(request: Request) -> Response:
    """Update a message as its owner would (isRead, categories, flag, subject...)."""
    store = _store(request)
    message = store.message(request.path_params["message_id"])
    changes = await json_body(request)
    if not isinstance(changes, dict):
        raise errors.BadRequest("A change set is a JSON object.")
    if "subject" in changes or "body" in changes:
        # The owner may edit any item in Outlook; Graph only drafts. Allow it here.
        was_draft = message.is_draft
        message.is_draft = True
        try:
            store.update_message(message, changes)
        finally:
            message.is_draft = was_draft
            message.touch()
    else:
        store.update_message(message, changes)
    return JSONResponse(_summary(store, message))


async def move(request: Request) -> Response:
    """Move a message to another folder (``{"destination": "archive"}``)."""
    store = _store(request)
    message = store.message(request.path_params["message_id"])
    body = await json_body(request)
    destination = (
        body.get("destination") or body.get("destinationId") if isinstance(body, dict) else None
    )
    if not isinstance(destination, str):
        raise errors.BadRequest("destination is required.")
    store.move_message(message, store.folder(destination))
    return JSONResponse(_summary(store, message))


async def delete(request: Request) -> Response:
    """Delete a message (to Recoverable Items, as Graph's DELETE does)."""
    store = _store(request)
    store.delete_message(store.message(request.path_params["message_id"]))
    return Response(status_code=204)


async def outbound(request: Request) -> Response:
    """Mail sent to addresses outside every sim tenant (never delivered)."""
    log = MailBackend(sim_state(request)).outbound
    return JSONResponse({"value": [m.as_json() for m in log], "count": len(log)})


async def settings(request: Request) -> Response:
    """GET or PATCH the mail knobs (delta replay and page overlap counts, max page size)."""
    current = MailBackend(sim_state(request)).settings
    if request.method == "PATCH":
        body = await json_body(request)
        if not isinstance(body, dict):
            raise errors.BadRequest("Settings are a JSON object.")
        names = {
            "deltaReplayItems": "delta_replay_items",
            "deltaPageOverlap": "delta_page_overlap",
            "deltaMaxPageSize": "delta_max_page_size",
        }
        for key, value in body.items():
            if key not in names:
                raise errors.BadRequest(f"Unknown setting {key!r}; known: {', '.join(names)}")
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise errors.BadRequest(f"{key} must be a non-negative integer")
            setattr(current, names[key], value)
    return JSONResponse(_settings_json(current))


def _settings_json(current: MailSettings) -> dict[str, int]:
    return {
        "deltaReplayItems": current.delta_replay_items,
        "deltaPageOverlap": current.delta_page_overlap,
        "deltaMaxPageSize": current.delta_max_page_size,
    }


def seed_messages(state: SimState, tenant: Tenant, user: User, content: Any) -> None:
    """The ``messages:`` section of ``mailboxes.<address>`` in a seed file: a list whose
    entries are message specs (as ``POST /_sim/mailboxes/{user}/messages`` takes) or
    ``{generate: {count, folder, correspondents, days, seed}}``."""
    store = MailBackend(state).store(tenant, user)
    entries = content if isinstance(content, list) else [content]
    for entry in entries:
        if not isinstance(entry, dict):
            raise ValueError(f"mailboxes.{user.address}.messages: each entry is a mapping")
        if "generate" in entry:
            generate_from_spec(store, dict(entry["generate"]))
        else:
            deliver_from_spec(store, dict(entry))
