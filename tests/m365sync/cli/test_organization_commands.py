"""``m365sync orgs | domains | members | api-tokens``."""

from __future__ import annotations

import json


def test_api_tokens_are_listed_and_revoked(m365sync):
    assert m365sync("orgs", "create", "Contoso")[0] == 0
    assert (
        m365sync("members", "add", "-o", "contoso", "admin@contoso.com", "--role", "admin")[0] == 0
    )
    code, out, err = m365sync(
        "api-tokens", "create", "-o", "contoso", "--admin", "admin@contoso.com", "--name", "ci"
    )
    token = out.strip()
    assert code == 0 and token.startswith("m365s_") and "shown once" in err

    code, out, _ = m365sync("api-tokens", "list", "-o", "contoso", "--json")
    (listed,) = json.loads(out)
    assert code == 0 and token not in out
    assert (listed["name"], listed["admin"], listed["revoked_at"]) == (
        "ci",
        "admin@contoso.com",
        None,
    )
    assert token.startswith(listed["prefix"]) and listed["id"] in err

    code, out, _ = m365sync("api-tokens", "revoke", "-o", "contoso", listed["id"])
    assert code == 0 and f"Revoked API token {listed['id']}" in out
    code, out, _ = m365sync("api-tokens", "list", "-o", "contoso", "--json")
    assert json.loads(out)[0]["revoked_at"] is not None
    code, _, err = m365sync("api-tokens", "revoke", "-o", "contoso", "no-such-token")
    assert code == 2 and "no API token" in err


def test_domains_are_claims_until_verified_and_one_organization_holds_one(m365sync):
    for name in ("Squatter", "Woodgrove"):
        assert m365sync("orgs", "create", name)[0] == 0
        code, out, _ = m365sync("domains", "add", "-o", name.lower(), "woodgrove.com")
        assert code == 0 and "not verified yet" in out
    code, out, _ = m365sync("domains", "list", "-o", "woodgrove", "--json")
    (claim,) = json.loads(out)
    assert claim["verified"] is False
    assert claim["dns_txt_record"]["value"].startswith("m365sync-verification=")

    code, out, _ = m365sync("domains", "verify", "-o", "woodgrove", "woodgrove.com", "--trust")
    assert code == 0 and "woodgrove.com is verified (operator)" in out
    code, out, _ = m365sync("domains", "list", "-o", "squatter", "--json")
    assert json.loads(out) == []  # the squatter's claim was dropped
    code, _, err = m365sync("domains", "add", "-o", "squatter", "woodgrove.com")
    assert code == 2 and "verified by another organization" in err
