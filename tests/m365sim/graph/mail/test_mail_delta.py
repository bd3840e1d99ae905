"""Message delta: rounds, deltaLinks, @removed, replays, expiry, Graph's option limits."""

from __future__ import annotations

import gc

import httpx

from m365sim.server import SimServer

INBOX_DELTA = "/users/adele@contoso.com/mailFolders/inbox/messages/delta"


def run_round(
    client: httpx.Client, url: str, page_size: int = 10, **headers: str
) -> tuple[list[dict], str, int]:
    """Follow nextLinks to the deltaLink; returns (items, deltaLink, pages)."""
    items: list[dict] = []
    pages = 0
    prefer = {"Prefer": f"odata.maxpagesize={page_size}", **headers}
    while True:
        response = client.get(url, headers=prefer)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        items += body["value"]
        if "@odata.deltaLink" in body:
            assert "@odata.nextLink" not in body
            return items, body["@odata.deltaLink"], pages
        url = body["@odata.nextLink"]
        assert "$skiptoken=" in url


def no_replays(control: httpx.Client) -> None:
    assert control.patch("/_sim/config", json={"delta_replay": False}).status_code == 200


def test_full_round_then_only_changes(graph, control) -> None:
    no_replays(control)
    control.post("/_sim/mailboxes/adele@contoso.com/messages/generate", json={"count": 23})
    client = graph()
    items, delta_link, pages = run_round(client, INBOX_DELTA, page_size=10)
    assert pages == 3 and len({m["id"] for m in items}) == 23
    assert all(m["@odata.type"] == "#microsoft.graph.message" for m in items)
    assert "$deltatoken=" in delta_link

    unchanged, delta_link, _ = run_round(client, delta_link)
    assert unchanged == []

    new = control.post(
        "/_sim/mailboxes/adele@contoso.com/messages", json={"subject": "New lead"}
    ).json()
    client.patch(f"/users/adele@contoso.com/messages/{items[0]['id']}", json={"isRead": True})
    changes, delta_link, _ = run_round(client, delta_link)
    assert {m["id"] for m in changes} == {new["id"], items[0]["id"]}


def test_removed_on_delete_and_move_out(graph, control) -> None:
    no_replays(control)
    ids = [
        control.post(
            "/_sim/mailboxes/adele@contoso.com/messages", json={"subject": f"m{i}"}
        ).json()["id"]
        for i in range(3)
    ]
    client = graph()
    _, delta_link, _ = run_round(client, INBOX_DELTA)
    client.delete(f"/users/adele@contoso.com/messages/{ids[0]}")
    moved = client.post(
        f"/users/adele@contoso.com/messages/{ids[1]}/move", json={"destinationId": "archive"}
    ).json()
    changes, _, _ = run_round(client, delta_link)
    assert changes == [
        {
            "@odata.type": "#microsoft.graph.message",
            "id": ids[0],
            "@removed": {"reason": "deleted"},
        },
        {
            "@odata.type": "#microsoft.graph.message",
            "id": ids[1],
            "@removed": {"reason": "deleted"},
        },
    ]
    archive, _, _ = run_round(
        client, "/users/adele@contoso.com/mailFolders/archive/messages/delta()"
    )
    assert [m["id"] for m in archive] == [moved["id"]]


def test_immutable_ids_in_delta_survive_moves(graph, control) -> None:
    no_replays(control)
    delivered = control.post(
        "/_sim/mailboxes/adele@contoso.com/messages", json={"subject": "x"}
    ).json()
    client = graph()
    immutable = {"Prefer": 'IdType="ImmutableId", odata.maxpagesize=10'}
    first = client.get(INBOX_DELTA, headers=immutable)
    assert first.headers["Preference-Applied"] == 'IdType="ImmutableId", odata.maxpagesize=10'
    assert [m["id"] for m in first.json()["value"]] == [delivered["immutableId"]]
    client.post(
        f"/users/adele@contoso.com/messages/{delivered['immutableId']}/move",
        json={"destinationId": "archive"},
    )
    removed = client.get(first.json()["@odata.deltaLink"], headers=immutable).json()["value"]
    assert removed[0]["id"] == delivered["immutableId"] and "@removed" in removed[0]


def test_replays_and_duplicates_when_enabled(graph, control) -> None:
    control.post("/_sim/mailboxes/adele@contoso.com/messages/generate", json={"count": 12})
    client = graph()
    items, delta_link, _ = run_round(client, INBOX_DELTA, page_size=5)
    ids = [m["id"] for m in items]
    assert len(set(ids)) == 12 and len(ids) > 12  # pages overlap: duplicates within the round
    replayed, _, _ = run_round(client, delta_link)
    assert len(replayed) == 1 and replayed[0]["id"] in ids  # an already-seen, unchanged item


def test_expired_delta_link_is_410_sync_state_not_found(sim: SimServer, graph, control) -> None:
    client = graph()
    _, delta_link, _ = run_round(client, INBOX_DELTA)
    lifetime = sim.state.config.delta_token_lifetime_seconds
    control.post("/_sim/clock", json={"advanceSeconds": lifetime + 60})
    client = graph()  # a fresh token on the moved clock
    response = client.get(delta_link)
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "SyncStateNotFound"
    assert (
        client.get(
            INBOX_DELTA.replace("inbox", "sentitems") + "?$deltatoken=garbage.zz"
        ).status_code
        == 410
    )
    assert client.get(INBOX_DELTA).status_code == 200  # a new full sync works


