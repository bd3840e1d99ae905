"""The fault injector: targeted faults of each kind, random faults, and what it never touches."""

from __future__ import annotations

import time

import httpx
import pytest

from m365sim.server import SimServer
from m365sim.throttling import CONCURRENCY_MESSAGE
from support.demo import SERVICE_APP_ID
from support.polling import wait_for
from support.sim_tokens import bearer, mint_app_token, sim_client

TENANT = "contoso.com"


@pytest.fixture
def auth(sim: SimServer) -> dict[str, str]:
    return bearer(mint_app_token(sim, TENANT, SERVICE_APP_ID, ["Mail.ReadWrite"]))


def messages(
    http: httpx.Client, auth: dict[str, str], user: str = "adele@contoso.com"
) -> httpx.Response:
    return http.get(f"/v1.0/users/{user}/messages", headers=auth)


def test_next_n_matching_requests_fail_then_recover(
    sim: SimServer, http: httpx.Client, auth: dict[str, str]
) -> None:
    rule = http.post(
        "/_sim/faults",
        json={
            "kind": "503",
            "method": "GET",
            "pathRegex": "/messages$",
            "count": 2,
            "retryAfter": 7,
        },
    ).json()
    http.delete("/_sim/requests")
    first, second, third = (messages(http, auth) for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (503, 503, 200)
    assert first.headers["Retry-After"] == "7"
    assert first.json()["error"]["code"] == "serviceNotAvailable"
    assert "request-id" in first.json()["error"]["innerError"]
    # POSTs don't match a GET rule.
    listed = http.get("/_sim/faults").json()
    assert listed["value"][0] == listed["value"][0] | {
        "id": rule["id"],
        "remaining": 0,
        "injected": 2,
    }
    log = http.get("/_sim/requests", params={"path_contains": "/messages"}).json()["value"]
    assert [entry["status"] for entry in log] == [503, 503, 200]


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("429", 429, "ApplicationThrottled"),
        ("500", 500, "generalException"),
        ("504", 504, "UnknownError"),
    ],
)
def test_error_kinds_have_graph_shaped_bodies(
    sim: SimServer, http: httpx.Client, auth: dict[str, str], kind: str, status: int, code: str
) -> None:
    http.post("/_sim/faults", json={"kind": kind, "pathRegex": "/messages$"})
    response = messages(http, auth)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    if kind == "429":
        assert response.headers["Retry-After"] == "1"


def test_fault_scoped_to_one_mailbox(
    sim: SimServer, http: httpx.Client, auth: dict[str, str]
) -> None:
    http.post("/_sim/faults", json={"kind": "500", "mailbox": "alex@contoso.com", "count": 5})
    assert messages(http, auth, "adele@contoso.com").status_code == 200
    assert messages(http, auth, "alex@contoso.com").status_code == 500
    alex_id = sim.state.find_tenant(TENANT).find_user("alex@contoso.com").id  # type: ignore[union-attr]
    assert messages(http, auth, alex_id).status_code == 500


def test_expired_cursor_on_delta(sim: SimServer, http: httpx.Client, auth: dict[str, str]) -> None:
    http.post("/_sim/faults", json={"kind": "expiredCursor"})
    assert messages(http, auth).status_code == 200  # not a delta request
    delta = http.get("/v1.0/users/adele@contoso.com/mailFolders/inbox/messages/delta", headers=auth)
    assert delta.status_code == 410
    assert delta.json()["error"]["code"] == "SyncStateNotFound"


def test_dropped_connection_mid_body(
    sim: SimServer, http: httpx.Client, auth: dict[str, str]
) -> None:
    http.post("/_sim/faults", json={"kind": "drop", "pathRegex": "/messages$"})
    with pytest.raises(httpx.TransportError):
        messages(http, auth)
    assert messages(http, auth).status_code == 200


