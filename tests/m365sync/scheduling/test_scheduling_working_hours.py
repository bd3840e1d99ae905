"""Slots follow the working hours a rep set in Outlook (``mailboxSettings``), never a fixed
9-5: changing them through Graph changes the booking page."""

from __future__ import annotations

import ssl
from datetime import timedelta

import httpx
from fastapi.testclient import TestClient

from support.demo import DEMO_TENANT_ID, SERVICE_APP_ID
from support.scheduling_world import SchedulingWorld, next_weekday, slots_on_page
from support.sim_tokens import mint_app_token


def test_slots_follow_working_hours_set_in_outlook(
    world: SchedulingWorld, client: TestClient
) -> None:
    token = mint_app_token(world.sim, DEMO_TENANT_ID, SERVICE_APP_ID, ["MailboxSettings.ReadWrite"])
    changed = httpx.patch(
        f"{world.sim.graph_url}/users/adele@contoso.com/mailboxSettings",
        json={
            "timeZone": "Eastern Standard Time",
            "workingHours": {
                "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday"],
                "startTime": "07:00:00.0000000",
                "endTime": "11:00:00.0000000",
            },
        },
        headers={"Authorization": f"Bearer {token}"},
        verify=ssl.create_default_context(cafile=str(world.sim.tls.ca_bundle)),
    )
    assert changed.status_code == 200, changed.text
    world.meeting_type("early", ["adele@contoso.com"], name="Early call", duration_minutes=60)
    monday = next_weekday(0)

    response = client.get(
        f"/book/{world.organization.slug}/early",
        params={"tz": "America/New_York", "day": monday.isoformat()},
    )

    assert response.status_code == 200
    slots = [s for s in slots_on_page(response.text) if monday <= s.date() <= monday + timedelta(6)]
    assert slots, response.text[:2000]
    local = {(s.strftime("%A"), s.strftime("%H:%M")) for s in slots}
    assert {day for day, _ in local} <= {"Monday", "Tuesday", "Wednesday", "Thursday"}
    assert min(t for _, t in local) == "07:00" and max(t for _, t in local) <= "10:00"
