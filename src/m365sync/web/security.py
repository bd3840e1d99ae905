"""Browser-facing security: response headers for every page, safe email bodies, limits on
what anonymous visitors may ask of the server, and bounded request bodies.

Four promises:

- Every response carries a Content-Security-Policy that allows no inline script and no
  framing (``frame-ancestors 'none'``), plus the usual hardening headers. The dashboard's
  own JavaScript is a static file, so the policy never needs ``'unsafe-inline'``.
- Email bodies shown in Activities are sanitised with ``nh3`` before they reach a
  template: no script, no event handlers, no styles, no forms, no frames, and no remote
  content (images keep only inline ``data:`` sources). Links open outside our origin's
  context (``rel="noopener noreferrer nofollow"``). The CSP's ``img-src 'self' data:`` is
  the second line of defence should the sanitiser ever let a remote image through.
- Anonymous routes (the public booking pages, sign-in) are rate limited per visitor (IP
  address, an IPv6 /64 counting as one) and per link (one booking page, one invitee link):
  past the limit the answer is 429 with ``Retry-After`` and a page that says when to try
  again. ``X-Forwarded-For`` is believed only from the proxies the ``trusted_proxies``
  setting names. Limits live in this process (``RateLimits`` on ``app.state``); with
  several web processes, each allows its share (docs/security.md).
- A body an anonymous caller sends is refused (413) as soon as it passes its size limit,
  by ``Content-Length`` before anything is read or while it streams in
  (``read_body_within``): it is never held whole in memory.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import Literal
from urllib.parse import urlsplit

import nh3
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from m365sync.errors import M365SyncError
from m365sync.settings import Settings, get_settings

__all__ = [
    "AnonymousCapacity",
    "BodyTooLarge",
    "LimitKind",
    "RateLimited",
    "RateLimiter",
    "RateLimits",
    "SecurityHeadersMiddleware",
    "ServerBusy",
    "anonymous_place",
    "client_address",
    "content_security_policy",
    "rate_limited",
    "rate_limits_of",
    "read_body_within",
    "response_headers",
    "sanitize_email_html",
    "security_headers",
]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(*, sign_in_origins: tuple[str, ...] = ()) -> str:
    """The page policy. ``sign_in_origins`` are the Microsoft sign-in hosts a form may
    redirect to ("Connect your Office 365", "Sign in with Microsoft"): browsers apply
    ``form-action`` to the redirects that follow a form submission."""
    form_targets = " ".join(["'self'", *sorted({_origin(o) for o in sign_in_origins})])
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "frame-src 'none'",
            "base-uri 'none'",
            f"form-action {form_targets}",
            "frame-ancestors 'none'",
        ]
    )


def security_headers(*, sign_in_origins: tuple[str, ...] = ()) -> list[tuple[bytes, bytes]]:
    """The headers every response carries (``SecurityHeadersMiddleware``; a server error's
    page, answered outside the middleware, adds them itself)."""
    return [
        (
            b"content-security-policy",
            content_security_policy(sign_in_origins=sign_in_origins).encode(),
        ),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"cross-origin-resource-policy", b"same-origin"),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
    ]


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp, *, sign_in_origins: tuple[str, ...] = ()) -> None:
        self.app = app
        self.headers = security_headers(sign_in_origins=sign_in_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in self.headers if h[0] not in present)
                if https and b"strict-transport-security" not in present:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


_EMAIL_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del",
    "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
    "ins", "li", "ol", "p", "pre", "q", "s", "small", "span", "strike", "strong", "sub",
    "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
_EMAIL_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "*": {"dir", "lang", "title"},
}
_REMOVED_WITH_CONTENT = {
    "script",
    "style",
    "iframe",
    "object",
    "embed",
    "template",
    "noscript",
    "title",
}


def _keep_only_inline_images(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src" and not value.lower().startswith("data:image/"):
        return None
    return value


def sanitize_email_html(body: str) -> str:
    """HTML of an email body, safe to place in a page of our origin (see module docs)."""
    return nh3.clean(
        body,
        tags=_EMAIL_TAGS,
        clean_content_tags=_REMOVED_WITH_CONTENT,
        attributes=_EMAIL_ATTRIBUTES,
        attribute_filter=_keep_only_inline_images,
        url_schemes={"http", "https", "mailto", "data"},
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True,
    )


# -- rate limits on anonymous routes ------------------------------------------------------------


class RateLimited(M365SyncError):
    """429: one visitor (or one link) asked too often; ``retry_after`` says for how long
    (whole seconds, at least 1) the next request would be refused too."""

    status = 429

    def __init__(self, message: str, *, retry_after: float, now: datetime | None = None) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        when = (now or datetime.now(UTC)) + timedelta(seconds=self.retry_after)
        super().__init__(
            message,
            fix=f"Try again in {self.retry_after} seconds (after {when:%H:%M:%S} UTC).",
        )


class ServerBusy(RateLimited):
    """503: every place for anonymous work was taken for too long; try again shortly."""

    status = 503


class BodyTooLarge(M365SyncError):
    """413: a request body over its limit, refused before it was read whole."""

    status = 413


def response_headers(error: M365SyncError) -> dict[str, str]:
    """Headers an error's answer must carry: ``Retry-After`` for a rate limit."""
    if isinstance(error, RateLimited):
        return {"Retry-After": str(error.retry_after)}
    return {}


