"""``m365sync service-accounts test-exchange``: Run Test for an Exchange service account
from the command line, with the exit code a script checks."""

from __future__ import annotations

import json

from m365sync.microsoft.ews import close_exchange_connections
from support.ews_clients import SERVICE_ACCOUNT, SERVICE_PASSWORD, turn_on_exchange


def test_test_exchange(m365sync, sim):
    ews_url = turn_on_exchange(sim)
    assert m365sync("orgs", "create", "Contoso")[0] == 0
    assert m365sync("domains", "add", "-o", "contoso", "contoso.com")[0] == 0
    command = ["service-accounts", "test-exchange", "-o", "contoso", "--server-url", ews_url]
    command += ["--username", SERVICE_ACCOUNT, "--password", SERVICE_PASSWORD]
    code, out, _ = m365sync(*command, "--test-mailbox", "diego@contoso.com", "--json")
    assert code == 0, out
    assert json.loads(out)["ok"]
    code, out, _ = m365sync(*command, "--test-mailbox", "nobody@contoso.com", "--json")
    close_exchange_connections()
    assert code == 1
    failed = [c for c in json.loads(out)["checks"] if c["outcome"] == "failed"]
    assert "no mailbox for nobody@contoso.com" in failed[0]["message"]
