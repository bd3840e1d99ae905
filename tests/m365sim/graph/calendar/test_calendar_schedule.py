"""Free/busy: getSchedule and findMeetingTimes."""

from __future__ import annotations

from typing import Any


def block(
    day: str, start: str, end: str, show_as: str, subject: str = "Busy", **extra: Any
) -> dict[str, Any]:
    return {
        "subject": subject,
        "showAs": show_as,
        "start": {"dateTime": f"{day}T{start}:00", "timeZone": "Pacific Standard Time"},
        "end": {"dateTime": f"{day}T{end}:00", "timeZone": "Pacific Standard Time"},
        **extra,
    }


def test_get_schedule_availability_view(graph) -> None:
    app = graph()
    alex = "/users/alex@contoso.com/events"
    app.post(
        alex,
        json=block(
            "2030-03-05", "09:00", "10:00", "busy", "Pipeline", location={"displayName": "HQ"}
        ),
    )
    app.post(alex, json=block("2030-03-05", "10:30", "11:00", "tentative"))
    app.post(alex, json=block("2030-03-05", "12:00", "13:00", "oof"))
    app.post(alex, json=block("2030-03-05", "13:00", "14:00", "free"))
    app.post(
        alex, json=block("2030-03-05", "14:00", "15:00", "busy", "Doctor", sensitivity="private")
    )
    response = app.post(
        "/users/lee@contoso.com/calendar/getSchedule",
        headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'},
        json={
            "schedules": ["alex@contoso.com", "nobody@contoso.com"],
            "startTime": {"dateTime": "2030-03-05T09:00:00", "timeZone": "Pacific Standard Time"},
            "endTime": {"dateTime": "2030-03-05T15:00:00", "timeZone": "Pacific Standard Time"},
            "availabilityViewInterval": 30,
        },
    )
    assert response.status_code == 200, response.text
    alex_info, nobody = response.json()["value"]
    # 09:00-15:00 in 30-minute slots: busy x2, free, tentative, free x2, oof x2, free x2, busy x2
    assert alex_info["availabilityView"] == "220100330022"
    assert [i["status"] for i in alex_info["scheduleItems"]] == ["busy", "tentative", "oof", "busy"]
    first = alex_info["scheduleItems"][0]
    assert first["subject"] == "Pipeline" and first["location"] == "HQ"
    assert first["start"] == {
        "dateTime": "2030-03-05T09:00:00.0000000",
        "timeZone": "Pacific Standard Time",
    }
    private = alex_info["scheduleItems"][-1]
    assert private["isPrivate"] is True and "subject" not in private
    assert alex_info["workingHours"] == {
        "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
        "startTime": "08:00:00.0000000",
        "endTime": "17:00:00.0000000",
        "timeZone": {"name": "Eastern Standard Time"},
    }
    assert nobody["error"]["responseCode"] == "ErrorMailRecipientNotFound"


def test_delegated_get_schedule_shows_only_free_busy_of_colleagues(graph) -> None:
    graph().post(
        "/users/alex@contoso.com/events",
        json=block("2030-03-05", "09:00", "10:00", "busy", "Secret"),
    )
    lee = graph("lee@contoso.com", scopes=("Calendars.Read",))
    response = lee.post(
        "/me/calendar/getSchedule",
        json={
            "schedules": ["alex@contoso.com"],
            "startTime": {"dateTime": "2030-03-05T17:00:00", "timeZone": "UTC"},
            "endTime": {"dateTime": "2030-03-05T18:00:00", "timeZone": "UTC"},
            "availabilityViewInterval": 60,
        },
    ).json()["value"][0]
    assert response["availabilityView"] == "2"
    assert "subject" not in response["scheduleItems"][0]
    assert response["scheduleItems"][0]["start"]["timeZone"] == "UTC"


def test_get_schedule_needs_calendar_permission(graph) -> None:
    denied = graph(roles=("Mail.Read",)).post(
        "/users/lee@contoso.com/calendar/getSchedule",
        json={
            "schedules": ["alex@contoso.com"],
            "startTime": {"dateTime": "2030-03-05T17:00:00", "timeZone": "UTC"},
            "endTime": {"dateTime": "2030-03-05T18:00:00", "timeZone": "UTC"},
        },
    )
    assert denied.status_code == 403


def test_find_meeting_times_suggests_free_working_hours(graph, control) -> None:
    graph().post(
        "/users/alex@contoso.com/events", json=block("2030-03-05", "09:00", "10:00", "busy")
    )
    lee = graph("lee@contoso.com")
    lee.post("/me/events", json=block("2030-03-05", "08:00", "09:00", "busy"))
    response = lee.post(
        "/me/findMeetingTimes",
        json={
            "attendees": [{"type": "required", "emailAddress": {"address": "alex@contoso.com"}}],
            "timeConstraint": {
                "activityDomain": "work",
                "timeSlots": [
                    {
                        "start": {
                            "dateTime": "2030-03-05T07:00:00",
                            "timeZone": "Pacific Standard Time",
                        },
                        "end": {
                            "dateTime": "2030-03-05T11:00:00",
                            "timeZone": "Pacific Standard Time",
                        },
                    }
                ],
            },
            "meetingDuration": "PT1H",
            "returnSuggestionReasons": True,
        },
        headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'},
    )
    assert response.status_code == 200, response.text
    suggestions = response.json()["meetingTimeSuggestions"]
    starts = [s["meetingTimeSlot"]["start"]["dateTime"][11:16] for s in suggestions]
    # 08:00-09:00 Lee busy, 09:00-10:00 Alex busy (confidence 0): 10:00 is the only full fit
    assert starts == ["10:00"]
    assert suggestions[0]["confidence"] == 100.0
    assert suggestions[0]["attendeeAvailability"][0]["availability"] == "free"
    assert suggestions[0]["suggestionReason"]
    assert graph().post("/users/lee@contoso.com/findMeetingTimes", json={}).status_code == 403
