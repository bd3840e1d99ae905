"""sObject Collections (``/composite/sobjects``) and composite (``/composite``).

sObject Collections save up to 200 records in one call, each answered with a SaveResult
(``statusCode`` in its errors, not ``errorCode``). With ``allOrNone`` every record is
rolled back when one fails: the failing records keep their errors and the others answer
``ALL_OR_NONE_OPERATION_ROLLED_BACK``. Without it, each record saves on its own.

Composite runs up to 25 subrequests in order (at most five of them sObject Collections or
queries); a later one refers to an earlier answer
with ``@{referenceId.path}`` (``@{NewAccount.id}``, ``@{Q.records[0].Id}``). Subrequests
go through sfsim's own routes, so each behaves exactly as if sent alone, except that
the whole composite counts once against the daily API limit. With ``allOrNone`` the
first failure rolls everything back and every other subrequest answers
``PROCESSING_HALTED``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message

from sfsim.data import exceptions as err
from sfsim.exceptions import ApiError, SfError
from sfsim.http import JSONResponse, json_body, sf_state
from sfsim.rest.auth import SUBREQUEST_FLAG, require_session
from sfsim.rest.responses import allow_duplicates, save_result, sobject, version

MAX_COLLECTION = 200
MAX_SUBREQUESTS = 25
# Of a composite's subrequests, at most five may be sObject Collections or queries.
MAX_HEAVY_SUBREQUESTS = 5
_HEAVY = re.compile(r"/(composite/sobjects|query|queryAll)(/|$)")
_REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")
_REFERENCE_ID = re.compile(r"^[A-Za-z0-9_]+$")


def _failure(error: ApiError) -> dict[str, Any]:
    return {"id": None, "success": False, "errors": [error.save_error()]}


async def _collection_body(request: Request) -> tuple[list[dict[str, Any]], bool]:
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise err.JsonParserError("The request body must be an object with a records array.")
    records = body["records"]
    if len(records) > MAX_COLLECTION:
        raise err.ExceededIdLimit()
    if any(not isinstance(r, dict) for r in records):
        raise err.JsonParserError("Each entry of records must be an object.")
    return records, bool(body.get("allOrNone", False))


def _run_collection(
    request: Request, items: list[Any], all_or_none: bool, save: Any
) -> list[dict[str, Any]]:
    """Save each item with ``save(item) -> SaveResult``, with all-or-none semantics."""
    store = sf_state(request).records
    results: list[dict[str, Any] | None] = []
    errors: list[ApiError | None] = []

    class _RollBack(Exception):
        pass

    try:
        with store.atomic():
            for item in items:
                try:
                    with store.atomic():
                        results.append(save(item))
                        errors.append(None)
                except ApiError as error:
                    results.append(None)
                    errors.append(error)
            if all_or_none and any(e is not None for e in errors):
                raise _RollBack()
    except _RollBack:
        return [
            _failure(e) if e is not None else _failure(err.AllOrNoneRolledBack()) for e in errors
        ]
    return [
        result if result is not None else _failure(error or err.UnknownException())
        for result, error in zip(results, errors, strict=True)
    ]


def _object_of(request: Request, record: dict[str, Any]) -> Any:
    attributes = record.get("attributes")
    type_name = attributes.get("type") if isinstance(attributes, dict) else None
    if not type_name:
        raise err.InvalidInput("No SObject Type defined in attributes")
    obj = sf_state(request).records.schema.get(str(type_name))
    if obj is None:
        raise err.InvalidType(f"sObject type '{type_name}' is not supported.")
    return obj


async def collection(request: Request) -> Response:
    """POST: create up to 200 records; PATCH: update them; DELETE ``?ids=``: delete them."""
    caller = require_session(request)
    version(request)
    store = sf_state(request).records
    duplicates_ok = allow_duplicates(request)
    if request.method == "DELETE":
        ids = [i for i in request.query_params.get("ids", "").split(",") if i]
        if len(ids) > MAX_COLLECTION:
            raise err.ExceededIdLimit()
        all_or_none = request.query_params.get("allOrNone", "false").lower() == "true"

        def remove(record_id: str) -> dict[str, Any]:
            found = store.find(record_id)
            if found is None:
                raise err.InvalidCrossReferenceKey("invalid record id", fields=[])
            store.delete(found[0], record_id, user_id=caller.user_id)
            return save_result(found[1]["Id"])

        return JSONResponse(_run_collection(request, ids, all_or_none, remove))
    records, all_or_none = await _collection_body(request)

    def create(record: dict[str, Any]) -> dict[str, Any]:
        obj = _object_of(request, record)
        if any(k.lower() == "id" for k in record):
            raise err.InvalidField("cannot specify Id in an insert call", fields=["Id"])
        saved = store.insert(obj, record, user_id=caller.user_id, allow_duplicates=duplicates_ok)
        return save_result(saved["Id"])

    def update(record: dict[str, Any]) -> dict[str, Any]:
        obj = _object_of(request, record)
        record_id = next((v for k, v in record.items() if k.lower() == "id"), None)
        if not record_id:
            raise err.MissingArgument("Id not specified in an update call", fields=["Id"])
        rest = {k: v for k, v in record.items() if k.lower() != "id"}
        saved = store.update(
            obj, str(record_id), rest, user_id=caller.user_id, allow_duplicates=duplicates_ok
        )
        return save_result(saved["Id"])

    save = create if request.method == "POST" else update
    return JSONResponse(_run_collection(request, records, all_or_none, save))


async def collection_retrieve(request: Request) -> Response:
    """GET ``?ids=...&fields=...``: up to 2,000 records of one type (null where not found)."""
    require_session(request)
    v = version(request)
    obj = sobject(request)
    store = sf_state(request).records
    ids = [i for i in request.query_params.get("ids", "").split(",") if i]
    fields = [f for f in request.query_params.get("fields", "").split(",") if f]
    if not fields:
        raise err.MissingArgument("fields parameter is required")
    rows: list[Any] = []
    for record_id in ids:
        found = store.find(record_id)
        if found is None or found[0] is not obj or found[1]["IsDeleted"]:
            rows.append(None)
        else:
            rows.append(store.render(obj, found[1], v, fields))
    return JSONResponse(rows)


async def collection_upsert(request: Request) -> Response:
    """PATCH: upsert up to 200 records of one type by an external id field."""
    caller = require_session(request)
    version(request)
    obj = sobject(request)
    store = sf_state(request).records
    definition = store.external_id_field(obj, str(request.path_params["field"]))
    records, all_or_none = await _collection_body(request)
    duplicates_ok = allow_duplicates(request)

    def upsert(record: dict[str, Any]) -> dict[str, Any]:
        record_obj = _object_of(request, record)
        if record_obj is not obj:
            raise err.InvalidType(f"sObject type {record_obj.name} does not match {obj.name}")
        value = next((v for k, v in record.items() if k.lower() == definition.name.lower()), None)
        if value in (None, ""):
            raise err.MissingArgument(f"{definition.name} not specified", fields=[definition.name])
        matches = store.find_by(obj, definition, value)
        if len(matches) > 1:
            raise err.DuplicateExternalId(
                f"More than one record found for external id field {definition.name}: "
                f"{', '.join(m['Id'] for m in matches)}",
                fields=[definition.name],
            )
        saved, created = store.upsert(
            obj,
            definition.name,
            str(value),
            record,
            user_id=caller.user_id,
            allow_duplicates=duplicates_ok,
        )
        return save_result(saved["Id"], created=created)

    return JSONResponse(_run_collection(request, records, all_or_none, upsert))


# -- composite ------------------------------------------------------------------------------


def _lookup(answer: Any, path: str) -> Any:
    current = answer
    for step in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
        key, index = step
        if key:
            if not isinstance(current, dict):
                return None
            current = current.get(key, None)
        else:
            if not isinstance(current, list) or int(index) >= len(current):
                return None
            current = current[int(index)]
    return current


def _substitute(value: Any, answers: dict[str, Any], subrequest: str) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            reference, path = match.group(1), match.group(2)
            if reference not in answers:
                raise err.ProcessingHalted(
                    f"Invalid reference specified. No value for {reference}{path} found in "
                    f"{subrequest}. Provided referenceId ('{reference}') is invalid."
                )
            found = _lookup(answers[reference], path)
            if found is None:
                raise err.ProcessingHalted(
                    f"Invalid reference specified. No value for {reference}{path} found in "
                    f"{reference}. Provided path ('{path.lstrip('.')}') is invalid."
                )
            return str(found)

        return _REFERENCE.sub(replace, value)
    if isinstance(value, dict):
        return {k: _substitute(v, answers, subrequest) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, answers, subrequest) for v in value]
    return value


async def _dispatch(
    request: Request, method: str, url: str, body: Any, headers: dict[str, str]
) -> tuple[int, Any, dict[str, str]]:
    """Run one subrequest through sfsim's router, as if it were sent on its own."""
    parts = urlsplit(url)
    raw = b"" if body is None else orjson.dumps(body)
    outer = {k.lower(): v for k, v in request.headers.items()}
    merged = {
        "authorization": outer.get("authorization", ""),
        "content-type": "application/json",
        **{k.lower(): v for k, v in headers.items()},
    }
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": method.upper(),
        "scheme": "https",
        "path": parts.path,
        "raw_path": parts.path.encode(),
        "root_path": "",
        "query_string": parts.query.encode(),
        "server": request.scope.get("server"),
        "client": request.scope.get("client"),
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in merged.items()],
        "app": request.app,
        "state": {SUBREQUEST_FLAG: True},
    }
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": raw, "more_body": False}

    status = 500
    chunks: list[bytes] = []
    response_headers: dict[str, str] = {}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            response_headers.update(
                {k.decode("latin-1"): v.decode("latin-1") for k, v in message.get("headers", [])}
            )
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    try:
        await request.app.router(scope, receive, send)
    except SfError as error:
        return error.status, error.body(), {}
    raw_answer = b"".join(chunks)
    answer = orjson.loads(raw_answer) if raw_answer.strip() else None
    kept = {k: v for k, v in response_headers.items() if k.lower() == "location"}
    return status, answer, kept


