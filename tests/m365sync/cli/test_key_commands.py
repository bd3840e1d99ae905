"""``m365sync keys rotate`` re-seals every secret; a missing key file stops the commands
that need it and is never recreated over sealed secrets."""

from __future__ import annotations

import json
import sqlite3

from support.demo import SERVICE_APP_ID, SERVICE_SECRET


def test_key_rotation_reseals_everything(m365sync, tmp_path):
    m365sync("orgs", "create", "Contoso")
    m365sync("domains", "add", "-o", "contoso", "contoso.com")
    assert (
        m365sync(
            "service-accounts",
            "add",
            "-o",
            "contoso",
            "--client-id",
            SERVICE_APP_ID,
            "--secret",
            SERVICE_SECRET,
            "--test-mailbox",
            "adele@contoso.com",
        )[0]
        == 0
    )
    key_file = tmp_path / "data" / "secret.key"
    before_key = key_file.read_text()
    db_path = tmp_path / "data" / "m365sync.db"

    def sealed() -> bytes:
        with sqlite3.connect(db_path) as connection:
            return connection.execute("select secret_sealed from service_accounts").fetchone()[0]

    before = sealed()
    code, out, _ = m365sync("keys", "rotate")
    assert code == 0 and "Re-encrypted" in out
    assert key_file.read_text() != before_key and oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert sealed() != before
    code, out, _ = m365sync(
        "service-accounts",
        "test",
        "-o",
        "contoso",
        json.loads(m365sync("service-accounts", "list", "-o", "contoso", "--json")[1])[0]["id"],
    )
    assert code == 0, out


def test_a_missing_key_file_stops_commands_that_need_it_and_is_not_recreated(
    m365sync, add_service_account, tmp_path
):
    m365sync("orgs", "create", "Contoso")
    m365sync("domains", "add", "-o", "contoso", "contoso.com")
    assert add_service_account("adele@contoso.com")[0] == 0
    key_file = tmp_path / "data" / "secret.key"
    key = key_file.read_text()
    key_file.unlink()

    code, out, err = m365sync("service-accounts", "list", "-o", "contoso", "--json")
    assert code == 0  # nothing secret is needed to list them
    account_id = json.loads(out)[0]["id"]
    code, _, err = m365sync("service-accounts", "test", "-o", "contoso", account_id)
    assert code == 1
    assert f"The secret key file {key_file.resolve()} is missing" in " ".join(err.split())
    assert "M365SYNC_SECRET_KEY" in err
    assert not key_file.exists()

    key_file.write_text(key)
    assert m365sync("service-accounts", "test", "-o", "contoso", account_id)[0] == 0
