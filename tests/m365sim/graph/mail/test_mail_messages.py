"""Messages and folders as Graph serves them: JSON shape, ids, Prefer headers, sendMail."""

from __future__ import annotations

import httpx

from m365sim.server import SimServer
from m365sim.state import Change

ADELE = "/users/adele@contoso.com"


def deliver(control: httpx.Client, to: str = "adele@contoso.com", **spec: object) -> dict:
    response = control.post(f"/_sim/mailboxes/{to}/messages", json=spec)
    assert response.status_code == 201, response.text
    return response.json()


def test_message_json_has_graph_shape(graph, control) -> None:
    deliver(
        control,
        **{
            "from": {"name": "Ana Ruiz", "address": "ana@fabrikam.com"},
            "subject": "Quote",
            "body": "<p>Hello <b>Adele</b></p>",
            "cc": ["lee@contoso.com"],
        },
    )
    response = graph().get(f"{ADELE}/mailFolders/inbox/messages")
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"].endswith(
        "$metadata#users('adele@contoso.com')/mailFolders('inbox')/messages"
    )
    message = body["value"][0]
    assert list(message)[:4] == ["@odata.etag", "id", "createdDateTime", "lastModifiedDateTime"]
    assert message["@odata.etag"] == f'W/"{message["changeKey"]}"'
    assert message["from"] == {"emailAddress": {"name": "Ana Ruiz", "address": "ana@fabrikam.com"}}
    assert message["ccRecipients"] == [
        {"emailAddress": {"name": "lee@contoso.com", "address": "lee@contoso.com"}}
    ]
    assert message["body"] == {"contentType": "html", "content": "<p>Hello <b>Adele</b></p>"}
    assert message["bodyPreview"] == "Hello Adele"
    assert message["receivedDateTime"].endswith("Z") and message["isRead"] is False
    assert message["internetMessageId"].startswith("<") and message["conversationId"]
    for name in (
        "sentDateTime",
        "hasAttachments",
        "importance",
        "parentFolderId",
        "conversationIndex",
        "isDeliveryReceiptRequested",
        "isReadReceiptRequested",
        "isDraft",
        "webLink",
        "inferenceClassification",
        "sender",
        "toRecipients",
        "bccRecipients",
        "replyTo",
        "flag",
        "categories",
    ):
        assert name in message


def test_prefer_text_body_converts_html_and_is_acknowledged(graph, control) -> None:
    deliver(
        control,
        subject="Hi",
        body="<html><body><p>Line one</p><p>Line&nbsp;two &amp; more</p></body></html>",
    )
    response = graph().get(
        f"{ADELE}/messages", headers={"Prefer": 'outlook.body-content-type="text"'}
    )
    assert response.headers["Preference-Applied"] == 'outlook.body-content-type="text"'
    body = response.json()["value"][0]["body"]
    assert body["contentType"] == "text"
    assert (
        "<" not in body["content"]
        and "Line one" in body["content"]
        and "two & more" in body["content"]
    )


def test_id_changes_on_move_unless_immutable(graph, control) -> None:
    delivered = deliver(control, subject="Move me")
    client = graph()
    default_id = client.get(f"{ADELE}/mailFolders/inbox/messages").json()["value"][0]["id"]
    immutable = client.get(
        f"{ADELE}/mailFolders/inbox/messages", headers={"Prefer": 'IdType="ImmutableId"'}
    )
    assert immutable.headers["Preference-Applied"] == 'IdType="ImmutableId"'
    immutable_id = immutable.json()["value"][0]["id"]
    assert immutable_id == delivered["immutableId"] and immutable_id != default_id

    moved = client.post(f"{ADELE}/messages/{default_id}/move", json={"destinationId": "archive"})
    assert moved.status_code == 201
    new_id = moved.json()["id"]
    assert new_id != default_id
    assert (
        client.get(f"{ADELE}/messages/{default_id}").json()["error"]["code"] == "ErrorItemNotFound"
    )
    assert client.get(f"{ADELE}/messages/{new_id}").json()["subject"] == "Move me"
    again = client.get(
        f"{ADELE}/messages/{immutable_id}", headers={"Prefer": 'IdType="ImmutableId"'}
    ).json()
    assert again["id"] == immutable_id
    assert again["parentFolderId"] == client.get(f"{ADELE}/mailFolders/archive").json()["id"]


