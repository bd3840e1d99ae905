"""Graph clients for To Do tests: tokens minted with the simulator's signing key."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Generator, Iterator

import httpx
import jwt
import pytest

from m365sim.directory.models import Tenant
from m365sim.server import SimServer

SERVICE_APP = "11111111-2222-4333-8444-000000000001"
USER_APP = "11111111-2222-4333-8444-000000000003"


def mint_token(
    sim: SimServer, tenant: Tenant, user: str | None, scopes: str, roles: list[str]
) -> str:
    now = int(sim.state.now().timestamp())
    claims: dict[str, object] = {
        "aud": "https://graph.microsoft.com",
        "iss": f"https://sts.windows.net/{tenant.id}/",
        "tid": tenant.id,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
    }
    if user is None:
        claims |= {
            "appid": SERVICE_APP,
            "oid": tenant.service_principals[SERVICE_APP].id,
            "idtyp": "app",
            "roles": roles,
        }
    else:
        found = tenant.find_user(user)
        assert found is not None
        claims |= {"appid": USER_APP, "oid": found.id, "idtyp": "user", "scp": scopes}
    return jwt.encode(
        claims, sim.state.signing_key, algorithm="RS256", headers={"kid": sim.state.signing_kid}
    )


class FreshToken(httpx.Auth):
    def __init__(self, make: Callable[[], str]) -> None:
        self.make = make

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.make()}"
        yield request


@pytest.fixture
def graph(sim: SimServer, demo_tenant: Tenant) -> Iterator[Callable[..., httpx.Client]]:
    """``graph("lee@contoso.com")`` → delegated (Tasks.ReadWrite); ``graph()`` → app-only."""
    clients: list[httpx.Client] = []
    context = ssl.create_default_context(cafile=str(sim.tls.ca_pem))

    def make(
        user: str | None = None,
        scopes: str = "User.Read Tasks.ReadWrite",
        roles: tuple[str, ...] = ("Calendars.ReadWrite", "Mail.ReadWrite", "Tasks.ReadWrite.All"),
    ) -> httpx.Client:
        client = httpx.Client(
            base_url=sim.graph_url,
            verify=context,
            auth=FreshToken(lambda: mint_token(sim, demo_tenant, user, scopes, list(roles))),
            timeout=10,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def control(sim: SimServer) -> Iterator[httpx.Client]:
    context = ssl.create_default_context(cafile=str(sim.tls.ca_pem))
    with httpx.Client(base_url=sim.url, verify=context, timeout=10) as client:
        yield client
