"""``m365sync service-accounts | access-policy | connections``: Run Test, saving, the
access-policy commands and report, who is connected how (exit codes 0, 1, 2)."""

from __future__ import annotations

import json
import sqlite3

from support.demo import SERVICE_APP_ID, SERVICE_SECRET, SERVICE_SECRET_ID


def test_exit_codes_and_service_account_lifecycle(m365sync, add_service_account, tmp_path):
    assert m365sync("orgs", "create", "Contoso")[0] == 0
    code, _, err = add_service_account("adele@contoso.com")
    assert code == 2 and "No domains to sync" in err and "domains add" in err
    assert m365sync("domains", "add", "-o", "contoso", "not a domain")[0] == 2
    assert m365sync("domains", "add", "-o", "contoso", "contoso.com")[0] == 0
    assert m365sync("domains", "list", "-o", "nope")[0] == 2
    assert m365sync("members", "list")[0] == 2  # --org missing: usage

    code, out, _ = m365sync(
        "service-accounts",
        "test",
        "-o",
        "contoso",
        "--client-id",
        SERVICE_APP_ID,
        "--secret",
        SERVICE_SECRET_ID,
        "--test-mailbox",
        "adele@contoso.com",
        "--json",
    )
    assert code == 1
    report = json.loads(out)
    assert any(
        c["key"] == "secret_format" and "secret's ID" in c["message"] for c in report["checks"]
    )
    code, _, err = m365sync(
        "service-accounts",
        "add",
        "-o",
        "contoso",
        "--client-id",
        SERVICE_APP_ID,
        "--secret",
        SERVICE_SECRET_ID,
        "--test-mailbox",
        "adele@contoso.com",
    )
    said = " ".join(err.split())
    assert code == 1 and "secret's ID" in said
    assert "run the same command with --partial" in said and '"partial"' not in said

    code, out, err = add_service_account("adele@contoso.com")
    assert code == 0, err
    assert "Saved service account" in out and SERVICE_SECRET not in out + err
    code, out, _ = m365sync("service-accounts", "list", "-o", "contoso", "--json")
    accounts = json.loads(out)
    assert code == 0 and accounts[0]["status"] == "active" and SERVICE_SECRET not in out
    account_id = accounts[0]["id"]

    code, out, _ = m365sync(
        "access-policy",
        "commands",
        "-o",
        "contoso",
        "--account",
        account_id,
        "--group",
        "crm-sync@contoso.com",
    )
    assert code == 0
    assert (
        f"New-ApplicationAccessPolicy -AppId '{SERVICE_APP_ID}' -PolicyScopeGroupId "
        "'crm-sync@contoso.com' -AccessRight RestrictAccess" in out
    )
    assert (
        "Test-ApplicationAccessPolicy" in out
        and "New-ManagementScope" in out
        and "New-ServicePrincipal" in out
    )

    members = tmp_path / "members.csv"
    members.write_text(
        "email,name,role\nadele@contoso.com,Adele Vance,user\npradeep@contoso.com,Pradeep,user\n"
    )
    assert m365sync("members", "import", "-o", "contoso", str(members))[0] == 0
    code, out, _ = m365sync(
        "access-policy", "report", "-o", "contoso", "--account", account_id, "--json"
    )
    reach = {r["email"]: r["reach"] for r in json.loads(out)}
    assert reach == {"adele@contoso.com": "reachable", "pradeep@contoso.com": "mailbox_not_enabled"}

    code, out, _ = m365sync("connections", "status", "-o", "contoso", "--json")
    assert code == 0 and all(row["service_accounts"] for row in json.loads(out))
    assert m365sync("service-accounts", "remove", "-o", "contoso", account_id)[0] == 0


def test_connections_status_names_only_the_service_accounts_that_serve_each_member(
    m365sync, add_service_account, tmp_path
):
    """A member outside the verified domains is served by no service account, and an
    account that needs a new secret serves no one until it has one."""
    assert m365sync("orgs", "create", "Contoso")[0] == 0
    assert m365sync("domains", "add", "-o", "contoso", "contoso.com", "fabrikam.com")[0] == 0
    assert add_service_account("adele@contoso.com")[0] == 0  # verifies contoso.com only
    for email in ("adele@contoso.com", "kim@fabrikam.com"):
        assert m365sync("members", "add", "-o", "contoso", email)[0] == 0

    code, out, _ = m365sync("connections", "status", "-o", "contoso", "--json")
    rows = {row["email"]: row for row in json.loads(out)}

    assert code == 0
    assert rows["adele@contoso.com"]["synced_domain"] is True
    assert rows["adele@contoso.com"]["service_accounts"] == ["Office 365 service account"]
    assert rows["kim@fabrikam.com"]["synced_domain"] is False
    assert rows["kim@fabrikam.com"]["service_accounts"] == []

    with sqlite3.connect(tmp_path / "data" / "m365sync.db") as db:
        db.execute("update service_accounts set status = 'needs_new_secret'")  # it expired
    code, out, _ = m365sync("connections", "status", "-o", "contoso", "--json")

    assert code == 0
    assert [row["service_accounts"] for row in json.loads(out)] == [[], []]
