"""Unmodified msgraph-sdk against m365sim: users, message paging, delta to a deltaLink and
back, and $batch. Configured only as its documentation allows: a token credential, a
request adapter whose base URL is the sim's, and an httpx client trusting the sim's CA."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import httpx
import pytest
from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphServiceClient
from msgraph.generated.models.message import Message
from msgraph.generated.users.item.mail_folders.item.messages.messages_request_builder import (
    MessagesRequestBuilder,
)
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph_core import GraphClientFactory
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem

from m365sim.directory.models import Tenant
from m365sim.server import SimServer
from support.demo import SERVICE_APP_ID, SERVICE_SECRET
from support.sim_tokens import sim_async_client


def graph_client(
    sim: SimServer, tenant: Tenant
) -> tuple[GraphServiceClient, ClientSecretCredential]:
    credential = ClientSecretCredential(
        tenant.id,
        SERVICE_APP_ID,
        SERVICE_SECRET,
        authority=sim.url.removeprefix("https://"),
        disable_instance_discovery=True,
    )
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=["https://graph.microsoft.com/.default"], allowed_hosts=["127.0.0.1"]
    )
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=ssl.create_default_context(cafile=sim.tls.ca_pem))
    )
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = sim.graph_url
    return GraphServiceClient(request_adapter=adapter), credential


@pytest.fixture
async def control(sim: SimServer) -> AsyncIterator[httpx.AsyncClient]:
    """The sim's control API, without blocking the event loop the SDK runs on."""
    async with sim_async_client(sim) as client:
        yield client


@pytest.fixture
async def sdk(sim: SimServer, demo_tenant: Tenant) -> AsyncIterator[GraphServiceClient]:
    client, credential = graph_client(sim, demo_tenant)
    yield client
    await credential.close()


async def test_lists_users(sdk: GraphServiceClient) -> None:
    users = await sdk.users.get()
    assert users is not None and users.value
    assert "adele@contoso.com" in {u.user_principal_name for u in users.value}


async def test_pages_through_messages(
    sim: SimServer, sdk: GraphServiceClient, control: httpx.AsyncClient
) -> None:
    await control.post("/_sim/mailboxes/adele@contoso.com/messages/generate", json={"count": 12})
    query = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
        top=5, select=["subject", "from", "receivedDateTime"]
    )
    builder = (
        sdk.users.by_user_id("adele@contoso.com").mail_folders.by_mail_folder_id("inbox").messages
    )
    page = await builder.get(RequestConfiguration(query_parameters=query))
    subjects: list[str] = []
    while page is not None:
        subjects += [m.subject or "" for m in page.value or []]
        if not page.odata_next_link:
            break
        page = await builder.with_url(page.odata_next_link).get()
    assert len(subjects) == 12 and all(subjects)


async def test_delta_to_delta_link_and_resume(
    sdk: GraphServiceClient, control: httpx.AsyncClient
) -> None:
    await control.patch("/_sim/config", json={"delta_replay": False})
    await control.post("/_sim/mailboxes/adele@contoso.com/messages/generate", json={"count": 15})
    delta = (
        sdk.users.by_user_id("adele@contoso.com")
        .mail_folders.by_mail_folder_id("inbox")
        .messages.delta
    )
    result = await delta.get()
    seen: set[str] = set()
    while result is not None and result.odata_next_link:
        seen |= {m.id for m in result.value or [] if m.id}
        result = await delta.with_url(result.odata_next_link).get()
    assert result is not None and result.odata_delta_link
    seen |= {m.id for m in result.value or [] if m.id}
    assert len(seen) == 15

    response = await control.post(
        "/_sim/mailboxes/adele@contoso.com/messages", json={"subject": "After the sync"}
    )
    arrived = response.json()
    again = await delta.with_url(result.odata_delta_link).get()
    assert again is not None and [m.id for m in again.value or []] == [arrived["id"]]
    assert again.value[0].subject == "After the sync"  # type: ignore[index]
    assert again.odata_delta_link


async def test_batch(sdk: GraphServiceClient) -> None:
    inbox = sdk.users.by_user_id("adele@contoso.com").mail_folders.by_mail_folder_id("inbox")
    first = BatchRequestItem(request_information=inbox.to_get_request_information(), id="inbox")
    second = BatchRequestItem(
        request_information=sdk.users.by_user_id("alex@contoso.com").to_get_request_information(),
        id="alex",
        depends_on=["inbox"],
    )
    content = BatchRequestContent({"inbox": first, "alex": second})
    response = await sdk.batch.post(batch_request_content=content)
    assert response.get_response_status_codes() == {"inbox": 200, "alex": 200}


async def test_batch_with_a_write_pairs_answers_by_id(sdk: GraphServiceClient) -> None:
    """The SDK sends ``Content-Type`` with a body (Graph refuses a batch without it) and
    pairs answers by id, which it must: m365sim, like Graph, lists them in any order."""
    adele = sdk.users.by_user_id("adele@contoso.com")
    draft = Message(subject="Drafted in a batch")
    items = {
        "draft": BatchRequestItem(
            request_information=adele.messages.to_post_request_information(draft), id="draft"
        ),
        **{
            f"get{n}": BatchRequestItem(
                request_information=adele.to_get_request_information(), id=f"get{n}"
            )
            for n in range(5)
        },
    }
    response = await sdk.batch.post(batch_request_content=BatchRequestContent(items))
    assert response.get_response_status_codes() == {"draft": 201} | {
        f"get{n}": 200 for n in range(5)
    }
    created = response.get_response_by_id("draft")
    assert created is not None and (created.content_type or "").startswith("application/json")
    drafts = await adele.mail_folders.by_mail_folder_id("drafts").messages.get()
    assert drafts is not None
    assert [m.subject for m in drafts.value or []] == ["Drafted in a batch"]


