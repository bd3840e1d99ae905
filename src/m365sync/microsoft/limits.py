"""Outlook's request limits, kept by every process of a deployment together.

Microsoft Graph evaluates Outlook's limits "for each app ID and mailbox combination": 4
requests in flight and 10,000 requests per 10 minutes. A ``GraphClient`` asks its
``RequestSlots`` for a slot before each request and gives it back when the answer is in:

- ``LocalSlots`` (``m365sync serve``, the web app, ``m365sync sync``): one asyncio
  semaphore per mailbox, shared by every unit of the process that uses the same client.
  Enough where one process does all the syncing.
- ``SharedSlots`` (``m365sync worker`` and ``m365sync scheduler``): the slots live in
  Redis, so every pool process of every worker and the scheduler count against the same 4
  per mailbox, the same request window per mailbox and the same cap per connection (one
  app in one tenant). Adding workers then adds no throttling: a request that would be the
  fifth in flight waits here instead of drawing Graph's ``MailboxConcurrency`` 429.

How ``SharedSlots`` keeps them (one Lua script, atomic in Redis, timed by Redis's clock so
machines whose clocks differ agree):

- in flight: a sorted set per mailbox and one per connection, of slot tokens scored by
  when their lease ends. A slot is taken only if both sets hold fewer than their limit
  once expired leases are dropped, and is removed when the answer is in. A process that
  dies holding slots (SIGKILL, a lost machine) frees them when their lease passes
  (``lease_seconds``: ``graph.slot_lease_seconds``, the request deadline plus a margin).
  The lease must outlast any request still running, or other processes would count a
  slot that is still in use as free: httpx's timeout bounds each network step, not the
  whole answer, so ``GraphClient`` cuts every attempt off at its deadline
  (``graph.request_deadline_seconds``), however slowly the answer trickles in;
- requests per window: a sliding-window counter per mailbox (this window's count plus the
  previous window's, weighted by how much of it still overlaps), kept a little under
  Graph's 10,000 by default (``graph_mailbox_requests_per_window``), since Exchange's own
  accounting is not documented.

A request that finds no slot polls again after a short random pause (a few hundredths of
a second for a slot in flight, up to a second for the request window). If Redis does not
answer, the request goes ahead under the process's own per-mailbox semaphore (logged once):
Graph's 429 and ``Retry-After`` remain the last word.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # redis is loaded by the processes that share limits, not by every command
    import redis.asyncio as aioredis

__all__ = ["GRAPH_MAILBOX_WINDOW_SECONDS", "LocalSlots", "RequestSlots", "SharedSlots"]

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "m365sync:graph-slots"
GRAPH_MAILBOX_WINDOW_SECONDS = 600.0
"""Outlook counts requests per app per mailbox over 10 minutes."""

# KEYS: 1 the mailbox's slots in flight, 2 the connection's, 3 the mailbox's window counts.
# ARGV: 1 token, 2 lease ms, 3 per mailbox, 4 per connection, 5 per window, 6 window ms.
# Returns 0 (slot taken), -1 (no slot in flight: try again shortly) or the ms to wait for
# the request window.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3])
   or redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then
  return -1
end
local window = tonumber(ARGV[6])
local index = math.floor(now / window)
local into = now - index * window
local current = tonumber(redis.call('HGET', KEYS[3], tostring(index)) or '0')
local previous = tonumber(redis.call('HGET', KEYS[3], tostring(index - 1)) or '0')
if previous * (window - into) / window + current >= tonumber(ARGV[5]) then
  return math.max(1, math.min(1000, window - into))
end
for _, field in ipairs(redis.call('HKEYS', KEYS[3])) do
  if tonumber(field) < index - 1 then redis.call('HDEL', KEYS[3], field) end
end
redis.call('HINCRBY', KEYS[3], tostring(index), 1)
redis.call('PEXPIRE', KEYS[3], 2 * window)
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease)
redis.call('ZADD', KEYS[2], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[2], lease)
return 0
"""

