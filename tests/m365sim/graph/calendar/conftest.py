"""Graph clients for calendar tests: tokens minted with the simulator's signing key.

Tokens carry the claims ``m365sim.graph.auth`` documents; each request gets a fresh one
(so moving the simulator's clock never leaves a test holding an expired token).
"""

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
DELEGATED = ("User.Read", "Calendars.ReadWrite", "Tasks.ReadWrite", "Mail.ReadWrite")
APP_ROLES = ("Calendars.ReadWrite", "Calendars.Read", "Mail.Read", "User.Read.All")


def mint_token(
    sim: SimServer,
    tenant: Tenant,
    *,
    user: str | None = None,
    scopes: tuple[str, ...] = DELEGATED,
    roles: tuple[str, ...] = APP_ROLES,
    app_id: str | None = None,
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
        app = app_id or SERVICE_APP
        claims |= {
            "appid": app,
            "oid": tenant.service_principals[app].id,
            "idtyp": "app",
            "roles": list(roles),
        }
    else:
        found = tenant.find_user(user)
        assert found is not None, user
        claims |= {
            "appid": app_id or USER_APP,
            "oid": found.id,
            "idtyp": "user",
            "scp": " ".join(scopes),
            "upn": found.user_principal_name,
        }
    return jwt.encode(
        claims, sim.state.signing_key, algorithm="RS256", headers={"kid": sim.state.signing_kid}
    )


class FreshToken(httpx.Auth):
    def __init__(self, make: Callable[[], str]) -> None:
        self.make = make

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.make()}"
        yield request


GraphFactory = Callable[..., httpx.Client]


@pytest.fixture
def graph(sim: SimServer, demo_tenant: Tenant) -> Iterator[GraphFactory]:
    """``graph(user="lee@contoso.com")`` → delegated client; ``graph()`` → app-only."""
    clients: list[httpx.Client] = []
    context = ssl.create_default_context(cafile=str(sim.tls.ca_pem))

    def make(user: str | None = None, **claims: object) -> httpx.Client:
        client = httpx.Client(
            base_url=sim.graph_url,
            verify=context,
            auth=FreshToken(lambda: mint_token(sim, demo_tenant, user=user, **claims)),  # type: ignore[arg-type]
            timeout=10,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def token_for(sim: SimServer, demo_tenant: Tenant) -> Callable[[str | None], str]:
    """``token_for("lee@contoso.com")`` (delegated) or ``token_for(None)`` (app-only)."""
    return lambda user: mint_token(sim, demo_tenant, user=user)


@pytest.fixture
def control(sim: SimServer) -> Iterator[httpx.Client]:
    context = ssl.create_default_context(cafile=str(sim.tls.ca_pem))
    with httpx.Client(base_url=sim.url, verify=context, timeout=10) as client:
        yield client
