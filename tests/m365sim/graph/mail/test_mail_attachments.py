"""Attachments, internet headers, threading, extended properties, raw MIME and the
reply/forward/send actions, as Graph documents them."""

from __future__ import annotations

import base64
import email
import email.policy

import httpx

ADELE = "/users/adele@contoso.com"
LEE = "/users/lee@contoso.com"


def deliver(control: httpx.Client, to: str = "adele@contoso.com", **spec: object) -> dict:
    response = control.post(f"/_sim/mailboxes/{to}/messages", json=spec)
    assert response.status_code == 201, response.text
    return response.json()


def test_attachments_list_get_expand_and_value(graph, control) -> None:
    message = deliver(
        control,
        subject="Quote",
        attachments=[
            {"name": "quote.pdf", "contentType": "application/pdf", "content": "%PDF-1.7 quote"},
            {"name": "logo.png", "contentType": "image/png", "size": 10, "isInline": True},
        ],
    )
    client = graph()
    got = client.get(f"{ADELE}/messages/{message['id']}").json()
    assert got["hasAttachments"] is True
    listed = client.get(f"{ADELE}/messages/{message['id']}/attachments").json()["value"]
    pdf = listed[0]
    assert pdf["@odata.type"] == "#microsoft.graph.fileAttachment"
    assert (pdf["name"], pdf["contentType"], pdf["size"], pdf["isInline"]) == (
        "quote.pdf",
        "application/pdf",
        14,
        False,
    )
    assert base64.b64decode(pdf["contentBytes"]) == b"%PDF-1.7 quote"
    small = client.get(
        f"{ADELE}/messages/{message['id']}/attachments",
        params={"$select": "name,contentType,size"},
    ).json()["value"]
    assert set(small[0]) == {"@odata.type", "@odata.mediaContentType", "id", "name"} | {
        "contentType",
        "size",
    }
    one = client.get(f"{ADELE}/messages/{message['id']}/attachments/{pdf['id']}").json()
    assert one["id"] == pdf["id"]
    raw = client.get(f"{ADELE}/messages/{message['id']}/attachments/{pdf['id']}/$value")
    assert raw.content == b"%PDF-1.7 quote"
    expanded = client.get(
        f"{ADELE}/messages",
        params={"$expand": "attachments($select=name,size)", "$select": "subject"},
    ).json()["value"][0]
    assert [a["name"] for a in expanded["attachments"]] == ["quote.pdf", "logo.png"]
    missing = client.get(f"{ADELE}/messages/{message['id']}/attachments/AAMkAnothere")
    assert missing.status_code == 404


def test_only_inline_attachments_leave_has_attachments_false(graph, control) -> None:
    message = deliver(control, attachments=[{"name": "sig.png", "size": 5, "isInline": True}])
    assert graph().get(f"{ADELE}/messages/{message['id']}").json()["hasAttachments"] is False


def test_attachments_on_drafts_only_and_within_four_megabytes(graph, control) -> None:
    client = graph()
    draft = client.post(f"{ADELE}/messages", json={"subject": "Draft"}).json()
    file = {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": "notes.txt",
        "contentBytes": base64.b64encode(b"notes").decode(),
    }
    added = client.post(f"{ADELE}/messages/{draft['id']}/attachments", json=file)
    assert added.status_code == 201 and added.json()["size"] == 5
    big = {**file, "contentBytes": base64.b64encode(b"x" * (3 * 1024 * 1024 + 1)).decode()}
    too_big = client.post(f"{ADELE}/messages/{draft['id']}/attachments", json=big)
    assert too_big.status_code == 413
    assert too_big.json()["error"]["message"] == "The maximum request length supported is 4MB."
    received = deliver(control, subject="In")
    refused = client.post(f"{ADELE}/messages/{received['id']}/attachments", json=file)
    assert refused.status_code == 400
    gone = client.delete(f"{ADELE}/messages/{draft['id']}/attachments/{added.json()['id']}")
    assert gone.status_code == 204


