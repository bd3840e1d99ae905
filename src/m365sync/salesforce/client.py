"""The Salesforce REST client: simple-salesforce underneath, Salesforce's limits respected.

Promises:

- one ``SalesforceClient`` per connection (one org, one integration user); safe to share
  between threads; synchronous (async callers use ``asyncio.to_thread``);
- TLS trusts what the product's settings say (``ca_bundle``), and no request waits longer
  than ``salesforce_timeout_seconds``;
- a 401 ``INVALID_SESSION_ID`` gets one new session from the token source and one retry;
  nothing else is retried here (but change polling's narrowed window, below): callers
  branch on the error's category (writes are made idempotent by upserting on external ids,
  so the caller decides when to try again);
- every answer's ``Sforce-Limit-Info: api-usage=N/M`` is recorded (``api_usage``) and fed
  to the ``ApiBudget``, which is asked before every call: past m365sync's share of the
  org's daily limit, calls are refused (``ApiShareUsed``) before reaching Salesforce;
- SOQL results are read page by page through ``nextRecordsUrl``; ``find_by`` splits
  ``IN (...)`` lookups so no request exceeds Salesforce's URI limit; writes go through
  sObject Collections, 200 records a call, ``allOrNone`` false by default, with one
  ``RecordResult`` per record (``create_many`` packs five collections into one composite
  call: 1,000 small records a call); composite takes up to 25 subrequests;
- change polling (``updated``, ``deleted``) answers a window Salesforce refuses for
  holding more than 600,000 ids (``EXCEEDED_ID_LIMIT``) by asking again for its first half,
  in whole minutes, down to one minute (``TooManyIds`` past that); the answer says how far
  it reached (``narrowed_to``), and ``updated_windows``/``deleted_windows`` walk the rest of
  the window answer by answer;
- every failure is raised (or, for writes, reported per record) as a
  ``m365sync.salesforce.errors`` category.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote_plus

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError as SimpleSalesforceError

from m365sync.salesforce._http import SalesforceSession
from m365sync.salesforce.auth import SalesforceToken, TokenSource
from m365sync.salesforce.errors import (
    LimitExceeded,
    SalesforceError,
    SessionExpired,
    TooManyIds,
    UnexpectedResponse,
    classify_exception,
    classify_response,
    classify_save_errors,
    describe_record,
)
from m365sync.salesforce.limits import (
    ApiBudget,
    ApiUsage,
    estimate_resume,
    parse_limit_info,
    usage_from_limits,
)
from m365sync.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

API_VERSION = "59.0"
COLLECTION_SIZE = 200
"""Records per sObject Collections call (Salesforce's maximum)."""
COMPOSITE_SIZE = 25
"""Subrequests per composite call (Salesforce's maximum)."""
COMPOSITE_COLLECTIONS = 5
"""sObject Collections (or queries) per composite call (Salesforce's maximum): five
collections of 200 records, 1,000 records in one API call."""
MAX_QUERY_URI_BYTES = 10_000
"""Salesforce refuses a request whose URI and headers exceed 16,384 bytes (414 / 431);
lookups keep the URI well under it, leaving room for the headers."""

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")
_SOQL_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}


def quote_soql(value: str) -> str:
    """A SOQL string literal: ``'it\\'s'``."""
    return "'" + "".join(_SOQL_ESCAPES.get(c, c) for c in value) + "'"


def _checked_name(name: str) -> str:
    """An object or field name, refused unless it is one (names are never quoted in SOQL)."""
    if not _NAME.match(name):
        raise ValueError(f"{name!r} is not a Salesforce object or field name")
    return name


def in_clause_queries(
    prefix: str,
    values: Sequence[str],
    *,
    suffix: str = "",
    path: str = "",
    max_uri_bytes: int = MAX_QUERY_URI_BYTES,
) -> list[str]:
    """``{prefix} IN ('a', 'b', ...){suffix}`` queries covering ``values`` in order, each
    short enough that ``{path}?q=<query, URL-encoded>`` stays within ``max_uri_bytes``.

    URL-encoding is per character, so a query's encoded length is the sum of its parts'.
    A value too long to share a query with any other is sent alone."""
    fixed = len(path) + len("?q=") + len(quote_plus(f"{prefix} IN ()")) + len(quote_plus(suffix))
    separator = len(quote_plus(", "))
    queries: list[str] = []
    batch: list[str] = []
    size = fixed
    for value in values:
        literal = quote_soql(value)
        cost = len(quote_plus(literal)) + (separator if batch else 0)
        if batch and size + cost > max_uri_bytes:
            queries.append(f"{prefix} IN ({', '.join(batch)}){suffix}")
            batch, size = [], fixed
            cost = len(quote_plus(literal))
        batch.append(literal)
        size += cost
    if batch:
        queries.append(f"{prefix} IN ({', '.join(batch)}){suffix}")
    return queries


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordResult:
    """What became of one record of a write, at its position in the records given."""

    index: int
    id: str | None
    success: bool
    created: bool | None = None
    """Upserts: True when the record was created, False when an existing one was updated."""
    error: SalesforceError | None = None


