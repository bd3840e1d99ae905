"""Control endpoints: reset, seed, request log, clock, config, org, sessions, records and
lead conversion. Errors use Salesforce's REST shape (``INVALID_INPUT``)."""

from __future__ import annotations

from dataclasses import fields
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import Response

from sfsim.data import exceptions as err
from sfsim.data.values import format_value
from sfsim.http import JSONResponse, json_body, sf_state
from sfsim.seed import SeedError, load_seed


async def reset(request: Request) -> Response:
    """Empty the org: no users, apps, records, sessions, log entries, usage or faults."""
    sf_state(request).reset()
    return Response(status_code=204)


async def seed(request: Request) -> Response:
    """Load a seed (JSON, the shape of the YAML seeds); ``?reset=true`` resets first."""
    state = sf_state(request)
    data = await json_body(request)
    if not isinstance(data, dict):
        raise err.InvalidInput("Expected a JSON object (a seed).")
    if request.query_params.get("reset", "false").lower() == "true":
        state.reset()
    try:
        load_seed(state, data)
    except SeedError as exc:
        raise err.InvalidInput(f"Seed rejected: {exc}") from exc
    return JSONResponse(_org(request), status_code=201)


def _org(request: Request) -> dict[str, object]:
    state = sf_state(request)
    used, maximum = state.api_usage()
    return {
        "id": state.org.id,
        "name": state.org.name,
        "myDomain": state.org.my_domain_host,
        "sandbox": state.org.sandbox,
        "loginHost": state.org.login_host,
        "enhancedEmail": state.org.enhanced_email,
        "instanceUrl": state.base_url,
        "apiUsage": {"used": used, "max": maximum},
        "connectedApps": [app.as_json() for app in state.auth.apps.values()],
        "users": [
            {"id": u["Id"], "username": u["Username"], "active": u["IsActive"]}
            for u in state.records.live("User")
        ],
    }


async def org(request: Request) -> Response:
    """Who the org is, its API usage, connected apps and users."""
    return JSONResponse(_org(request))


async def requests_log(request: Request) -> Response:
    """The request log, oldest first; filters ``method``, ``path_contains``, ``app``."""
    state = sf_state(request)
    params = request.query_params
    records = state.request_log
    if "method" in params:
        records = [r for r in records if r.method == params["method"].upper()]
    if "path_contains" in params:
        records = [r for r in records if params["path_contains"] in r.path]
    if "app" in params:
        records = [r for r in records if r.app == params["app"]]
    return JSONResponse({"value": [r.as_json() for r in records], "count": len(records)})


async def clear_requests_log(request: Request) -> Response:
    """Empty the request log."""
    sf_state(request).request_log.clear()
    return Response(status_code=204)


async def clock(request: Request) -> Response:
    """GET: the org's now. POST ``{"advanceSeconds": n}``: move time forward."""
    state = sf_state(request)
    if request.method == "POST":
        body = await json_body(request) or {}
        seconds = body.get("advanceSeconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise err.InvalidInput("advanceSeconds must be a non-negative number")
        state.clock.advance(timedelta(seconds=seconds))
    return JSONResponse(
        {"now": state.now().isoformat(), "offsetSeconds": state.clock.offset.total_seconds()}
    )


async def config(request: Request) -> Response:
    """GET the behaviour switches (``SfConfig``); PATCH some of them."""
    state = sf_state(request)
    known = [f.name for f in fields(state.config)]
    if request.method == "PATCH":
        body = await json_body(request) or {}
        for key, value in body.items():
            if key not in known:
                raise err.InvalidInput(f"Unknown setting {key!r}; known: {', '.join(known)}")
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise err.InvalidInput(f"{key} must be a non-negative integer")
            setattr(state.config, key, value)
            if key == "latency_seed":
                import random

                state.latency_rng = random.Random(value)  # noqa: S311 - not security
    return JSONResponse({name: getattr(state.config, name) for name in known})


async def expire_sessions(request: Request) -> Response:
    """End every session now: the next REST call answers 401 ``INVALID_SESSION_ID``."""
    ended = sf_state(request).auth.expire_sessions()
    return JSONResponse({"expired": ended})


async def records(request: Request) -> Response:
    """Every record of one object, deleted ones included (``IsDeleted``), oldest first."""
    state = sf_state(request)
    obj = state.records.object(str(request.path_params["sobject"]))
    rows = [
        {name: format_value(value) for name, value in record.items() if not name.startswith("_")}
        for record in state.records.all(obj.name)
    ]
    return JSONResponse({"value": rows, "count": len(rows)})


async def convert_lead(request: Request) -> Response:
    """Convert a lead as a user would in Salesforce: creates (or uses ``accountId``) an
    Account, a Contact and, unless ``createOpportunity`` is false, an Opportunity."""
    state = sf_state(request)
    body = await json_body(request) or {}
    owner = next(iter(state.records.live("User")), None)
    if owner is None:
        raise err.InvalidInput("The org has no users; seed one first.")
    converted = state.records.convert_lead(
        str(request.path_params["lead_id"]),
        user_id=owner["Id"],
        account_id=body.get("accountId"),
        create_opportunity=bool(body.get("createOpportunity", True)),
    )
    return JSONResponse(
        {
            "leadId": converted["Id"],
            "accountId": converted["ConvertedAccountId"],
            "contactId": converted["ConvertedContactId"],
            "opportunityId": converted["ConvertedOpportunityId"],
        }
    )
