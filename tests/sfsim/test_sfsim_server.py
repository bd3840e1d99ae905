"""The server itself: TLS trusted through the CA bundle, the control API, the request log,
the coverage page."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
import requests

from sfsim import SfServer
from sfsim.app import collect_routes
from sfsim.coverage import render
from support.sf_clients import sf_client

PAGE = Path(__file__).parents[2] / "docs" / "sfsim" / "coverage.md"


def test_serves_https_trusted_through_requests_ca_bundle(sf: SfServer) -> None:
    # The plugin points REQUESTS_CA_BUNDLE at sfsim's bundle: plain requests trusts it.
    answer = requests.get(f"{sf.url}/services/data/")
    assert answer.status_code == 200
    assert {"label", "url", "version"} <= set(answer.json()[-1])


def test_rejects_clients_that_do_not_trust_it(sf: SfServer) -> None:
    import certifi

    context = ssl.create_default_context(cafile=certifi.where())
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{sf.url}/services/data/", verify=context, trust_env=False)


def test_reset_and_seed_through_the_control_api(sf: SfServer) -> None:
    assert requests.post(f"{sf.url}/_sim/reset").status_code == 204
    assert requests.get(f"{sf.url}/_sim/org").json()["users"] == []
    seeded = requests.post(
        f"{sf.url}/_sim/seed",
        json={
            "org": {"name": "Globex", "myDomain": "globex", "sandbox": "uat"},
            "users": [{"username": "ops@globex.example", "lastName": "Ops"}],
        },
    )
    assert seeded.status_code == 201
    org = seeded.json()
    assert org["name"] == "Globex"
    assert org["myDomain"] == "globex--uat.sandbox.my.salesforce.com"
    assert org["loginHost"] == "test.salesforce.com"
    rejected = requests.post(f"{sf.url}/_sim/seed", json={"records": {"Nope": [{}]}})
    assert rejected.status_code == 400
    assert "Seed rejected" in rejected.json()[0]["message"]


def test_request_log_counts_api_requests(sf: SfServer) -> None:
    client = sf_client(sf)
    requests.delete(f"{sf.url}/_sim/requests")
    client.query("SELECT Id FROM Account")
    client.Contact.describe()
    log = requests.get(f"{sf.url}/_sim/requests", params={"path_contains": "/services/data"}).json()
    assert log["count"] == 2
    assert all(
        entry["countedAsApiRequest"] and entry["app"] == "m365sync" for entry in log["value"]
    )


def test_config_rejects_unknown_settings(sf: SfServer) -> None:
    wrong = requests.patch(f"{sf.url}/_sim/config", json={"nonsense": 1})
    assert wrong.status_code == 400
    assert "Unknown setting" in wrong.json()[0]["message"]


def test_coverage_page_is_current() -> None:
    assert PAGE.read_text(encoding="utf-8") == render(collect_routes()), (
        "docs/sfsim/coverage.md is stale: run `python -m sfsim.coverage > docs/sfsim/coverage.md`"
    )


def test_refuses_requests_over_salesforces_size_limit(sf: SfServer) -> None:
    client = sf_client(sf)
    emails = ", ".join(f"'person-{n}@example.com'" for n in range(800))
    soql = f"SELECT Id FROM Contact WHERE Email IN ({emails})"
    too_long = requests.get(
        f"{sf.url}/services/data/v59.0/query/",
        params={"q": soql},
        headers={"Authorization": f"Bearer {client.session_id}"},
    )
    assert too_long.status_code == 414
    fits = soql[: soql.index(", 'person-300")] + ")"
    big_headers = requests.get(
        f"{sf.url}/services/data/v59.0/query/",
        params={"q": fits},
        headers={"Authorization": f"Bearer {client.session_id}", "X-Padding": "p" * 8000},
    )
    assert big_headers.status_code == 431
    assert client.query(fits)["totalSize"] == 0
    # Refused before the session is even read: nothing counted against the daily limit.
    assert sf.state.api_usage()[0] == 1
