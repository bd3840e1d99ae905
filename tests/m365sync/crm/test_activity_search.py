"""Searching the CRM store's activities, as the Activities page does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from m365sync.crm import service as crm
from m365sync.crm.models import ActivityKind, CrmActivity
from m365sync.db.session import Database
from m365sync.errors import NotFound
from m365sync.organizations.service import create_organization


def _activity(
    organization_id: str, kind: ActivityKind, subject: str, **fields: object
) -> CrmActivity:
    return CrmActivity(
        organization_id=organization_id,
        kind=kind,
        external_id=f"{kind.value}:{subject}",
        subject=subject,
        **fields,
    )


def test_search_is_scoped_to_the_organization_and_hides_far_future_meetings(
    db: Database,
) -> None:
    now = datetime.now(UTC)
    with db.session() as s:
        contoso = create_organization(s, "Contoso")
        fabrikam = create_organization(s, "Fabrikam")
        s.add_all(
            [
                _activity(contoso.id, ActivityKind.EMAIL, "Quote for Fabrikam", occurred_at=now),
                _activity(
                    contoso.id,
                    ActivityKind.EVENT,
                    "Review next year",
                    starts_at=now + timedelta(days=crm.UPCOMING_DAYS + 30),
                ),
                _activity(
                    contoso.id,
                    ActivityKind.EMAIL,
                    "Old quote",
                    occurred_at=now - timedelta(days=3),
                    deleted_at=now,
                ),
                _activity(fabrikam.id, ActivityKind.EMAIL, "Quote from them", occurred_at=now),
            ]
        )
        s.flush()
        contoso_id, fabrikam_email = (
            contoso.id,
            s.query(CrmActivity).filter_by(organization_id=fabrikam.id).one().id,
        )

    with db.session() as s:
        found = crm.search_activities(s, contoso_id, text=" QUOTE ")
        assert [a.subject for a in found.activities] == ["Quote for Fabrikam"]
        assert [a.subject for a in crm.search_activities(s, contoso_id).activities] == [
            "Quote for Fabrikam"
        ]
        later = crm.search_activities(s, contoso_id, include_later=True)
        assert [a.subject for a in later.activities] == ["Review next year", "Quote for Fabrikam"]
        emails = crm.search_activities(s, contoso_id, kind="email", include_later=True)
        assert [a.subject for a in emails.activities] == ["Quote for Fabrikam"]
        with pytest.raises(NotFound):
            crm.get_activity(s, contoso_id, fabrikam_email)
