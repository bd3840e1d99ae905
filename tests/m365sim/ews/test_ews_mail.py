"""Mail over EWS with unmodified exchangelib: the same mailbox Graph serves, read folder by
folder and synced with SyncFolderItems."""

from __future__ import annotations

from collections import Counter

import httpx
from exchangelib import EWSDateTime, Q
from exchangelib.properties import ItemId

from m365sim.server import SimServer
from support.ews_clients import AccountFactory


def deliver(control: httpx.Client, address: str, **spec: object) -> dict[str, object]:
    response = control.post(f"/_sim/mailboxes/{address}/messages", json=spec)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def test_inbox_all_reads_what_graph_holds(ews: AccountFactory, control: httpx.Client) -> None:
    graph_view = deliver(
        control,
        "diego@contoso.com",
        **{
            "from": {"name": "Kim Buyer", "address": "kim@fabrikam.com"},
            "cc": ["adele@contoso.com"],
            "subject": "Quote for 40 seats",
            "body": "<p>Can you send it by <b>Friday</b>?</p>",
            "internetMessageId": "<quote-40@fabrikam.com>",
        },
    )
    account = ews("diego@contoso.com")
    messages = list(account.inbox.all())
    assert len(messages) == 43
    quote = next(m for m in messages if m.message_id == "<quote-40@fabrikam.com>")
    assert quote.id == graph_view["id"]  # Graph's default id is the EWS id
    assert quote.subject == "Quote for 40 seats"
    assert quote.sender.email_address == "kim@fabrikam.com"
    assert quote.author.name == "Kim Buyer"
    assert [r.email_address for r in quote.to_recipients] == ["diego@contoso.com"]
    assert [r.email_address for r in quote.cc_recipients] == ["adele@contoso.com"]
    assert quote.cc_recipients[0].mailbox_type == "Mailbox"
    assert quote.sender.mailbox_type == "OneOff"
    assert "<b>Friday</b>" in quote.body
    assert quote.item_class == "IPM.Note"
    assert quote.changekey
    assert quote.is_read is False


def test_paging_filtering_and_ordering(ews: AccountFactory) -> None:
    account = ews("diego@contoso.com")
    inbox = account.inbox
    newest_first = list(
        inbox.all().order_by("-datetime_received").only("subject", "datetime_received")
    )
    assert [m.datetime_received for m in newest_first] == sorted(
        (m.datetime_received for m in newest_first), reverse=True
    )
    page = list(inbox.all().order_by("-datetime_received")[5:15])
    assert [m.id for m in page] == [m.id for m in newest_first[5:15]]
    unread = inbox.filter(is_read=False).count()
    assert unread == sum(1 for m in inbox.all().only("is_read") if not m.is_read)
    assert inbox.filter(subject__icontains="northwind pilot").count() == 1
    since = newest_first[9].datetime_received
    assert inbox.filter(datetime_received__gte=since).count() == 10
    assert inbox.filter(Q(is_read=True) | Q(subject="Fabrikam renewal - next steps")).count() >= 1


def test_sync_items_pages_then_sees_new_mail_reads_and_deletions(
    ews: AccountFactory, control: httpx.Client, onprem: SimServer
) -> None:
    account = ews("diego@contoso.com", as_service=True)
    inbox = account.inbox
    control.delete("/_sim/requests")
    first = list(inbox.sync_items(max_changes_returned=10, only_fields=["subject", "message_id"]))
    assert Counter(kind for kind, _ in first) == {"create": 42}
    assert len({item.id for _, item in first}) == 42
    posts = control.get("/_sim/requests", params={"path_contains": "/EWS/"}).json()["value"]
    assert sum(1 for r in posts if r["status"] == 200) == 5  # 42 changes, 10 per page
    state = inbox.item_sync_state

    new = deliver(
        control, "diego@contoso.com", **{"from": "ana@fabrikam.com", "subject": "New lead"}
    )
    read_target, deleted_target, edited_target = first[0][1], first[1][1], first[2][1]
    control.patch(
        f"/_sim/mailboxes/diego@contoso.com/messages/{read_target.id}", json={"isRead": True}
    )
    control.delete(f"/_sim/mailboxes/diego@contoso.com/messages/{deleted_target.id}")
    control.patch(
        f"/_sim/mailboxes/diego@contoso.com/messages/{edited_target.id}",
        json={"categories": ["CRM"]},
    )
    second = list(inbox.sync_items(sync_state=state))
    kinds = {kind: item for kind, item in second}
    assert set(kinds) == {"create", "read_flag_change", "delete", "update"}
    assert kinds["create"].id == new["id"]
    assert kinds["create"].subject == "New lead"
    flag_id, is_read = kinds["read_flag_change"]
    assert isinstance(flag_id, ItemId) and flag_id.id == read_target.id and is_read is True
    assert kinds["delete"].id == deleted_target.id
    assert kinds["update"].categories == ["CRM"]
    assert list(inbox.sync_items(sync_state=inbox.item_sync_state)) == []


