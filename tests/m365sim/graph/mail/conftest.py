"""Fixtures for the mail tests: Graph clients holding tokens signed with the sim's key."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Iterator

import httpx
import jwt
import pytest

from m365sim.directory.models import Tenant
from m365sim.server import SimServer

SERVICE_APP = "11111111-2222-4333-8444-000000000001"
USER_APP = "11111111-2222-4333-8444-000000000003"

GraphFactory = Callable[..., httpx.Client]


def mint_token(
    sim: SimServer,
    tenant: Tenant,
    *,
    roles: list[str] | None = None,
    scopes: list[str] | None = None,
    user: str | None = None,
    app_id: str = SERVICE_APP,
) -> str:
    """An access token shaped as m365sim.graph.auth expects (app-only unless ``user``)."""
    now = int(sim.state.now().timestamp())
    claims: dict[str, object] = {
        "aud": "https://graph.microsoft.com",
        "iss": f"https://sts.windows.net/{tenant.id}/",
        "tid": tenant.id,
        "appid": app_id,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
    }
    if user is None:
        claims |= {"idtyp": "app", "oid": "sp-" + app_id, "roles": roles or []}
    else:
        found = tenant.find_user(user)
        assert found is not None
        claims |= {"idtyp": "user", "oid": found.id, "scp": " ".join(scopes or [])}
    return jwt.encode(
        claims, sim.state.signing_key, algorithm="RS256", headers={"kid": sim.state.signing_kid}
    )


@pytest.fixture
def graph(sim: SimServer, demo_tenant: Tenant) -> Iterator[GraphFactory]:
    """``graph(roles=[...])`` or ``graph(user="adele@contoso.com", scopes=[...])``: an httpx
    client on ``/v1.0`` carrying such a token. Defaults to the demo service account."""
    clients: list[httpx.Client] = []
    context = ssl.create_default_context(cafile=sim.tls.ca_pem)

    def make(**kwargs: object) -> httpx.Client:
        if "roles" not in kwargs and "user" not in kwargs:
            kwargs["roles"] = ["Mail.Read", "Mail.ReadWrite", "Mail.Send", "User.Read.All"]
        token = mint_token(sim, demo_tenant, **kwargs)  # type: ignore[arg-type]
        client = httpx.Client(
            base_url=sim.graph_url,
            headers={"Authorization": f"Bearer {token}"},
            verify=context,
            timeout=30,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def control(sim: SimServer) -> Iterator[httpx.Client]:
    """An httpx client on the sim origin, for ``/_sim`` calls."""
    with httpx.Client(
        base_url=sim.url, verify=ssl.create_default_context(cafile=sim.tls.ca_pem), timeout=60
    ) as client:
        yield client


def wait_until(predicate: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)
