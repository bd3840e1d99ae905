"""Graph access tokens minted directly with the simulator's signing key, and test polling.

``mint_app_token`` / ``mint_user_token`` produce tokens in the shape m365sim's identity
endpoints issue (see ``m365sim.graph.auth``), so Graph tests don't depend on the token
endpoints. Prefer real MSAL flows where the token itself is under test. Import from here
(``from sim_tokens import mint_app_token``): importing from ``conftest`` is ambiguous when
several conftest files exist.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

import jwt

from m365sim.directory.models import Tenant, User
from m365sim.server import SimServer
from m365sim.state import SimState

GRAPH_AUDIENCE = "https://graph.microsoft.com"
SERVICE_APP_ID = "11111111-2222-4333-8444-000000000001"  # demo seed: consented service account
USER_APP_ID = "11111111-2222-4333-8444-000000000003"  # demo seed: "Connect your Office 365"


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


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wait_for(predicate: Any, timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
