"""calendarView windows and calendarView delta rounds."""

from __future__ import annotations

from typing import Any

import httpx

WINDOW = {"startDateTime": "2030-06-01T00:00:00Z", "endDateTime": "2030-06-08T00:00:00Z"}


def at(
    day: str, start: str, end: str, subject: str = "Call", end_day: str | None = None
) -> dict[str, Any]:
    return {
        "subject": subject,
        "start": {"dateTime": f"{day}T{start}:00", "timeZone": "UTC"},
        "end": {"dateTime": f"{end_day or day}T{end}:00", "timeZone": "UTC"},
    }


def test_window_is_required_with_graphs_error(graph) -> None:
    response = graph("lee@contoso.com").get("/me/calendarView")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "ErrorInvalidParameter",
        "message": (
            "This request requires a time window specified by the query string parameters "
            "StartDateTime and EndDateTime."
        ),
        "innerError": response.json()["error"]["innerError"],
    }


def test_window_edges(graph) -> None:
    lee = graph("lee@contoso.com")
    for body in (
        at("2030-05-31", "23:00", "00:00", "ends at window start", end_day="2030-06-01"),
        at("2030-05-31", "23:30", "00:30", "straddles start", end_day="2030-06-01"),
    ):
        assert lee.post("/me/events", json=body).status_code == 201
    lee.post("/me/events", json=at("2030-06-07", "23:30", "23:59", "inside, at the end"))
    lee.post("/me/events", json={**at("2030-06-08", "00:00", "01:00", "starts at window end")})
    names = [e["subject"] for e in lee.get("/me/calendarView", params=WINDOW).json()["value"]]
    assert names == ["straddles start", "inside, at the end"]
    with_offset = lee.get(
        "/me/calendarView",
        params={
            "startDateTime": "2030-06-07T16:00:00-08:00",
            "endDateTime": "2030-06-07T17:00:00-08:00",
        },
    ).json()["value"]
    assert [e["subject"] for e in with_offset] == ["starts at window end"]  # 16:00-08:00 is 00:00Z
    filtered = lee.get(
        "/me/calendarView",
        params={**WINDOW, "$filter": "startswith(subject,'inside')", "$select": "subject"},
    ).json()["value"]
    assert [e["subject"] for e in filtered] == ["inside, at the end"]


def delta_round(
    client: httpx.Client, first_url: str, params: dict[str, str] | None = None, **headers: str
):
    """Follow nextLinks to the deltaLink; returns (items, deltaLink, pages)."""
    items: list[dict[str, Any]] = []
    response = client.get(first_url, params=params, headers=headers)
    pages = 0
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["value"])
        pages += 1
        if "@odata.deltaLink" in body:
            return items, body["@odata.deltaLink"], pages
        response = client.get(body["@odata.nextLink"], headers=headers)


def by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i["id"]: i for i in items}


def test_delta_rounds_return_only_changes_since_the_token(graph) -> None:
    lee = graph("lee@contoso.com")
    ids = [
        lee.post("/me/events", json=at(f"2030-06-0{d}", "09:00", "10:00", f"E{d}")).json()["id"]
        for d in range(1, 6)
    ]
    outside = lee.post("/me/events", json=at("2030-07-01", "09:00", "10:00", "outside")).json()[
        "id"
    ]

    items, delta_link, pages = delta_round(
        lee, "/me/calendarView/delta", WINDOW, Prefer="odata.maxpagesize=2"
    )
    assert pages == 4  # each page after the first repeats the previous page's last item
    assert set(by_id(items)) == set(ids)  # replays may repeat ids across pages, never add others
    assert "@odata.type" in items[0]

    quiet, delta_link, _ = delta_round(lee, delta_link)
    assert quiet == []

    lee.patch(f"/me/events/{ids[0]}", json={"subject": "E1 renamed"})
    lee.delete(f"/me/events/{ids[1]}")
    lee.patch(
        f"/me/events/{ids[2]}", json=at("2030-06-20", "09:00", "10:00")
    )  # moved out of the window
    created = lee.post("/me/events", json=at("2030-06-06", "09:00", "10:00", "new")).json()["id"]
    lee.patch(f"/me/events/{outside}", json={"subject": "still outside"})

    changes, next_link, _ = delta_round(lee, delta_link)
    seen = by_id(changes)
    assert seen[ids[0]]["subject"] == "E1 renamed"
    assert seen[ids[1]]["@removed"] == {"reason": "deleted"}
    assert seen[ids[2]]["@removed"] == {"reason": "deleted"}
    assert seen[created]["subject"] == "new"
    assert ids[3] not in seen and ids[4] not in seen
    # Graph documents that changed events outside the window come as @removed too.
    assert seen[outside] == {
        "@odata.type": "#microsoft.graph.event",
        "id": outside,
        "@removed": {"reason": "deleted"},
    }

    # The same deltaLink can be replayed (a worker crashed before committing the page).
    replay, _, _ = delta_round(lee, delta_link)
    assert by_id(replay).keys() == seen.keys()
    assert delta_round(lee, next_link)[0] == []


