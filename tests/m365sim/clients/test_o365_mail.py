"""python-o365 against m365sim: an app-only service account reads a mailbox.

The library's code is unchanged, but it is not configured only through documented options:
it hard-codes Microsoft's hosts, so this test sets the protocol's public ``protocol_url`` /
``service_url`` attributes and two **private** attributes of its connection,
``_msal_authority`` (no option exists for another authority) and ``_msal_client`` (built
with ``instance_discovery=False``, MSAL's switch for a custom authority, which python-o365
does not pass). docs/m365sim.md ("python-o365: what it needs") lists exactly this."""

from __future__ import annotations

from pathlib import Path

import httpx
from msal import ConfidentialClientApplication
from O365 import Account, FileSystemTokenBackend, MSGraphProtocol
from sim_tokens import SERVICE_APP_ID, SERVICE_SECRET

from m365sim.directory.models import Tenant
from m365sim.server import SimServer


def test_reads_a_mailbox_with_app_only_credentials(
    sim: SimServer, demo_tenant: Tenant, http: httpx.Client, tmp_path: Path
) -> None:
    http.post(
        "/_sim/mailboxes/adele@contoso.com/messages",
        json={
            "from": "ana@fabrikam.com",
            "subject": "Renewal quote",
            "body": "<p>Numbers attached</p>",
        },
    )
    http.post("/_sim/mailboxes/adele@contoso.com/messages/generate", json={"count": 30})
    protocol = MSGraphProtocol(default_resource="adele@contoso.com")
    protocol.protocol_url = f"{sim.url}/"
    protocol.service_url = f"{sim.url}/v1.0/"
    account = Account(
        (SERVICE_APP_ID, SERVICE_SECRET),
        auth_flow_type="credentials",
        tenant_id=demo_tenant.id,
        protocol=protocol,
        token_backend=FileSystemTokenBackend(token_path=tmp_path),  # not o365_token.txt in cwd
    )
    account.con._msal_authority = sim.authority(demo_tenant.id)
    account.con._msal_client = ConfidentialClientApplication(
        SERVICE_APP_ID,
        client_credential=SERVICE_SECRET,
        authority=sim.authority(demo_tenant.id),
        token_cache=account.con.token_backend,
        instance_discovery=False,
    )
    assert account.authenticate()
    mailbox = account.mailbox()
    messages = list(mailbox.inbox_folder().get_messages(limit=50, batch=10))
    assert len(messages) == 31
    assert len({m.object_id for m in messages}) == 31
    quote = next(m for m in messages if m.subject == "Renewal quote")
    assert quote.sender.address == "ana@fabrikam.com"
    assert "Numbers attached" in quote.body
