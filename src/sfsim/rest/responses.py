"""REST API routes: each parses the request, calls the ``RecordStore`` or the SOQL
engine, and answers in Salesforce's JSON. Every answer under ``/services/data/vXX.X``
carries ``Sforce-Limit-Info`` (added by ``sfsim.app``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sfsim.data import exceptions as err
from sfsim.data.models import Record
from sfsim.data.values import format_datetime, parse_datetime
from sfsim.http import Caller, JSONResponse, json_body, sf_state
from sfsim.ids import make_id
from sfsim.rest.auth import require_session
from sfsim.rest.versions import VERSIONS, listing
from sfsim.schema.fields import ObjectDef
from sfsim.schema.standard import QUERY_LOCATOR_PREFIX
from sfsim.soql import parse, run_query
from sfsim.state import SfState

DEFAULT_BATCH_SIZE = 2000
MIN_BATCH_SIZE = 200
UPDATED_WINDOW = timedelta(days=30)
DELETED_WINDOW = timedelta(days=15)


def version(request: Request) -> str:
    value = str(request.path_params.get("version", ""))
    if value not in VERSIONS:
        raise err.NotFound()
    return value


def sobject(request: Request) -> ObjectDef:
    return sf_state(request).records.object(str(request.path_params["sobject"]))


def allow_duplicates(request: Request) -> bool:
    header = request.headers.get("sforce-duplicate-rule-header", "").replace(" ", "").lower()
    return "allowsave=true" in header


async def body_object(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise err.JsonParserError(
            "Cannot deserialize instance of sObject from START_ARRAY value [line:1, column:1]"
            if isinstance(body, list)
            else "The request body is missing or is not a JSON object."
        )
    return body


# -- discovery ------------------------------------------------------------------------------


async def versions(request: Request) -> Response:
    """Every API version this org answers on (no session needed)."""
    return JSONResponse(listing())


async def resources(request: Request) -> Response:
    """The resources of one API version."""
    require_session(request)
    v = version(request)
    base = f"/services/data/v{v}"
    names = ["sobjects", "query", "queryAll", "composite", "limits"]
    return JSONResponse({name: f"{base}/{name}" for name in names})


async def limits(request: Request) -> Response:
    """The org's limits: ``DailyApiRequests`` (rolling 24 hours), ``DataStorageMB``, ..."""
    require_session(request)
    version(request)
    state = sf_state(request)
    used, maximum = state.api_usage()
    storage = state.config.data_storage_mb
    return JSONResponse(
        {
            "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
            "DailyApiRequests": {"Max": maximum, "Remaining": max(0, maximum - used)},
            "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
            "DataStorageMB": {
                "Max": storage,
                "Remaining": max(0, storage - state.records.storage_used_mb()),
            },
            "FileStorageMB": {"Max": 10240, "Remaining": 10240},
            "SingleEmail": {"Max": 5000, "Remaining": 5000},
        }
    )


# -- describe -------------------------------------------------------------------------------


async def describe_global(request: Request) -> Response:
    """Every sObject type of the org (global describe)."""
    require_session(request)
    v = version(request)
    state = sf_state(request)
    return JSONResponse(
        {
            "encoding": "UTF-8",
            "maxBatchSize": 200,
            "sobjects": [obj.summary(v) for obj in state.records.schema.objects.values()],
        }
    )


async def describe(request: Request) -> Response:
    """Full describe of one sObject: fields with type, externalId, unique, nillable, picklists."""
    require_session(request)
    v = version(request)
    return JSONResponse(sobject(request).describe(v))


# -- rows -----------------------------------------------------------------------------------


def save_result(record_id: str | None, *, created: bool | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"id": record_id, "success": True, "errors": []}
    if created is not None:
        result["created"] = created
    return result


async def sobject_root(request: Request) -> Response:
    """GET: the object's basic information. POST: create a record (201 with its id)."""
    caller = require_session(request)
    v = version(request)
    obj = sobject(request)
    state = sf_state(request)
    if request.method == "GET":
        return JSONResponse({"objectDescribe": obj.summary(v), "recentItems": []})
    body = await body_object(request)
    record = state.records.insert(
        obj, body, user_id=caller.user_id, allow_duplicates=allow_duplicates(request)
    )
    return JSONResponse(save_result(record["Id"]), status_code=201)


def _fields_param(request: Request) -> list[str] | None:
    raw = request.query_params.get("fields")
    return [f.strip() for f in raw.split(",") if f.strip()] if raw else None


