"""Microsoft To Do calls for Task Sync (delegated only: To Do has no application permission)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from m365sync.microsoft.delta import delta_pages
from m365sync.microsoft.graph import GraphClient, ItemCollection, Page

__all__ = ["default_list_id", "list_id_from_link", "task_delta", "todo_tasks"]

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


def todo_tasks(graph: GraphClient, user_path: str, list_id: str) -> ItemCollection:
    """The tasks of one To Do list."""
    return ItemCollection(graph, f"{user_path}/todo/lists/{list_id}/tasks")