def test_internet_message_headers_come_only_with_select(graph, control) -> None:
    message = deliver(
        control,
        subject="Tagged",
        internetMessageHeaders=[{"name": "X-Campaign", "value": "spring"}],
    )
    client = graph()
    plain = client.get(f"{ADELE}/messages/{message['id']}").json()
    assert "internetMessageHeaders" not in plain
    selected = client.get(
        f"{ADELE}/messages/{message['id']}", params={"$select": "internetMessageHeaders"}
    ).json()
    headers = {h["name"]: h["value"] for h in selected["internetMessageHeaders"]}
    assert headers["X-Campaign"] == "spring"
    assert headers["Message-ID"] == message["internetMessageId"]


def test_replies_join_the_conversation_of_the_message_they_answer(graph, control) -> None:
    first = deliver(control, subject="Pricing", internetMessageId="<root@fabrikam.com>")
    second = deliver(
        control,
        subject="RE: Pricing",
        internetMessageHeaders=[
            {"name": "In-Reply-To", "value": "<root@fabrikam.com>"},
            {"name": "References", "value": "<root@fabrikam.com>"},
        ],
    )
    # The parent is not in this mailbox: the thread's root still names the conversation.
    third = deliver(
        control,
        to="lee@contoso.com",
        subject="RE: RE: Pricing",
        internetMessageHeaders=[
            {"name": "In-Reply-To", "value": "<missing@fabrikam.com>"},
            {"name": "References", "value": "<root@fabrikam.com> <missing@fabrikam.com>"},
        ],
    )
    unrelated = deliver(control, subject="Pricing")
    assert second["conversationId"] == first["conversationId"]
    assert unrelated["conversationId"] != first["conversationId"]
    parent_index = base64.b64decode(first["conversationIndex"])
    child_index = base64.b64decode(second["conversationIndex"])
    assert len(parent_index) == 22 and child_index[:22] == parent_index and len(child_index) == 27
    lee_root = deliver(control, to="lee@contoso.com", internetMessageId="<root@fabrikam.com>")
    assert third["conversationId"] == lee_root["conversationId"]


def test_reply_forward_and_send_thread_and_carry_attachments(graph, control) -> None:
    client = graph()
    original = deliver(
        control,
        **{"from": {"address": "lee@contoso.com", "name": "Lee"}},
        subject="Contract",
        attachments=[{"name": "contract.docx", "content": "terms"}],
    )
    replied = client.post(f"{ADELE}/messages/{original['id']}/reply", json={"comment": "Thanks"})
    assert replied.status_code == 202
    lee_inbox = client.get(f"{LEE}/mailFolders/inbox/messages").json()["value"]
    answer = next(m for m in lee_inbox if m["subject"] == "RE: Contract")
    sent = client.get(
        f"{ADELE}/mailFolders/sentitems/messages", params={"$select": "subject,conversationId"}
    ).json()["value"]
    assert sent[0]["conversationId"] == original["conversationId"]
    headers = client.get(
        f"{LEE}/messages/{answer['id']}", params={"$select": "internetMessageHeaders"}
    ).json()["internetMessageHeaders"]
    assert {"name": "In-Reply-To", "value": original["internetMessageId"]} in headers
    forwarded = client.post(
        f"{ADELE}/messages/{original['id']}/forward",
        json={
            "comment": "FYI",
            "toRecipients": [{"emailAddress": {"address": "lee@contoso.com"}}],
        },
    )
    assert forwarded.status_code == 202
    fw = next(
        m
        for m in client.get(f"{LEE}/mailFolders/inbox/messages").json()["value"]
        if m["subject"] == "FW: Contract"
    )
    assert fw["hasAttachments"] is True
    draft = client.post(f"{ADELE}/messages/{original['id']}/createReply").json()
    assert draft["isDraft"] is True and draft["subject"] == "RE: Contract"
    assert draft["conversationId"] == original["conversationId"]
    assert client.post(f"{ADELE}/messages/{draft['id']}/send").status_code == 202
    assert client.get(f"{ADELE}/messages/{draft['id']}").status_code == 404