def test_patch_delete_and_errors(graph, control) -> None:
    delivered = deliver(control, subject="Read me")
    message_id = delivered["id"]
    client = graph()
    patched = client.patch(
        f"{ADELE}/messages/{message_id}", json={"isRead": True, "categories": ["CRM"]}
    )
    assert patched.status_code == 200
    assert patched.json()["isRead"] is True and patched.json()["categories"] == ["CRM"]
    assert patched.json()["changeKey"] != delivered["changeKey"]
    assert (
        client.patch(f"{ADELE}/messages/{message_id}", json={"subject": "x"}).status_code == 400
    )  # not a draft
    assert (
        client.patch(f"{ADELE}/messages/{message_id}", json={"nonsense": 1}).json()["error"]["code"]
        == "RequestBodyRead"
    )
    assert client.delete(f"{ADELE}/messages/{message_id}").status_code == 204
    assert client.get(f"{ADELE}/messages/{message_id}").status_code == 404
    assert (
        client.get(f"{ADELE}/messages/not-an-id").json()["error"]["code"]
        == "ErrorInvalidIdMalformed"
    )
    assert client.get(f"{ADELE}/mailFolders/inbox").json()["totalItemCount"] == 0


def test_read_only_token_cannot_write(graph, control) -> None:
    message_id = deliver(control, subject="x")["id"]
    reader = graph(roles=["Mail.Read"])
    assert reader.get(f"{ADELE}/messages/{message_id}").status_code == 200
    denied = reader.patch(f"{ADELE}/messages/{message_id}", json={"isRead": True})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "ErrorAccessDenied"


def test_send_mail_delivers_in_tenant_and_saves_copy(sim: SimServer, graph, control) -> None:
    changes: list[Change] = []
    sim.state.change_listeners.append(changes.append)
    sender = graph(user="adele@contoso.com", scopes=["Mail.Send", "Mail.ReadWrite"])
    response = sender.post(
        "/me/sendMail",
        json={
            "message": {
                "subject": "Proposal",
                "body": {"contentType": "Text", "content": "See attached."},
                "toRecipients": [{"emailAddress": {"address": "alex@contoso.com"}}],
                "ccRecipients": [{"emailAddress": {"address": "buyer@fabrikam.com"}}],
            }
        },
    )
    assert response.status_code == 202, response.text
    alex_inbox = graph().get("/users/alex@contoso.com/mailFolders/inbox/messages").json()["value"]
    assert [m["subject"] for m in alex_inbox] == ["Proposal"]
    assert alex_inbox[0]["from"]["emailAddress"]["address"] == "adele@contoso.com"
    sent = sender.get("/me/mailFolders/sentitems/messages").json()["value"]
    assert sent[0]["internetMessageId"] == alex_inbox[0]["internetMessageId"]
    assert sent[0]["isRead"] is True
    outbound = control.get("/_sim/mail/outbound").json()["value"]
    assert outbound[0]["recipients"] == ["buyer@fabrikam.com"]
    assert {(c.resource, c.change_type) for c in changes} == {("message", "created")}
    sim.state.change_listeners.remove(changes.append)


def test_send_mail_without_saving_and_without_permission(graph) -> None:
    sender = graph(user="adele@contoso.com", scopes=["Mail.Send", "Mail.Read"])
    message = {"subject": "x", "toRecipients": [{"emailAddress": {"address": "alex@contoso.com"}}]}
    assert (
        sender.post("/me/sendMail", json={"message": message, "saveToSentItems": False}).status_code
        == 202
    )
    assert sender.get("/me/mailFolders/sentitems/messages").json()["value"] == []
    no_send = graph(user="adele@contoso.com", scopes=["Mail.ReadWrite"])
    assert no_send.post("/me/sendMail", json={"message": message}).status_code == 403
    assert (
        sender.post("/me/sendMail", json={"message": {"subject": "nobody"}}).json()["error"]["code"]
        == "ErrorInvalidRecipients"
    )


def test_send_mail_needs_mail_send_not_mail_read(graph) -> None:
    message = {
        "subject": "Sent by the app",
        "toRecipients": [{"emailAddress": {"address": "alex@contoso.com"}}],
    }
    sender = graph(roles=["Mail.Send"])
    assert sender.post(f"{ADELE}/sendMail", json={"message": message}).status_code == 202
    inbox = graph().get("/users/alex@contoso.com/mailFolders/inbox/messages").json()["value"]
    assert [m["subject"] for m in inbox] == ["Sent by the app"]
    reader = graph(roles=["Mail.Read", "Mail.ReadWrite"])
    denied = reader.post(f"{ADELE}/sendMail", json={"message": message})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "ErrorAccessDenied"
    own = graph(user="adele@contoso.com", scopes=["Mail.Send"])
    assert own.post("/me/sendMail", json={"message": message}).status_code == 202
    assert own.get("/me/messages").status_code == 403


