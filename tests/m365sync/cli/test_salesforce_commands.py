"""``m365sync salesforce`` as an admin scripts it, against sfsim (unmodified
simple-salesforce underneath) and m365sim: connect, status, users, link and unlink, the
share, Run Test, the mirror, a drain that puts the synced email in Salesforce, the backlog
and Retry; a private key never printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from m365sim.server import SimServer
from sfsim import SfServer
from support.demo import SALESFORCE_CONSUMER_KEY, SALESFORCE_CONSUMER_SECRET
from support.salesforce_target_world import ADELE, PAT, combined_ca_bundle
from support.salesforce_world import DEMO_KEY
from support.salesforce_world import sim as sf_control
from support.sim_tokens import sim_control
from support.sync_world import empty_demo_tenant

KEY_LINE = DEMO_KEY.private_key_pem.splitlines()[1]


@pytest.fixture
def contoso(
    m365sync: Any,
    add_service_account: Any,
    sim: SimServer,
    sf: SfServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """Contoso with Adele, mail read by its service account, Salesforce at sfsim (which has
    a user for Adele); returns the private key file."""
    empty_demo_tenant(sim)
    monkeypatch.setenv("M365SYNC_SALESFORCE_LOGIN_URL", sf.url)
    monkeypatch.setenv("M365SYNC_CA_BUNDLE", str(combined_ca_bundle(sim, sf, tmp_path)))
    sf_control(
        sf,
        "POST",
        "seed",
        json={"users": [{"username": "adele@acme.example", "lastName": "Vance", "email": ADELE}]},
    )
    assert m365sync("orgs", "create", "Contoso")[0] == 0
    assert m365sync("domains", "add", "-o", "contoso", "contoso.com")[0] == 0
    code, _, err = add_service_account(ADELE)
    assert code == 0, err
    assert m365sync("members", "add", "-o", "contoso", ADELE)[0] == 0
    key = tmp_path / "m365sync.key"
    key.write_text(DEMO_KEY.private_key_pem)
    return key


def connect(m365sync: Any, key: Path) -> tuple[int, str, str]:
    return m365sync(
        "salesforce",
        "connect",
        "-o",
        "contoso",
        "--consumer-key",
        SALESFORCE_CONSUMER_KEY,
        "--username",
        "integration@acme.example",
        "--private-key",
        str(key),
    )


def test_connect_status_users_share_and_test(
    m365sync: Any, contoso: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = m365sync("salesforce", "status", "-o", "contoso")
    assert code == 0 and "Salesforce is not connected" in out, err

    code, out, err = connect(m365sync, contoso)

    assert code == 0, out + err
    assert "Connected and working: every check passed." in out
    code, out, _ = m365sync("salesforce", "status", "-o", "contoso")
    assert code == 0
    assert "integration@acme.example" in out and "m365sync may use 50%" in out
    code, out, _ = m365sync("salesforce", "users", "-o", "contoso", "--json")
    assert {r["email"]: r["salesforce_username"] for r in json.loads(out)} == {
        ADELE: "adele@acme.example"
    }

    code, out, _ = m365sync("salesforce", "link", "-o", "contoso", ADELE, "rep@acme.example")
    assert code == 0 and "rep@acme.example" in out
    code, out, _ = m365sync("salesforce", "users", "-o", "contoso", "--match", "--json")
    assert json.loads(out)[0]["matched_by"] == "admin"  # an admin's choice outlives matching
    assert m365sync("salesforce", "unlink", "-o", "contoso", ADELE)[0] == 0
    code, out, _ = m365sync("salesforce", "users", "-o", "contoso", "--match", "--json")
    assert json.loads(out)[0]["salesforce_username"] == "adele@acme.example"

    code, out, _ = m365sync("salesforce", "share", "-o", "contoso", "30")
    assert code == 0 and "30%" in out
    code, out, err = m365sync("salesforce", "share", "-o", "contoso", "150")
    assert code == 2 and "at most 100 %" in err
    code, out, _ = m365sync("salesforce", "status", "-o", "contoso", "--json")
    assert json.loads(out)["effective_share"] == 0.3
    code, out, _ = m365sync("salesforce", "create-leads", "-o", "contoso", "on")
    assert code == 0 and "now becomes a Salesforce Lead" in out
    code, out, _ = m365sync("salesforce", "status", "-o", "contoso", "--json")
    assert json.loads(out)["create_leads"] is True

    code, out, _ = m365sync("salesforce", "test", "-o", "contoso")
    assert code == 0 and "Run Test for Salesforce" in out


def test_a_refused_connect_exits_1_and_client_credentials_work(
    m365sync: Any, contoso: Path
) -> None:
    code, out, _ = m365sync(
        "salesforce",
        "connect",
        "-o",
        "contoso",
        "--consumer-key",
        "3MVG9.nope",
        "--username",
        "integration@acme.example",
        "--private-key",
        str(contoso),
    )
    assert code == 1 and "Not connected:" in out
    code, _, err = m365sync("salesforce", "test", "-o", "contoso")
    assert code == 2 and "no Salesforce connection" in err and "Connect Salesforce first" in err

    code, out, err = m365sync(
        "salesforce",
        "connect",
        "-o",
        "contoso",
        "--consumer-key",
        SALESFORCE_CONSUMER_KEY,
        "--client-credentials",
        "--consumer-secret",
        SALESFORCE_CONSUMER_SECRET,
    )
    assert code == 0, out + err
    assert SALESFORCE_CONSUMER_SECRET not in out + err


def test_refresh_sync_drain_backlog_and_retry(
    m365sync: Any, contoso: Path, sim: SimServer, sf: SfServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert connect(m365sync, contoso)[0] == 0
    code, out, _ = m365sync("salesforce", "refresh", "-o", "contoso")
    assert code == 0 and "Contact 3" in out  # Pat, Sam and Nina: now the sync knows them
    sf_control(
        sf,
        "POST",
        "seed",
        json={
            "validationRules": [
                {
                    "object": "EmailMessage",
                    "name": "No_Secrets",
                    "field": "Subject",
                    "kind": "notEqual",
                    "value": "Secret plans",
                    "message": "No secret plans in Salesforce.",
                }
            ]
        },
    )
    for subject in ("Proposal", "Secret plans"):
        sim_control(
            sim,
            "POST",
            f"/_sim/mailboxes/{ADELE}/messages",
            json={"from": PAT, "to": [ADELE], "subject": subject},
        )
    assert m365sync("sync", "--org", "contoso", "--feature", "email")[0] == 0

    code, out, err = m365sync("salesforce", "drain", "-o", "contoso")

    assert code == 0, err
    assert out.startswith("drained: 1 written") and "1 parked" in out
    subjects = [r["Subject"] for r in sf_control(sf, "GET", "records/EmailMessage")["value"]]
    assert subjects == ["Proposal"]
    code, out, _ = m365sync("salesforce", "backlog", "-o", "contoso", "--member", ADELE, "--json")
    (item,) = json.loads(out)
    assert item["subject"] == "Secret plans" and "No secret plans in Salesforce." in item["reason"]
    code, out, _ = m365sync("salesforce", "status", "-o", "contoso")
    assert "Waiting records" in out and "Secret plans" in out

    sf.state.records.validation_rules.clear()  # the Salesforce admin drops the rule
    code, out, _ = m365sync(
        "salesforce", "retry", "-o", "contoso", "--activity", item["activity_id"]
    )
    assert code == 0 and out.startswith("1 parked record(s)")
    code, out, _ = m365sync("salesforce", "drain", "-o", "contoso", "--json")
    assert json.loads(out)["synced"] == 1
    subjects = [r["Subject"] for r in sf_control(sf, "GET", "records/EmailMessage")["value"]]
    assert sorted(subjects) == ["Proposal", "Secret plans"]
    code, out, _ = m365sync("salesforce", "backlog", "-o", "contoso")
    assert "Nothing waits" in out