def test_delta_follows_series_changes(graph) -> None:
    lee = graph("lee@contoso.com")
    master = lee.post(
        "/me/events",
        json={
            **at("2030-06-03", "09:00", "09:30", "Daily"),
            "recurrence": {
                "pattern": {"type": "daily", "interval": 1},
                "range": {"type": "numbered", "startDate": "2030-06-03", "numberOfOccurrences": 3},
            },
        },
    ).json()
    items, link, _ = delta_round(lee, "/me/calendarView/delta", WINDOW)
    occurrence_ids = [i["id"] for i in items]
    assert len(occurrence_ids) == 3 and all(i["type"] == "occurrence" for i in items)
    lee.delete(f"/me/events/{occurrence_ids[1]}")
    items, link, _ = delta_round(lee, link)
    assert by_id(items)[occurrence_ids[1]]["@removed"] == {"reason": "deleted"}
    lee.patch(f"/me/events/{master['id']}", json=at("2030-06-03", "13:00", "13:30"))
    items, link, _ = delta_round(lee, link)
    seen = by_id(items)
    assert all(seen[o]["@removed"] for o in occurrence_ids if o in seen)
    assert {o for o in occurrence_ids} <= set(seen)
    assert len([i for i in items if "@removed" not in i]) == 3
    lee.delete(f"/me/events/{master['id']}")
    items, _, _ = delta_round(lee, link)
    assert len(items) == 3 and all("@removed" in i for i in items)


def test_delta_rejects_unsupported_options_like_graph(graph) -> None:
    lee = graph("lee@contoso.com")
    for option in ("$select=subject", "$filter=subject eq 'x'", "$orderby=subject", "$search=x"):
        response = lee.get(
            f"/me/calendarView/delta?startDateTime=2030-06-01&endDateTime=2030-06-02&{option}"
        )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "ErrorInvalidUrlQuery"
    top = lee.get("/me/calendarView/delta?startDateTime=2030-06-01&endDateTime=2030-06-02&$top=5")
    assert "odata.maxpagesize" in top.json()["error"]["message"]
    assert lee.get("/me/calendarView/delta").json()["error"]["code"] == "ErrorInvalidParameter"


def test_unused_delta_token_expires(graph, control, sim) -> None:
    lee = graph("lee@contoso.com")
    lee.post("/me/events", json=at("2030-06-02", "09:00", "10:00"))
    _, link, _ = delta_round(lee, "/me/calendarView/delta()", WINDOW)
    lifetime = sim.state.config.delta_token_lifetime_seconds
    control.post("/_sim/clock", json={"advanceSeconds": lifetime - 60})
    _, link, _ = delta_round(lee, link)  # used in time: still good, and renewed
    control.post("/_sim/clock", json={"advanceSeconds": lifetime + 1})
    expired = lee.get(link)
    assert expired.status_code == 410
    assert expired.json()["error"]["code"] == "SyncStateNotFound"
    assert lee.get("/me/calendarView/delta?$deltatoken=garbage").status_code == 410


def test_delta_pages_replay_the_previous_pages_last_item(graph, control) -> None:
    lee = graph("lee@contoso.com")
    for d in range(1, 5):
        lee.post("/me/events", json=at(f"2030-06-0{d}", "09:00", "10:00", f"E{d}"))
    items, _, _ = delta_round(lee, "/me/calendarView/delta", WINDOW, Prefer="odata.maxpagesize=2")
    # odata.maxpagesize is a maximum: the repeated item counts towards it.
    assert [i["subject"] for i in items] == ["E1", "E2", "E2", "E3", "E3", "E4"]
    control.patch("/_sim/config", json={"delta_replay": False})
    items, _, _ = delta_round(lee, "/me/calendarView/delta", WINDOW, Prefer="odata.maxpagesize=2")
    assert [i["subject"] for i in items] == ["E1", "E2", "E3", "E4"]


def test_links_of_stale_generations_are_gone(graph, control) -> None:
    control.patch("/_sim/config", json={"delta_replay": False})
    lee = graph("lee@contoso.com")
    for d in range(1, 8):
        lee.post("/me/events", json=at(f"2030-06-0{d}", "09:00", "10:00", f"E{d}"))
    prefer = {"Prefer": "odata.maxpagesize=2"}
    body = lee.get("/me/calendarView/delta", params=WINDOW, headers=prefer).json()
    links = []
    while "@odata.nextLink" in body:
        links.append(body["@odata.nextLink"])
        body = lee.get(body["@odata.nextLink"], headers=prefer).json()
    assert len(links) == 3  # 7 events, 2 a page; the newest generation is the deltaLink's (4)
    gone = lee.get(links[0], headers=prefer)
    assert gone.status_code == 410
    assert gone.json()["error"]["message"] == (
        "The sync state generation is not found; generation=1;[highest=4][4][2][3]."
    )
    assert lee.get(links[1], headers=prefer).status_code == 200