def test_drafts_and_folders(graph) -> None:
    client = graph()
    draft = client.post(
        f"{ADELE}/messages",
        json={"subject": "Draft", "toRecipients": [{"emailAddress": {"address": "a@b.com"}}]},
    )
    assert draft.status_code == 201 and draft.json()["isDraft"] is True
    assert (
        client.patch(f"{ADELE}/messages/{draft.json()['id']}", json={"subject": "Draft 2"}).json()[
            "subject"
        ]
        == "Draft 2"
    )
    folders = client.get(f"{ADELE}/mailFolders").json()["value"]
    assert {"Inbox", "Drafts", "Sent Items", "Deleted Items", "Archive"} <= {
        f["displayName"] for f in folders
    }
    assert next(f for f in folders if f["displayName"] == "Drafts")["totalItemCount"] == 1
    child = client.post(
        f"{ADELE}/mailFolders/inbox/childFolders", json={"displayName": "Customers"}
    )
    assert child.status_code == 201
    assert (
        client.post(
            f"{ADELE}/mailFolders/inbox/childFolders", json={"displayName": "customers"}
        ).status_code
        == 409
    )
    children = client.get(f"{ADELE}/mailFolders/inbox/childFolders").json()["value"]
    assert [c["displayName"] for c in children] == ["Customers"]
    assert client.get(f"{ADELE}/mailFolders/inbox").json()["childFolderCount"] == 1


def test_listing_pages_filters_and_counts(graph, control) -> None:
    control.post(
        "/_sim/mailboxes/adele@contoso.com/messages/generate", json={"count": 25, "seed": 3}
    )
    deliver(control, subject="Needle", **{"from": "boss@fabrikam.com"})
    client = graph()
    seen: list[str] = []
    url: str | None = f"{ADELE}/messages?$top=10&$select=subject"
    while url:
        body = client.get(url).json()
        seen += [m["id"] for m in body["value"]]
        assert set(body["value"][0]) <= {"@odata.etag", "id", "subject"}
        url = body.get("@odata.nextLink")
    assert len(seen) == len(set(seen)) == 26
    found = client.get(
        f"{ADELE}/messages",
        params={"$filter": "from/emailAddress/address eq 'BOSS@fabrikam.com'", "$count": "true"},
    ).json()
    assert found["@odata.count"] == 1 and found["value"][0]["subject"] == "Needle"
    newest = client.get(f"{ADELE}/messages", params={"$top": 3}).json()["value"]
    assert [m["receivedDateTime"] for m in newest] == sorted(
        (m["receivedDateTime"] for m in newest), reverse=True
    )


def test_exchange_filter_rules(graph) -> None:
    response = graph().get(
        "/users/adele@contoso.com/messages",
        params={"$filter": "toRecipients/any(r: r/emailAddress/address eq 'x@y.com')"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "ErrorInvalidUrlQueryFilter"
    inefficient = graph().get(
        "/users/adele@contoso.com/messages",
        params={"$filter": "isRead eq false", "$orderby": "receivedDateTime desc"},
    )
    assert inefficient.json()["error"]["code"] == "InefficientFilter"
    fine = graph().get(
        "/users/adele@contoso.com/messages",
        params={
            "$filter": "receivedDateTime ge 2020-01-01 and isRead eq false",
            "$orderby": "receivedDateTime desc",
        },
    )
    assert fine.status_code == 200


def test_a_received_window_lists_and_counts_what_the_filter_selects(graph, control) -> None:
    """A first sync's window count (``receivedDateTime ge`` with ``$count``) and list: the
    messages received at or after the moment (after it, with ``gt``), compared to the
    second as ``receivedDateTime`` is rendered, newest first; a message delivered since
    counts at once."""
    for moment in (
        "2026-03-01T09:59:59.900Z",
        "2026-03-01T10:00:00.400Z",  # the boundary second, rendered 10:00:00
        "2026-03-01T10:00:01Z",
        "2026-03-02T08:00:00Z",
        "2026-02-27T12:00:00Z",
    ):
        deliver(control, subject=moment, receivedDateTime=moment)

    def window(op: str, moment: str) -> tuple[int, list[str]]:
        response = graph().get(
            f"{ADELE}/mailFolders/inbox/messages",
            params={
                "$filter": f"receivedDateTime {op} {moment}",
                "$count": "true",
                "$select": "subject,receivedDateTime",
            },
        )
        assert response.status_code == 200, response.text
        body = response.json()
        return body["@odata.count"], [m["receivedDateTime"] for m in body["value"]]

    count, received = window("ge", "2026-03-01T10:00:00Z")
    assert count == 3
    assert received == ["2026-03-02T08:00:00Z", "2026-03-01T10:00:01Z", "2026-03-01T10:00:00Z"]
    assert window("gt", "2026-03-01T10:00:00Z") == (2, received[:2])
    assert window("ge", "2026-03-01T10:00:00.500Z") == (2, received[:2])
    assert window("ge", "2026-03-03T00:00:00Z") == (0, [])
    assert window("ge", "2026-01-01T00:00:00Z")[0] == 5
    deliver(control, subject="late", receivedDateTime="2026-03-01T11:00:00Z")
    count, received = window("ge", "2026-03-01T10:00:00Z")
    assert count == 4 and received[1] == "2026-03-01T11:00:00Z"
