"""Email Sync records attachment names, types and sizes (never their content) and the
conversation each email belongs to; attachment lists come through ``$batch``, paired by id."""

from __future__ import annotations

import pytest

from m365sync.crm.models import ActivityKind
from support.sync_world import SyncWorld

ADELE = "adele@contoso.com"


@pytest.fixture
def world(db_world: SyncWorld) -> SyncWorld:
    """Every test here runs on SQLite and on PostgreSQL."""
    return db_world


def known_sender(world: SyncWorld) -> None:
    account = world.add_account("Fabrikam", ["fabrikam.com"])
    world.add_contact("kim@fabrikam.com", account, "Kim Akers")


def test_attachments_are_logged_by_name_type_and_size_through_shuffled_batches(
    world: SyncWorld,
) -> None:
    known_sender(world)
    world.sim_config(batch_shuffle=True)
    # 23 messages with attachments: two batches (20 + 3), answers in shuffled order.
    for number in range(23):
        world.deliver(
            ADELE,
            **{
                "from": "kim@fabrikam.com",
                "subject": f"Quote {number:02d}",
                "attachments": [
                    {
                        "name": f"quote-{number:02d}.pdf",
                        "contentType": "application/pdf",
                        "size": 1000 + number,
                    },
                    {"name": "logo.png", "contentType": "image/png", "size": 10, "isInline": True},
                ],
            },
        )
    world.deliver(ADELE, **{"from": "kim@fabrikam.com", "subject": "No files"})
    world.clear_requests()

    result = world.sync(ADELE)

    assert result.outcome == "ok", (result.error, result.fix)
    with world.crm() as crm:
        emails = {a.subject: a for a in crm.activities(ActivityKind.EMAIL)}
    assert len(emails) == 24
    for number in range(23):
        # Each activity got its own message's list, whatever order the batch answered in.
        assert emails[f"Quote {number:02d}"].attachments == [
            {
                "name": f"quote-{number:02d}.pdf",
                "contentType": "application/pdf",
                "size": 1000 + number,
            }
        ]
    assert emails["No files"].attachments == []
    log = world.requests()
    batches = [r for r in log if r["path"] == "/v1.0/$batch"]
    assert [r["status"] for r in batches] == [200, 200]  # m365sim refuses absolute urls: 400
    listed = [r for r in log if r["path"].endswith("/attachments")]
    assert len(listed) == 23 and all(r["status"] == 200 for r in listed)
    assert all("select=name" in r["query"] for r in listed)
    # The content never travels: no attachment $value, no contentBytes selected.
    assert not any("$value" in r["path"] for r in log)
    assert not any("contentBytes" in r["query"] for r in log)


def test_replies_share_the_conversation_of_the_email_they_answer(world: SyncWorld) -> None:
    known_sender(world)
    first = world.deliver(
        ADELE,
        **{
            "from": "kim@fabrikam.com",
            "subject": "Pricing",
            "internetMessageId": "<pricing@fabrikam.com>",
        },
    )
    world.deliver(
        ADELE,
        **{
            "from": "kim@fabrikam.com",
            "subject": "RE: Pricing",
            "internetMessageHeaders": [
                {"name": "In-Reply-To", "value": "<pricing@fabrikam.com>"},
                {"name": "References", "value": "<pricing@fabrikam.com>"},
            ],
        },
    )
    world.deliver(ADELE, **{"from": "kim@fabrikam.com", "subject": "Something else"})

    assert world.sync(ADELE).outcome == "ok"

    with world.crm() as crm:
        emails = {a.subject: a for a in crm.activities(ActivityKind.EMAIL)}
    assert emails["Pricing"].conversation_id == first["conversationId"]
    assert emails["RE: Pricing"].conversation_id == first["conversationId"]
    assert emails["Something else"].conversation_id not in (None, first["conversationId"])
