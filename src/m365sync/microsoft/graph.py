"""The Microsoft Graph client core: async httpx + orjson, polite to Outlook's limits.

Promises:

- every request carries ``Prefer: IdType="ImmutableId"`` (ids survive moves between
  folders) and a bearer token from the ``TokenSource`` (MSAL underneath; a 401 gets one
  retry with a freshly acquired token);
- at most ``graph_concurrency_per_mailbox`` (4, Outlook's limit) requests in flight per
  mailbox: per client by default, or across every process when the client is given
  ``SharedSlots`` (``m365sync.microsoft.limits``);
- each attempt, from sending the request to the last byte of its answer, ends within
  ``request_deadline_seconds`` (httpx's own timeout bounds each network step, not the whole
  answer), so a request never holds its slot longer than the slot's lease in ``SharedSlots``;
- 429 / throttling 503: waits ``Retry-After`` (exponential back-off if absent) and retries;
  5xx, timeouts, answers past the deadline and dropped connections: exponential back-off
  with jitter; both within ``graph_max_retries``. A Retry-After longer than
  ``graph_backoff_max_seconds`` is not slept through: ``Throttled`` is raised at once so
  the scheduler can park the unit;
- every failure is raised as a ``m365sync.microsoft.errors`` category, never a raw status.

Paths are relative to ``graph_url`` (``/users/{upn}/messages``) or absolute URLs (an
``@odata.nextLink`` / ``@odata.deltaLink``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import orjson

from m365sync.metrics import record_graph_response
from m365sync.microsoft.errors import (
    AuthRevoked,
    MicrosoftError,
    Throttled,
    Transient,
    UnexpectedResponse,
    classify_graph_response,
    throttled_limit,
)
from m365sync.microsoft.limits import LocalSlots, RequestSlots
from m365sync.settings import Settings

log = logging.getLogger(__name__)

# The ``Prefer`` header's values we send (Graph joins several with commas).
BATCH_LIMIT = 20
"""Graph's JSON batching limit: at most 20 requests in one batch."""
IMMUTABLE_ID_PREFERENCE = 'IdType="ImmutableId"'
"""On every request: item ids survive moves between folders."""
UTC_PREFERENCE = 'outlook.timezone="UTC"'
"""Times come back in UTC, so no Windows zone name needs converting."""
TEXT_BODY_PREFERENCE = 'outlook.body-content-type="text"'
"""Message and event bodies come back as plain text instead of HTML."""


SLOT_LEASE_MARGIN_SECONDS = 10.0
"""How much longer a request slot's lease lasts than the request's deadline: the time to
take the slot, give it back and for an event loop busy elsewhere to notice the deadline."""


def request_deadline_seconds(settings: Settings) -> float:
    """How long one attempt of a Graph request may take as a whole: sending it and reading
    its whole answer (twice ``graph_timeout_seconds``).

    httpx's timeout bounds each network step (connecting, each write, each read), so an
    answer that trickles in, a few bytes at a time, never trips it; this deadline does. A
    slot's lease (``slot_lease_seconds``) is derived from it, so a request that is still
    running always holds a slot other processes count."""
    return 2 * settings.graph_timeout_seconds


def slot_lease_seconds(settings: Settings) -> float:
    """How long a request slot kept in Redis (``SharedSlots``) stays taken if the process
    holding it dies: longer than any attempt is allowed to take."""
    return request_deadline_seconds(settings) + SLOT_LEASE_MARGIN_SECONDS


def page_size_preference(size: int) -> str:
    """Ask for at most ``size`` items per page (``odata.maxpagesize``)."""
    return f"odata.maxpagesize={size}"


class TokenSource(Protocol):
    """Gives a Graph access token; ``force_refresh`` bypasses the cache after a 401 that
    refused the token ``refused`` (not again if that token was already replaced: requests
    in flight together are refused together, and one new token serves them all)."""

    async def __call__(self, *, force_refresh: bool = False, refused: str | None = None) -> str: ...


