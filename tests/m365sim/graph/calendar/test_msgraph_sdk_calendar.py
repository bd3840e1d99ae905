"""Fidelity: Microsoft's own Graph SDK (msgraph-sdk), unmodified, against m365sim's calendar.

The SDK is configured only as its documentation allows: a ``GraphRequestAdapter`` whose
base URL is m365sim's and an ``AzureIdentityAuthenticationProvider`` over a real
azure-identity credential, which gets its tokens from m365sim's Entra ID:
``ClientSecretCredential`` (the demo service account, app-only) and
``AuthorizationCodeCredential`` (a user signed in through m365sim's sign-in pages, then the
code redeemed by azure-identity: delegated). HTTP trusts m365sim's CA through
``SSL_CERT_FILE``, which the sim_server fixture sets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from urllib.parse import urlencode

import pytest
from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import AuthorizationCodeCredential, ClientSecretCredential
from entra_client import CONTOSO, REDIRECT_URI, Browser
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.headers_collection import HeadersCollection
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph.generated.models.attendee import Attendee
from msgraph.generated.models.attendee_type import AttendeeType
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.event import Event
from msgraph.generated.models.event_type import EventType
from msgraph.generated.models.patterned_recurrence import PatternedRecurrence
from msgraph.generated.models.recurrence_pattern import RecurrencePattern
from msgraph.generated.models.recurrence_pattern_type import RecurrencePatternType
from msgraph.generated.models.recurrence_range import RecurrenceRange
from msgraph.generated.models.recurrence_range_type import RecurrenceRangeType
from msgraph.generated.users.item.calendar_view.calendar_view_request_builder import (
    CalendarViewRequestBuilder,
)
from msgraph.generated.users.item.calendar_view.delta.delta_request_builder import (
    DeltaRequestBuilder,
)
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from sim_tokens import GRAPH_DEFAULT, SERVICE_APP_ID, SERVICE_SECRET, USER_APP_ID, USER_SECRET

from m365sim.directory.models import Tenant
from m365sim.server import SimServer

ALEX = ("alex@contoso.com", "Demo-User-1!")


def sdk_client(sim: SimServer, credential: AsyncTokenCredential) -> GraphServiceClient:
    auth = AzureIdentityAuthenticationProvider(credential, scopes=GRAPH_DEFAULT)
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = sim.graph_url
    return GraphServiceClient(request_adapter=adapter)


def authority(sim: SimServer) -> str:
    """azure-identity takes the authority host without its scheme (it always uses https)."""
    return sim.url.removeprefix("https://")


@pytest.fixture
async def app_sdk(sim: SimServer, demo_tenant: Tenant) -> AsyncIterator[GraphServiceClient]:
    """App-only: the demo service account's client secret, through azure-identity."""
    credential = ClientSecretCredential(
        demo_tenant.id,
        SERVICE_APP_ID,
        SERVICE_SECRET,
        authority=authority(sim),
        disable_instance_discovery=True,
    )
    async with credential:
        yield sdk_client(sim, credential)


def sign_in(sim: SimServer, user: tuple[str, str]) -> str:
    """The user signs in to the "Connect your Office 365" app through m365sim's pages and
    consents; returns the authorization code the app's redirect URI receives."""
    query = urlencode(
        {
            "client_id": USER_APP_ID,
            "response_type": "code",
            "redirect_uri": REDIRECT_URI,
            "scope": " ".join([*GRAPH_DEFAULT, "openid", "profile", "offline_access"]),
            "state": "calendar-sdk",
        }
    )
    with Browser(sim) as browser:
        answer = browser.sign_in(f"{sim.authority(CONTOSO)}/oauth2/v2.0/authorize?{query}", *user)
    assert "code" in answer, answer
    return str(answer["code"])