async def row(request: Request) -> Response:
    """GET (``?fields=``), PATCH (update, 204) or DELETE (204) one record by id."""
    caller = require_session(request)
    v = version(request)
    obj = sobject(request)
    state = sf_state(request)
    record_id = str(request.path_params["record_id"])
    if request.method == "GET":
        record = state.records.get(obj, record_id)
        return JSONResponse(state.records.render(obj, record, v, _fields_param(request)))
    if request.method == "PATCH":
        body = await body_object(request)
        state.records.update(
            obj, record_id, body, user_id=caller.user_id, allow_duplicates=allow_duplicates(request)
        )
        return Response(status_code=204)
    state.records.delete(obj, record_id, user_id=caller.user_id)
    return Response(status_code=204)


def _multiple_choices(obj: ObjectDef, matches: list[Record], v: str) -> Response:
    return JSONResponse(
        [f"/services/data/v{v}/sobjects/{obj.name}/{m['Id']}" for m in matches], status_code=300
    )


async def external_id_row(request: Request) -> Response:
    """Upsert (PATCH: 201 created / 200 updated), GET or DELETE by an external id field."""
    caller = require_session(request)
    v = version(request)
    obj = sobject(request)
    state = sf_state(request)
    field_name = str(request.path_params["field"])
    value = str(request.path_params["value"])
    definition = state.records.external_id_field(obj, field_name)
    matches = state.records.find_by(obj, definition, value)
    if len(matches) > 1:
        return _multiple_choices(obj, matches, v)
    if request.method == "GET":
        if not matches:
            raise err.NotFound()
        return JSONResponse(state.records.render(obj, matches[0], v, _fields_param(request)))
    if request.method == "DELETE":
        if not matches:
            raise err.NotFound()
        state.records.delete(obj, matches[0]["Id"], user_id=caller.user_id)
        return Response(status_code=204)
    body = await body_object(request)
    record, created = state.records.upsert(
        obj,
        definition.name,
        value,
        body,
        user_id=caller.user_id,
        allow_duplicates=allow_duplicates(request),
    )
    return JSONResponse(
        save_result(record["Id"], created=created), status_code=201 if created else 200
    )


# -- SOQL -----------------------------------------------------------------------------------


@dataclass
class Cursor:
    rows: list[dict[str, Any]]
    total_size: int
    include_deleted: bool
    version: str
    expires_at: datetime


def _cursors(state: SfState) -> dict[str, Cursor]:
    return state.extension("query_cursors", dict)


def _batch_size(request: Request) -> int:
    options = request.headers.get("sforce-query-options", "")
    for option in options.split(","):
        key, _, value = option.strip().partition("=")
        if key.strip().lower() == "batchsize" and value.strip().isdigit():
            return max(MIN_BATCH_SIZE, min(DEFAULT_BATCH_SIZE, int(value)))
    return DEFAULT_BATCH_SIZE


def _page(state: SfState, locator: str, cursor: Cursor, start: int, size: int) -> dict[str, Any]:
    end = min(len(cursor.rows), start + size)
    done = end >= len(cursor.rows)
    page: dict[str, Any] = {"totalSize": cursor.total_size, "done": done}
    if done:
        _cursors(state).pop(locator, None)
    else:
        endpoint = "queryAll" if cursor.include_deleted else "query"
        page["nextRecordsUrl"] = f"/services/data/v{cursor.version}/{endpoint}/{locator}-{end}"
        cursor.expires_at = state.now() + timedelta(
            seconds=state.config.query_locator_timeout_seconds
        )
    page["records"] = cursor.rows[start:end]
    return page


async def query(request: Request) -> Response:
    """Run a SOQL query (``?q=``); pages of 2,000 rows (``Sforce-Query-Options: batchSize``)."""
    return await _query(request, include_deleted=False)


async def query_all(request: Request) -> Response:
    """``queryAll``: like ``query``, with deleted records (``IsDeleted = true``) included."""
    return await _query(request, include_deleted=True)


async def _query(request: Request, *, include_deleted: bool) -> Response:
    require_session(request)
    v = version(request)
    state = sf_state(request)
    text = request.query_params.get("q")
    if text is None or not text.strip():
        raise err.MalformedQuery("unexpected token: <EOF>")
    parsed = parse(text)
    result = run_query(
        state.records, text, parsed, version=v, include_deleted=include_deleted, now=state.now()
    )
    if parsed.count_only:
        return JSONResponse({"totalSize": result.total_size, "done": True, "records": []})
    state.records.sequence += 1
    locator = make_id(QUERY_LOCATOR_PREFIX, state.records.sequence)
    cursor = Cursor(
        result.rows,
        result.total_size,
        include_deleted,
        v,
        state.now() + timedelta(seconds=state.config.query_locator_timeout_seconds),
    )
    _cursors(state)[locator] = cursor
    return JSONResponse(_page(state, locator, cursor, 0, _batch_size(request)))


