"""The org's daily API request limit, and m365sync's share of it.

Salesforce counts an org's API requests over a rolling 24 hours (``/limits`` →
``DailyApiRequests``: ``Max`` and ``Remaining``; every REST answer carries
``Sforce-Limit-Info: api-usage=N/M``). Past the limit it refuses every call with 403
``REQUEST_LIMIT_EXCEEDED`` — for every user and integration of the org, not only for
m365sync. So m365sync never spends the whole allowance: ``ApiBudget`` lets calls through
only while the org's usage stays within ``salesforce_api_share`` (default half) of ``Max``,
leaving the rest to the org's other users and integrations.

The usage is the org's, not m365sync's own count, on purpose: every worker process reads
the same number from every answer, so the budget holds across processes without any
coordination, and other integrations' usage is respected.

When calls come back is an estimate. Salesforce reports how many calls the window holds,
not when each was made; the budget assumes they were spread evenly over the 24 hours
(so ``excess / used`` of a day frees enough), waits at least ``recheck_after`` and at most
24 hours, then lets a single call through to read the usage afresh.

Pure logic: the clock is a parameter, nothing here calls Salesforce.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from m365sync.salesforce.errors import ApiShareUsed

WINDOW = timedelta(hours=24)
DEFAULT_RECHECK_AFTER = timedelta(minutes=15)

_API_USAGE = re.compile(r"(?:^|[;,\s])api-usage=(\d+)/(\d+)")


@dataclass(frozen=True)
class ApiUsage:
    """The org's API requests in the rolling 24 hours, as Salesforce last reported them."""

    used: int
    limit: int
    observed_at: datetime

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


def parse_limit_info(header: str | None, *, observed_at: datetime) -> ApiUsage | None:
    """``Sforce-Limit-Info: api-usage=18/5000`` (possibly followed by
    ``per-app-api-usage=...``) as an ``ApiUsage``; None when absent or unreadable."""
    if not header:
        return None
    match = _API_USAGE.search(header)
    if match is None:
        return None
    return ApiUsage(used=int(match[1]), limit=int(match[2]), observed_at=observed_at)


def usage_from_limits(limits: Mapping[str, Any], *, observed_at: datetime) -> ApiUsage | None:
    """The ``DailyApiRequests`` entry of a ``/limits`` answer as an ``ApiUsage``."""
    daily = limits.get("DailyApiRequests")
    if not isinstance(daily, Mapping):
        return None
    try:
        maximum, remaining = int(daily["Max"]), int(daily["Remaining"])
    except (KeyError, TypeError, ValueError):
        return None
    return ApiUsage(used=max(0, maximum - remaining), limit=maximum, observed_at=observed_at)


def allowance(limit: int, share: float) -> int:
    """How many of the org's ``limit`` calls m365sync may see used: ``floor(limit * share)``."""
    return math.floor(limit * share)


def estimate_resume(
    usage: ApiUsage,
    cap: int,
    *,
    calls: int = 1,
    recheck_after: timedelta = DEFAULT_RECHECK_AFTER,
) -> datetime:
    """When enough of the window's calls have aged out for ``calls`` more to fit under ``cap``.

    Assumes the window's calls were spread evenly over the 24 hours, so freeing ``excess``
    of ``used`` calls takes ``excess / used`` of a day; never sooner than ``recheck_after``
    and never later than a whole window after the observation."""
    excess = usage.used + calls - cap
    if excess <= 0:
        return usage.observed_at
    wait = WINDOW if usage.used <= 0 else WINDOW * min(1.0, excess / usage.used)
    return usage.observed_at + min(WINDOW, max(recheck_after, wait))


@dataclass(frozen=True)
class BudgetDecision:
    """Whether ``calls`` may be spent now, and if not, when to ask again."""

    allowed: bool
    usage: ApiUsage | None
    cap: int | None
    """The org usage m365sync stops at: ``floor(limit * share)``."""
    resumes_at: datetime | None = None
    probe: bool = False
    """Allowed only to read the usage afresh after a wait (its answer updates the budget)."""


class ApiBudget:
    """m365sync's share of one org's rolling 24-hour API request limit.

    One per Salesforce org and process; thread-safe. Feed it every usage Salesforce
    reports (``observe``), ask it before each call (``decide`` or ``check``).
    """

    def __init__(
        self, share: float = 0.5, *, recheck_after: timedelta = DEFAULT_RECHECK_AFTER
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be more than 0 and at most 1")
        self.share = share
        self.recheck_after = recheck_after
        self._usage: ApiUsage | None = None
        self._probe_since: datetime | None = None
        self._lock = threading.Lock()

    @property
    def usage(self) -> ApiUsage | None:
        """The newest usage observed."""
        return self._usage

    def observe(self, usage: ApiUsage) -> None:
        """Record what Salesforce reported; an observation older than the newest is ignored
        (answers of concurrent calls arrive in any order)."""
        with self._lock:
            if self._usage is None or usage.observed_at >= self._usage.observed_at:
                self._usage = usage
                self._probe_since = None

    def decide(self, now: datetime, calls: int = 1) -> BudgetDecision:
        """Whether ``calls`` API requests may be spent at ``now``.

        Nothing observed yet: allowed (the first answer tells the usage). Within the share:
        allowed. Past it: refused until the estimated resume time, then one call is let
        through as a probe; others wait for its answer (or another ``recheck_after``)."""
        with self._lock:
            usage = self._usage
            if usage is None:
                return BudgetDecision(allowed=True, usage=None, cap=None)
            cap = allowance(usage.limit, self.share)
            if usage.used + calls <= cap:
                return BudgetDecision(allowed=True, usage=usage, cap=cap)
            resumes_at = estimate_resume(usage, cap, calls=calls, recheck_after=self.recheck_after)
            if self._probe_since is not None:
                resumes_at = max(resumes_at, self._probe_since + self.recheck_after)
            if now < resumes_at:
                return BudgetDecision(allowed=False, usage=usage, cap=cap, resumes_at=resumes_at)
            self._probe_since = now
            return BudgetDecision(allowed=True, usage=usage, cap=cap, probe=True)

    def check(self, now: datetime, calls: int = 1) -> BudgetDecision:
        """``decide``, raising ``ApiShareUsed`` (with ``resumes_at``) when refused."""
        decision = self.decide(now, calls)
        if not decision.allowed:
            assert decision.usage is not None
            raise ApiShareUsed.for_share(decision.usage, self.share, decision.resumes_at)
        return decision

    def resume_estimate(self, calls: int = 1) -> datetime | None:
        """When ``calls`` more fit under the share, from the newest usage (None: unknown)."""
        usage = self._usage
        if usage is None:
            return None
        return estimate_resume(
            usage,
            allowance(usage.limit, self.share),
            calls=calls,
            recheck_after=self.recheck_after,
        )


__all__ = [
    "ApiBudget",
    "ApiUsage",
    "BudgetDecision",
    "allowance",
    "estimate_resume",
    "parse_limit_info",
    "usage_from_limits",
]
