"""To Do control endpoints (``/_sim/mailboxes/{user}/todo/...``) and the ``todo:`` seed section.

They play the user working in the To Do app while the product syncs: creating, editing,
completing and deleting tasks. ``{list_id}`` may be ``default`` for the "Tasks" list.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from m365sim.dates import parse_when, utc_date_time_tz
from m365sim.directory.models import Tenant, User
from m365sim.graph.exceptions import BadRequest
from m365sim.graph.routing import control_user
from m365sim.graph.todo.backend import TodoBackend
from m365sim.http import JSONResponse, json_body, sim_state
from m365sim.state import SimState

__all__ = ["seed_todo"]


async def _object(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    return body


async def lists(request: Request) -> Response:
    tenant, user = control_user(request)
    store = TodoBackend(sim_state(request)).store(tenant, user)
    if request.method == "POST":
        body = await _object(request)
        return JSONResponse(
            store.add_list(str(body.get("displayName") or "")).as_json(), status_code=201
        )
    return JSONResponse({"value": [t.as_json() for t in store.lists.values()]})


async def create_task(request: Request) -> Response:
    tenant, user = control_user(request)
    body = _seed_dates(await _object(request), sim_state(request).now())
    task = TodoBackend(sim_state(request)).create_task(
        tenant, user, request.path_params["list_id"], body
    )
    return JSONResponse(task.as_json(), status_code=201)


async def update_task(request: Request) -> Response:
    tenant, user = control_user(request)
    body = _seed_dates(await _object(request), sim_state(request).now())
    task = TodoBackend(sim_state(request)).update_task(
        tenant, user, request.path_params["list_id"], request.path_params["task_id"], body
    )
    return JSONResponse(task.as_json())


async def complete_task(request: Request) -> Response:
    tenant, user = control_user(request)
    task = TodoBackend(sim_state(request)).update_task(
        tenant,
        user,
        request.path_params["list_id"],
        request.path_params["task_id"],
        {"status": "completed"},
    )
    return JSONResponse(task.as_json())


async def delete_task(request: Request) -> Response:
    tenant, user = control_user(request)
    TodoBackend(sim_state(request)).delete_task(
        tenant, user, request.path_params["list_id"], request.path_params["task_id"]
    )
    return Response(status_code=204)


def _seed_dates(body: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Date properties may be Graph's ``{dateTime, timeZone}`` or ``"+3d"``/ISO strings."""
    out = dict(body)
    for key in ("dueDateTime", "startDateTime", "reminderDateTime", "completedDateTime"):
        value = out.get(key)
        if value is None or isinstance(value, dict):
            continue
        out[key] = utc_date_time_tz(parse_when(value, now))
    return out


def seed_todo(state: SimState, tenant: Tenant, user: User, content: Any) -> None:
    """``todo:`` — a list of tasks for the default list, or
    ``{tasks: [...], lists: [{displayName, tasks: [...]}]}``."""
    backend = TodoBackend(state)
    store = backend.store(tenant, user)
    now = state.now()
    if isinstance(content, list):
        content = {"tasks": content}
    if not isinstance(content, dict):
        raise ValueError(f"mailboxes.{user.address}.todo must be a list of tasks or a mapping")
    for task in content.get("tasks") or []:
        backend.create_task(tenant, user, store.default_list.id, _seed_dates(dict(task), now))
    for spec in content.get("lists") or []:
        created = store.add_list(str(spec["displayName"]))
        for task in spec.get("tasks") or []:
            backend.create_task(tenant, user, created.id, _seed_dates(dict(task), now))
