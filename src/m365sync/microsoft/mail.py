"""Mail calls for Email Sync: message delta per folder, asking only for what is stored."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from m365sync.microsoft.delta import delta_pages
from m365sync.microsoft.graph import TEXT_BODY_PREFERENCE, GraphClient, Page

__all__ = [
    "FILTERED_DELTA_LIMIT",
    "HEADER_FIELDS",
    "MESSAGE_FIELDS",
    "attachment_lists",
    "count_received_since",
    "message_delta",
]

HEADER_FIELDS = (
    "id",
    "internetMessageId",
    "subject",
    "from",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "receivedDateTime",
    "sentDateTime",
    "isDraft",
    "conversationId",
    "hasAttachments",
)
MESSAGE_FIELDS = (*HEADER_FIELDS, "body")
FILTERED_DELTA_LIMIT = 5000
"""Graph: "Applying $filter in a delta query returns only up to 5,000 messages"."""


def _received_since(since: datetime) -> str:
    return f"receivedDateTime ge {since.strftime('%Y-%m-%dT%H:%M:%SZ')}"


async def count_received_since(
    graph: GraphClient, user_path: str, folder: str, since: datetime
) -> int | None:
    """How many messages of ``folder`` were received since ``since``: one small request
    (``$count=true`` on the folder's message list with the window's ``$filter``, one
    ``id`` returned). None when the answer carries no ``@odata.count``."""
    data = await graph.get_json(
        f"{user_path}/mailFolders/{folder}/messages",
        params={
            "$filter": _received_since(since),
            "$count": "true",
            "$top": 1,
            "$select": "id",
        },
    )
    count = data.get("@odata.count")
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def message_delta(
    graph: GraphClient,
    user_path: str,
    folder: str,
    *,
    cursor: str | None,
    since: datetime | None,
    headers_only: bool,
    page_size: int,
) -> AsyncIterator[Page]:
    """One delta round of a mail folder. A first round (no cursor) is limited to messages
    received since ``since`` (the backfill window); bodies come as plain text."""
    params: dict[str, str | int] = {
        "$select": ",".join(HEADER_FIELDS if headers_only else MESSAGE_FIELDS)
    }
    if since is not None:
        params["$filter"] = _received_since(since)
    return delta_pages(
        graph,
        initial_path=f"{user_path}/mailFolders/{folder}/messages/delta",
        params=params,
        cursor=cursor,
        page_size=page_size,
        prefer=[TEXT_BODY_PREFERENCE],
    )


ATTACHMENT_FIELDS = "name,contentType,size,isInline"


async def attachment_lists(
    graph: GraphClient, user_path: str, item_ids: Sequence[str]
) -> list[list[dict[str, Any]] | None]:
    """The attachments (name, type, size, inline or not; never the content) of each
    message, in the order of ``item_ids``, fetched 20 messages to a ``$batch``. None for a
    message that is gone."""
    paths = [
        f"{user_path}/messages/{quote(item_id, safe='')}/attachments?$select={ATTACHMENT_FIELDS}"
        for item_id in item_ids
    ]
    bodies = await graph.batch_get(paths)
    out: list[list[dict[str, Any]] | None] = []
    for body in bodies:
        if body is None:
            out.append(None)
            continue
        value = body.get("value")
        out.append([a for a in value if isinstance(a, dict)] if isinstance(value, list) else [])
    return out