def test_a_resent_sync_state_replays_its_page(ews: AccountFactory) -> None:
    """A client that crashes before committing a page re-sends the state it had: the same
    changes come again, nothing is skipped."""
    inbox = ews("diego@contoso.com").inbox
    from exchangelib.services import SyncFolderItems

    service = SyncFolderItems(account=inbox.account)

    def page(state: str | None) -> tuple[list[str], str]:
        ids = [
            item.id
            for _, item in service.call(
                folder=inbox,
                shape="IdOnly",
                additional_fields=None,
                sync_state=state,
                ignore=None,
                max_changes_returned=20,
                sync_scope=None,
            )
        ]
        return ids, service.sync_state

    first, after_first = page(None)
    second, _ = page(after_first)
    again, _ = page(after_first)
    assert second == again
    assert not set(first) & set(second)
    assert service.includes_last_item_in_range is False


def test_a_garbled_sync_state_is_invalid_sync_state_data(ews: AccountFactory) -> None:
    from exchangelib.errors import ErrorInvalidSyncStateData

    inbox = ews("diego@contoso.com").inbox
    try:
        list(
            inbox.sync_items(
                sync_state="H4sIAAAAAAAEAO29B2AcSZYlJi9tynt/SvVK1+B0oQiAYBMk2JBAEOzBiM3mkuwdaUcjKasqgcplVmVdZhZAzO2dvPfee++99"
            )
        )
    except ErrorInvalidSyncStateData:
        return
    raise AssertionError("a foreign sync state was accepted")


def test_marking_read_over_ews_is_seen_by_graph(ews: AccountFactory, control: httpx.Client) -> None:
    account = ews("diego@contoso.com")
    message = account.inbox.filter(subject="Fabrikam renewal - next steps").get()
    message.is_read = True
    message.categories = ["Follow up"]
    message.save(update_fields=["is_read", "categories"])
    listing = control.get(
        "/_sim/mailboxes/diego@contoso.com/messages", params={"folder": "inbox"}
    ).json()["value"]
    seen = next(m for m in listing if m["id"] == message.id)
    assert seen["isRead"] is True
    assert seen["categories"] == ["Follow up"]


def test_deleting_moves_to_deleted_items(ews: AccountFactory) -> None:
    account = ews("diego@contoso.com")
    message = account.inbox.filter(subject="Northwind pilot feedback").get()
    message.move_to_trash()
    assert account.inbox.all().count() == 41
    trashed = list(account.trash.all().only("subject", "message_id"))
    assert [m.subject for m in trashed] == ["Northwind pilot feedback"]


def test_convert_id_round_trips(ews: AccountFactory) -> None:
    from exchangelib.properties import AlternateId

    account = ews("diego@contoso.com")
    message = next(iter(account.inbox.all().only("subject")))
    hex_ids = list(
        account.protocol.convert_ids(
            [AlternateId(id=message.id, format="EwsId", mailbox="diego@contoso.com")],
            destination_format="HexEntryId",
        )
    )
    assert hex_ids[0].format == "HexEntryId"
    back = list(
        account.protocol.convert_ids(
            [AlternateId(id=hex_ids[0].id, format="HexEntryId", mailbox="diego@contoso.com")],
            destination_format="EwsId",
        )
    )
    assert back[0].id == message.id


def test_received_times_are_utc(ews: AccountFactory) -> None:
    account = ews("diego@contoso.com")
    message = next(iter(account.inbox.all().only("datetime_received")))
    assert isinstance(message.datetime_received, EWSDateTime)
    assert message.datetime_received.utcoffset().total_seconds() == 0


def test_an_item_deleted_elsewhere_is_item_not_found(
    ews: AccountFactory, control: httpx.Client
) -> None:
    from exchangelib.errors import ErrorItemNotFound

    account = ews("diego@contoso.com")
    message = account.inbox.filter(subject="Northwind pilot feedback").get()
    control.delete(f"/_sim/mailboxes/diego@contoso.com/messages/{message.id}")
    (result,) = account.fetch(ids=[(message.id, message.changekey)])
    assert isinstance(result, ErrorItemNotFound)
    assert "not found" in str(result)
