"""Delta rounds over Microsoft Graph: where to start, and one page read ahead.

A delta round starts from the stored cursor when there is one (an ``@odata.deltaLink``,
or the ``@odata.nextLink`` of a round interrupted mid-way), else from the collection's
``/delta`` URL with the caller's query (``$select``, ``$filter``, window). Links are used
as Microsoft returned them: they carry the sync state and must not be edited.

``read_ahead`` fetches page N+1 while the caller stores page N, so a first sync runs at the
speed of the slower of the two instead of their sum. The cursor a caller stores with page
N is that page's own ``next_link``/``delta_link``, so reading ahead never moves a cursor
past what was stored.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping

from m365sync.microsoft.graph import GraphClient, Page

__all__ = ["delta_pages", "read_ahead"]


def delta_pages(
    graph: GraphClient,
    *,
    initial_path: str,
    params: Mapping[str, str | int] | None,
    cursor: str | None,
    page_size: int,
    prefer: list[str] | None = None,
) -> AsyncIterator[Page]:
    """The pages of one delta round (see the module docstring for where it starts)."""
    if cursor:
        return graph.iterate_pages(cursor, page_size=page_size, prefer=prefer)
    return graph.iterate_pages(initial_path, params=params, page_size=page_size, prefer=prefer)


async def read_ahead(pages: AsyncIterator[Page]) -> AsyncGenerator[Page, None]:
    """Yield ``pages`` while the next one is already being fetched."""
    iterator = aiter(pages)
    pending: asyncio.Task[Page] | None = asyncio.ensure_future(anext(iterator))
    try:
        while pending is not None:
            try:
                page = await pending
            except StopAsyncIteration:
                pending = None
                return
            pending = asyncio.ensure_future(anext(iterator)) if page.next_link else None
            yield page
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Exception):
                await pending
        closer = getattr(iterator, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()