class _Halt(Exception):
    pass


async def composite(request: Request) -> Response:
    """Up to 25 subrequests in one call, later ones using earlier answers (``@{ref.id}``)."""
    require_session(request)
    version(request)
    store = sf_state(request).records
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("compositeRequest"), list):
        raise err.JsonParserError(
            "The request body must be an object with a compositeRequest array."
        )
    subrequests = body["compositeRequest"]
    if len(subrequests) > MAX_SUBREQUESTS:
        raise err.InvalidInput(
            f"Received invalid request. The number of subrequests must be less than or equal to "
            f"{MAX_SUBREQUESTS}, but was {len(subrequests)}."
        )
    seen: set[str] = set()
    for sub in subrequests:
        reference = sub.get("referenceId") if isinstance(sub, dict) else None
        if (
            not isinstance(reference, str)
            or not _REFERENCE_ID.match(reference)
            or reference in seen
        ):
            raise err.InvalidInput(
                f"Invalid referenceId: {reference!r}. A referenceId is required, unique within "
                "the request, and made of letters, digits and underscores."
            )
        seen.add(reference)
        if not str(sub.get("url", "")).startswith("/services/data/v"):
            raise err.InvalidInput(f"The url of {reference} must start with /services/data/vXX.X/")
    heavy = [sub for sub in subrequests if _HEAVY.search(urlsplit(str(sub["url"])).path)]
    if len(heavy) > MAX_HEAVY_SUBREQUESTS:
        raise err.InvalidInput(
            f"Received invalid request. At most {MAX_HEAVY_SUBREQUESTS} subrequests can be sObject "
            f"Collections or query operations, but there were {len(heavy)}."
        )
    all_or_none = bool(body.get("allOrNone", False))
    answers: dict[str, Any] = {}
    responses: list[dict[str, Any]] = []
    headers: dict[str, str]
    failed_at: int | None = None
    try:
        with store.atomic():
            for index, sub in enumerate(subrequests):
                reference = sub["referenceId"]
                try:
                    url = _substitute(sub["url"], answers, reference)
                    sub_body = _substitute(sub.get("body"), answers, reference)
                except ApiError as error:
                    status, answer, headers = error.status, error.body(), {}
                else:
                    status, answer, headers = await _dispatch(
                        request,
                        str(sub.get("method", "GET")),
                        url,
                        sub_body,
                        dict(sub.get("httpHeaders") or {}),
                    )
                responses.append(
                    {
                        "body": answer,
                        "httpHeaders": headers,
                        "httpStatusCode": status,
                        "referenceId": reference,
                    }
                )
                if status < 300:
                    answers[reference] = answer
                elif all_or_none:
                    failed_at = index
                    raise _Halt()
    except _Halt:
        halted = err.ProcessingHalted()
        rebuilt = []
        for index, sub in enumerate(subrequests):
            if index == failed_at:
                rebuilt.append(responses[index])
            else:
                rebuilt.append(
                    {
                        "body": halted.body(),
                        "httpHeaders": {},
                        "httpStatusCode": 400,
                        "referenceId": sub["referenceId"],
                    }
                )
        responses = rebuilt
    return JSONResponse({"compositeResponse": responses})