@dataclass(frozen=True)
class Subrequest:
    """One request of a composite call. ``path`` is relative to the API version
    (``sobjects/Task``, ``query?q=...``); ``@{ref.id}`` refers to an earlier answer."""

    method: str
    path: str
    reference_id: str
    body: Any = None
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class SubrequestResult:
    reference_id: str
    status: int
    body: Any
    error: SalesforceError | None = None


@dataclass(frozen=True)
class UpdatedRecords:
    """Ids of records created or changed in a window, and how far Salesforce covered it
    (poll again from ``latest_date_covered``)."""

    ids: list[str]
    latest_date_covered: datetime
    narrowed_to: datetime | None = None
    """The end Salesforce accepted, when the window asked for held more ids than it answers
    at once (``EXCEEDED_ID_LIMIT``); ``None`` when it answered the whole window."""


@dataclass(frozen=True)
class DeletedRecord:
    id: str
    deleted_at: datetime


@dataclass(frozen=True)
class DeletedRecords:
    records: list[DeletedRecord]
    earliest_date_available: datetime
    latest_date_covered: datetime
    narrowed_to: datetime | None = None
    """As ``UpdatedRecords.narrowed_to``."""


def parse_salesforce_datetime(value: Any) -> datetime:
    """A datetime as Salesforce writes it (``2024-05-01T09:30:00.000+0000`` in records,
    ``...+00:00`` in change polling) as an aware UTC datetime; ``ValueError`` when it is
    none."""
    return datetime.fromisoformat(str(value)).astimezone(UTC)


def _query_more(api: Salesforce, *, url: str) -> Any:
    return api.query_more(url, identifier_is_url=True)


def _restful(api: Salesforce, *, path: str, **kwargs: Any) -> Any:
    return api.restful(path, **kwargs)


