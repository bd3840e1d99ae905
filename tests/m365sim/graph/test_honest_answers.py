"""Headers and errors as Graph sends them, and an honest answer for what m365sim lacks:
Graph's JSON error shape saying m365sim does not model it, never "not found" or "does not
exist on type", which would be false about Microsoft Graph."""

from __future__ import annotations

import ssl

import httpx
import pytest
from kiota_abstractions.authentication import BaseBearerTokenAuthenticationProvider
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.item.messages.messages_request_builder import (
    MessagesRequestBuilder,
)
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph_core import GraphClientFactory

from m365sim.directory.models import Tenant
from m365sim.server import SimServer
from support.sim_tokens import GraphFactory, mint_app_token

ROLES = ("Mail.ReadWrite", "Calendars.ReadWrite", "User.Read.All")
ADELE = "/users/adele@contoso.com"


@pytest.fixture
def client(graph: GraphFactory) -> httpx.Client:
    return graph(roles=ROLES)


def test_client_request_id_is_echoed_and_request_id_is_the_servers(
    client: httpx.Client,
) -> None:
    mine = "6f0e2f4a-0000-4000-8000-00000000c1d1"
    sent = client.get(f"{ADELE}/messages", headers={"client-request-id": mine})
    assert sent.headers["client-request-id"] == mine
    assert sent.headers["request-id"] != mine
    failed = client.get("/users/nobody@contoso.com/messages", headers={"client-request-id": mine})
    inner = failed.json()["error"]["innerError"]
    assert inner["client-request-id"] == mine
    assert inner["request-id"] == failed.headers["request-id"] != mine
    unsent = client.get(f"{ADELE}/messages")
    assert unsent.headers["client-request-id"] == unsent.headers["request-id"]


def test_unknown_routes_answer_a_graph_error_saying_m365sim_does_not_model_them(
    client: httpx.Client,
) -> None:
    response = client.get(f"{ADELE}/onenote/notebooks")
    assert response.status_code == 501
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == "NotImplemented"
    assert error["message"].startswith(
        "m365sim does not model GET /v1.0/users/adele@contoso.com/onenote/notebooks"
    )
    assert error["innerError"]["request-id"] == response.headers["request-id"]
    wrong_method = client.delete("/users")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == wrong_method.json()["error"] | {
        "code": "Request_BadRequest",
        "message": "Specified HTTP method is not allowed for the request target.",
    }


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"$select": "subject,uniqueBody"}, "uniqueBody"),
        ({"$select": "mentions"}, "mentions"),
        (
            {"$expand": "multiValueExtendedProperties($filter=id eq 'x')"},
            "multiValueExtendedProperties",
        ),
    ],
)
def test_unmodelled_message_properties_say_so(
    client: httpx.Client, control: httpx.Client, params: dict[str, str], name: str
) -> None:
    message = control.post(
        "/_sim/mailboxes/adele@contoso.com/messages", json={"subject": "Hi"}
    ).json()
    for url in (f"{ADELE}/messages", f"{ADELE}/messages/{message['id']}"):
        response = client.get(url, params=params)
        assert response.status_code == 501, url
        error = response.json()["error"]
        assert error["code"] == "NotImplemented"
        assert (
            f"m365sim does not model the '{name}' property of microsoft.graph.message"
            in (error["message"])
        )
        assert "does not exist" not in error["message"]


def test_writing_unmodelled_properties_says_so(client: httpx.Client, control: httpx.Client) -> None:
    message = control.post(
        "/_sim/mailboxes/adele@contoso.com/messages", json={"subject": "Hi"}
    ).json()
    tagged = client.patch(
        f"{ADELE}/messages/{message['id']}",
        json={"multiValueExtendedProperties": [{"id": "StringArray {x} Name y", "value": ["z"]}]},
    )
    assert tagged.status_code == 501
    assert "'multiValueExtendedProperties'" in tagged.json()["error"]["message"]
    draft = client.post(f"{ADELE}/messages", json={"subject": "Mentions", "mentions": []})
    assert draft.status_code == 501 and "'mentions'" in draft.json()["error"]["message"]
    event = client.post(
        f"{ADELE}/events",
        json={
            "subject": "Review",
            "start": {"dateTime": "2030-01-01T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2030-01-01T10:00:00", "timeZone": "UTC"},
            "attachments": [],
        },
    )
    assert event.status_code == 501 and "microsoft.graph.event" in event.json()["error"]["message"]


async def test_the_graph_sdk_surfaces_the_honest_error(sim: SimServer, demo_tenant: Tenant) -> None:
    """msgraph-sdk, unmodified, raises its ``ODataError`` with Graph's code and our words."""

    class StaticToken:
        async def get_authorization_token(self, uri: str, additional_authentication_context=None):
            return mint_app_token(sim, demo_tenant, "11111111-2222-4333-8444-000000000001", ROLES)

        def get_allowed_hosts_validator(self):  # pragma: no cover - not called
            raise NotImplementedError

    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=ssl.create_default_context(cafile=sim.tls.ca_pem))
    )
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(StaticToken()), http)
    adapter.base_url = sim.graph_url
    sdk = GraphServiceClient(request_adapter=adapter)
    query = MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
        select=["subject", "uniqueBody"]
    )
    with pytest.raises(ODataError) as raised:
        await sdk.users.by_user_id("adele@contoso.com").messages.get(
            RequestConfiguration(query_parameters=query)
        )
    assert raised.value.response_status_code == 501
    assert raised.value.error is not None and raised.value.error.code == "NotImplemented"
    assert "m365sim does not model" in (raised.value.error.message or "")
