"""The demo world every test meets, named once.

Contoso is the tenant in m365sim's demo seed (``src/m365sim/seeds/demo.yaml``): its id, the
three apps registered in it (the consented service account, one still waiting for admin
consent, and the product's "Connect your Office 365" app) with their secrets, and the
passwords its people sign in with. Woodgrove is a second customer in a tenant of its own,
added through m365sim's control API when a test asks for it. sfsim's demo org
(``src/sfsim/seeds/demo.yaml``) is the Salesforce side. ``demo_settings`` points m365sync at
m365sim the way every test world starts.

The values must match the seeds: the emulators load them from there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from m365sim.server import SimServer
from m365sync.settings import Settings

__all__ = [
    "DEMO_ADMIN_PASSWORD",
    "DEMO_TENANT_ID",
    "DEMO_USER_PASSWORD",
    "NO_CONSENT_APP_ID",
    "NO_CONSENT_SECRET",
    "SALESFORCE_CALLBACK",
    "SALESFORCE_CONSUMER_KEY",
    "SALESFORCE_CONSUMER_SECRET",
    "SALESFORCE_INTEGRATION_USER",
    "SERVICE_APP_ID",
    "SERVICE_SECRET",
    "SERVICE_SECRET_ID",
    "USER_APP_ID",
    "USER_APP_SECRET",
    "WOODGROVE_APP_ID",
    "WOODGROVE_PASSWORD",
    "WOODGROVE_PRIVATE_SUBJECT",
    "WOODGROVE_PRIVATE_TASK",
    "WOODGROVE_SECRET",
    "WOODGROVE_TENANT_ID",
    "demo_settings",
    "woodgrove_seed",
]

# -- Contoso, m365sim's demo tenant ---------------------------------------------------------
DEMO_TENANT_ID = "6f1c2f4e-3b1a-4c1e-9a51-0c0ffee00001"
DEMO_ADMIN_PASSWORD = "Demo-Admin-1!"  # admin@contoso.com
DEMO_USER_PASSWORD = "Demo-User-1!"  # everyone else
DASHBOARD_PASSWORD = "correct horse battery staple"  # the web tests' members
# The service account app, with admin consent for Mail and Calendars.
SERVICE_APP_ID = "11111111-2222-4333-8444-000000000001"
SERVICE_SECRET = "Zx8Q~demo.service-account.secret-value-0001"
SERVICE_SECRET_ID = "5ec2e7a1-0000-4000-8000-000000000001"  # the secret's ID, not its value
# An app registered with the same permissions whose admin consent was never granted.
NO_CONSENT_APP_ID = "11111111-2222-4333-8444-000000000002"
NO_CONSENT_SECRET = "Zx8Q~demo.no-consent.secret-value-0002"
# The multi-tenant app people sign in to ("Connect your Office 365", Sign in with Microsoft).
USER_APP_ID = "11111111-2222-4333-8444-000000000003"
USER_APP_SECRET = "Zx8Q~demo.user-connections.secret-0003"

# -- Woodgrove, a second customer in its own tenant (woodgrove.com) --------------------------
WOODGROVE_TENANT_ID = "7e2b7c52-5d1a-4f0e-8b1c-00000000b001"
WOODGROVE_APP_ID = "22222222-3333-4444-8555-00000000b001"
WOODGROVE_SECRET = "Wd8Q~woodgrove.service-account.secret-b001"
WOODGROVE_PASSWORD = "Woodgrove-User-1!"
WOODGROVE_PRIVATE_SUBJECT = "Woodgrove private: acquisition terms"
WOODGROVE_PRIVATE_TASK = "Woodgrove private: call the board"

# -- sfsim's demo org (Acme) -----------------------------------------------------------------
SALESFORCE_CONSUMER_KEY = "3MVG9sfsim.demo.m365sync.consumer.key.0001"
SALESFORCE_CONSUMER_SECRET = "sfsim-demo-consumer-secret-0001"
SALESFORCE_CALLBACK = "http://127.0.0.1:8365/salesforce/callback"
SALESFORCE_INTEGRATION_USER = "integration@acme.example"


def demo_settings(sim: SimServer, data_dir: Path, **overrides: Any) -> Settings:
    """m365sync's settings against m365sim: its sign-in host, Graph and CA bundle, the demo
    user-connections app, quick Graph retries, no ``.env`` file; ``overrides`` win."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "authority_host": sim.url,
        "graph_url": sim.graph_url,
        "ca_bundle": sim.tls.ca_bundle,
        "user_app_client_id": USER_APP_ID,
        "user_app_client_secret": USER_APP_SECRET,
        "graph_backoff_base_seconds": 0.01,
        "graph_backoff_max_seconds": 2.0,
        "graph_max_retries": 2,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def woodgrove_seed(redirect_uris: tuple[str, ...] = ()) -> dict[str, object]:
    """Woodgrove's tenant in m365sim's seed format: an admin and a sales rep whose mailbox
    holds private mail (from a contact the demo CRM knows) and a private To Do task, a
    consented service account app, and the product's user-connection app with its secret
    (the service principal a multi-tenant app gets in each tenant that uses it)."""
    redirects = [
        f"{origin}/{path}"
        for origin in ("http://localhost:8365", "http://testserver")
        for path in ("connections/office365/callback", "auth/microsoft/callback")
    ]
    redirects += redirect_uris
    return {
        "id": WOODGROVE_TENANT_ID,
        "displayName": "Woodgrove",
        "domains": ["woodgrove.com"],
        "users": [
            {
                "userPrincipalName": "admin@woodgrove.com",
                "displayName": "Wade Admin",
                "password": WOODGROVE_PASSWORD,
                "isAdmin": True,
            },
            {
                "userPrincipalName": "wendy@woodgrove.com",
                "displayName": "Wendy Rep",
                "password": WOODGROVE_PASSWORD,
            },
        ],
        "apps": [
            {
                "displayName": "m365sync Service Account (Woodgrove)",
                "appId": WOODGROVE_APP_ID,
                "applicationPermissions": [
                    "Mail.Read",
                    "Mail.ReadWrite",
                    "Calendars.Read",
                    "Calendars.ReadWrite",
                ],
                "secrets": [
                    {
                        "keyId": "5ec2e7a1-0000-4000-8000-00000000b001",
                        "value": WOODGROVE_SECRET,
                        "expires": "+365d",
                    }
                ],
                "adminConsent": True,
            },
            {
                "displayName": "m365sync User Connections",
                "appId": USER_APP_ID,
                "signInAudience": "AzureADMultipleOrgs",
                "delegatedPermissions": [
                    "openid",
                    "profile",
                    "email",
                    "offline_access",
                    "User.Read",
                    "Mail.ReadWrite",
                    "Calendars.ReadWrite",
                    "Tasks.ReadWrite",
                ],
                "redirectUris": redirects,
                "secrets": [
                    {
                        "keyId": "5ec2e7a1-0000-4000-8000-00000000b003",
                        "value": USER_APP_SECRET,
                        "expires": "+365d",
                    }
                ],
            },
        ],
        "mailboxes": {
            "wendy@woodgrove.com": {
                "messages": [
                    {
                        "from": {"name": "Kim Buyer", "address": "kim@fabrikam.com"},
                        "subject": WOODGROVE_PRIVATE_SUBJECT,
                        "body": "<p>Confidential: the terms we discussed.</p>",
                        "receivedDateTime": "-2h",
                    }
                ],
                "todo": [{"title": WOODGROVE_PRIVATE_TASK}],
            }
        },
    }
