"""The operator's door: ``/healthz``, ``/readyz`` and ``/metrics``, outside ``/api/v1`` and
without sign-in (load balancers and Prometheus call them; keep ``/metrics`` to your
network at the proxy, docs/deploy.md).

- ``/healthz``: the process answers (200 ``{"status": "ok"}``).
- ``/readyz``: ready to serve (200) or not (503), with every check and, for a failed one,
  its cause and fix (``m365sync.operations.service.readiness``).
- ``/metrics``: this process's counters (``m365sync.metrics``) and the fleet's gauges read
  from the database at scrape time: ``m365sync_units{feature,status,stage}``,
  ``m365sync_units_due``, ``m365sync_bookings{status}``,
  ``m365sync_scheduler_lease_seconds`` (until the elected scheduler's lease passes),
  with Salesforce connected ``m365sync_salesforce_api_usage_ratio`` (and the requests used
  and allowed) and, with Celery, ``m365sync_celery_queue_length``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from m365sync.db.session import Database
from m365sync.operations import service as operations

__all__ = ["FleetCollector", "install_operations"]

router = APIRouter(include_in_schema=False)


class FleetCollector(Collector):
    """Gauges read from the database (and the broker) when Prometheus scrapes."""

    def __init__(self, database: Database, queue_length: Callable[[], int] | None) -> None:
        self.database = database
        self.queue_length = queue_length

    def collect(self) -> Iterator[Metric]:
        with self.database.session() as session:
            snapshot = operations.fleet_snapshot(session)
        units = GaugeMetricFamily(
            "m365sync_units",
            "Sync units by feature, status people see, and pipeline stage.",
            labels=["feature", "status", "stage"],
        )
        for feature, status, stage, count in snapshot.units:
            units.add_metric([feature, status, stage], count)
        yield units
        yield GaugeMetricFamily(
            "m365sync_units_due",
            "Units due now that nobody runs (the backlog, waiting for a worker).",
            value=snapshot.due,
        )
        bookings = GaugeMetricFamily(
            "m365sync_bookings", "Calendar Scheduling bookings by status.", labels=["status"]
        )
        for status, count in sorted(snapshot.bookings.items()):
            bookings.add_metric([status], count)
        yield bookings
        remaining = 0.0
        if snapshot.scheduler_expires_at is not None:
            remaining = (snapshot.scheduler_expires_at - snapshot.taken_at).total_seconds()
        yield GaugeMetricFamily(
            "m365sync_scheduler_lease_seconds",
            "Seconds until the elected scheduler's lease passes (negative or 0: no scheduler "
            "leads; scaled-out installations only).",
            value=remaining,
        )
        if snapshot.salesforce_usage:
            yield GaugeMetricFamily(
                "m365sync_salesforce_api_usage_ratio",
                "The highest share of its daily API requests (rolling 24 hours) any connected "
                "Salesforce org has used, as Salesforce last reported it (0 to 1; m365sync "
                "holds its calls back past the org's API share).",
                value=max(used / limit for used, limit in snapshot.salesforce_usage),
            )
            yield GaugeMetricFamily(
                "m365sync_salesforce_api_requests_used",
                "Daily API requests the connected Salesforce orgs have used (all of them).",
                value=sum(used for used, _ in snapshot.salesforce_usage),
            )
            yield GaugeMetricFamily(
                "m365sync_salesforce_api_requests_limit",
                "Daily API requests the connected Salesforce orgs allow (all of them).",
                value=sum(limit for _, limit in snapshot.salesforce_usage),
            )
        if self.queue_length is not None:
            try:
                waiting = float(self.queue_length())
            except Exception:
                waiting = float("nan")
            yield GaugeMetricFamily(
                "m365sync_celery_queue_length",
                "Sync units waiting in the Celery queue (NaN: the broker does not answer).",
                value=waiting,
            )


def install_operations(
    app: FastAPI,
    *,
    broker_url: str | None = None,
    queue_length: Callable[[], int] | None = None,
) -> None:
    """Mount the three routes; ``broker_url`` and ``queue_length`` when units go to
    Celery."""
    fleet = CollectorRegistry(auto_describe=False)
    fleet.register(FleetCollector(app.state.database, queue_length))
    app.state.operations_fleet = fleet
    app.state.operations_broker_url = broker_url
    app.include_router(router)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    state = request.app.state
    answer = operations.readiness(
        state.database, state.settings, broker_url=state.operations_broker_url
    )
    checks: dict[str, dict[str, object]] = {}
    for check in answer.checks:
        checks[check.name] = (
            {"ok": True}
            if check.ok
            else {
                "ok": False,
                "message": check.message,
                "fix": check.fix,
            }
        )
    return JSONResponse(
        {"status": "ready" if answer.ready else "not ready", "checks": checks},
        status_code=200 if answer.ready else 503,
    )


@router.get("/metrics")
def metrics(request: Request) -> Response:
    fleet: CollectorRegistry = request.app.state.operations_fleet
    return Response(
        generate_latest(REGISTRY) + generate_latest(fleet), media_type=CONTENT_TYPE_LATEST
    )
