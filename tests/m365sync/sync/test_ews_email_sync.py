"""Email Sync over EWS (an on-premises Exchange Server, through an Exchange service
account) against m365sim's Exchange Server, read by the product's exchangelib client:
first sync, incremental, deletions, one activity per Internet Message-ID, the SyncState
as the cursor committed with its page, and an expired SyncState resynced."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from m365sync.crm.models import ActivityKind
from m365sync.microsoft.ews import close_exchange_connections
from m365sync.sync.models import SyncCursor, UnitStatus
from support.ews_world import exchange_only
from support.sync_world import SyncWorld

ADELE = "adele@contoso.com"
DIEGO = "diego@contoso.com"


@pytest.fixture
def world(db_world: SyncWorld) -> Iterator[SyncWorld]:
    """Every test here runs on SQLite and on PostgreSQL."""
    yield exchange_only(db_world)
    close_exchange_connections()


def subjects(world: SyncWorld) -> list[str]:
    with world.crm() as crm:
        return sorted(a.subject for a in crm.activities(ActivityKind.EMAIL))


def ews_requests(world: SyncWorld) -> list[dict[str, object]]:
    return [r for r in world.requests(path_contains="/EWS/") if r["status"] == 200]


def test_first_sync_incremental_and_deletions(world: SyncWorld) -> None:
    account = world.add_account("Fabrikam", ["fabrikam.com"])
    world.add_contact("kim@fabrikam.com", account, "Kim Akers")
    pricing = world.deliver(
        ADELE,
        **{"from": "kim@fabrikam.com", "subject": "Pricing", "body": "<p>Our <b>prices</b></p>"},
    )
    world.deliver(ADELE, **{"from": "stranger@example.org", "subject": "Unknown sender"})
    world.clear_requests()

    first = world.sync(ADELE)

    assert first.outcome == "ok", (first.error, first.fix)
    assert first.status == UnitStatus.ACTIVE
    assert subjects(world) == ["Pricing"]
    assert ews_requests(world), "the mailbox was read over EWS"
    assert not world.requests(path_contains="/v1.0/"), "and never through Graph"
    with world.crm() as crm:
        (activity,) = crm.activities(ActivityKind.EMAIL)
        assert activity.external_id == pricing["internetMessageId"]
        assert "Our prices" in (activity.body or "")  # the text body, as over Graph

    world.deliver(ADELE, **{"from": "kim@fabrikam.com", "subject": "Contract"})
    world.clear_requests()
    second = world.sync(ADELE)
    assert second.outcome == "ok", (second.error, second.fix)
    assert subjects(world) == ["Contract", "Pricing"]
    # Inbox: SyncFolderItems, GetItem for the new message; Sent Items: SyncFolderItems
    assert len(ews_requests(world)) == 3, ews_requests(world)

    world.configure(delete_policy="delete")
    world.control.delete(f"/_sim/mailboxes/{ADELE}/messages/{pricing['id']}").raise_for_status()
    third = world.sync(ADELE)
    assert third.outcome == "ok", (third.error, third.fix)
    assert subjects(world) == ["Contract"]


def test_one_activity_per_message_across_mailboxes(world: SyncWorld) -> None:
    account = world.add_account("Fabrikam", ["fabrikam.com"])
    world.add_contact("kim@fabrikam.com", account, "Kim Akers")
    sent = world.deliver(
        ADELE, **{"from": "kim@fabrikam.com", "cc": [DIEGO], "subject": "Both of you"}
    )
    world.deliver(
        DIEGO,
        **{
            "from": "kim@fabrikam.com",
            "cc": [DIEGO],
            "subject": "Both of you",
            "internetMessageId": sent["internetMessageId"],
        },
    )
    assert world.sync(ADELE).outcome == "ok"
    assert world.sync(DIEGO).outcome == "ok"
    with world.crm() as crm:
        (activity,) = crm.activities(ActivityKind.EMAIL)
        assert activity.subject == "Both of you"


def test_the_sync_state_is_the_cursor_and_an_expired_one_resyncs(world: SyncWorld) -> None:
    account = world.add_account("Fabrikam", ["fabrikam.com"])
    world.add_contact("kim@fabrikam.com", account, "Kim Akers")
    world.deliver(ADELE, **{"from": "kim@fabrikam.com", "subject": "Pricing"})
    assert world.sync(ADELE).outcome == "ok"
    with world.database.session() as session:
        cursors = {c.key: c.delta_link for c in session.query(SyncCursor).all()}
    assert cursors["mail:inbox"] and not cursors["mail:inbox"].startswith("http")

    world.control.post(
        "/_sim/faults",
        json={"kind": "expiredCursor", "operation": "SyncFolderItems", "count": 1},
    ).raise_for_status()
    world.deliver(ADELE, **{"from": "kim@fabrikam.com", "subject": "Contract"})
    result = world.sync(ADELE)
    assert result.outcome == "ok", (result.error, result.fix)
    assert subjects(world) == ["Contract", "Pricing"]


def test_impersonation_denied_for_one_mailbox(world: SyncWorld) -> None:
    """A role scoped to Sales leaves Adele out: her unit says why and how to fix it; Diego,
    in Sales, syncs."""
    world.control.post(
        "/_sim/tenants/contoso.com/managementScopes",
        json={"Name": "Sales", "RecipientRestrictionFilter": "Department -eq 'Sales'"},
    ).raise_for_status()
    world.control.patch(
        f"/_sim/tenants/contoso.com/recipients/{DIEGO}", json={"Department": "Sales"}
    ).raise_for_status()
    world.control.patch(
        "/_sim/tenants/contoso.com/exchange",
        json={
            "roleAssignments": [{"user": "admin@contoso.com", "customRecipientWriteScope": "Sales"}]
        },
    ).raise_for_status()
    close_exchange_connections()

    denied = world.sync(ADELE)
    assert denied.outcome == "failed"
    assert denied.status == UnitStatus.INSUFFICIENT_PERMISSIONS
    assert "impersonate" in (denied.error or "")
    assert "ApplicationImpersonation" in (denied.fix or "")
    assert world.sync(DIEGO).outcome == "ok"