async def query_more(request: Request) -> Response:
    """The next page of a query, from its ``nextRecordsUrl``."""
    require_session(request)
    version(request)
    state = sf_state(request)
    locator, _, start_text = str(request.path_params["locator"]).rpartition("-")
    cursor = _cursors(state).get(locator)
    include_deleted = request.url.path.split("/")[4] == "queryAll"
    if (
        cursor is None
        or not start_text.isdigit()
        or cursor.expires_at <= state.now()
        or cursor.include_deleted != include_deleted
        or int(start_text) >= len(cursor.rows)
    ):
        _cursors(state).pop(
            locator, None
        ) if cursor is not None and cursor.expires_at <= state.now() else None
        raise err.InvalidQueryLocator()
    return JSONResponse(_page(state, locator, cursor, int(start_text), _batch_size(request)))


# -- change polling -------------------------------------------------------------------------


def _window(request: Request, state: SfState, limit: timedelta) -> tuple[datetime, datetime]:
    raw_start = request.query_params.get("start")
    raw_end = request.query_params.get("end")
    if raw_start is None or raw_end is None:
        raise err.MissingArgument(
            f"Missing required parameter: {'start' if raw_start is None else 'end'}"
        )
    start = parse_datetime(raw_start.replace(" ", "+"))
    end = parse_datetime(raw_end.replace(" ", "+"))
    if start is None or end is None:
        raise err.InvalidDateFormat(
            f"Unable to parse date: {raw_start if start is None else raw_end}"
        )
    # Salesforce ignores the seconds of both ends.
    start = start.replace(second=0, microsecond=0)
    end = end.replace(second=0, microsecond=0)
    if start >= end:
        raise err.InvalidReplicationDate("startDate must chronologically precede endDate")
    now = state.now()
    if start < now - limit:
        raise err.InvalidReplicationDate(f"startDate cannot be more than {limit.days} days ago")
    return start, min(end, now.replace(second=0, microsecond=0))


def _within_id_limit(state: SfState, found: int) -> None:
    """Salesforce refuses a window holding more ids than it answers at once (600,000,
    ``SfConfig.replication_id_limit``) and tells the caller to ask for a shorter one. The
    status and code are Salesforce's; its documentation quotes no message, so the wording
    is sfsim's."""
    limit = state.config.replication_id_limit
    if found > limit:
        raise err.ExceededIdLimit(
            f"More than {limit} ids were found for this time span. "
            "Choose start and end dates that are closer together."
        )


async def updated(request: Request) -> Response:
    """Ids of records created or changed in ``[start, end)`` (SystemModstamp; last 30 days).

    More than ``replication_id_limit`` of them: ``EXCEEDED_ID_LIMIT``."""
    require_session(request)
    version(request)
    state = sf_state(request)
    obj = sobject(request)
    start, end = _window(request, state, UPDATED_WINDOW)
    ids = [r["Id"] for r in state.records.live(obj.name) if start <= r["SystemModstamp"] < end]
    _within_id_limit(state, len(ids))
    return JSONResponse({"ids": ids, "latestDateCovered": format_datetime(end)})


async def deleted(request: Request) -> Response:
    """Records deleted in ``[start, end)`` (the recycle bin keeps them 15 days).

    More than ``replication_id_limit`` of them: ``EXCEEDED_ID_LIMIT``."""
    require_session(request)
    version(request)
    state = sf_state(request)
    obj = sobject(request)
    start, end = _window(request, state, DELETED_WINDOW)
    gone = [
        {"id": r["Id"], "deletedDate": format_datetime(r["_deleted_at"])}
        for r in state.records.all(obj.name)
        if r["IsDeleted"] and start <= r["_deleted_at"] < end
    ]
    _within_id_limit(state, len(gone))
    earliest = max(state.records.created_at, state.now() - DELETED_WINDOW).replace(
        second=0, microsecond=0
    )
    return JSONResponse(
        {
            "deletedRecords": gone,
            "earliestDateAvailable": format_datetime(earliest.astimezone(UTC)),
            "latestDateCovered": format_datetime(end),
        }
    )


def caller_of(request: Request) -> Caller:
    return require_session(request)
