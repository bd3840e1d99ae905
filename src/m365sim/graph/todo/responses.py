"""Graph To Do routes: ``/todo/lists`` and ``/todo/lists/{id}/tasks`` (+ ``delta``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from m365sim.graph import delta, odata
from m365sim.graph.auth import resolve_mailbox
from m365sim.graph.exceptions import SyncStateNotFound
from m365sim.graph.routing import user_key
from m365sim.graph.todo.backend import TodoBackend
from m365sim.graph.todo.exceptions import TodoInvalidRequest
from m365sim.graph.todo.models import TASK_PROPERTIES, DeltaState
from m365sim.http import JSONResponse, json_body, sim_state

DEFAULT_PAGE = 100
LIST_PROPERTIES = frozenset({"id", "displayName", "isOwner", "isShared", "wellknownListName"})


def _backend(request: Request) -> TodoBackend:
    return TodoBackend(sim_state(request))


def _page_size(request: Request, query: odata.ODataQuery | None = None) -> int:
    if query is not None and query.top is not None:
        return query.top
    raw = odata.parse_prefer(request).get("odata.maxpagesize")
    return min(int(raw), 1000) if raw and raw.isdigit() and int(raw) > 0 else DEFAULT_PAGE


def _context(request: Request, owner_id: str, tail: str) -> str:
    return odata.metadata_url(request, f"users('{owner_id}')/todo/{tail}")


def _object(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise TodoInvalidRequest("The request body must be a JSON object.")
    return raw


def _collection(
    request: Request, items: list[dict[str, Any]], query: odata.ODataQuery, context: str
) -> Response:
    if query.filter is not None:
        items = odata.apply_filter(items, query.filter, lambda i: i)
    if query.orderby:
        items = odata.apply_orderby(items, query.orderby, lambda i: i)
    chunk, next_skip = odata.page(items, _page_size(request, query), query.skip)
    payload: dict[str, Any] = {"@odata.context": context}
    if query.count:
        payload["@odata.count"] = len(items)
    payload["value"] = [odata.select_fields(i, query.select) for i in chunk]
    if next_skip is not None:
        payload["@odata.nextLink"] = odata.next_link(request, **{"$skip": next_skip})
    return JSONResponse(payload)


# -- lists ----------------------------------------------------------------------------------


async def list_lists(request: Request) -> Response:
    caller, owner = resolve_mailbox(request, user_key(request), "Tasks")
    query = odata.ODataQuery.from_request(
        request, entity="todoTaskList", properties=LIST_PROPERTIES
    )
    store = _backend(request).store(caller.tenant, owner)
    items = [t.as_json() for t in store.lists.values()]
    return _collection(request, items, query, _context(request, owner.id, "lists"))


async def create_list(request: Request) -> Response:
    caller, owner = resolve_mailbox(request, user_key(request), "Tasks", write=True)
    body = _object(await json_body(request))
    created = (
        _backend(request).store(caller.tenant, owner).add_list(str(body.get("displayName") or ""))
    )
    return JSONResponse(
        {"@odata.context": _context(request, owner.id, "lists/$entity"), **created.as_json()},
        status_code=201,
    )


async def get_list(request: Request) -> Response:
    caller, owner = resolve_mailbox(request, user_key(request), "Tasks")
    found = _backend(request).store(caller.tenant, owner).task_list(request.path_params["list_id"])
    return JSONResponse(
        {"@odata.context": _context(request, owner.id, "lists/$entity"), **found.as_json()}
    )


async def update_list(request: Request) -> Response:
    caller, owner = resolve_mailbox(request, user_key(request), "Tasks", write=True)
    body = _object(await json_body(request))
    store = _backend(request).store(caller.tenant, owner)
    found = store.rename_list(request.path_params["list_id"], str(body.get("displayName") or ""))
    return JSONResponse(found.as_json())


async def delete_list(request: Request) -> Response:
    caller, owner = resolve_mailbox(request, user_key(request), "Tasks", write=True)
    _backend(request).store(caller.tenant, owner).delete_list(request.path_params["list_id"])
    return Response(status_code=204)


# -- tasks ----------------------------------------------------------------------------------


async def list_tasks(request: Request) -> Response:
    caller, owner = resolve_mailbox(request, user_key(request), "Tasks")
    query = odata.ODataQuery.from_request(request, entity="todoTask", properties=TASK_PROPERTIES)
    store = _backend(request).store(caller.tenant, owner)
    list_id = request.path_params["list_id"]
    items = [t.as_json() for t in store.list_tasks(list_id)]
    return _collection(
        request, items, query, _context(request, owner.id, f"lists('{list_id}')/tasks")
    )


async def create_task(request: Request) -> Response:
    caller, owner = resolve_mailbox(request, user_key(request), "Tasks", write=True)
    body = _object(await json_body(request))
    list_id = request.path_params["list_id"]
    task = _backend(request).create_task(caller.tenant, owner, list_id, body)
    return JSONResponse(
        {
            "@odata.context": _context(request, owner.id, f"lists('{list_id}')/tasks/$entity"),
            **task.as_json(),
        },
        status_code=201,
    )


async def get_task(request: Request) -> Response:
    caller, owner = resolve_mailbox(request, user_key(request), "Tasks")
    query = odata.ODataQuery.from_request(
        request, allowed=("select",), entity="todoTask", properties=TASK_PROPERTIES
    )
    list_id = request.path_params["list_id"]
    task = (
        _backend(request).store(caller.tenant, owner).task(list_id, request.path_params["task_id"])
    )
    payload = {
        "@odata.context": _context(request, owner.id, f"lists('{list_id}')/tasks/$entity"),
        **task.as_json(),
    }
    return JSONResponse(odata.select_fields(payload, query.select))


async def update_task(request: Request) -> Response:
    caller, owner = resolve_mailbox(request, user_key(request), "Tasks", write=True)
    body = _object(await json_body(request))
    task = _backend(request).update_task(
        caller.tenant, owner, request.path_params["list_id"], request.path_params["task_id"], body
    )
    return JSONResponse(task.as_json())


async def delete_task(request: Request) -> Response:
    caller, owner = resolve_mailbox(request, user_key(request), "Tasks", write=True)
    _backend(request).delete_task(
        caller.tenant, owner, request.path_params["list_id"], request.path_params["task_id"]
    )
    return Response(status_code=204)


async def tasks_delta(request: Request) -> Response:
    """``tasks/delta``: pages by ``$skiptoken``, a round ends with a ``$deltatoken``."""
    caller, owner = resolve_mailbox(request, user_key(request), "Tasks")
    odata.ODataQuery.from_request(request, allowed=("skiptoken", "deltatoken", "top", "select"))
    params = {k.lstrip("$").lower(): v for k, v in request.query_params.items()}
    state = sim_state(request)
    now = state.now()
    lifetime = delta.token_lifetime(state)
    store = _backend(request).store(caller.tenant, owner)
    list_id = store.task_list(request.path_params["list_id"]).id
    offset = 0
    current: DeltaState
    if "skiptoken" in params:
        ident, offset = delta.decode_token(params["skiptoken"], "p")
        current = store.round(ident, now, lifetime)
    elif "deltatoken" in params:
        ident, _ = delta.decode_token(params["deltatoken"], "d")
        point = store.point(ident, now, lifetime)
        if point.list_id != list_id:
            raise SyncStateNotFound()
        current = store.resume_round(point, now)
    else:
        current = store.start_round(list_id, now)
    size = int(params["top"]) if params.get("top", "").isdigit() else _page_size(request)
    chunk = current.entries[offset : offset + size]
    value: list[dict[str, Any]] = []
    tasks = store.tasks.get(list_id, {})
    for kind, task_id in chunk:
        if kind == "task" and task_id in tasks:
            value.append(tasks[task_id].as_json())
        else:
            value.append(
                {
                    "@odata.type": "#microsoft.graph.todoTask",
                    "id": task_id,
                    "@removed": {"reason": "deleted"},
                }
            )
    payload: dict[str, Any] = {
        "@odata.context": odata.metadata_url(request, "Collection(todoTask)")
    }
    if offset + size < len(current.entries):
        payload["@odata.nextLink"] = delta.skip_link(request, current.id, offset + size)
    else:
        payload["@odata.deltaLink"] = delta.delta_link(request, store.delta_point(current, now).id)
    payload["value"] = value
    return JSONResponse(payload)