@dataclass
class Page:
    """One page of a collection: its items and where to go next."""

    items: list[dict[str, Any]]
    next_link: str | None
    delta_link: str | None
    raw: dict[str, Any] = field(repr=False, default_factory=dict)


class RequestBudget:
    """A cap on Graph requests in flight shared by every sync unit of an event loop, on top
    of each client's per-mailbox limit. ``ConnectionRuntime.request_budget`` hands out the
    process's one per event loop (an asyncio semaphore belongs to one loop)."""

    def __init__(self, limit: int) -> None:
        self._semaphore = asyncio.Semaphore(limit)

    async def pages(self, pages: AsyncIterator[Page]) -> AsyncIterator[Page]:
        """``pages``, each fetched inside the budget (the caller's work on a page is not)."""
        iterator = aiter(pages)
        try:
            while True:
                async with self._semaphore:
                    try:
                        page = await anext(iterator)
                    except StopAsyncIteration:
                        return
                yield page
        finally:
            closer = getattr(iterator, "aclose", None)
            if closer is not None:
                await closer()

    async def __aenter__(self) -> None:
        await self._semaphore.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self._semaphore.release()


def user_path(mailbox: str | None) -> str:
    """The Graph path of a mailbox: ``/me`` (delegated) or ``/users/{id-or-upn}`` (app-only)."""
    return "/me" if mailbox is None else f"/users/{quote(mailbox, safe='@')}"


def _mailbox_key(url: str) -> str:
    marker = "/users/"
    index = url.find(marker)
    if index >= 0:
        rest = url[index + len(marker) :]
        return rest.split("/", 1)[0].split("?", 1)[0].lower()
    return "me"


