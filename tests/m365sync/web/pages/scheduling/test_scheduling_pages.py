"""The rep's and admin's scheduling pages, and scheduling unavailable for a mailbox whose
connection lacks permissions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from m365sim.server import SimServer
from m365sync.auth.service import start_session
from m365sync.db.session import Database
from m365sync.organizations.models import Member, Role
from support.scheduling_world import (
    SchedulingWorld,
    book_form,
    build_world,
    local,
    next_weekday,
    slots_on_page,
)


def sign_in(
    world: SchedulingWorld, client: TestClient, address: str, *, admin: bool = False
) -> str:
    with world.database.session() as session:
        member = session.get(Member, world.members[address])
        assert member is not None
        if admin:
            member.role = Role.ADMIN
        new = start_session(session, member, sign_in_method="password")
    client.cookies.set("m365sync_session", new.token)
    return new.signed_in.csrf_token


def test_rep_sees_meeting_types_and_upcoming_bookings(
    world: SchedulingWorld, client: TestClient
) -> None:
    world.meeting_type("intro", ["adele@contoso.com"], name="Intro call")
    assert (
        book_form(
            client, f"/book/{world.organization.slug}/intro", local(next_weekday(1), 9)
        ).status_code
        == 303
    )
    sign_in(world, client, "adele@contoso.com")
    page = client.get("/scheduling")
    assert page.status_code == 200
    assert 'data-scheduling-status="available"' in page.text
    assert "Intro call" in page.text and f"/book/{world.organization.slug}/intro" in page.text
    assert "pat@fabrikam.example" in page.text


def test_rep_creates_a_meeting_type_with_custom_hours(
    world: SchedulingWorld, client: TestClient
) -> None:
    csrf = sign_in(world, client, "adele@contoso.com")
    form = {
        "csrf_token": csrf,
        "name": "Quick chat",
        "slug": "quick-chat",
        "duration_minutes": "15",
        "minimum_notice_minutes": "0",
        "day0_start": "13:00",
        "day0_end": "14:00",
        "questions": "Company\nTopic",
    }
    bad = client.post("/scheduling/meeting-types", data={**form, "duration_minutes": "7"})
    assert bad.status_code == 422 and "multiple of 5" in bad.text
    assert (
        client.post("/scheduling/meeting-types", data={**form, "csrf_token": "forged"}).status_code
        == 403
    )
    created = client.post("/scheduling/meeting-types", data=form, follow_redirects=False)
    assert created.status_code == 303
    monday = next_weekday(0)
    page = client.get(
        f"/book/{world.organization.slug}/quick-chat",
        params={"tz": "America/Los_Angeles", "day": monday.isoformat()},
    )
    times = [s.strftime("%H:%M") for s in slots_on_page(page.text) if s.date() == monday]
    assert times == ["13:00", "13:15", "13:30", "13:45"]
    assert (
        "Topic"
        in client.get(
            f"/book/{world.organization.slug}/quick-chat/book",
            params={"start": local(monday, 13).isoformat(), "tz": "America/Los_Angeles"},
        ).text
    )


def test_meeting_type_form_problems_name_the_fields_label_and_the_fix(
    world: SchedulingWorld, client: TestClient
) -> None:
    csrf = sign_in(world, client, "adele@contoso.com")
    form = {"csrf_token": csrf, "name": "Quick chat", "slug": "quick-chat"}
    bad = client.post(
        "/scheduling/meeting-types",
        data={
            **form,
            "duration_minutes": "3",
            "slug": "Quick Chat!",
            "day0_start": "14:00",
            "day0_end": "13:00",
            "horizon_days": "soon",
        },
    )
    assert bad.status_code == 422
    alert = re.search(r'role="alert"><p class="error-message">(.*?)</p>', bad.text, re.S)
    assert alert, bad.text
    words = alert.group(1).replace("&#39;", "'")
    assert "Duration (minutes): enter 5 or more." in words
    assert "Link name: use only lower-case letters, digits and hyphens" in words
    assert "(e.g. intro-call)" in words
    assert "Availability, Monday: the window 14:00-13:00 ends before it starts" in words
    assert "Bookable up to (days ahead): enter a whole number." in words
    for key in ("duration_minutes", "duration minutes", "slug", "horizon_days", "windows"):
        assert key not in words
    # What was typed stays in the form to correct.
    assert 'value="Quick Chat!"' in bad.text and 'value="3"' in bad.text

    not_five = client.post("/scheduling/meeting-types", data={**form, "duration_minutes": "7"})
    assert "Duration (minutes): use a multiple of 5 minutes." in not_five.text


def test_admin_switches_scheduling_off_for_a_member(
    world: SchedulingWorld, client: TestClient
) -> None:
    world.meeting_type("intro", ["lee@contoso.com"])
    csrf = sign_in(world, client, "adele@contoso.com", admin=True)
    page = client.get("/scheduling/admin")
    assert page.status_code == 200 and "Lee Gu" in page.text
    lee = world.members["lee@contoso.com"]
    assert (
        client.post(
            f"/scheduling/admin/members/{lee}", data={"csrf_token": csrf}, follow_redirects=False
        ).status_code
        == 303
    )
    assert "switched off for this member by an admin" in client.get("/scheduling/admin").text
    public = client.get(f"/book/{world.organization.slug}/intro", params={"tz": "UTC"})
    assert slots_on_page(public.text) == []


def test_admin_sees_edits_and_deletes_every_meeting_type_team_types_included(
    world: SchedulingWorld, client: TestClient
) -> None:
    csrf = sign_in(world, client, "adele@contoso.com", admin=True)
    lee, diego = world.members["lee@contoso.com"], world.members["diego@contoso.com"]
    created = client.post(
        "/scheduling/meeting-types",
        data={
            "csrf_token": csrf,
            "name": "Team demo",
            "slug": "team-demo",
            "kind": "round_robin",
            "hosts": [lee, diego],
            "duration_minutes": "30",
        },
        follow_redirects=False,
    )
    assert created.status_code == 303
    # The admin hosts none of it, and sees it on both scheduling pages.
    for page in ("/scheduling", "/scheduling/admin"):
        text = client.get(page).text
        assert "Team demo" in text and "Team: round-robin" in text
        assert "Lee Gu" in text
    edit = re.search(r'href="[^"]*/scheduling/meeting-types/([^/"]+)/edit"', text)
    assert edit is not None
    type_id = edit.group(1)

    form = client.get(f"/scheduling/meeting-types/{type_id}/edit").text
    assert 'value="Team demo"' in form and 'value="round_robin" selected' in form
    saved = client.post(
        f"/scheduling/meeting-types/{type_id}",
        data={
            "csrf_token": csrf,
            "name": "Team demo (45 min)",
            "slug": "team-demo",
            "kind": "collective",
            "hosts": [lee, diego],
            "duration_minutes": "45",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303
    listed = client.get("/scheduling/admin").text
    assert "Team demo (45 min)" in listed and "Team: collective" in listed and "45 min" in listed

    deleted = client.post(
        f"/scheduling/meeting-types/{type_id}/delete",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert deleted.status_code == 303
    assert "Team demo" not in client.get("/scheduling/admin").text
    assert client.get(f"/book/{world.organization.slug}/team-demo").status_code == 404


def test_a_member_cannot_edit_a_meeting_type_they_do_not_host(
    world: SchedulingWorld, client: TestClient
) -> None:
    type_id = world.meeting_type("intro", ["lee@contoso.com"], name="Lee's intro")
    csrf = sign_in(world, client, "adele@contoso.com")
    assert "Lee&#39;s intro" not in client.get("/scheduling").text
    refused = client.post(f"/scheduling/meeting-types/{type_id}/delete", data={"csrf_token": csrf})
    assert "only the meeting types you host" in refused.text
    assert client.get(f"/book/{world.organization.slug}/intro").status_code == 200


def test_non_admin_cannot_switch_members(world: SchedulingWorld, client: TestClient) -> None:
    csrf = sign_in(world, client, "lee@contoso.com")
    assert client.get("/scheduling/admin").status_code == 403
    adele = world.members["adele@contoso.com"]
    assert (
        client.post(f"/scheduling/admin/members/{adele}", data={"csrf_token": csrf}).status_code
        == 403
    )


@pytest.fixture
def calendars_only(sim: SimServer, db: Database, tmp_path: Path) -> Iterator[SchedulingWorld]:
    built = build_world(sim, db, tmp_path, features=["calendar"])
    try:
        yield built
    finally:
        built.control.close()


def test_mailbox_without_mail_permissions_shows_scheduling_unavailable(
    calendars_only: SchedulingWorld,
) -> None:
    world = calendars_only
    world.meeting_type("intro", ["adele@contoso.com"])
    with TestClient(world.app) as client:
        public = client.get(f"/book/{world.organization.slug}/intro", params={"tz": "UTC"})
        assert slots_on_page(public.text) == []
        # The customer is told nothing internal; the rep (and the admin) see why.
        assert "No times are available right now." in public.text
        assert "Mail.Read" not in public.text and "consent" not in public.text
        sign_in(world, client, "adele@contoso.com")
        rep = client.get("/scheduling")
        assert 'data-scheduling-status="unavailable"' in rep.text
        assert "Mail.Read, Mail.ReadWrite" in rep.text and "Grant admin consent" in rep.text