def test_garbled_answer_is_complete_but_does_not_decode(
    sim: SimServer, http: httpx.Client, auth: dict[str, str]
) -> None:
    """A whole HTTP answer (status 200, a Content-Length that matches) carrying half the
    JSON: nothing at the HTTP level says it is broken."""
    http.post("/_sim/faults", json={"kind": "garbled", "pathRegex": "/messages$"})
    garbled = messages(http, auth)
    whole = messages(http, auth)
    assert garbled.status_code == 200
    assert int(garbled.headers["content-length"]) == len(garbled.content)
    assert garbled.content == whole.content[: len(whole.content) // 2]
    with pytest.raises(ValueError):
        garbled.json()
    discovery = http.get("/contoso.com/v2.0/.well-known/openid-configuration")
    assert discovery.json()["token_endpoint"]
    http.post("/_sim/faults", json={"kind": "garbled", "pathRegex": "openid-configuration"})
    with pytest.raises(ValueError):
        http.get("/contoso.com/v2.0/.well-known/openid-configuration").json()


def test_delay(sim: SimServer, http: httpx.Client, auth: dict[str, str]) -> None:
    http.post("/_sim/faults", json={"kind": "delay", "delayMs": 300, "pathRegex": "/messages$"})
    started = time.monotonic()
    assert messages(http, auth).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_trickle_sends_the_headers_at_once_and_the_body_slowly(
    sim: SimServer, http: httpx.Client, auth: dict[str, str]
) -> None:
    """A slow network: the answer starts at once, then its body arrives a byte every
    ``delayMs``, so no single read waits long but the whole answer takes its size times
    ``delayMs``."""
    url = "/v1.0/users/adele@contoso.com/messages"
    small = {"$top": "1", "$select": "id"}
    whole = http.get(url, params=small, headers=auth).content
    http.post("/_sim/faults", json={"kind": "trickle", "delayMs": 5, "pathRegex": "/messages$"})

    started = time.monotonic()
    with http.stream("GET", url, params=small, headers=auth) as response:
        assert response.status_code == 200
        assert int(response.headers["content-length"]) == len(whole)
        chunks = list(response.iter_raw())
    elapsed = time.monotonic() - started

    assert b"".join(chunks) == whole
    assert len(chunks) > 1
    assert elapsed >= 0.9 * len(whole) * 0.005
    assert [i["kind"] for i in http.get("/_sim/faults").json()["injections"]] == ["trickle"]


def test_a_trickle_holds_its_slot_until_the_client_hangs_up(
    sim: SimServer, http: httpx.Client, auth: dict[str, str]
) -> None:
    """A trickling answer is a request in flight for the mailbox (it counts against the
    concurrency limit); a client that gives up ends it, and frees the slot."""
    http.patch("/_sim/config", json={"concurrent_requests": 1})
    http.post(
        "/_sim/faults", json={"kind": "trickle", "delayMs": 60_000, "pathRegex": "/messages$"}
    )
    with (
        sim_client(sim) as slow,
        slow.stream("GET", "/v1.0/users/adele@contoso.com/messages", headers=auth) as answer,
    ):
        assert answer.status_code == 200
        refused = messages(http, auth)
        assert refused.status_code == 429
        assert refused.json()["error"]["message"] == CONCURRENCY_MESSAGE

    assert wait_for(lambda: messages(http, auth).status_code == 200)


def test_random_faults_are_reproducible_with_a_seed(
    sim: SimServer, http: httpx.Client, auth: dict[str, str]
) -> None:
    def run() -> list[int]:
        http.delete("/_sim/faults")
        http.post(
            "/_sim/faults",
            json={"rate": 0.3, "seed": 42, "kinds": ["500", "503"], "pathRegex": "/messages$"},
        )
        return [messages(http, auth).status_code for _ in range(30)]

    first, second = run(), run()
    assert first == second
    assert 3 <= sum(status != 200 for status in first) <= 20
    assert set(first) <= {200, 500, 503}


def test_faults_never_apply_to_the_control_api(sim: SimServer, http: httpx.Client) -> None:
    http.post("/_sim/faults", json={"rate": 1.0, "seed": 1, "kinds": ["500"]})
    http.post("/_sim/faults", json={"kind": "503", "count": 5})
    assert http.get("/_sim/clock").status_code == 200
    assert http.delete("/_sim/faults").status_code == 204


def test_bad_fault_specs_are_refused(sim: SimServer, http: httpx.Client) -> None:
    assert http.post("/_sim/faults", json={"kind": "teapot"}).status_code == 400
    assert http.post("/_sim/faults", json={"kind": "500", "pathRegex": "("}).status_code == 400
    assert http.post("/_sim/faults", json={"rate": 2}).status_code == 400