async def test_attachments_threads_and_reply_through_the_sdk(
    sdk: GraphServiceClient, control: httpx.AsyncClient
) -> None:
    """The SDK's own models parse attachments (file, with bytes), a message with
    ``$expand=attachments``, the raw MIME, and a reply threaded under its message."""
    from msgraph.generated.models.file_attachment import FileAttachment
    from msgraph.generated.users.item.messages.item.message_item_request_builder import (
        MessageItemRequestBuilder,
    )
    from msgraph.generated.users.item.messages.item.reply.reply_post_request_body import (
        ReplyPostRequestBody,
    )

    # Replying needs Mail.Send, which the demo's service account lacks: granted first (the
    # SDK's credential fetches its token with the first request).
    app = f"/_sim/tenants/contoso.com/apps/{SERVICE_APP_ID}"
    permissions = (await control.get(app)).json()["applicationPermissions"]
    await control.patch(app, json={"applicationPermissions": [*permissions, "Mail.Send"]})
    await control.post(f"{app}/consent", json={"permissions": ["Mail.Send"]})
    delivered = await control.post(
        "/_sim/mailboxes/adele@contoso.com/messages",
        json={
            "from": {"address": "lee@contoso.com", "name": "Lee"},
            "subject": "Slides",
            "attachments": [{"name": "deck.pptx", "contentType": "application/x-ppt", "size": 9}],
        },
    )
    message_id = delivered.json()["id"]
    item = sdk.users.by_user_id("adele@contoso.com").messages.by_message_id(message_id)
    listed = await item.attachments.get()
    assert listed is not None and listed.value
    [attachment] = listed.value
    assert isinstance(attachment, FileAttachment)
    assert (attachment.name, attachment.size, attachment.content_bytes) == (
        "deck.pptx",
        9,
        b"x" * 9,
    )
    query = MessageItemRequestBuilder.MessageItemRequestBuilderGetQueryParameters(
        expand=["attachments"]
    )
    message = await item.get(RequestConfiguration(query_parameters=query))
    assert message is not None and message.has_attachments is True
    assert [a.name for a in message.attachments or []] == ["deck.pptx"]
    mime = await item.content.get()
    assert mime is not None and b"deck.pptx" in mime
    await item.reply.post(ReplyPostRequestBody(comment="Thanks"))
    lee_inbox = await sdk.users.by_user_id("lee@contoso.com").messages.get()
    assert lee_inbox is not None
    [answer] = [m for m in lee_inbox.value or [] if m.subject == "RE: Slides"]
    assert answer.conversation_id  # Lee's copy; Adele's Sent Items copy shares hers
    sent = await (
        sdk.users.by_user_id("adele@contoso.com")
        .mail_folders.by_mail_folder_id("sentitems")
        .messages.get()
    )
    assert sent is not None and sent.value
    assert sent.value[0].conversation_id == message.conversation_id


async def test_rooms_and_mailbox_settings_through_the_sdk(
    sdk: GraphServiceClient, control: httpx.AsyncClient
) -> None:
    """``places/microsoft.graph.room`` and ``mailboxSettings`` PATCH with the SDK's models."""
    from datetime import time

    from msgraph.generated.models.day_of_week import DayOfWeek
    from msgraph.generated.models.mailbox_settings import MailboxSettings
    from msgraph.generated.models.room import Room
    from msgraph.generated.models.working_hours import WorkingHours

    app = f"/_sim/tenants/contoso.com/apps/{SERVICE_APP_ID}"
    wanted = ["Place.Read.All", "MailboxSettings.ReadWrite"]
    permissions = (await control.get(app)).json()["applicationPermissions"]
    await control.patch(app, json={"applicationPermissions": [*permissions, *wanted]})
    await control.post(f"{app}/consent", json={"permissions": wanted})
    await control.post(
        "/_sim/tenants/contoso.com/users",
        json={
            "userPrincipalName": "boardroom@contoso.com",
            "displayName": "Boardroom",
            "password": "unused-Passw0rd!",
            "userPurpose": "room",
            "capacity": 12,
        },
    )

    rooms = await sdk.places.graph_room.get()
    assert rooms is not None and rooms.value
    [room] = rooms.value
    assert isinstance(room, Room)
    assert (room.email_address, room.capacity) == ("boardroom@contoso.com", 12)

    settings = sdk.users.by_user_id("adele@contoso.com").mailbox_settings
    await settings.patch(
        MailboxSettings(
            working_hours=WorkingHours(
                days_of_week=[DayOfWeek.Monday, DayOfWeek.Friday],
                start_time=time(10, 0),
                end_time=time(16, 0),
            )
        )
    )
    read = await settings.get()
    assert read is not None and read.working_hours is not None
    assert read.working_hours.days_of_week == [DayOfWeek.Monday, DayOfWeek.Friday]
    assert (read.working_hours.start_time, read.working_hours.end_time) == (time(10), time(16))