def test_change_type_filter_orderby_and_select(graph, control) -> None:
    no_replays(control)
    old = control.post(
        "/_sim/mailboxes/adele@contoso.com/messages",
        json={"subject": "old", "receivedDateTime": "2020-01-01T00:00:00Z"},
    ).json()
    control.post(
        "/_sim/mailboxes/adele@contoso.com/messages",
        json={"subject": "recent", "receivedDateTime": "-1d"},
    )
    client = graph()
    recent, _, _ = run_round(
        client, INBOX_DELTA + "?$filter=receivedDateTime ge 2024-01-01T00:00:00Z&$select=subject"
    )
    assert [m["subject"] for m in recent] == ["recent"]
    assert set(recent[0]) == {"@odata.type", "@odata.etag", "id", "subject"}
    ordered, delta_link, _ = run_round(
        client, INBOX_DELTA + "?changeType=created&$orderby=receivedDateTime desc"
    )
    assert [m["subject"] for m in ordered] == ["recent", "old"]
    client.patch(f"/users/adele@contoso.com/messages/{old['id']}", json={"isRead": True})
    created_only, _, _ = run_round(client, delta_link)
    assert created_only == []  # an update is not a creation
    bad = [
        INBOX_DELTA + "?$filter=subject eq 'x'",
        INBOX_DELTA + "?$orderby=subject",
        INBOX_DELTA + "?$search=foo",
        INBOX_DELTA + "?$skip=5",
        INBOX_DELTA + "?changeType=moved",
    ]
    for url in bad:
        assert client.get(url).status_code == 400, url
    assert client.get("/users/adele@contoso.com/messages/delta").status_code == 400


def test_delta_for_unreachable_or_denied_mailboxes(graph) -> None:
    client = graph()
    response = client.get("/users/pradeep@contoso.com/mailFolders/inbox/messages/delta")
    assert (
        response.status_code == 404
        and response.json()["error"]["code"] == "MailboxNotEnabledForRESTAPI"
    )
    assert graph(roles=["Calendars.Read"]).get(INBOX_DELTA).status_code == 403


def test_maxpagesize_is_a_maximum_even_with_replays(graph, control) -> None:
    """``Prefer: odata.maxpagesize=N`` never gets more than N items, the repeated last item
    of the previous page included."""
    control.post("/_sim/mailboxes/adele@contoso.com/messages/generate", json={"count": 25})
    client = graph()
    url: str | None = INBOX_DELTA
    sizes: list[int] = []
    ids: set[str] = set()
    while url:
        response = client.get(url, headers={"Prefer": "odata.maxpagesize=10"})
        assert response.headers["Preference-Applied"].count("odata.maxpagesize=10") == 1
        body = response.json()
        sizes.append(len(body["value"]))
        ids |= {m["id"] for m in body["value"]}
        url = body.get("@odata.nextLink")
    assert max(sizes) == 10 and len(ids) == 25
    one = client.get(INBOX_DELTA, headers={"Prefer": "odata.maxpagesize=1"}).json()
    follow = client.get(one["@odata.nextLink"], headers={"Prefer": "odata.maxpagesize=1"}).json()
    assert len(one["value"]) == len(follow["value"]) == 1
    assert one["value"][0]["id"] != follow["value"][0]["id"]  # a page of one still moves on


def _links(client: httpx.Client, url: str, pages: int) -> list[str]:
    """The nextLinks (then the deltaLink) handed out while following ``pages`` pages."""
    links = []
    for _ in range(pages):
        body = client.get(url, headers={"Prefer": "odata.maxpagesize=5"}).json()
        url = body.get("@odata.nextLink") or body["@odata.deltaLink"]
        links.append(url)
    return links


def test_links_more_than_two_generations_old_are_gone_as_in_exchange(graph, control) -> None:
    """Exchange keeps the three newest generations of a sync state: "The sync state
    generation is not found; generation=518;[highest=523][523][521][522]."."""
    no_replays(control)
    control.post("/_sim/mailboxes/adele@contoso.com/messages/generate", json={"count": 18})
    client = graph()
    links = _links(client, INBOX_DELTA, 4)  # 18 messages, 5 a page: 3 nextLinks, a deltaLink
    assert "$deltatoken=" in links[3] and all("$skiptoken=" in link for link in links[:3])
    gone = client.get(links[0], headers={"Prefer": "odata.maxpagesize=5"})
    assert gone.status_code == 410
    assert gone.json()["error"] == gone.json()["error"] | {
        "code": "SyncStateNotFound",
        "message": "The sync state generation is not found; generation=1;[highest=4][4][2][3].",
    }
    # The newest links and a retry of the one before still work.
    for kept in links[1:]:
        assert client.get(kept, headers={"Prefer": "odata.maxpagesize=5"}).status_code == 200

    # A deltaLink ages the same way: sync on from it, then go back to it.
    control.post("/_sim/mailboxes/adele@contoso.com/messages/generate", json={"count": 12})
    delta_link = links[3]
    newer = _links(client, delta_link, 3)
    assert "$deltatoken=" in newer[-1]
    stale = client.get(delta_link)
    assert stale.status_code == 410 and stale.json()["error"]["code"] == "SyncStateNotFound"
    assert client.get(newer[-1]).status_code == 200


def test_a_bulk_generated_mailbox_is_kept_out_of_full_collections(
    sim: SimServer, graph, control
) -> None:
    """A delta page costs the same from a large mailbox as from a small one: the generated
    messages leave the cyclic collector's full walks (``gc.freeze``) and a reset hands them
    back; the round itself is unchanged."""
    no_replays(control)
    control.post("/_sim/mailboxes/adele@contoso.com/messages/generate", json={"count": 1200})
    assert gc.get_freeze_count() > 0

    items, _, pages = run_round(graph(), INBOX_DELTA, page_size=500)
    assert pages == 3 and len({m["id"] for m in items}) == 1200

    sim.state.reset()
    assert gc.get_freeze_count() == 0