def _window_param(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("change polling needs timezone-aware datetimes")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


ONE_MINUTE = timedelta(minutes=1)
ID_LIMIT = 600_000
"""Most ids ``updated`` and ``deleted`` answer for one window (Salesforce's limit)."""


def _minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def _first_half(start: datetime, end: datetime) -> datetime | None:
    """The end of the first half of ``[start, end)`` in whole minutes (Salesforce ignores
    seconds), at least one minute after ``start``; ``None`` when the window is one minute
    or less and cannot be halved."""
    first, last = _minute(start), _minute(end)
    minutes = int((last - first) / ONE_MINUTE)
    if minutes <= 1:
        return None
    return first + ONE_MINUTE * (minutes // 2)


# -- the client ------------------------------------------------------------------------------


class SalesforceClient:
    """REST calls to one org as one user; see the module docstring for what is promised.

    ``token_source`` gives a new session when Salesforce ends one (a flow from
    ``m365sync.salesforce.auth``); ``token``, when given, is used first. ``budget`` is the
    org's ``ApiBudget`` (share it between the clients of one org); ``http`` replaces the
    session built from the settings (the client adds a response hook to it).
    """

    def __init__(
        self,
        settings: Settings,
        token_source: TokenSource,
        *,
        token: SalesforceToken | None = None,
        budget: ApiBudget | None = None,
        http: requests.Session | None = None,
        api_version: str = API_VERSION,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.api_version = api_version
        self._token_source = token_source
        self._token = token
        self._budget = budget
        self._own_http = http is None
        self._http = http if http is not None else SalesforceSession(settings)
        self._http.hooks["response"].append(self._record_usage)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._api: Salesforce | None = None
        self._lock = threading.Lock()
        self._usage: ApiUsage | None = None
        self._describes: dict[str, dict[str, Any]] = {}
        self._global_describe: dict[str, Any] | None = None

    def __enter__(self) -> SalesforceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own_http:
            self._http.close()
        elif self._record_usage in self._http.hooks["response"]:
            self._http.hooks["response"].remove(self._record_usage)

    # -- session, usage, budget -----------------------------------------------------------

    @property
    def token(self) -> SalesforceToken:
        """The current session (acquired from the token source on first use)."""
        return self._current()[1]

    @property
    def session_token(self) -> SalesforceToken | None:
        """The current session if one was acquired, without signing in (None before the
        first call): a refresh token Salesforce rotated is read from it."""
        return self._token

    @property
    def api_usage(self) -> ApiUsage | None:
        """The org's usage of its daily API requests, from the newest answer."""
        return self._usage

    def _current(self) -> tuple[Salesforce, SalesforceToken]:
        with self._lock:
            if self._token is None:
                self._token = self._token_source()
            if self._api is None:
                self._api = Salesforce(
                    instance_url=self._token.instance_url,
                    session_id=self._token.access_token,
                    session=self._http,
                    version=self.api_version,
                    object_pairs_hook=dict,
                )
            return self._api, self._token

    def _renew(self, stale: SalesforceToken) -> None:
        """A new session, unless another thread already replaced ``stale``."""
        with self._lock:
            if self._token is stale or self._token is None:
                self._token = self._token_source()
                self._api = None

    def _record_usage(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        usage = parse_limit_info(
            response.headers.get("Sforce-Limit-Info"), observed_at=self._clock()
        )
        if usage is not None:
            self._observe(usage)

    def _observe(self, usage: ApiUsage) -> None:
        if self._usage is None or usage.observed_at >= self._usage.observed_at:
            self._usage = usage
        if self._budget is not None:
            self._budget.observe(usage)

    def _classify(
        self, exc: BaseException, *, sobject: str | None = None, record: str | None = None
    ) -> SalesforceError:
        error = classify_exception(exc, sobject=sobject, record=record)
        if isinstance(error, LimitExceeded):
            usage = self._usage
            if self._budget is not None:
                resumes_at = self._budget.resume_estimate()
            else:
                resumes_at = estimate_resume(usage, usage.limit) if usage else None
            error = LimitExceeded.org_limit_reached(
                usage,
                resumes_at,
                code=error.code,
                http_status=error.http_status,
                salesforce_message=error.salesforce_message,
            )
        log.info(
            "salesforce call failed: %s %s (%s)",
            error.category,
            error.code,
            type(exc).__name__,
        )
        return error

    def _call(
        self,
        fn: Callable[[Salesforce], T],
        *,
        calls: int = 1,
        sobject: str | None = None,
    ) -> T:
        """``fn`` on the current session: the budget asked first, one renewal and one retry
        on ``INVALID_SESSION_ID``, failures classified."""
        if self._budget is not None and calls:
            self._budget.check(self._clock(), calls)
        api, token = self._current()
        try:
            return fn(api)
        except (SimpleSalesforceError, requests.RequestException, ValueError) as exc:
            error = self._classify(exc, sobject=sobject)
            if not isinstance(error, SessionExpired):
                raise error from exc
        self._renew(token)
        api, _ = self._current()
        try:
            return fn(api)
        except (SimpleSalesforceError, requests.RequestException, ValueError) as exc:
            error = self._classify(exc, sobject=sobject)
            if isinstance(error, SessionExpired):
                raise SessionExpired(
                    "Salesforce refused a session it had just issued.",
                    fix="Check that the integration user is active and may use the connected "
                    "app (Setup → App Manager → your connected app ▾ Manage), then connect "
                    "again.",
                    code=error.code,
                    http_status=error.http_status,
                ) from exc
            raise error from exc

    # -- SOQL -----------------------------------------------------------------------------

    def iter_query(self, soql: str, *, include_deleted: bool = False) -> Iterator[dict[str, Any]]:
        """The query's records, page by page (``nextRecordsUrl``): one API call a page of
        up to 2,000 rows, memory flat in the result's size. ``include_deleted`` uses
        ``queryAll`` (the recycle bin too)."""
        page: dict[str, Any] = self._call(
            lambda api: api.query(soql, include_deleted=include_deleted)
        )
        while True:
            records = page.get("records")
            if isinstance(records, list):
                yield from records
            next_url = page.get("nextRecordsUrl")
            if page.get("done", True) or not isinstance(next_url, str):
                return
            page = self._call(partial(_query_more, url=next_url))

    def query_all(self, soql: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Every record of the query (all pages)."""
        return list(self.iter_query(soql, include_deleted=include_deleted))

    def find_by(
        self,
        sobject: str,
        field: str,
        values: Sequence[str],
        *,
        select: Sequence[str] = ("Id",),
        where: str | None = None,
        include_deleted: bool = False,
    ) -> list[dict[str, Any]]:
        """Records of ``sobject`` whose ``field`` is one of ``values``: ``SELECT {select},
        {field} FROM {sobject} WHERE {field} IN (...) [AND ({where})]``, split into as many
        queries as keep each request within Salesforce's URI limit."""
        names = [_checked_name(n) for n in dict.fromkeys([*select, field])]
        wanted = list(dict.fromkeys(v for v in values if v is not None))
        if not wanted:
            return []
        table, column = _checked_name(sobject), _checked_name(field)
        prefix = f"SELECT {', '.join(names)} FROM {table} WHERE {column}"  # noqa: S608 (names checked, values quoted)
        suffix = f" AND ({where})" if where else ""
        path = f"/services/data/v{self.api_version}/{'queryAll' if include_deleted else 'query'}/"
        found: list[dict[str, Any]] = []
        for soql in in_clause_queries(prefix, wanted, suffix=suffix, path=path):
            found.extend(self.iter_query(soql, include_deleted=include_deleted))
        return found

    # -- writes (sObject Collections) -----------------------------------------------------

    def create(
        self,
        sobject: str,
        records: Sequence[Mapping[str, Any]],
        *,
        all_or_none: bool = False,
        allow_duplicates: bool = False,
    ) -> list[RecordResult]:
        """Create records, 200 a call. See ``_save`` for what the results promise."""
        return self._save(
            "POST",
            "composite/sobjects",
            sobject,
            records,
            lambda record: describe_record(sobject),
            all_or_none=all_or_none,
            allow_duplicates=allow_duplicates,
        )

    def update(
        self,
        sobject: str,
        records: Sequence[Mapping[str, Any]],
        *,
        all_or_none: bool = False,
        allow_duplicates: bool = False,
    ) -> list[RecordResult]:
        """Update records by ``Id``, 200 a call."""
        return self._save(
            "PATCH",
            "composite/sobjects",
            sobject,
            records,
            lambda record: describe_record(sobject, record_id=str(record.get("Id") or "")),
            all_or_none=all_or_none,
            allow_duplicates=allow_duplicates,
        )

    def upsert(
        self,
        sobject: str,
        external_id_field: str,
        records: Sequence[Mapping[str, Any]],
        *,
        all_or_none: bool = False,
        allow_duplicates: bool = False,
    ) -> list[RecordResult]:
        """Create or update records by an External ID field, 200 a call: the idempotent
        write (sending the same records again creates nothing new). ``created`` tells
        which."""
        field = _checked_name(external_id_field)
        return self._save(
            "PATCH",
            f"composite/sobjects/{_checked_name(sobject)}/{field}",
            sobject,
            records,
            lambda record: describe_record(
                sobject, external_id=(field, str(record.get(field) or ""))
            ),
            all_or_none=all_or_none,
            allow_duplicates=allow_duplicates,
        )

    def _save(
        self,
        method: str,
        path: str,
        sobject: str,
        records: Sequence[Mapping[str, Any]],
        name: Callable[[Mapping[str, Any]], str],
        *,
        all_or_none: bool,
        allow_duplicates: bool,
    ) -> list[RecordResult]:
        """One ``RecordResult`` per record, in order; never raises for what Salesforce
        answered. A refusal of a whole call (limit reached, network failure, session that
        can't be renewed...) is the error of each record it carried and of each record
        after it, which is not sent; records of calls already answered keep their own
        results."""
        _checked_name(sobject)
        headers = {"Sforce-Duplicate-Rule-Header": "allowSave=true"} if allow_duplicates else {}
        results: list[RecordResult] = []
        failure: SalesforceError | None = None
        for start in range(0, len(records), COLLECTION_SIZE):
            chunk = records[start : start + COLLECTION_SIZE]
            if failure is None:
                body = {
                    "allOrNone": all_or_none,
                    "records": [{"attributes": {"type": sobject}, **r} for r in chunk],
                }
                try:
                    answer = self._call(
                        partial(_restful, path=path, method=method, json=body, headers=headers),
                        sobject=sobject,
                    )
                except SalesforceError as error:
                    failure = error
            if failure is not None:
                results.extend(
                    RecordResult(index=start + i, id=None, success=False, error=failure)
                    for i in range(len(chunk))
                )
                continue
            answers = answer if isinstance(answer, list) else []
            for i, record in enumerate(chunk):
                item = answers[i] if i < len(answers) and isinstance(answers[i], dict) else {}
                results.append(self._record_result(start + i, item, sobject, name(record)))
        return results

    def create_many(
        self,
        records: Sequence[tuple[str, Mapping[str, Any]]],
        *,
        allow_duplicates: bool = False,
    ) -> list[RecordResult]:
        """Create ``(sobject, fields)`` records, 1,000 a call: a composite of five sObject
        Collections of 200 (records of several objects may share a collection; keep each
        object's records together). One ``RecordResult`` per record, in order; never
        raises for what Salesforce answered. For small records (relations, junctions),
        where 200 a call would cost five times the API requests."""
        for sobject, _ in records:
            _checked_name(sobject)
        headers = {"Sforce-Duplicate-Rule-Header": "allowSave=true"} if allow_duplicates else None
        per_call = COLLECTION_SIZE * COMPOSITE_COLLECTIONS
        results: list[RecordResult] = []
        failure: SalesforceError | None = None
        for start in range(0, len(records), per_call):
            call = records[start : start + per_call]
            chunks = [
                (start + offset, call[offset : offset + COLLECTION_SIZE])
                for offset in range(0, len(call), COLLECTION_SIZE)
            ]
            answers: list[SubrequestResult] = []
            if failure is None:
                subrequests = [
                    Subrequest(
                        "POST",
                        "composite/sobjects",
                        f"c{n}",
                        body={
                            "allOrNone": False,
                            "records": [
                                {"attributes": {"type": sobject}, **fields}
                                for sobject, fields in chunk
                            ],
                        },
                        headers=headers,
                    )
                    for n, (_, chunk) in enumerate(chunks)
                ]
                try:
                    answers = self.composite(subrequests)
                except SalesforceError as error:
                    failure = error
            for n, (first, chunk) in enumerate(chunks):
                answer = answers[n] if n < len(answers) else None
                problem = failure
                if problem is None and (answer is None or answer.error is not None):
                    problem = (answer.error if answer is not None else None) or UnexpectedResponse(
                        "Salesforce gave no answer for part of a composite call."
                    )
                if problem is not None:
                    results.extend(
                        RecordResult(index=first + i, id=None, success=False, error=problem)
                        for i in range(len(chunk))
                    )
                    continue
                assert answer is not None
                items = answer.body if isinstance(answer.body, list) else []
                for i, (sobject, _) in enumerate(chunk):
                    item = items[i] if i < len(items) and isinstance(items[i], dict) else {}
                    results.append(
                        self._record_result(first + i, item, sobject, describe_record(sobject))
                    )
        return results

    def delete(self, ids: Sequence[str]) -> list[RecordResult]:
        """Delete records by id, 200 a call (to the recycle bin). A record already gone
        answers ``ENTITY_IS_DELETED`` or ``INVALID_CROSS_REFERENCE_KEY``."""
        results: list[RecordResult] = []
        failure: SalesforceError | None = None
        for start in range(0, len(ids), COLLECTION_SIZE):
            chunk = list(ids[start : start + COLLECTION_SIZE])
            answer: Any = None
            if failure is None:
                params = {"ids": ",".join(chunk), "allOrNone": "false"}
                try:
                    answer = self._call(
                        partial(_restful, path="composite/sobjects", method="DELETE", params=params)
                    )
                except SalesforceError as error:
                    failure = error
            if failure is not None:
                results.extend(
                    RecordResult(index=start + i, id=None, success=False, error=failure)
                    for i in range(len(chunk))
                )
                continue
            items = answer if isinstance(answer, list) else []
            for i, record_id in enumerate(chunk):
                item = items[i] if i < len(items) and isinstance(items[i], dict) else {}
                sobject = str(item.get("attributes", {}).get("type") or "record")
                results.append(
                    self._record_result(
                        start + i, item, sobject, describe_record(sobject, record_id=record_id)
                    )
                )
        return results

    @staticmethod
    def _record_result(
        index: int, item: Mapping[str, Any], sobject: str, record: str
    ) -> RecordResult:
        created = item.get("created")
        if item.get("success"):
            return RecordResult(
                index=index,
                id=str(item.get("id")) if item.get("id") else None,
                success=True,
                created=bool(created) if created is not None else None,
            )
        errors = item.get("errors")
        if not item:
            error: SalesforceError = UnexpectedResponse(
                "Salesforce gave no result for this record.", sobject=sobject, record=record
            )
        else:
            error = classify_save_errors(
                errors if isinstance(errors, list) else [], sobject=sobject, record=record
            )
        return RecordResult(index=index, id=None, success=False, error=error)

    # -- composite ------------------------------------------------------------------------

    def composite(
        self, subrequests: Sequence[Subrequest], *, all_or_none: bool = False
    ) -> list[SubrequestResult]:
        """Up to 25 subrequests in one API call, run in order; later ones may use earlier
        answers (``@{ref.id}``). With ``all_or_none``, the first failure rolls back all."""
        if len(subrequests) > COMPOSITE_SIZE:
            raise ValueError(
                f"a composite call takes at most {COMPOSITE_SIZE} subrequests, "
                f"not {len(subrequests)}"
            )
        if not subrequests:
            return []
        root = f"/services/data/v{self.api_version}/"
        body = {
            "allOrNone": all_or_none,
            "compositeRequest": [
                {
                    "method": sub.method.upper(),
                    "url": sub.path if sub.path.startswith("/") else root + sub.path,
                    "referenceId": sub.reference_id,
                    **({"body": sub.body} if sub.body is not None else {}),
                    **({"httpHeaders": dict(sub.headers)} if sub.headers else {}),
                }
                for sub in subrequests
            ],
        }
        answer = self._call(lambda api: api.restful("composite", method="POST", json=body))
        responses = answer.get("compositeResponse") if isinstance(answer, dict) else None
        if not isinstance(responses, list):
            raise UnexpectedResponse("Salesforce's composite answer holds no compositeResponse.")
        results = []
        for item in responses:
            status = int(item.get("httpStatusCode") or 0)
            sub_body = item.get("body")
            error = classify_response(status, sub_body) if status >= 300 else None
            results.append(
                SubrequestResult(
                    reference_id=str(item.get("referenceId")),
                    status=status,
                    body=sub_body,
                    error=error,
                )
            )
        return results

    # -- describe, limits, change polling -------------------------------------------------

    def describe_global(self) -> dict[str, Any]:
        """The org's objects (cached for the client's life; ``forget_describes`` clears)."""
        if self._global_describe is None:
            answer = self._call(lambda api: api.restful("sobjects"))
            self._global_describe = answer if isinstance(answer, dict) else {}
        return self._global_describe

    def describe(self, sobject: str) -> dict[str, Any]:
        """One object's fields (type, ``externalId``, ``unique``, picklist values...), cached."""
        key = _checked_name(sobject).lower()
        if key not in self._describes:
            path = f"sobjects/{sobject}/describe"
            answer = self._call(lambda api: api.restful(path), sobject=sobject)
            self._describes[key] = answer if isinstance(answer, dict) else {}
        return self._describes[key]

    def forget_describes(self) -> None:
        """Drop cached describes (after an admin changed the org's fields)."""
        self._describes.clear()
        self._global_describe = None

    def limits(self) -> dict[str, Any]:
        """The org's limits (``/limits``); ``DailyApiRequests`` also updates ``api_usage``."""
        answer = self._call(lambda api: api.restful("limits"))
        limits = answer if isinstance(answer, dict) else {}
        usage = usage_from_limits(limits, observed_at=self._clock())
        if usage is not None:
            self._observe(usage)
        return limits

    def _changes(
        self, kind: str, sobject: str, start: datetime, end: datetime
    ) -> tuple[dict[str, Any], datetime | None]:
        """``sobjects/{sobject}/{kind}/`` for ``[start, end)``; on ``EXCEEDED_ID_LIMIT`` again
        for the first half of the window, until Salesforce answers. Returns the answer and
        the end it accepted when that is not ``end``."""
        path = f"sobjects/{_checked_name(sobject)}/{kind}/"
        narrowed_to: datetime | None = None
        while True:
            params = {"start": _window_param(start), "end": _window_param(end)}
            try:
                answer = self._call(partial(_restful, path=path, params=params), sobject=sobject)
            except TooManyIds as error:
                half = _first_half(start, end)
                if half is None:
                    raise self._minute_too_full(kind, sobject, start, error) from error
                log.info(
                    "Salesforce holds more than %s %s %s ids from %s to %s; asking up to %s",
                    ID_LIMIT,
                    kind,
                    sobject,
                    _window_param(start),
                    _window_param(end),
                    _window_param(half),
                )
                end = narrowed_to = half
                continue
            return (answer if isinstance(answer, dict) else {}), narrowed_to

    @staticmethod
    def _minute_too_full(kind: str, sobject: str, start: datetime, error: TooManyIds) -> TooManyIds:
        what = "changed" if kind == "updated" else "deleted"
        return TooManyIds(
            f"More than {ID_LIMIT:,} {sobject} records were {what} in Salesforce within one "
            f"minute ({_minute(start):%Y-%m-%d %H:%M} UTC): more than Salesforce lists in one "
            "answer, and it lists no less than a minute, so m365sync cannot read which records "
            "they were.",
            fix=(
                "It follows a mass change of that many records at once (a data load or a mass "
                "update). The people mirror reads every record again instead, by itself; for "
                "Events and Tasks, changes made in Salesforce from that minute on are not "
                "pulled: report it to m365sync's maintainers with this message."
            ),
            code=error.code,
            http_status=error.http_status,
            sobject=sobject,
            salesforce_message=error.salesforce_message,
        )

    def updated(self, sobject: str, start: datetime, end: datetime) -> UpdatedRecords:
        """Ids of ``sobject`` records created or changed between ``start`` and ``end``
        (at most 30 days back). A window holding more ids than Salesforce answers at once is
        narrowed from its end (``narrowed_to``): poll again from ``latest_date_covered``."""
        data, narrowed_to = self._changes("updated", sobject, start, end)
        return UpdatedRecords(
            ids=[str(i) for i in data.get("ids") or []],
            latest_date_covered=parse_salesforce_datetime(data.get("latestDateCovered")),
            narrowed_to=narrowed_to,
        )

    def deleted(self, sobject: str, start: datetime, end: datetime) -> DeletedRecords:
        """``sobject`` records deleted between ``start`` and ``end`` (at most 15 days back),
        narrowed like ``updated``'s when the window holds too many."""
        data, narrowed_to = self._changes("deleted", sobject, start, end)
        return DeletedRecords(
            records=[
                DeletedRecord(
                    id=str(r["id"]), deleted_at=parse_salesforce_datetime(r["deletedDate"])
                )
                for r in data.get("deletedRecords") or []
            ],
            earliest_date_available=parse_salesforce_datetime(data.get("earliestDateAvailable")),
            latest_date_covered=parse_salesforce_datetime(data.get("latestDateCovered")),
            narrowed_to=narrowed_to,
        )

    def updated_windows(
        self, sobject: str, start: datetime, end: datetime
    ) -> Iterator[UpdatedRecords]:
        """``updated`` for ``[start, end)``, one answer after another when Salesforce narrows
        the window (see ``_consecutive``); a caller saves its cursor after each."""
        return _consecutive(lambda since: self.updated(sobject, since, end), start)

    def deleted_windows(
        self, sobject: str, start: datetime, end: datetime
    ) -> Iterator[DeletedRecords]:
        """``deleted`` for ``[start, end)``, window after window as ``updated_windows``."""
        return _consecutive(lambda since: self.deleted(sobject, since, end), start)


Changes = TypeVar("Changes", UpdatedRecords, DeletedRecords)


def _consecutive(ask: Callable[[datetime], Changes], start: datetime) -> Iterator[Changes]:
    """``ask``'s answers from ``start`` on, one after another while Salesforce narrows the
    window: each next window starts at the previous answer's ``latest_date_covered`` (the
    windows are consecutive, so nothing between them is skipped), and each answer moves at
    least a minute on, so the walk ends."""
    while True:
        answer = ask(start)
        yield answer
        if answer.narrowed_to is None or answer.latest_date_covered <= start:
            return
        start = answer.latest_date_covered


__all__ = [
    "API_VERSION",
    "COLLECTION_SIZE",
    "COMPOSITE_COLLECTIONS",
    "COMPOSITE_SIZE",
    "ID_LIMIT",
    "DeletedRecord",
    "DeletedRecords",
    "RecordResult",
    "SalesforceClient",
    "Subrequest",
    "SubrequestResult",
    "UpdatedRecords",
    "in_clause_queries",
    "parse_salesforce_datetime",
    "quote_soql",
]
