"""Microsoft Graph: Microsoft To Do (``/me/todo`` and ``/users/{id}/todo``) and its control API.

To Do is delegated-only for the product (``Tasks.Read``/``Tasks.ReadWrite``); app-only
callers are refused by ``m365sim.graph.auth``. ``delta`` answers with and without ``()``.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from m365sim.graph.routing import mailbox_routes
from m365sim.graph.todo import control, responses

_LIST = "/todo/lists/{list_id}"
_TASK = _LIST + "/tasks/{task_id}"


def _graph_routes() -> list[BaseRoute]:
    found: list[BaseRoute] = []
    found += mailbox_routes("/todo/lists", responses.list_lists, ["GET"])
    found += mailbox_routes("/todo/lists", responses.create_list, ["POST"])
    for suffix in ("/delta", "/delta()"):
        found += mailbox_routes(_LIST + "/tasks" + suffix, responses.tasks_delta, ["GET"])
    found += mailbox_routes(_LIST + "/tasks", responses.list_tasks, ["GET"])
    found += mailbox_routes(_LIST + "/tasks", responses.create_task, ["POST"])
    found += mailbox_routes(_TASK, responses.get_task, ["GET"])
    found += mailbox_routes(_TASK, responses.update_task, ["PATCH"])
    found += mailbox_routes(_TASK, responses.delete_task, ["DELETE"])
    found += mailbox_routes(_LIST, responses.get_list, ["GET"])
    found += mailbox_routes(_LIST, responses.update_list, ["PATCH"])
    found += mailbox_routes(_LIST, responses.delete_list, ["DELETE"])
    return found


_CONTROL = "/_sim/mailboxes/{user}/todo/lists"

routes: list[BaseRoute] = [
    *_graph_routes(),
    Route(_CONTROL, control.lists, methods=["GET", "POST"]),
    Route(_CONTROL + "/{list_id}/tasks", control.create_task, methods=["POST"]),
    Route(_CONTROL + "/{list_id}/tasks/{task_id}", control.update_task, methods=["PATCH"]),
    Route(_CONTROL + "/{list_id}/tasks/{task_id}", control.delete_task, methods=["DELETE"]),
    Route(
        _CONTROL + "/{list_id}/tasks/{task_id}/complete", control.complete_task, methods=["POST"]
    ),
]
