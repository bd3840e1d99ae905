"""The activity page of an email: its attachments (names, types, sizes; the files stay in
the mailbox) and the other emails of its conversation, linked."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from m365sync.crm.embedded import EmbeddedCrm
from m365sync.crm.models import ActivityKind, CrmActivity
from m365sync.crm.target import AttachmentInfo, EmailRecord, Participant
from m365sync.db import Database
from m365sync.organizations.models import Role


def record(member_id: str, number: int, **values: Any) -> EmailRecord:
    return EmailRecord(
        external_id=f"<m{number}@fabrikam.com>",
        member_id=member_id,
        graph_item_id=f"item-{number}",
        folder="inbox",
        subject=values.pop("subject"),
        body="Hello",
        body_type="text",
        headers_only=False,
        occurred_at=datetime(2026, 11, 2, 9, tzinfo=UTC) + timedelta(hours=number),
        from_address="kim@fabrikam.com",
        participants=[Participant("kim@fabrikam.com", "Kim Akers", "from")],
        people=[],
        account_ids=[],
        **values,
    )


def test_an_email_shows_its_attachments_and_links_its_thread(
    client: TestClient, people: Any, sign_in: Any, database: Database
) -> None:
    contoso = people.organization("Contoso", "contoso")
    adele = people.member(contoso, "adele@contoso.com", Role.USER, name="Adele Vance")
    with database.session() as session:
        EmbeddedCrm(session, contoso.id).upsert_emails(
            [
                record(adele.id, 1, subject="Pricing", conversation_id="AAQkThread"),
                record(
                    adele.id,
                    2,
                    subject="RE: Pricing",
                    conversation_id="AAQkThread",
                    attachments=[AttachmentInfo("quote.pdf", "application/pdf", 48_213)],
                ),
                record(adele.id, 3, subject="Unrelated", conversation_id="AAQkOther"),
            ]
        )
        ids = {
            a.subject: a.id
            for a in session.query(CrmActivity).filter(CrmActivity.kind == ActivityKind.EMAIL)
        }
    sign_in(client, "adele@contoso.com")

    reply = client.get(f"/activities/{ids['RE: Pricing']}")

    assert reply.status_code == 200
    assert "quote.pdf" in reply.text and "application/pdf" in reply.text
    assert "47 KB" in reply.text
    assert "The files stay in the mailbox." in reply.text
    assert "Conversation (2 emails)" in reply.text
    assert f'href="/activities/{ids["Pricing"]}"' in reply.text
    assert "(this email)" in reply.text
    assert f"/activities/{ids['Unrelated']}" not in reply.text
    alone = client.get(f"/activities/{ids['Unrelated']}")
    assert "Conversation" not in alone.text and "Attachments" not in alone.text
    assert re.search(r"<h1>\s*Unrelated\s*</h1>", alone.text)
