"""Sync health as pictures: small bar charts drawn on the server as SVG (no script, no
chart library, nothing the CSP has to allow), one per measure, over the same time axis.
This module works out the geometry; ``partials/health_charts.html`` draws it, with each
chart's numbers in words for screen readers (``aria-label``, a ``<title>`` per bar).
Presentation only: the numbers come from ``sync.service.health_history``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from m365sync.sync.service import HealthPoint

WIDTH, HEIGHT, TOP, BOTTOM = 300, 90, 14, 16
CHART_HOURS = 6  # how far back the dashboard's charts look


@dataclass(frozen=True)
class Measure:
    key: str
    title: str
    unit: str
    value: Callable[[HealthPoint], int]
    adds_up: bool = True  # a count per bucket (else a level: the latest is the headline)


MEASURES = (
    Measure("logged", "Items logged", "items", lambda p: p.items_logged),
    Measure("errors", "Errors", "failed runs", lambda p: p.errors),
    Measure("throttled", "Throttling", "throttled runs", lambda p: p.throttled),
    Measure("backlog", "Backlog", "features waiting", lambda p: p.backlog, adds_up=False),
)


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    headline: int
    peak: int
    summary: str
    bars: list[Bar]


@dataclass(frozen=True)
class HealthCharts:
    hours: int
    charts: list[Chart]
    width: int = WIDTH
    height: int = HEIGHT
    top: int = TOP
    bottom: int = BOTTOM


def health_charts(points: Sequence[HealthPoint], *, hours: int) -> HealthCharts:
    """The four charts (items logged, errors, throttling, backlog) for ``points``."""
    return HealthCharts(hours, [_chart(m, points, hours) for m in MEASURES])


def _chart(measure: Measure, points: Sequence[HealthPoint], hours: int) -> Chart:
    values = [measure.value(p) for p in points]
    peak = max(values, default=0)
    headline = sum(values) if measure.adds_up else (values[-1] if values else 0)
    summary = (
        f"{measure.title} over the last {hours} hours: {headline} {measure.unit} in all"
        if measure.adds_up
        else f"{measure.title} over the last {hours} hours: at most {peak} {measure.unit}, "
        f"{headline} now"
    )
    slot = WIDTH / max(len(values), 1)
    scale = (HEIGHT - TOP - BOTTOM) / peak if peak else 0.0
    bars = [
        Bar(
            x=index * slot + slot * 0.1,
            y=HEIGHT - BOTTOM - max(value * scale, 1.5),
            width=max(slot * 0.8, 1.0),
            height=max(value * scale, 1.5),
            label=f"{value} {measure.unit} at {point.at:%H:%M} UTC",
        )
        for index, (point, value) in enumerate(zip(points, values, strict=True))
        if value
    ]
    return Chart(measure.key, measure.title, headline, peak, summary, bars)
