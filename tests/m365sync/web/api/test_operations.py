"""``/healthz``, ``/readyz`` and ``/metrics``, as a load balancer and Prometheus see them,
and the request id every answer carries."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from m365sync.crm.models import SalesforceAuthKind, SalesforceConnection, SalesforceStatus
from m365sync.db import Database
from m365sync.organizations import service as organizations
from m365sync.settings import Settings
from m365sync.sync.features import SyncFeature
from m365sync.sync.repository import SyncRepository
from m365sync.web.app import create_app


def elsewhere(web_settings: Settings, database: Database, **kwargs: object) -> FastAPI:
    """The app as ``m365sync web`` builds it, minus Celery unless asked."""
    return create_app(settings=web_settings, database=database, **kwargs)  # type: ignore[arg-type]


def test_healthz_and_readyz_when_all_is_well(web_settings: Settings, database: Database) -> None:
    with TestClient(elsewhere(web_settings, database)) as client:
        health = client.get("/healthz")
        ready = client.get("/readyz")

    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {
            "database": {"ok": True},
            "migrations": {"ok": True},
            "secret_key": {"ok": True},
        },
    }


def test_readyz_says_what_is_wrong_and_how_to_fix_it(
    web_settings: Settings, database: Database
) -> None:
    app = elsewhere(
        web_settings, database, workers="celery"
    )  # units go to Celery: the broker is checked
    app.state.operations_broker_url = "redis://127.0.0.1:1/0"  # nothing listens there
    with database.engine.begin() as connection:  # a database older than this version
        connection.execute(
            text("UPDATE alembic_version SET version_num = '0009_salesforce_connection'")
        )
    (web_settings.data_dir / "secret.key").unlink()  # the key file went missing

    with TestClient(app) as client:
        ready = client.get("/readyz")

    body = ready.json()
    assert ready.status_code == 503 and body["status"] == "not ready"
    checks = body["checks"]
    assert checks["database"] == {"ok": True}
    assert (
        not checks["migrations"]["ok"]
        and "0009_salesforce_connection" in checks["migrations"]["message"]
    )
    assert "Upgrade the database schema" in checks["migrations"]["fix"]
    assert not checks["secret_key"]["ok"] and "secret key" in checks["secret_key"]["fix"]
    assert str(web_settings.data_dir) not in ready.text  # no paths for anonymous callers
    assert not checks["broker"]["ok"] and "Redis" in checks["broker"]["fix"]


def test_metrics_count_units_by_status_and_stage(
    web_settings: Settings, database: Database
) -> None:
    with database.session() as session:
        org = organizations.create_organization(session, "Contoso")
        member = organizations.add_member(session, org, "adele@contoso.com")
        repo = SyncRepository(session)
        repo.ensure_unit(member, SyncFeature.EMAIL)
        repo.ensure_unit(member, SyncFeature.CALENDAR)

    with TestClient(elsewhere(web_settings, database)) as client:
        metrics = client.get("/metrics")

    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    body = metrics.text
    assert 'm365sync_units{feature="email",stage="idle",status="pending"} 1.0' in body
    assert 'm365sync_units{feature="calendar",stage="idle",status="pending"} 1.0' in body
    assert "m365sync_units_due 2.0" in body
    assert "# TYPE m365sync_mail_lag_seconds histogram" in body
    assert "adele@contoso.com" not in body and org.id not in body


def test_metrics_show_the_salesforce_orgs_api_usage(
    web_settings: Settings, database: Database
) -> None:
    with TestClient(elsewhere(web_settings, database)) as client:
        unconnected = client.get("/metrics").text
    with database.session() as session:
        for name, status, used in (
            ("Contoso", SalesforceStatus.ACTIVE, 4_200),
            ("Fabrikam", SalesforceStatus.ACTIVE, 1_000),
            ("Litware", SalesforceStatus.NEEDS_RECONNECT, 14_000),  # not connected: left out
        ):
            org = organizations.create_organization(session, name)
            # What the Salesforce writer stores from each answer's Sforce-Limit-Info.
            session.add(
                SalesforceConnection(
                    organization_id=org.id,
                    login_url="https://login.salesforce.com",
                    auth_kind=SalesforceAuthKind.WEB_SERVER,
                    consumer_key="3MVG9-consumer-key",
                    status=status,
                    api_used=used,
                    api_limit=15_000,
                )
            )

    with TestClient(elsewhere(web_settings, database)) as client:
        body = client.get("/metrics").text

    assert "m365sync_salesforce_api_usage_ratio" not in unconnected
    assert "m365sync_salesforce_api_usage_ratio 0.28" in body
    assert "m365sync_salesforce_api_requests_used 5200.0" in body
    assert "m365sync_salesforce_api_requests_limit 30000.0" in body


def test_every_answer_carries_a_request_id(web_settings: Settings, database: Database) -> None:
    with TestClient(elsewhere(web_settings, database)) as client:
        given = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a-0001"})
        made = client.get("/healthz")
        refused = client.get("/healthz", headers={"X-Request-ID": "<script>" * 20})

    assert given.headers["x-request-id"] == "lb-7f3a-0001"
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{32}", refused.headers["x-request-id"])
