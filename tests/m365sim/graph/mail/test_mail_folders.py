"""Mail folders: rename, move, delete and ``mailFolders/delta``, as Graph documents them."""

from __future__ import annotations

ADELE = "/users/adele@contoso.com"


def test_rename_move_and_delete_a_folder(graph) -> None:
    client = graph()
    projects = client.post(f"{ADELE}/mailFolders", json={"displayName": "Projects"}).json()
    client.post(f"{ADELE}/mailFolders", json={"displayName": "Clients"})
    renamed = client.patch(f"{ADELE}/mailFolders/{projects['id']}", json={"displayName": "Deals"})
    assert renamed.status_code == 200 and renamed.json()["displayName"] == "Deals"
    clash = client.patch(f"{ADELE}/mailFolders/{projects['id']}", json={"displayName": "clients"})
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "ErrorFolderExists"
    inbox = client.get(f"{ADELE}/mailFolders/inbox").json()
    moved = client.post(
        f"{ADELE}/mailFolders/{projects['id']}/move", json={"destinationId": "inbox"}
    )
    assert moved.status_code == 201 and moved.json()["parentFolderId"] == inbox["id"]
    children = client.get(f"{ADELE}/mailFolders/inbox/childFolders").json()["value"]
    assert [c["displayName"] for c in children] == ["Deals"]
    assert client.delete(f"{ADELE}/mailFolders/inbox").status_code == 400
    assert (
        client.post(
            f"{ADELE}/mailFolders/inbox/move", json={"destinationId": "archive"}
        ).status_code
        == 400
    )
    assert client.delete(f"{ADELE}/mailFolders/{projects['id']}").status_code == 204
    deleted = client.get(f"{ADELE}/mailFolders/{projects['id']}").json()
    assert deleted["parentFolderId"] == client.get(f"{ADELE}/mailFolders/deleteditems").json()["id"]
    assert client.delete(f"{ADELE}/mailFolders/{projects['id']}").status_code == 204
    assert client.get(f"{ADELE}/mailFolders/{projects['id']}").status_code == 404


def test_mail_folder_delta_reports_new_renamed_and_removed_folders(graph) -> None:
    client = graph()
    first = client.get(f"{ADELE}/mailFolders/delta", headers={"Prefer": "odata.maxpagesize=3"})
    names: list[str] = []
    body = first.json()
    while "@odata.nextLink" in body:
        names += [f["displayName"] for f in body["value"]]
        body = client.get(body["@odata.nextLink"]).json()
    names += [f["displayName"] for f in body["value"]]
    assert {"Inbox", "Sent Items", "Deleted Items", "Archive"} <= set(names)
    delta_link = body["@odata.deltaLink"]
    assert client.get(delta_link).json()["value"] == []

    made = client.post(f"{ADELE}/mailFolders", json={"displayName": "Leads"}).json()
    child = client.post(
        f"{ADELE}/mailFolders/{made['id']}/childFolders", json={"displayName": "Hot"}
    ).json()
    client.patch(f"{ADELE}/mailFolders/{made['id']}", json={"displayName": "Prospects"})
    changed = client.get(delta_link).json()
    assert [(f["id"], f["displayName"]) for f in changed["value"]] == [
        (child["id"], "Hot"),
        (made["id"], "Prospects"),
    ]
    client.delete(f"{ADELE}/mailFolders/{made['id']}")
    client.delete(f"{ADELE}/mailFolders/{made['id']}")
    removed = client.get(changed["@odata.deltaLink"]).json()["value"]
    assert {"id": made["id"], "@removed": {"reason": "deleted"}} in removed
    assert {"id": child["id"], "@removed": {"reason": "deleted"}} in removed