class RateLimiter:
    """Token buckets by key: up to ``per_minute`` requests a minute, in bursts of up to
    ``per_minute``. ``per_minute == 0`` switches the limit off.

    Memory is bounded: at most ``max_keys`` buckets are kept, the least recently used one
    forgotten first (a forgotten visitor starts again with a full bucket, which only ever
    errs on the side of letting a person through).
    """

    def __init__(
        self,
        per_minute: int,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Spend one request of ``key``'s budget: 0.0 if allowed, else the seconds until the
        next request would be."""
        if self.capacity <= 0:
            return 0.0
        now = self.clock()
        with self._lock:
            tokens, updated = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - updated) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        return wait


Network = IPv4Network | IPv6Network


def _parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ip_network(v.strip(), strict=False) for v in values if v.strip())


def _is_trusted(host: str, trusted: tuple[Network, ...]) -> bool:
    try:
        address = ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in trusted)


def _visitor_key(host: str) -> str:
    """One key per visitor: an IPv4 address, or an IPv6 /64 (what one subscriber is
    usually given, so a visitor can't dodge the limit by walking their own prefix)."""
    try:
        address = ip_address(host)
    except ValueError:
        return host or "unknown"
    if address.version == 6 and getattr(address, "ipv4_mapped", None) is None:
        return str(ip_network(f"{address}/64", strict=False))
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def client_address(request: Request, trusted_proxies: tuple[Network, ...] = ()) -> str:
    """The visitor's address. ``X-Forwarded-For`` counts only when the direct peer is a
    trusted proxy; then the nearest address that is not itself a trusted proxy is the
    visitor (the ones further left were written by the visitor, who may lie)."""
    peer = request.client.host if request.client else ""
    if not trusted_proxies or not _is_trusted(peer, trusted_proxies):
        return peer
    hops = [
        hop.strip()
        for header in request.headers.getlist("x-forwarded-for")
        for hop in header.split(",")
        if hop.strip()
    ]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted_proxies):
            return hop
    return hops[0] if hops else peer


LimitKind = Literal["booking_views", "bookings", "sign_ins"]

_REFUSALS: dict[LimitKind, tuple[str, str]] = {
    "booking_views": (
        "Too many booking pages were opened from your network in the last minute.",
        "This booking page is very busy right now.",
    ),
    "bookings": (
        "Too many booking requests came from your network in the last minute.",
        "This booking page is receiving too many booking requests right now.",
    ),
    "sign_ins": (
        "Too many sign-in attempts came from your network in the last minute.",
        "Too many sign-in attempts right now.",
    ),
}


@dataclass
class RateLimits:
    """What anonymous visitors may ask of this server, per minute (settings ``rate_limit_*``):
    per visitor, and per link (a booking page, or one invitee's cancel/reschedule link)."""

    per_visitor: dict[LimitKind, RateLimiter]
    per_link: dict[LimitKind, RateLimiter]
    trusted_proxies: tuple[Network, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        return cls(
            per_visitor={
                "booking_views": RateLimiter(settings.rate_limit_booking_views_per_minute),
                "bookings": RateLimiter(settings.rate_limit_bookings_per_minute),
                "sign_ins": RateLimiter(settings.rate_limit_sign_ins_per_minute),
            },
            per_link={
                "booking_views": RateLimiter(settings.rate_limit_booking_views_per_link_per_minute),
                "bookings": RateLimiter(settings.rate_limit_bookings_per_link_per_minute),
            },
            trusted_proxies=_parse_networks(settings.trusted_proxies),
        )

    def check(self, kind: LimitKind, visitor: str, link: str | None = None) -> None:
        """Count one request; ``RateLimited`` when the visitor or the link is over its limit.
        A refused request spends nothing of the link's budget: one visitor over their own
        limit can't use up a booking page for everyone else."""
        wait = self.per_visitor[kind].take(_visitor_key(visitor))
        visitor_message, link_message = _REFUSALS[kind]
        if wait:
            raise RateLimited(visitor_message, retry_after=wait)
        limiter = self.per_link.get(kind)
        if link is not None and limiter is not None:
            wait = limiter.take(link)
            if wait:
                raise RateLimited(link_message, retry_after=wait)


def rate_limits_of(request: Request) -> RateLimits:
    """The app's limits, made from its settings on first use."""
    state = request.app.state
    limits = getattr(state, "rate_limits", None)
    if not isinstance(limits, RateLimits):
        settings = getattr(state, "settings", None)
        limits = RateLimits.from_settings(
            settings if isinstance(settings, Settings) else get_settings()
        )
        state.rate_limits = limits
    return limits


def rate_limited(
    kind: LimitKind, *, per_link: bool = False
) -> Callable[[Request], Awaitable[None]]:
    """A route dependency that counts the request against ``kind``'s limits (the link is the
    route's path parameters: a booking page's organization and meeting type, or an
    invitee link's token) and raises ``RateLimited`` past them."""

    async def check(request: Request) -> None:
        limits = rate_limits_of(request)
        link = "/".join(str(v) for v in request.path_params.values()) if per_link else None
        limits.check(kind, client_address(request, limits.trusted_proxies), link)

    return check


class AnonymousCapacity:
    """At most ``at_once`` anonymous requests that wait on Microsoft are served at a time;
    others wait their turn up to ``wait_seconds``, then are asked to come back
    (``ServerBusy``). However many visitors arrive, they never take more of the server (its
    event loop, threads and database connections) than this, so signed-in people and the
    sync engine keep theirs."""

    def __init__(self, at_once: int, *, wait_seconds: float = 20.0) -> None:
        self.at_once = at_once
        self.wait_seconds = wait_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._places = asyncio.Semaphore(at_once)

    def _semaphore(self) -> asyncio.Semaphore:
        # A semaphore belongs to one event loop; a server has one (tests may start several).
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._places = loop, asyncio.Semaphore(self.at_once)
        return self._places

    @asynccontextmanager
    async def place(self) -> AsyncIterator[None]:
        places = self._semaphore()
        try:
            await asyncio.wait_for(places.acquire(), timeout=self.wait_seconds)
        except TimeoutError:
            raise ServerBusy("This booking page is very busy right now.", retry_after=5) from None
        try:
            yield
        finally:
            places.release()


def anonymous_capacity_of(request: Request) -> AnonymousCapacity:
    state = request.app.state
    capacity = getattr(state, "anonymous_capacity", None)
    if not isinstance(capacity, AnonymousCapacity):
        settings = getattr(state, "settings", None)
        at_once = (
            settings if isinstance(settings, Settings) else get_settings()
        ).anonymous_requests_at_once
        capacity = AnonymousCapacity(at_once)
        state.anonymous_capacity = capacity
    return capacity


async def anonymous_place(request: Request) -> AsyncIterator[None]:
    """A route dependency: the request holds one of the ``AnonymousCapacity`` places while
    it runs."""
    async with anonymous_capacity_of(request).place():
        yield


# -- bounded request bodies ---------------------------------------------------------------------


async def read_body_within(request: Request, limit: int, *, what: str, fix: str) -> bytes:
    """The request body, or ``BodyTooLarge`` as soon as it is known to exceed ``limit``
    bytes: from ``Content-Length`` before reading anything, else while it streams in (at
    most ``limit`` bytes plus one chunk are ever held)."""
    declared = request.headers.get("content-length")
    too_large = BodyTooLarge(f"{what} is larger than {limit:,} bytes.", fix=fix)
    if declared is not None:
        try:
            if int(declared) > limit:
                raise too_large
        except ValueError:
            raise BodyTooLarge(f"{what} has an invalid length.", fix=fix) from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