class GraphClient:
    """One per connection (service account or user connection); safe to share between tasks."""

    def __init__(
        self,
        settings: Settings,
        token_source: TokenSource,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        slots: RequestSlots | None = None,
    ) -> None:
        """``slots``: where each request takes its place among the mailbox's requests in
        flight (default: this client's own ``LocalSlots``)."""
        self.base_url = settings.graph_url.rstrip("/")
        self._token_source = token_source
        self._max_retries = settings.graph_max_retries
        self._backoff_base = settings.graph_backoff_base_seconds
        self._backoff_max = settings.graph_backoff_max_seconds
        self.deadline_seconds = request_deadline_seconds(settings)
        self.slots: RequestSlots = slots or LocalSlots(settings.graph_concurrency_per_mailbox)
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            verify=settings.ssl_context if transport is None else True,
            transport=transport,
            timeout=settings.graph_timeout_seconds,
            headers={"Accept": "application/json"},
        )

    async def __aenter__(self) -> GraphClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        await self.slots.aclose()

    def url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("https://", "http://")):
            return path_or_url
        return f"{self.base_url}/{path_or_url.lstrip('/')}"

    def _backoff(self, attempt: int) -> float:
        delay: float = self._backoff_base * (2**attempt)
        return min(self._backoff_max, delay * (0.5 + random.random() / 2))  # noqa: S311 (jitter)

    async def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        prefer: list[str] | None = None,
        mailbox: str | None = None,
    ) -> httpx.Response:
        """Send one request with retries; returns a 2xx/3xx response or raises a category.
        ``mailbox`` names the mailbox whose concurrency slot it takes when the URL does not
        (a ``$batch`` of one mailbox's requests)."""
        url = self.url(path_or_url)
        preferences = [IMMUTABLE_ID_PREFERENCE, *(prefer or [])]
        send_headers = {"Prefer": ", ".join(preferences), **(headers or {})}
        content = orjson.dumps(json) if json is not None else None
        if content is not None:
            send_headers.setdefault("Content-Type", "application/json")
        refused: str | None = None
        refreshed_once = False
        attempt = 0
        while True:
            if refused is None:
                token = await self._token_source()
            else:
                token = await self._token_source(force_refresh=True, refused=refused)
            send_headers["Authorization"] = f"Bearer {token}"
            error: MicrosoftError
            deadline = asyncio.timeout(self.deadline_seconds)
            try:
                async with self.slots.hold(mailbox or _mailbox_key(url)), deadline:
                    response = await self._http.request(
                        method, url, params=params, content=content, headers=send_headers
                    )
                # The response is read and closed, but its network stream still points back
                # at it: a reference cycle that holds the body (about 1 MB for a page of
                # 1,000 messages) until the cyclic garbage collector runs. Swapped for the
                # bytes read (as httpx does for a read request), reference counting frees it
                # as soon as the caller is done with the response.
                response.stream = httpx.ByteStream(response.content)
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                record_graph_response(None)
                error = Transient(f"Could not reach Microsoft Graph ({type(exc).__name__}).")
            except TimeoutError:
                if not deadline.expired():
                    raise
                record_graph_response(None)
                error = Transient(
                    f"Could not reach Microsoft Graph (its answer took longer than "
                    f"{self.deadline_seconds:g} s to arrive in full).",
                    fix=(
                        "Nothing to do if it passes: the request is retried with back-off. If "
                        "it keeps happening, check the network between this server and "
                        "Microsoft Graph (a proxy that slows answers down), or raise the Graph "
                        "timeout setting (each request may take twice as long)."
                    ),
                )
            else:
                if response.status_code < 400:
                    record_graph_response(response.status_code)
                    return response
                error = classify_graph_response(
                    response.status_code, response.content, response.headers
                )
                record_graph_response(
                    response.status_code,
                    throttled_limit(response.content) if isinstance(error, Throttled) else None,
                )
                log.info(
                    "graph %s %s -> %s %s (request-id %s)",
                    method,
                    url.split("?", 1)[0],
                    response.status_code,
                    error.code,
                    response.headers.get("request-id"),
                )
            if isinstance(error, AuthRevoked) and error.http_status == 401 and not refreshed_once:
                refreshed_once, refused = True, token
                continue
            refused = None
            if not error.retryable or attempt >= self._max_retries:
                raise error
            if isinstance(error, Throttled) and error.retry_after is not None:
                if error.retry_after > self._backoff_max:
                    raise error
                delay = error.retry_after
            else:
                delay = self._backoff(attempt)
            attempt += 1
            await self._sleep(delay)

    async def get_json(
        self,
        path_or_url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        prefer: list[str] | None = None,
    ) -> dict[str, Any]:
        response = await self.request("GET", path_or_url, params=params, prefer=prefer)
        return _json(response)

    async def post_json(
        self, path: str, body: Any, *, prefer: list[str] | None = None
    ) -> dict[str, Any]:
        response = await self.request("POST", path, json=body, prefer=prefer)
        return _json(response) if response.content else {}

    async def patch_json(
        self, path: str, body: Any, *, prefer: list[str] | None = None
    ) -> dict[str, Any]:
        response = await self.request("PATCH", path, json=body, prefer=prefer)
        return _json(response) if response.content else {}

    async def delete(self, path: str) -> None:
        await self.request("DELETE", path)

    async def batch_get(
        self, paths: Sequence[str], *, prefer: list[str] | None = None
    ) -> list[dict[str, Any] | None]:
        """GET each of ``paths`` (relative, one mailbox's) through ``$batch``, 20 to a batch.

        Returns the bodies in the order of ``paths`` (None where the answer was 404: the
        item is gone). Graph answers a batch's requests in
        any order, so each answer is paired with its request by ``id``, never by position.
        A request the batch answered with a retryable failure (a 429 or a 5xx) is sent again
        on its own, through the retries of ``get_json``; any other failure is raised.
        Batched urls are relative (``/users/...``), as JSON batching requires."""
        results: list[dict[str, Any] | None] = [None for _ in paths]
        prefer_header = ", ".join([IMMUTABLE_ID_PREFERENCE, *(prefer or [])])
        for start in range(0, len(paths), BATCH_LIMIT):
            chunk = paths[start : start + BATCH_LIMIT]
            requests = [
                {
                    "id": str(start + offset),
                    "method": "GET",
                    "url": path if path.startswith("/") else f"/{path}",
                    "headers": {"Prefer": prefer_header},
                }
                for offset, path in enumerate(chunk)
            ]
            mailbox = _mailbox_key(chunk[0])
            answer = _json(
                await self.request("POST", "/$batch", json={"requests": requests}, mailbox=mailbox)
            )
            answered: set[int] = set()
            for response in answer.get("responses") or []:
                index = int(str(response.get("id")))
                status = int(response.get("status") or 0)
                body = response.get("body")
                if 200 <= status < 300 and isinstance(body, dict):
                    results[index] = body
                    answered.add(index)
                elif status == 404:
                    answered.add(index)
                elif status != 429 and status < 500:
                    raise classify_graph_response(
                        status, orjson.dumps(body or {}), response.get("headers") or {}
                    )
            for index in range(start, start + len(chunk)):
                if index not in answered:
                    results[index] = await self.get_json(paths[index], prefer=prefer)
        return results

    async def iterate_pages(
        self,
        path_or_url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        page_size: int | None = None,
        prefer: list[str] | None = None,
    ) -> AsyncIterator[Page]:
        """Pages of a collection, following ``@odata.nextLink``; the last page carries the
        ``@odata.deltaLink`` for delta queries. ``page_size`` sends ``odata.maxpagesize``."""
        preferences = list(prefer or [])
        if page_size:
            preferences.append(page_size_preference(page_size))
        url: str | None = path_or_url
        first = True
        while url is not None:
            data = await self.get_json(url, params=params if first else None, prefer=preferences)
            first = False
            next_link = data.get("@odata.nextLink")
            delta_link = data.get("@odata.deltaLink")
            value = data.get("value")
            yield Page(
                items=value if isinstance(value, list) else [],
                next_link=next_link if isinstance(next_link, str) else None,
                delta_link=delta_link if isinstance(delta_link, str) else None,
                raw=data,
            )
            url = next_link if isinstance(next_link, str) else None

    async def get_paged(
        self,
        path_or_url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        page_size: int | None = None,
        prefer: list[str] | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Every item of a collection and the final ``@odata.deltaLink`` (None if not delta)."""
        items: list[dict[str, Any]] = []
        delta_link: str | None = None
        async for page in self.iterate_pages(
            path_or_url, params=params, page_size=page_size, prefer=prefer
        ):
            items.extend(page.items)
            delta_link = page.delta_link or delta_link
        return items, delta_link


@dataclass(frozen=True)
class ItemCollection:
    """A Graph collection whose items we create, change and delete (a mailbox's events, a
    To Do list's tasks), with the ``Prefer`` values its answers need."""

    graph: GraphClient
    path: str
    prefer: tuple[str, ...] = ()

    async def create(
        self, body: dict[str, Any], *, transaction_id: str | None = None
    ) -> dict[str, Any]:
        """The created item. With ``transaction_id`` (events), a retried create returns the
        first item instead of making a second one (Graph's idempotent POST)."""
        if transaction_id is not None:
            body = {**body, "transactionId": transaction_id}
        return await self.graph.post_json(self.path, body, prefer=list(self.prefer))

    async def update(self, item_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.graph.patch_json(f"{self.path}/{item_id}", body, prefer=list(self.prefer))

    async def delete(self, item_id: str, *, notify: bool = False) -> None:
        """Graph can't be told whether to notify: deleting a meeting that has attendees
        sends them a cancellation whatever ``notify`` says (callers decide beforehand)."""
        await self.graph.delete(f"{self.path}/{item_id}")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise UnexpectedResponse(
            "Microsoft Graph answered with something that is not JSON."
        ) from exc
    if not isinstance(data, dict):
        raise UnexpectedResponse("Microsoft Graph answered with JSON that is not an object.")
    return data


__all__ = [
    "IMMUTABLE_ID_PREFERENCE",
    "SLOT_LEASE_MARGIN_SECONDS",
    "TEXT_BODY_PREFERENCE",
    "UTC_PREFERENCE",
    "GraphClient",
    "ItemCollection",
    "Page",
    "RequestBudget",
    "TokenSource",
    "page_size_preference",
    "request_deadline_seconds",
    "slot_lease_seconds",
    "user_path",
]
