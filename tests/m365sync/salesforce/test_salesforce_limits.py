"""The API budget: m365sync's share of the org's rolling 24-hour request limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from m365sync.salesforce import ApiBudget, ApiUsage
from m365sync.salesforce.errors import ApiShareUsed, ErrorCategory
from m365sync.salesforce.limits import (
    allowance,
    estimate_resume,
    parse_limit_info,
    usage_from_limits,
)

NOON = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)


def usage(used: int, limit: int = 100_000, at: datetime = NOON) -> ApiUsage:
    return ApiUsage(used=used, limit=limit, observed_at=at)


def test_reads_the_limit_header_and_the_limits_resource() -> None:
    assert parse_limit_info("api-usage=18/5000", observed_at=NOON) == usage(18, 5000)
    with_app = "api-usage=25/5000;per-app-api-usage=17/250(appName=m365sync)"
    assert parse_limit_info(with_app, observed_at=NOON) == usage(25, 5000)
    assert parse_limit_info(None, observed_at=NOON) is None
    assert parse_limit_info("per-app-api-usage=17/250(appName=x)", observed_at=NOON) is None
    limits = {"DailyApiRequests": {"Max": 15000, "Remaining": 14990}}
    assert usage_from_limits(limits, observed_at=NOON) == usage(10, 15000)
    assert usage_from_limits({"DataStorageMB": {}}, observed_at=NOON) is None
    assert usage(99_000).remaining == 1_000
    assert usage(101_000).remaining == 0


def test_nothing_known_yet_lets_the_first_call_through() -> None:
    decision = ApiBudget(0.5).decide(NOON)
    assert decision.allowed and decision.usage is None


def test_allows_calls_up_to_the_share_and_refuses_past_it() -> None:
    budget = ApiBudget(0.5)
    budget.observe(usage(49_999))
    assert budget.decide(NOON).allowed
    assert not budget.decide(NOON, calls=2).allowed
    budget.observe(usage(50_000))
    refused = budget.decide(NOON)
    assert not refused.allowed
    assert refused.cap == 50_000
    assert refused.resumes_at is not None and refused.resumes_at > NOON


def test_other_integrations_usage_counts_too() -> None:
    # The share caps the org's usage, whoever made the calls: what is left stays free.
    budget = ApiBudget(0.25)
    budget.observe(usage(30_000))
    assert not budget.decide(NOON).allowed
    assert allowance(100_000, 0.25) == 25_000


def test_refusal_raises_a_limit_error_that_says_when_and_how() -> None:
    budget = ApiBudget(0.5)
    budget.observe(usage(60_000))
    with pytest.raises(ApiShareUsed) as refused:
        budget.check(NOON)
    error = refused.value
    assert error.category == ErrorCategory.LIMIT_EXCEEDED
    assert error.retryable
    assert "60,000 of its 100,000" in error.message
    assert "50%" in error.message
    assert error.resumes_at == budget.decide(NOON).resumes_at
    assert "rolling 24-hour window frees calls" in (error.fix or "")
    assert f"{error.resumes_at:%Y-%m-%d %H:%M}" in (error.fix or "")


def test_resume_estimate_assumes_calls_spread_over_the_day() -> None:
    # 10,001 of 60,000 calls must age out: a sixth of a day, evenly spread.
    resumes = estimate_resume(usage(60_000), 50_000)
    assert resumes == NOON + timedelta(hours=24) * (10_001 / 60_000)
    # Never sooner than the recheck interval, never later than a whole window.
    assert estimate_resume(usage(50_000), 50_000) == NOON + timedelta(minutes=15)
    assert estimate_resume(usage(100_000), 0) == NOON + timedelta(hours=24)
    assert estimate_resume(usage(0, 0), 0) == NOON + timedelta(hours=24)
    assert estimate_resume(usage(10), 50_000) == NOON


def test_after_the_wait_one_probe_goes_through_then_the_answer_decides() -> None:
    budget = ApiBudget(0.5, recheck_after=timedelta(minutes=15))
    budget.observe(usage(50_000))
    resumes = budget.decide(NOON).resumes_at
    assert resumes == NOON + timedelta(minutes=15)
    assert not budget.decide(resumes - timedelta(seconds=1)).allowed
    probe = budget.decide(resumes)
    assert probe.allowed and probe.probe
    # Until the probe's answer arrives, nobody else goes.
    waiting = budget.decide(resumes + timedelta(seconds=1))
    assert not waiting.allowed
    assert waiting.resumes_at == resumes + timedelta(minutes=15)
    # The answer says calls have aged out: back to normal.
    budget.observe(usage(42_000, at=resumes + timedelta(seconds=2)))
    assert budget.decide(resumes + timedelta(seconds=3)).allowed


def test_older_answers_do_not_overwrite_newer_ones() -> None:
    budget = ApiBudget(0.5)
    budget.observe(usage(60_000, at=NOON))
    budget.observe(usage(10, at=NOON - timedelta(seconds=1)))
    assert budget.usage == usage(60_000)
    assert not budget.decide(NOON).allowed


def test_the_whole_limit_can_be_granted_but_not_more() -> None:
    budget = ApiBudget(1.0)
    budget.observe(usage(99_999))
    assert budget.decide(NOON).allowed
    budget.observe(usage(100_000))
    assert not budget.decide(NOON).allowed
    for share in (0, -0.1, 1.5):
        with pytest.raises(ValueError):
            ApiBudget(share)
