"""Entra ID unwell is not Entra ID saying no: discovery and token requests answered with
429, 5xx or an unreadable body are retried, then reported as Microsoft being unavailable,
never as an unknown tenant or bad credentials. Real MSAL and httpx against m365sim."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from typing import Any

import httpx
import jwt
import pytest

from m365sim.server import SimServer
from m365sync.microsoft import errors as ms
from m365sync.microsoft.auth import (
    DISCOVERY_LIFETIME_SECONDS,
    AppOnlyAuth,
    ClientSecret,
    EntraSession,
    discover_tenant,
    read_claims,
)
from m365sync.settings import Settings
from support.demo import DEMO_TENANT_ID, SERVICE_APP_ID, SERVICE_SECRET

DISCOVERY = "openid-configuration"
TOKEN = "/oauth2/v2.0/token"


def _control(sim: SimServer) -> httpx.Client:
    trust = ssl.create_default_context(cafile=str(sim.tls.ca_bundle))
    return httpx.Client(base_url=sim.url, verify=trust)


def inject(sim: SimServer, **rule: Any) -> None:
    """A fault rule; 429s ask to wait one second (503s ask nothing: a plain server error)."""
    if rule["kind"] == "429":
        rule.setdefault("retryAfter", 1)
    with _control(sim) as control:
        control.post("/_sim/faults", json=rule).raise_for_status()


def injected(sim: SimServer) -> int:
    with _control(sim) as control:
        return int(control.get("/_sim/faults").json()["injectedCount"])


def app_only(
    settings: Settings,
    tenant_id: str = DEMO_TENANT_ID,
    *,
    cache_blob: str | None = None,
    stored: list[str] | None = None,
) -> AppOnlyAuth:
    return AppOnlyAuth(
        settings,
        client_id=SERVICE_APP_ID,
        tenant_id=tenant_id,
        credential=ClientSecret(SERVICE_SECRET),
        cache_blob=cache_blob,
        on_cache_change=stored.append if stored is not None else None,
    )


def entra_requests(sim: SimServer) -> list[str]:
    """The paths of the Entra ID requests m365sim saw since the last call."""
    with _control(sim) as control:
        log = control.get("/_sim/requests").json()["value"]
        control.delete("/_sim/requests").raise_for_status()
    return [r["path"] for r in log if not r["path"].startswith(("/v1.0", "/_sim"))]


def test_the_stored_cache_serves_token_and_discovery_for_a_day(
    sim: SimServer, settings: Settings
) -> None:
    stored: list[str] = []
    app_only(settings, stored=stored).acquire()
    assert stored, "the new token and discovery answer were handed over to be stored"
    entra_requests(sim)

    # A new process, the stored cache: Entra ID is not asked.
    app_only(settings, cache_blob=stored[-1]).acquire()
    assert entra_requests(sim) == []

    # The same cache a day later: the discovery answer is asked again, the token is kept.
    state = json.loads(stored[-1])
    for entry in state["discovery"].values():
        entry["fetched_at"] -= DISCOVERY_LIFETIME_SECONDS + 60
    app_only(settings, cache_blob=json.dumps(state)).acquire()
    a_day_later = entra_requests(sim)
    assert [p for p in a_day_later if p.endswith(DISCOVERY)]
    assert not [p for p in a_day_later if p.endswith(TOKEN)]


def test_a_token_cache_stored_before_discovery_was_cached_still_serves_its_token(
    sim: SimServer, settings: Settings
) -> None:
    stored: list[str] = []
    app_only(settings, stored=stored).acquire()
    msal_alone = json.loads(stored[-1])["msal"]  # as m365sync stored it before
    entra_requests(sim)

    app_only(settings, cache_blob=msal_alone).acquire()

    assert not [p for p in entra_requests(sim) if p.endswith(TOKEN)]


class _CountedTrust(ssl.SSLContext):
    """An SSL context that counts the CA bundles loaded into it."""

    loads = 0

    def load_verify_locations(self, *args: Any, **kwargs: Any) -> None:
        self.loads += 1
        super().load_verify_locations(*args, **kwargs)


def test_a_new_connection_to_entra_id_does_not_load_the_ca_bundle_again(
    sim: SimServer, settings: Settings
) -> None:
    """MSAL's connections trust what Graph's client trusts, loaded once per process: the
    ``ca_bundle`` is not read again for each new connection (about 25 ms each)."""
    trust = _CountedTrust(ssl.PROTOCOL_TLS_CLIENT)
    trust.load_verify_locations(cafile=str(settings.ca_bundle))
    settings.__dict__["ssl_context"] = trust  # what ``Settings.ssl_context`` built once
    session = EntraSession(settings)
    url = f"{sim.url}/{DEMO_TENANT_ID}/v2.0/.well-known/{DISCOVERY}"

    for _ in range(2):
        assert session.request("GET", url).status_code == 200
        session.close()  # the next request opens a new connection

    assert trust.loads == 1


@pytest.mark.parametrize("path", [DISCOVERY, TOKEN])
@pytest.mark.parametrize("kind", ["500", "503", "429", "garbled", "drop"])
def test_a_failure_within_the_retries_goes_unnoticed(
    sim: SimServer, settings: Settings, path: str, kind: str
) -> None:
    inject(sim, kind=kind, pathRegex=path, count=settings.graph_max_retries)

    token = app_only(settings).acquire()

    assert "Mail.ReadWrite" in token.roles
    assert injected(sim) == settings.graph_max_retries


@pytest.mark.parametrize("path", [DISCOVERY, TOKEN])
@pytest.mark.parametrize(
    ("kind", "category"),
    [("503", ms.Transient), ("429", ms.Throttled), ("garbled", ms.Transient)],
)
def test_a_lasting_failure_is_microsoft_unavailable_not_a_credential_problem(
    sim: SimServer, settings: Settings, path: str, kind: str, category: type[ms.MicrosoftError]
) -> None:
    attempts = settings.graph_max_retries + 1
    inject(sim, kind=kind, pathRegex=path, count=attempts)
    auth = app_only(settings)

    with pytest.raises(ms.MicrosoftError) as raised:
        auth.acquire()

    error = raised.value
    assert type(error) is category and error.retryable and not error.reconnect
    assert error.message.startswith("Microsoft unavailable, retrying")
    assert "retries by itself" in (error.fix or "")
    assert injected(sim) == attempts  # every retry reached Microsoft
    # Microsoft is back: the same connection signs in (nothing was cached as broken).
    assert auth.acquire().token


def test_a_retry_after_longer_than_the_longest_wait_is_not_slept_through(
    sim: SimServer, settings: Settings
) -> None:
    inject(sim, kind="429", pathRegex=DISCOVERY, count=1, retryAfter=600)

    with pytest.raises(ms.Throttled) as raised:
        app_only(settings).acquire()

    assert raised.value.retry_after == 600
    assert injected(sim) == 1


def test_an_unknown_tenant_is_still_an_unknown_tenant(sim: SimServer, settings: Settings) -> None:
    with pytest.raises(ms.TenantNotFound) as raised:
        app_only(settings, tenant_id="0badc0de-0000-4000-8000-000000000000").acquire()
    assert raised.value.code == "AADSTS90002"


@pytest.mark.parametrize(("kind", "category"), [("429", ms.Throttled), ("garbled", ms.Transient)])
def test_domain_discovery_when_entra_is_unwell(
    sim: SimServer, settings: Settings, kind: str, category: type[ms.MicrosoftError]
) -> None:
    inject(sim, kind=kind, pathRegex=DISCOVERY, count=settings.graph_max_retries + 1)

    with pytest.raises(ms.MicrosoftError) as raised:
        asyncio.run(discover_tenant(settings, "contoso.com"))

    assert type(raised.value) is category
    assert "Microsoft unavailable, retrying" in raised.value.message
    assert asyncio.run(discover_tenant(settings, "contoso.com")) == DEMO_TENANT_ID


def test_domain_discovery_retries_and_knows_unknown_domains(
    sim: SimServer, settings: Settings
) -> None:
    inject(sim, kind="503", pathRegex=DISCOVERY, count=1)
    assert asyncio.run(discover_tenant(settings, "contoso.com")) == DEMO_TENANT_ID
    with pytest.raises(ms.TenantNotFound) as raised:
        asyncio.run(discover_tenant(settings, "unknown-domain.example"))
    assert "unknown-domain.example" in raised.value.message


def test_graph_requests_share_the_token_until_msal_would_renew_it(
    sim: SimServer, settings: Settings
) -> None:
    """Graph asks for a token before each request: the one Entra ID gave serves them all,
    a token Graph refused (``force_refresh``) is replaced at once, once however many
    requests it refused, and one about to expire is renewed as MSAL renews it (five minutes
    before the end)."""
    auth = app_only(settings)

    async def tokens(count: int, *, force_refresh: bool = False) -> set[str]:
        return {await auth(force_refresh=force_refresh) for _ in range(count)}

    entra_requests(sim)
    first = asyncio.run(tokens(5))
    assert len(first) == 1
    assert [p for p in entra_requests(sim) if p.endswith(TOKEN)] == [f"/{DEMO_TENANT_ID}{TOKEN}"]

    refused = asyncio.run(tokens(1, force_refresh=True))
    assert refused != first
    assert len([p for p in entra_requests(sim) if p.endswith(TOKEN)]) == 1
    assert asyncio.run(tokens(3)) == refused  # and the new one is shared again
    assert entra_requests(sim) == []

    # Requests sent together with one token are refused together: the first refusal gets
    # a new token, and the others, naming the same refused token, are given that one.
    (stale,) = refused

    async def refused_together(count: int) -> list[str]:
        return list(
            await asyncio.gather(*(auth(force_refresh=True, refused=stale) for _ in range(count)))
        )

    together = set(asyncio.run(refused_together(4)))
    assert len(together) == 1 and together != refused
    assert len([p for p in entra_requests(sim) if p.endswith(TOKEN)]) == 1
    # Refused again later, the token already replaced: no new request.
    assert set(asyncio.run(refused_together(1))) == together
    assert entra_requests(sim) == []

    with _control(sim) as control:  # tokens that end 301 s after issue: usable for 1 s
        usual = control.get("/_sim/config").json()["access_token_lifetime_seconds"]
        control.patch("/_sim/config", json={"access_token_lifetime_seconds": 301})
    try:
        short = asyncio.run(tokens(1, force_refresh=True))
        entra_requests(sim)
        assert asyncio.run(tokens(1)) == short
        assert entra_requests(sim) == []
        time.sleep(1.2)
        assert asyncio.run(tokens(1)) != short
        assert len([p for p in entra_requests(sim) if p.endswith(TOKEN)]) == 1
    finally:
        with _control(sim) as control:
            control.patch("/_sim/config", json={"access_token_lifetime_seconds": usual})


def test_the_claims_of_entra_ids_token_are_read(sim: SimServer, settings: Settings) -> None:
    """What the service account may do (``roles``) and whose tenant it is come from the
    token Entra ID issued."""
    token = app_only(settings).acquire()

    assert token.claims["tid"] == DEMO_TENANT_ID
    assert token.claims["appid"] == SERVICE_APP_ID
    assert "Mail.Read" in token.roles


def test_claims_are_read_from_a_signed_jwt_only() -> None:
    claims = {"tid": DEMO_TENANT_ID, "roles": ["Mail.Read"], "name": "Zoë Ærø", "exp": 1}
    signed = jwt.encode(claims, "not checked here: Graph checks the signature", "HS256")

    assert read_claims(signed) == claims
    assert read_claims("EwBwA8l6BAAUs5+HQn0N+h2FxWzLS31ZgQVuHsYAAQ") == {}  # opaque (MSA)
    assert read_claims("a.b.c") == {}
    assert read_claims("e30.W10.c2ln") == {}  # its claims are a JSON list, not an object
    assert read_claims(f"{signed}.e30.e30") == {}  # five parts: an encrypted token
