"""Talking to m365sim as its clients do: Graph tokens minted with the simulator's signing key,
HTTP clients that trust the simulator's CA, and calls to its control API.

``mint_app_token`` / ``mint_user_token`` produce tokens in the shape m365sim's identity
endpoints issue (see ``m365sim.graph.auth``), so Graph tests don't depend on the token
endpoints. Prefer real MSAL flows where the token itself is under test. The demo tenant's
apps are in ``support.demo``; the fixtures built on these (``http``, ``control``, ``graph``)
are in ``tests/m365sim/conftest.py``.
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Callable, Generator, Iterable
from typing import Any

import httpx
import jwt

from m365sim.directory.models import Tenant, User
from m365sim.server import SimServer
from m365sim.state import SimState
from support.demo import SERVICE_APP_ID, USER_APP_ID

GRAPH_AUDIENCE = "https://graph.microsoft.com"
GRAPH_DEFAULT = [f"{GRAPH_AUDIENCE}/.default"]

GraphFactory = Callable[..., httpx.Client]
"""The ``graph`` fixture: ``graph(user=None, *, roles=(), scopes=(), app_id=None)``."""


def _state(sim: SimServer | SimState) -> SimState:
    return sim.state if isinstance(sim, SimServer) else sim


def _tenant(state: SimState, tenant: Tenant | str) -> Tenant:
    if isinstance(tenant, Tenant):
        return tenant
    found = state.find_tenant(tenant)
    assert found is not None, f"no tenant {tenant!r}"
    return found


def _sign(state: SimState, claims: dict[str, Any]) -> str:
    return jwt.encode(
        claims, state.signing_key, algorithm="RS256", headers={"kid": state.signing_kid}
    )


def _base_claims(state: SimState, tenant: Tenant, app_id: str, lifetime: int) -> dict[str, Any]:
    now = int(state.now().timestamp())
    return {
        "aud": GRAPH_AUDIENCE,
        "iss": f"https://sts.windows.net/{tenant.id}/",
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
        "tid": tenant.id,
        "appid": app_id,
        "ver": "1.0",
        "uti": uuid.uuid4().hex[:22],
    }


def mint_app_token(
    sim: SimServer | SimState,
    tenant: Tenant | str,
    app_id: str,
    roles: Iterable[str],
    *,
    lifetime: int = 3599,
    **overrides: Any,
) -> str:
    """An app-only Graph token (``idtyp`` app, ``roles``); ``overrides`` replace claims."""
    state = _state(sim)
    found = _tenant(state, tenant)
    principal = found.service_principals.get(app_id)
    claims = _base_claims(state, found, app_id, lifetime) | {
        "idtyp": "app",
        "oid": principal.id if principal else str(uuid.uuid4()),
        "sub": principal.id if principal else str(uuid.uuid4()),
    }
    role_list = sorted(roles)
    if role_list:
        claims["roles"] = role_list
    return _sign(state, claims | overrides)


def mint_user_token(
    sim: SimServer | SimState,
    tenant: Tenant | str,
    user: User | str,
    scopes: Iterable[str],
    *,
    app_id: str = USER_APP_ID,
    lifetime: int = 3599,
    **overrides: Any,
) -> str:
    """A delegated Graph token for ``user`` (``idtyp`` user, ``scp``); ``overrides`` replace
    claims."""
    state = _state(sim)
    found = _tenant(state, tenant)
    person = user if isinstance(user, User) else found.find_user(user)
    assert person is not None, f"no user {user!r}"
    claims = _base_claims(state, found, app_id, lifetime) | {
        "idtyp": "user",
        "oid": person.id,
        "sub": uuid.uuid5(uuid.NAMESPACE_URL, person.id + app_id).hex,
        "upn": person.user_principal_name,
        "unique_name": person.user_principal_name,
        "name": person.display_name,
        "scp": " ".join(sorted(scopes)),
    }
    return _sign(state, claims | overrides)


def mint_token(
    sim: SimServer | SimState,
    tenant: Tenant | str,
    user: str | None,
    *,
    roles: Iterable[str] = (),
    scopes: Iterable[str] = (),
    app_id: str | None = None,
) -> str:
    """App-only (``user`` None: ``roles``, the service account by default) or delegated
    (``scopes``, the user-connections app by default)."""
    if user is None:
        return mint_app_token(sim, tenant, app_id or SERVICE_APP_ID, roles)
    return mint_user_token(sim, tenant, user, scopes, app_id=app_id or USER_APP_ID)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class FreshToken(httpx.Auth):
    """A new token for every request, so moving the simulator's clock never leaves a client
    holding an expired one."""

    def __init__(self, make: Callable[[], str]) -> None:
        self.make = make

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.make()}"
        yield request


def sim_client(
    sim: SimServer,
    *,
    base_url: str | None = None,
    auth: httpx.Auth | None = None,
    timeout: float = 60,
    **options: Any,
) -> httpx.Client:
    """An httpx client on the simulator's origin (or ``base_url``) that trusts its CA and
    ignores proxy and CA settings from the environment."""
    return httpx.Client(
        base_url=base_url or sim.url,
        verify=ssl.create_default_context(cafile=str(sim.tls.ca_pem)),
        trust_env=False,
        auth=auth,
        timeout=timeout,
        **options,
    )


def sim_async_client(sim: SimServer, *, timeout: float = 60) -> httpx.AsyncClient:
    """``sim_client``'s asynchronous twin, for tests that must not block an event loop."""
    return httpx.AsyncClient(
        base_url=sim.url,
        verify=ssl.create_default_context(cafile=str(sim.tls.ca_pem)),
        trust_env=False,
        timeout=timeout,
    )


def sim_control(sim: SimServer, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One call to m365sim's control API (``/_sim/...``), the way a test changes the world (a
    tenant admin's policy, a fault, new mail); fails the test if m365sim refuses it."""
    with sim_client(sim) as client:
        response = client.request(method, path, **kwargs)
    assert response.status_code < 400, response.text
    return response