_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 0
"""

CONCURRENCY_POLL_SECONDS = (0.01, 0.04)
"""How long a request waits before asking again for a slot in flight (a random pause in
this range, so waiting requests don't ask in step)."""


class RequestSlots(Protocol):
    """Where a Graph client takes a slot for each request to a mailbox."""

    def hold(self, mailbox: str) -> contextlib.AbstractAsyncContextManager[None]:
        """A slot for one request to ``mailbox`` (held while the request is in flight)."""
        ...

    async def aclose(self) -> None: ...


class LocalSlots:
    """Outlook's in-flight limit per mailbox, kept by this process (one event loop)."""

    def __init__(self, per_mailbox: int) -> None:
        self.per_mailbox = per_mailbox
        self._semaphores: dict[str, asyncio.Semaphore] = {}

    def semaphore(self, mailbox: str) -> asyncio.Semaphore:
        key = mailbox.lower()
        if key not in self._semaphores:
            self._semaphores[key] = asyncio.Semaphore(self.per_mailbox)
        return self._semaphores[key]

    @contextlib.asynccontextmanager
    async def hold(self, mailbox: str) -> AsyncIterator[None]:
        async with self.semaphore(mailbox):
            yield

    async def aclose(self) -> None:
        return None


class SharedSlots:
    """Outlook's limits per mailbox, and a cap per connection, kept in Redis for every
    process that syncs through the same connection (``scope``: the connection's id)."""

    def __init__(
        self,
        url: str,
        scope: str,
        *,
        per_mailbox: int,
        per_connection: int,
        requests_per_window: int,
        window_seconds: float,
        lease_seconds: float,
        prefix: str = DEFAULT_PREFIX,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.url = url
        self.scope = scope
        self.per_mailbox = per_mailbox
        self.per_connection = per_connection
        self.requests_per_window = requests_per_window
        self.window_ms = max(1, round(window_seconds * 1000))
        self.lease_ms = max(1, round(lease_seconds * 1000))
        self.prefix = prefix
        self._sleep = sleep
        from redis.exceptions import RedisError

        self._redis_error: type[Exception] = RedisError
        self._redis: aioredis.Redis | None = None
        self._acquire: Any = None
        self._release: Any = None
        self._fallback = LocalSlots(per_mailbox)
        self._warned = False

    def _client(self) -> aioredis.Redis:
        if self._redis is None:
            import redis.asyncio as aioredis

            self._redis = aioredis.Redis.from_url(self.url, socket_timeout=5)
            self._acquire = self._redis.register_script(_ACQUIRE)
            self._release = self._redis.register_script(_RELEASE)
        return self._redis

    def keys(self, mailbox: str) -> list[str]:
        """The Redis keys of ``mailbox``'s slots, the connection's slots and the mailbox's
        request window."""
        base = f"{self.prefix}:{self.scope}"
        mailbox = mailbox.lower()
        return [f"{base}:mailbox:{mailbox}", f"{base}:connection", f"{base}:window:{mailbox}"]

    @contextlib.asynccontextmanager
    async def hold(self, mailbox: str) -> AsyncIterator[None]:
        keys = self.keys(mailbox)
        token = uuid.uuid4().hex
        try:
            await self._take(keys, token)
        except asyncio.CancelledError:
            # Cancelled while Redis was answering (a folder's round stopped because another
            # failed, say): Redis may have given the slot already, and only this token can
            # give it back. Without this the slot stayed taken until its lease ran out.
            await self._give_back(keys, token)
            raise
        except self._redis_error as exc:
            if not self._warned:
                self._warned = True
                log.warning(
                    "Redis at the Graph limits URL does not answer (%s): this process keeps "
                    "Outlook's limits on its own until it does",
                    type(exc).__name__,
                )
            shared = False
        else:
            shared = True
        if not shared:
            async with self._fallback.hold(mailbox):
                yield
            return
        try:
            yield
        finally:
            await self._give_back(keys, token)

    async def _give_back(self, keys: list[str], token: str) -> None:
        """Release ``token``'s slot (nothing, if it holds none). Shielded: a second
        cancellation arriving meanwhile doesn't stop the release half-way."""
        with contextlib.suppress(self._redis_error):  # the lease frees it anyway
            await asyncio.shield(self._release(keys=keys[:2], args=[token]))

    async def _take(self, keys: list[str], token: str) -> None:
        self._client()
        args = [
            token,
            self.lease_ms,
            self.per_mailbox,
            self.per_connection,
            self.requests_per_window,
            self.window_ms,
        ]
        while True:
            answer = int(await self._acquire(keys=keys, args=args))
            if answer == 0:
                self._warned = False
                return
            if answer < 0:
                await self._sleep(random.uniform(*CONCURRENCY_POLL_SECONDS))  # noqa: S311
            else:
                await self._sleep(answer / 1000 * random.uniform(0.5, 1.0))  # noqa: S311

    async def aclose(self) -> None:
        if self._redis is not None:
            redis, self._redis = self._redis, None
            with contextlib.suppress(self._redis_error):
                await redis.aclose()