@pytest.fixture
async def alex_sdk(sim: SimServer, demo_tenant: Tenant) -> AsyncIterator[GraphServiceClient]:
    """Delegated: Alex signs in, azure-identity redeems the code for his token."""
    credential = AuthorizationCodeCredential(
        demo_tenant.id,
        USER_APP_ID,
        sign_in(sim, ALEX),
        REDIRECT_URI,
        client_secret=USER_SECRET,
        authority=authority(sim),
    )
    async with credential:
        yield sdk_client(sim, credential)


@pytest.mark.asyncio
async def test_sdk_creates_reads_events_and_reads_calendar_view(
    app_sdk: GraphServiceClient,
) -> None:
    lee = app_sdk.users.by_user_id("lee@contoso.com")
    created = await lee.events.post(
        Event(
            subject="Renewal call",
            start=DateTimeTimeZone(
                date_time="2030-09-02T10:00:00", time_zone="Pacific Standard Time"
            ),
            end=DateTimeTimeZone(
                date_time="2030-09-02T10:30:00", time_zone="Pacific Standard Time"
            ),
            attendees=[
                Attendee(
                    email_address=EmailAddress(address="buyer@fabrikam.com", name="Buyer"),
                    type=AttendeeType.Required,
                )
            ],
            recurrence=PatternedRecurrence(
                pattern=RecurrencePattern(type=RecurrencePatternType.Daily, interval=1),
                range=RecurrenceRange(
                    type=RecurrenceRangeType.Numbered,
                    start_date=date(2030, 9, 2),
                    number_of_occurrences=3,
                ),
            ),
        )
    )
    assert created is not None and created.id
    assert created.type == EventType.SeriesMaster
    assert created.original_start_time_zone == "Pacific Standard Time"

    fetched = await lee.events.by_event_id(created.id).get()
    assert fetched is not None and fetched.subject == "Renewal call"
    assert fetched.attendees and fetched.attendees[0].email_address.address == "buyer@fabrikam.com"  # type: ignore[union-attr]

    pacific = HeadersCollection()
    pacific.add("Prefer", 'outlook.timezone="Pacific Standard Time"')
    view = await lee.calendar_view.get(
        RequestConfiguration(
            query_parameters=CalendarViewRequestBuilder.CalendarViewRequestBuilderGetQueryParameters(
                start_date_time="2030-09-01T00:00:00Z", end_date_time="2030-09-10T00:00:00Z"
            ),
            headers=pacific,
        )
    )
    assert view is not None and view.value is not None
    assert [(e.type, (e.start.date_time or "")[:16]) for e in view.value if e.start] == [
        (EventType.Occurrence, "2030-09-02T10:00"),
        (EventType.Occurrence, "2030-09-03T10:00"),
        (EventType.Occurrence, "2030-09-04T10:00"),
    ]
    # Graph: iCalUId "is different for each occurrence in a recurring series".
    occurrence_uids = {e.i_cal_u_id for e in view.value}
    assert len(occurrence_uids) == 3 and created.i_cal_u_id not in occurrence_uids

    delta = await lee.calendar_view.delta.get(
        RequestConfiguration(
            query_parameters=DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
                start_date_time="2030-09-01T00:00:00Z", end_date_time="2030-09-10T00:00:00Z"
            )
        )
    )
    assert delta is not None and delta.odata_delta_link
    assert len(delta.value or []) == 3


@pytest.mark.asyncio
async def test_sdk_reads_the_signed_in_users_calendar(alex_sdk: GraphServiceClient) -> None:
    client = alex_sdk
    calendar = await client.me.calendar.get()
    assert calendar is not None and calendar.is_default_calendar is True
    await client.me.events.post(
        Event(
            subject="Prep",
            start=DateTimeTimeZone(date_time="2030-09-05T09:00:00", time_zone="UTC"),
            end=DateTimeTimeZone(date_time="2030-09-05T09:30:00", time_zone="UTC"),
        )
    )
    events = await client.me.events.get()
    assert events is not None and [e.subject for e in events.value or []] == ["Prep"]
