"""Fidelity: Microsoft's own Graph SDK (msgraph-sdk), unmodified, against m365sim's calendar.

The SDK is configured only as its documentation allows: a ``GraphRequestAdapter`` whose
base URL is m365sim's and an ``AzureIdentityAuthenticationProvider`` with a token
credential; its HTTP client trusts m365sim's CA through ``SSL_CERT_FILE``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.credentials import AccessToken
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
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

from m365sim.server import SimServer


class SimulatorCredential:
    """A ``TokenCredential`` handing out tokens signed by the simulator's key."""

    def __init__(self, make: Callable[[], str]) -> None:
        self.make = make

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        expires = int((datetime.now(UTC) + timedelta(hours=1)).timestamp())
        return AccessToken(self.make(), expires)


def sdk_client(sim: SimServer, token: Callable[[], str]) -> GraphServiceClient:
    auth = AzureIdentityAuthenticationProvider(SimulatorCredential(token))  # type: ignore[arg-type]
    # The adapter's own client (with Graph's default middleware) trusts m365sim's CA through
    # SSL_CERT_FILE, which the sim_server fixture sets.
    adapter = GraphRequestAdapter(auth)
    adapter.base_url = sim.graph_url
    return GraphServiceClient(request_adapter=adapter)


@pytest.mark.asyncio
async def test_sdk_creates_reads_events_and_reads_calendar_view(sim: SimServer, token_for) -> None:
    client = sdk_client(sim, lambda: token_for(None))
    lee = client.users.by_user_id("lee@contoso.com")
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
                    start_date=datetime(2030, 9, 2).date(),
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

    view = await lee.calendar_view.get(
        RequestConfiguration(
            query_parameters=CalendarViewRequestBuilder.CalendarViewRequestBuilderGetQueryParameters(
                start_date_time="2030-09-01T00:00:00Z", end_date_time="2030-09-10T00:00:00Z"
            ),
            headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'},
        )
    )
    assert view is not None and view.value is not None
    assert [(e.type, e.start.date_time[:16]) for e in view.value] == [  # type: ignore[union-attr]
        (EventType.Occurrence, "2030-09-02T10:00"),
        (EventType.Occurrence, "2030-09-03T10:00"),
        (EventType.Occurrence, "2030-09-04T10:00"),
    ]

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
async def test_sdk_reads_the_signed_in_users_calendar(sim: SimServer, token_for) -> None:
    client = sdk_client(sim, lambda: token_for("alex@contoso.com"))
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
