"""A service account's token refused by Graph mid-sync: one refresh, then the sync goes on;
and what one run learnt from Entra ID serves the next run."""

from __future__ import annotations

from typing import cast

from m365sync.crm.models import ActivityKind
from m365sync.sync.models import UnitStatus
from support.sync_world import DelegatedRuntime, SyncWorld

ADELE = "adele@contoso.com"


def test_a_401_after_the_token_expired_refreshes_once_and_the_sync_succeeds(
    world: SyncWorld,
) -> None:
    world.add_contact("kim@fabrikam.com")
    world.deliver(ADELE, **{"from": "kim@fabrikam.com", "subject": "Before"})
    assert world.sync(ADELE).outcome == "ok"  # the token is now in the (sealed) MSAL cache

    # Two hours later for Microsoft: the cached token has expired there, while MSAL, going
    # by the machine's clock, still holds it for valid and sends it.
    world.control.post("/_sim/clock", json={"advanceSeconds": 7200}).raise_for_status()
    world.deliver(ADELE, **{"from": "kim@fabrikam.com", "subject": "After"})
    world.clear_requests()

    result = world.sync(ADELE)

    assert result.outcome == "ok" and result.status == UnitStatus.ACTIVE
    log = world.requests()
    refused = [r for r in log if r["path"].startswith("/v1.0") and r["status"] == 401]
    tokens = [r for r in log if r["path"].endswith("/oauth2/v2.0/token")]
    # Both folders' rounds sent their first request with the expired token: two refusals,
    # one new token for both.
    assert len(refused) == 2
    assert {r["path"].split("/")[-3] for r in refused} == {"inbox", "sentitems"}
    assert len(tokens) == 1  # exactly one refresh
    assert log.index(tokens[0]) > log.index(refused[0])
    with world.crm() as crm:
        assert {a.subject for a in crm.activities(ActivityKind.EMAIL)} == {"Before", "After"}


def test_a_second_run_asks_entra_id_nothing(world: SyncWorld) -> None:
    """The token and the tenant's OpenID configuration outlive the process that fetched
    them (sealed in the database): the next run, a fresh process with a fresh runtime,
    goes straight to Graph."""
    world.add_contact("kim@fabrikam.com")
    world.deliver(ADELE, **{"from": "kim@fabrikam.com", "subject": "First"})
    world.clear_requests()
    assert world.sync(ADELE).outcome == "ok"
    first_run = [r["path"] for r in world.requests() if not r["path"].startswith("/v1.0")]
    assert any(p.endswith("/openid-configuration") for p in first_run)
    assert any(p.endswith("/oauth2/v2.0/token") for p in first_run)

    world.deliver(ADELE, **{"from": "kim@fabrikam.com", "subject": "Second"})
    world.runtime = fresh_runtime(world)
    world.clear_requests()

    result = world.sync(ADELE)

    assert result.outcome == "ok" and result.progress.logged == 1
    log = world.requests()
    assert [r["path"] for r in log if not r["path"].startswith("/v1.0")] == []
    assert log  # Graph was asked, Entra ID was not


def fresh_runtime(world: SyncWorld) -> DelegatedRuntime:
    """The runtime of a new process: nothing in memory, only what the database holds."""
    runtime = cast(DelegatedRuntime, DelegatedRuntime.from_settings(world.settings, world.database))
    runtime.sim = world.sim
    return runtime
