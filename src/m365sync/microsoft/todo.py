"""Microsoft To Do calls for Task Sync (delegated only: To Do has no application permission)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from m365sync.microsoft.delta import delta_pages
from m365sync.microsoft.graph import GraphClient, Page

__all__ = [
    "create_task",
    "default_list_id",
    "delete_task",
    "list_id_from_link",
    "task_delta",
    "update_task",
]

_LIST_IN_LINK = re.compile(r"/todo/lists/([^/?]+)/tasks")


async def default_list_id(graph: GraphClient, user_path: str) -> str:
    """The id of the default "Tasks" list (``wellknownListName`` ``defaultList``)."""
    lists, _ = await graph.get_paged(f"{user_path}/todo/lists")
    for item in lists:
        if item.get("wellknownListName") == "defaultList":
            return str(item["id"])
    if not lists:
        raise LookupError("the mailbox has no To Do lists")
    return str(lists[0]["id"])


def list_id_from_link(link: str) -> str | None:
    found = _LIST_IN_LINK.search(link)
    return found.group(1) if found else None


def task_delta(
    graph: GraphClient, user_path: str, list_id: str, *, cursor: str | None
) -> AsyncIterator[Page]:
    return delta_pages(
        graph,
        initial_path=f"{user_path}/todo/lists/{list_id}/tasks/delta",
        params=None,
        cursor=cursor,
        page_size=100,
    )


async def create_task(
    graph: GraphClient, user_path: str, list_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    return await graph.post_json(f"{user_path}/todo/lists/{list_id}/tasks", body)


async def update_task(
    graph: GraphClient, user_path: str, list_id: str, task_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    return await graph.patch_json(f"{user_path}/todo/lists/{list_id}/tasks/{task_id}", body)


async def delete_task(graph: GraphClient, user_path: str, list_id: str, task_id: str) -> None:
    await graph.delete(f"{user_path}/todo/lists/{list_id}/tasks/{task_id}")
