"""The server itself: TLS that clients trust, control API basics, request log."""

import ssl

import httpx

from m365sim.listener import tcp_listener
from m365sim.server import SimServer
from support.sockets import nagle_off_on_accepted_connections


def test_serves_https_trusted_by_its_ca_bundle(sim: SimServer) -> None:
    response = httpx.get(
        f"{sim.url}/_sim/clock", verify=ssl.create_default_context(cafile=sim.tls.ca_pem)
    )
    assert response.status_code == 200
    assert "now" in response.json()


def test_rejects_clients_that_do_not_trust_it(sim: SimServer) -> None:
    import certifi

    context = ssl.create_default_context(cafile=certifi.where())  # public CAs only
    try:
        httpx.get(f"{sim.url}/_sim/clock", verify=context, trust_env=False)
    except httpx.ConnectError as exc:
        assert "CERTIFICATE_VERIFY_FAILED" in str(exc)
    else:  # pragma: no cover - would mean TLS is not in force
        raise AssertionError("an untrusted client connected")


def test_clock_moves_forward_only(control: httpx.Client) -> None:
    advanced = control.post("/_sim/clock", json={"advanceSeconds": 3600})
    assert advanced.json()["offsetSeconds"] == 3600
    assert control.post("/_sim/clock", json={"advanceSeconds": -5}).status_code == 400


def test_config_rejects_unknown_and_mistyped_settings(control: httpx.Client) -> None:
    changed = control.patch("/_sim/config", json={"concurrent_requests": 2})
    assert changed.json()["concurrent_requests"] == 2
    wrong = control.patch("/_sim/config", json={"nonsense": 1})
    assert wrong.status_code == 400
    assert "Unknown setting" in wrong.json()["error"]["message"]
    assert control.patch("/_sim/config", json={"throttling_enabled": "yes"}).status_code == 400


def test_demo_seed_loads_contoso(sim: SimServer) -> None:
    tenant = sim.state.find_tenant("contoso.onmicrosoft.com")
    assert tenant is not None and tenant.display_name == "Contoso"
    assert tenant.find_user("pradeep@contoso.com").licensed is False  # type: ignore[union-attr]


def test_small_answers_do_not_wait_for_the_clients_delayed_ack() -> None:
    """m365sim and sfsim listen on ``tcp_listener``: the connections they accept have Nagle's
    algorithm off, so an answer's body follows its headers at once, as from Microsoft."""
    assert nagle_off_on_accepted_connections(tcp_listener("127.0.0.1", 0))
