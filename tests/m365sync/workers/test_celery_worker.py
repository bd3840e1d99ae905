"""A real Celery worker on the local Redis runs the same unit of work."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from m365sim.server import SimServer
from m365sync.crm.models import ActivityKind
from m365sync.sync.features import SyncFeature
from m365sync.sync.repository import SyncRepository
from support.services import redis_up
from support.sync_world import build_world, empty_demo_tenant


@pytest.mark.skipif(
    not redis_up() and not os.environ.get("M365SYNC_TEST_REQUIRE_SERVICES"), reason="no Redis"
)
def test_celery_worker_runs_sync_unit(sim: SimServer, tmp_path: Path) -> None:
    empty_demo_tenant(sim)
    world = build_world(sim, tmp_path, ["adele@contoso.com"])
    world.add_contact("kim@fabrikam.com")
    world.deliver("adele@contoso.com", **{"from": "kim@fabrikam.com", "subject": "Via Celery"})
    with world.database.session() as s:
        repo = SyncRepository(s)
        member = repo.member(world.members["adele@contoso.com"])
        assert member is not None
        unit_id = repo.ensure_unit(member, SyncFeature.EMAIL).id

    queue = f"test-{uuid.uuid4().hex[:8]}"
    settings = world.settings
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "M365SYNC_DATABASE_URL": settings.resolved_database_url,
        "M365SYNC_DATA_DIR": str(settings.data_dir),
        "M365SYNC_SECRET_KEY": str(settings.secret_key),
        "M365SYNC_AUTHORITY_HOST": settings.authority_host,
        "M365SYNC_GRAPH_URL": settings.graph_url,
        "M365SYNC_CA_BUNDLE": str(settings.ca_bundle),
        "M365SYNC_CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "m365sync.workers.celery_app",
            "worker",
            "-Q",
            queue,
            "--pool",
            "solo",
            "--concurrency",
            "1",
            "--loglevel",
            "WARNING",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        os.environ["M365SYNC_CELERY_BROKER_URL"] = "redis://127.0.0.1:6379/0"
        from m365sync.workers.celery_app import sync_unit

        result = sync_unit.apply_async(args=[unit_id], queue=queue).get(timeout=60)
    finally:
        worker.terminate()
        worker.wait(10)
        world.control.close()
    assert result["outcome"] == "ok" and result["status"] == "active", result
    assert result["counts"]["logged"] == 1
    with world.crm() as crm:
        assert [a.subject for a in crm.activities(ActivityKind.EMAIL)] == ["Via Celery"]
    world.database.dispose()  # stops its WAL checkpointer thread
