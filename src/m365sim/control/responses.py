"""Control endpoints shared by every backend: reset, seed, request log, clock, config.

Backend-specific control endpoints (apps and secrets, mail delivery, faults, ...) live in
each backend's own ``control`` routes and are listed in ``docs/m365sim.md``.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response

from m365sim.graph.exceptions import BadRequest
from m365sim.http import JSONResponse, json_body, sim_state
from m365sim.latency import apply_latency_profile
from m365sim.seed import SeedError, load_seed


async def reset(request: Request) -> Response:
    """Forget every tenant, mailbox, log entry and fault (empty simulator)."""
    sim_state(request).reset()
    return Response(status_code=204)


async def seed(request: Request) -> Response:
    """Load a seed (JSON body, same shape as the YAML seed files); ``?reset=true`` first resets."""
    state = sim_state(request)
    data = await json_body(request)
    if request.query_params.get("reset", "false").lower() == "true":
        state.reset()
    try:
        tenants = load_seed(state, data)
    except (SeedError, KeyError, TypeError, ValueError) as exc:
        raise BadRequest(f"Seed rejected: {exc}") from exc
    return JSONResponse(
        {
            "tenants": [
                {"id": t.id, "displayName": t.display_name, "domains": t.domains} for t in tenants
            ]
        },
        status_code=201,
    )


async def requests_log(request: Request) -> Response:
    """The request log, oldest first; filters: method, path_contains, mailbox, app_id."""
    state = sim_state(request)
    params = request.query_params
    records = state.request_log
    if "method" in params:
        records = [r for r in records if r.method == params["method"].upper()]
    if "path_contains" in params:
        records = [r for r in records if params["path_contains"] in r.path]
    if "mailbox" in params:
        records = [r for r in records if r.mailbox == params["mailbox"]]
    if "app_id" in params:
        records = [r for r in records if r.app_id == params["app_id"]]
    return JSONResponse({"value": [r.as_json() for r in records], "count": len(records)})


async def clear_requests_log(request: Request) -> Response:
    """Empty the request log (e.g. before counting the requests of one operation)."""
    sim_state(request).request_log.clear()
    return Response(status_code=204)


async def clock(request: Request) -> Response:
    """GET: the simulator's now. POST ``{"advanceSeconds": n}``: move time forward."""
    state = sim_state(request)
    if request.method == "POST":
        body = await json_body(request)
        seconds = body.get("advanceSeconds")
        if not isinstance(seconds, int | float) or seconds < 0:
            raise BadRequest("advanceSeconds must be a non-negative number")
        state.clock.advance(timedelta(seconds=seconds))
    return JSONResponse(
        {"now": state.now().isoformat(), "offsetSeconds": state.clock.offset.total_seconds()}
    )


async def config(request: Request) -> Response:
    """GET the behaviour switches (``SimConfig``); PATCH some of them.

    ``{"latency_profile": "realistic" | "none"}`` sets every latency knob at once (applied
    before the other keys of the same body, so those can adjust it).
    """
    state = sim_state(request)
    known = {f.name: f.type for f in fields(state.config)}
    if request.method == "PATCH":
        body = await json_body(request)
        if not isinstance(body, dict):
            raise BadRequest("Expected a JSON object of settings.")
        profile = body.pop("latency_profile", None)
        if profile is not None:
            try:
                apply_latency_profile(state.config, str(profile))
            except ValueError as exc:
                raise BadRequest(str(exc)) from exc
        for key, value in body.items():
            if key not in known:
                raise BadRequest(f"Unknown setting {key!r}; known: {', '.join(sorted(known))}")
            current = getattr(state.config, key)
            if type(current) is bool and not isinstance(value, bool):
                raise BadRequest(f"{key} must be true or false")
            if type(current) is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise BadRequest(f"{key} must be an integer")
            if type(current) is float:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise BadRequest(f"{key} must be a number")
                value = float(value)
            if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
                raise BadRequest(f"{key} must not be negative")
            setattr(state.config, key, value)
    return JSONResponse({name: getattr(state.config, name) for name in known})
