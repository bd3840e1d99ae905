"""A planted secret is found nowhere in plaintext: not in the SQLite file or its WAL, not
in logs (at DEBUG), not in CLI output, not in API responses."""

from __future__ import annotations

import json
import logging
import stat
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from m365sim.directory.models import ClientSecret as SimSecret
from m365sync.connections import service_accounts, user_connections
from m365sync.connections.models import ConnectionKind, CredentialType, ServiceAccount
from m365sync.connections.runtime import ConnectionRuntime
from m365sync.crypto import SecretBox, SecretKeyMissing, load_keys
from m365sync.organizations import service as orgs
from m365sync.organizations.models import Role
from m365sync.web.app import create_app
from support.demo import SERVICE_APP_ID
from support.microsoft_sign_in import sign_in
from support.organizations import fresh


def read_bytes(path: str) -> bytes:
    return Path(path).read_bytes() if Path(path).exists() else b""


def stored_bytes(db) -> bytes:
    """Everything the database holds: the SQLite file and its WAL byte for byte, or, on
    PostgreSQL, every row of every table rendered as text."""
    if db.engine.dialect.name == "sqlite":
        db.dispose()
        path = db.engine.url.database
        return b"".join(read_bytes(p) for p in (path, f"{path}-wal"))
    with db.engine.connect() as connection:
        tables = sa.inspect(connection).get_table_names()
        rows = [
            str(row[0])
            for table in tables
            for row in connection.execute(sa.text(f'SELECT t::text FROM "{table}" t'))
        ]
    assert rows, "the flows above stored nothing?"
    return "\n".join(rows).encode()


@pytest.fixture
def planted(sim, demo_tenant) -> str:
    value = f"Zx8Q~planted.{uuid.uuid4().hex}"
    demo_tenant.apps[SERVICE_APP_ID].secrets.append(
        SimSecret(value=value, expires_at=sim.state.now() + timedelta(days=90))
    )
    return value


async def test_planted_secrets_are_nowhere_in_plaintext(
    sim, settings, db, runtime, make_org, planted, caplog, capsys
):
    caplog.set_level(logging.DEBUG)
    password = f"ews-{uuid.uuid4().hex}"
    org = make_org()
    with db.session() as session:
        organization = fresh(session, org)
        admin = orgs.add_member(session, organization, "admin@contoso.com", role=Role.ADMIN)
        orgs.add_member(session, organization, "adele@contoso.com")
        _, token = orgs.create_api_token(session, organization, admin)
    app = create_app(settings=settings, database=db, runtime=runtime)
    seen: list[str] = []
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as api:
        headers = {"Authorization": f"Bearer {token}"}
        base = "/api/v1/organizations/contoso"
        body = {
            "client_id": SERVICE_APP_ID,
            "client_secret": planted,
            "test_mailbox": "adele@contoso.com",
        }
        for response in [
            await api.post(f"{base}/service-accounts/test", headers=headers, json=body),
            await api.post(f"{base}/service-accounts", headers=headers, json=body),
            await api.post(
                f"{base}/service-accounts", headers=headers, json={**body, "client_id": "bad-id"}
            ),
            await api.get(f"{base}/service-accounts", headers=headers),
            await api.get(f"{base}/audit", headers=headers),
            await api.get(f"{base}/connections", headers=headers),
        ]:
            seen.append(response.text)
        account_id = (await api.get(f"{base}/service-accounts", headers=headers)).json()[0]["id"]
        seen.append(
            (await api.post(f"{base}/service-accounts/{account_id}/test", headers=headers)).text
        )
        members = (await api.get(f"{base}/members", headers=headers)).json()
        adele = next(m for m in members if m["email"] == "adele@contoso.com")
        seen.append(
            (
                await api.post(
                    f"{base}/members/{adele['id']}/connection/exchange",
                    headers=headers,
                    json={
                        "server_url": "mail.contoso.com",
                        "username": "adele",
                        "password": password,
                    },
                )
            ).text
        )
        seen.append(
            (
                await api.post(
                    f"{base}/members/{adele['id']}/connection/exchange",
                    headers=headers,
                    json={
                        "server_url": "outlook.office365.com",
                        "username": "adele",
                        "password": password,
                    },
                )
            ).text
        )
        # A user connection too: its refresh token must not be readable either.
        start = await api.post(
            f"{base}/members/{adele['id']}/connection/office365", headers=headers
        )
        params = sign_in(
            start.json()["authorization_url"],
            username="adele@contoso.com",
            password="Demo-User-1!",
            ca_bundle=str(sim.tls.ca_bundle),
            redirect_prefix="http://localhost:8365/connections/office365/callback",
        )
        seen.append(
            (
                await api.post(
                    f"{base}/connections/office365/complete",
                    headers=headers,
                    json={"params": params},
                )
            ).text
        )
    await runtime.aclose()

    # The secrets were really used and stored (sealed): the flows above worked.
    with db.session() as session:
        account = service_accounts.list_service_accounts(session, fresh(session, org))[0]
        assert runtime.open(account, "secret_sealed") == planted
        refresh_tokens = [
            value["secret"]
            for connection in user_connections.list_user_connections(session, fresh(session, org))
            if connection.token_cache_sealed
            # MSAL's token cache is stored beside the tenant's discovery answer
            for value in json.loads(
                json.loads(runtime.open(connection, "token_cache_sealed") or "{}")["msal"]
            )["RefreshToken"].values()
        ]
    assert refresh_tokens

    stored = stored_bytes(db)
    logs = caplog.text + "".join(r.getMessage() for r in caplog.records)
    captured = capsys.readouterr()
    for secret in (planted, password, *refresh_tokens):
        assert secret.encode() not in stored
        assert secret not in logs
        assert secret not in captured.out + captured.err
        for text in seen:
            assert secret not in text


def test_key_file_is_created_0600(settings):
    keys = load_keys(settings, anything_sealed=lambda: False)
    path = settings.data_dir / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.data_dir.stat().st_mode) == 0o700
    assert load_keys(settings) == keys
    box = SecretBox(keys)
    sealed = box.seal("value", "t.c:1")
    assert box.open(sealed, "t.c:1") == "value"
    with pytest.raises(Exception, match="integrity"):
        box.open(sealed, "t.c:2")


def test_a_missing_key_file_is_never_recreated_over_stored_secrets(settings, db, runtime, make_org):
    """The key file went missing (a restore without it, another data directory): starting
    must stop with the path and the fix, not make a new key that can't open anything."""
    key_file = settings.data_dir / "secret.key"
    assert key_file.exists()  # the runtime made it: the database held nothing sealed
    organization = make_org()
    with db.session() as session:
        account = ServiceAccount(
            organization_id=organization.id,
            name="Contoso sync",
            kind=ConnectionKind.OFFICE365,
            credential_type=CredentialType.SECRET,
        )
        session.add(account)
        session.flush()
        runtime.seal(account, "secret_sealed", "Zx8Q~a.secret")
    key = key_file.read_bytes()
    key_file.unlink()

    with pytest.raises(SecretKeyMissing) as missing:
        ConnectionRuntime.from_settings(settings, db)

    assert str(key_file.resolve()) in missing.value.message
    assert "M365SYNC_SECRET_KEY" in (missing.value.fix or "")
    assert not key_file.exists()
    key_file.write_bytes(key)  # restored from the backup: everything opens again
    with db.session() as session:
        restored = ConnectionRuntime.from_settings(settings, db)
        assert restored.open(session.get(ServiceAccount, account.id), "secret_sealed") == (
            "Zx8Q~a.secret"
        )
