"""Litware: a Microsoft 365 tenant with no service account app yet, for "Set up for me".

It holds a Global Administrator, an Application Administrator (who may register apps but
not grant Microsoft Graph's application permissions), a sales rep whose mailbox has a
message and a meeting, and the server's user-connections app (the app administrators sign
in to; m365sim stands a multi-tenant app in for each tenant that uses it).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import Any

import httpx

LITWARE_TENANT_ID = "3c8f9d1e-6a2b-4c7d-8e9f-0000000c0001"
LITWARE_DOMAIN = "litware.com"
ADMIN = "admin@litware.com"
APP_ADMIN = "apps@litware.com"
REP = "dana@litware.com"
PASSWORD = "Litware-Admin-1!"
USER_APP_ID = "11111111-2222-4333-8444-000000000003"
USER_APP_SECRET = "Zx8Q~demo.user-connections.secret-0003"
MESSAGE_SUBJECT = "Litware pilot: the numbers"
EVENT_SUBJECT = "Litware quarterly review"
FOUR_PERMISSIONS = {"Mail.Read", "Mail.ReadWrite", "Calendars.Read", "Calendars.ReadWrite"}
KIM = {"name": "Kim Buyer", "address": "kim@fabrikam.com"}


def litware_seed(redirect_uris: Iterable[str] = ()) -> dict[str, Any]:
    """The tenant in m365sim's seed format; ``redirect_uris`` are added to the user app's."""
    redirects = [
        f"{origin}/{path}"
        for origin in ("http://localhost:8365", "http://testserver")
        for path in (
            "connections/office365/callback",
            "admin/service-accounts/setup/callback",
        )
    ]
    return {
        "id": LITWARE_TENANT_ID,
        "displayName": "Litware",
        "domains": [LITWARE_DOMAIN, "litware.onmicrosoft.com"],
        "users": [
            {
                "userPrincipalName": ADMIN,
                "displayName": "Lena Admin",
                "password": PASSWORD,
                "isAdmin": True,
            },
            {
                "userPrincipalName": APP_ADMIN,
                "displayName": "Arne Apps",
                "password": PASSWORD,
                "directoryRoles": ["Application Administrator"],
            },
            {"userPrincipalName": REP, "displayName": "Dana Rep", "password": PASSWORD},
        ],
        "apps": [
            {
                "displayName": "m365sync User Connections",
                "appId": USER_APP_ID,
                "signInAudience": "AzureADMultipleOrgs",
                "delegatedPermissions": ["openid", "profile", "email", "offline_access"],
                "redirectUris": [*redirects, *redirect_uris],
                "secrets": [
                    {
                        "keyId": "5ec2e7a1-0000-4000-8000-0000000c0003",
                        "value": USER_APP_SECRET,
                        "expires": "+365d",
                    }
                ],
            }
        ],
        "mailboxes": {
            REP: {
                "messages": [
                    {
                        "from": KIM,
                        "subject": MESSAGE_SUBJECT,
                        "body": "<p>Here are the pilot numbers.</p>",
                        "receivedDateTime": "-2h",
                    }
                ],
                "events": [
                    {
                        "subject": EVENT_SUBJECT,
                        "start": "+1d",
                        "end": "+1530m",
                        "attendees": [
                            {
                                "type": "required",
                                "emailAddress": {
                                    "name": "Kim Buyer",
                                    "address": "kim@fabrikam.com",
                                },
                            }
                        ],
                    }
                ],
            }
        },
    }


class SimControl:
    """m365sim's control API (``/_sim/...``) for the Litware tenant."""

    def __init__(self, sim: Any) -> None:
        self.sim = sim
        self.client = httpx.Client(
            base_url=sim.url,
            verify=ssl.create_default_context(cafile=str(sim.tls.ca_bundle)),
            timeout=20,
        )

    def add_litware(self, redirect_uris: Iterable[str] = (), **tenant: Any) -> str:
        response = self.client.post("/_sim/tenants", json={**litware_seed(redirect_uris), **tenant})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def patch_tenant(self, **fields: Any) -> None:
        response = self.client.patch(f"/_sim/tenants/{LITWARE_TENANT_ID}", json=fields)
        assert response.status_code == 200, response.text

    def apps(self) -> list[dict[str, Any]]:
        """Every app registration of Litware except the user-connections app."""
        response = self.client.get(f"/_sim/tenants/{LITWARE_TENANT_ID}/apps")
        assert response.status_code == 200, response.text
        return [a for a in response.json()["value"] if a["appId"] != USER_APP_ID]

    def consent_for_everyone(self, scopes: list[str]) -> None:
        """An administrator's earlier consent, for the whole organization, to ``scopes`` of
        the user-connections app (nobody is asked again)."""
        response = self.client.post(
            f"/_sim/tenants/{LITWARE_TENANT_ID}/apps/{USER_APP_ID}/delegatedConsent",
            json={"scopes": scopes},
        )
        assert response.status_code == 200, response.text

    def revoke_permission(self, app_id: str, permission: str) -> None:
        response = self.client.request(
            "DELETE",
            f"/_sim/tenants/{LITWARE_TENANT_ID}/apps/{app_id}/consent",
            json={"permissions": [permission]},
        )
        assert response.status_code == 200, response.text

    def advance_clock(self, seconds: float) -> None:
        """Move m365sim's clock forward (Entra ID's replication is measured on it)."""
        response = self.client.post("/_sim/clock", json={"advanceSeconds": seconds})
        assert response.status_code == 200, response.text

    def deliver(self, mailbox: str, **message: Any) -> None:
        response = self.client.post(f"/_sim/mailboxes/{mailbox}/messages", json=message)
        assert response.status_code < 300, response.text

    def close(self) -> None:
        self.client.close()