def test_send_mail_with_attachments_and_custom_headers(graph, control) -> None:
    client = graph()
    body = {
        "message": {
            "subject": "Report",
            "toRecipients": [{"emailAddress": {"address": "lee@contoso.com"}}],
            "attachments": [
                {
                    "@odata.type": "#microsoft.graph.fileAttachment",
                    "name": "report.csv",
                    "contentType": "text/csv",
                    "contentBytes": base64.b64encode(b"a,b\n1,2\n").decode(),
                }
            ],
            "internetMessageHeaders": [{"name": "x-crm-ref", "value": "42"}],
        }
    }
    assert client.post(f"{ADELE}/sendMail", json=body).status_code == 202
    inbox = client.get(
        f"{LEE}/mailFolders/inbox/messages", params={"$expand": "attachments"}
    ).json()["value"]
    assert [(a["name"], a["size"]) for a in inbox[0]["attachments"]] == [("report.csv", 8)]
    bad = {"message": {**body["message"], "internetMessageHeaders": [{"name": "Subject"}]}}
    refused = client.post(f"{ADELE}/sendMail", json=bad)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "InvalidInternetMessageHeader"


def test_raw_mime_of_a_message(graph, control) -> None:
    message = deliver(
        control,
        **{"from": {"address": "ana@fabrikam.com", "name": "Ana"}},
        subject="Raw",
        body="Hello",
        attachments=[{"name": "a.txt", "contentType": "text/plain", "content": "file text"}],
    )
    response = graph().get(f"{ADELE}/messages/{message['id']}/$value")
    assert response.status_code == 200
    parsed = email.message_from_bytes(response.content, policy=email.policy.default)
    assert parsed["Subject"] == "Raw" and parsed["Message-ID"] == message["internetMessageId"]
    parts = list(parsed.iter_attachments())
    assert [p.get_filename() for p in parts] == ["a.txt"]
    assert parts[0].get_content() == "file text"


def test_categories_and_extended_properties_tag_what_a_product_logged(graph, control) -> None:
    client = graph()
    message = deliver(control, subject="Logged")
    other = deliver(control, subject="Not logged")
    prop = "String {66f5a359-4659-4830-9070-00040ec6ac6e} Name CrmActivity"
    tagged = client.patch(
        f"{ADELE}/messages/{message['id']}",
        json={
            "categories": ["Logged to CRM"],
            "singleValueExtendedProperties": [{"id": prop, "value": "act-1"}],
        },
    )
    assert tagged.status_code == 200
    by_category = client.get(
        f"{ADELE}/messages", params={"$filter": "categories/any(c:c eq 'Logged to CRM')"}
    ).json()["value"]
    assert [m["id"] for m in by_category] == [message["id"]]
    by_property = client.get(
        f"{ADELE}/messages",
        params={
            "$filter": f"singleValueExtendedProperties/any(ep:ep/id eq '{prop}' "
            "and ep/value eq 'act-1')"
        },
    ).json()["value"]
    assert [m["id"] for m in by_property] == [message["id"]]
    expanded = client.get(
        f"{ADELE}/messages/{message['id']}",
        params={"$expand": f"singleValueExtendedProperties($filter=id eq '{prop}')"},
    ).json()
    assert expanded["singleValueExtendedProperties"] == [{"id": prop, "value": "act-1"}]
    bare = client.get(
        f"{ADELE}/messages/{other['id']}",
        params={"$expand": f"singleValueExtendedProperties($filter=id eq '{prop}')"},
    ).json()
    assert bare["singleValueExtendedProperties"] == []
    refused = client.get(
        f"{ADELE}/messages", params={"$filter": "toRecipients/any(r:r/emailAddress/address eq 'x')"}
    )
    assert refused.status_code == 400
