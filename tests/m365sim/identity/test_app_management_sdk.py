"""Unmodified msgraph-sdk registers an app the way "Set it up for me" will: an administrator
signs in to a setup app (delegated, admin consent for the management scopes), and the SDK
creates the application, its service principal and a secret, and grants an application
permission on Microsoft Graph's service principal. The new secret then signs in with MSAL
and gets exactly the consented role."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from urllib.parse import urlencode
from uuid import UUID

import httpx
import jwt
import pytest
from azure.identity.aio import AuthorizationCodeCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphServiceClient
from msgraph.generated.applications.item.add_password.add_password_post_request_body import (
    AddPasswordPostRequestBody,
)
from msgraph.generated.models.app_role_assignment import AppRoleAssignment
from msgraph.generated.models.application import Application
from msgraph.generated.models.password_credential import PasswordCredential
from msgraph.generated.models.required_resource_access import RequiredResourceAccess
from msgraph.generated.models.resource_access import ResourceAccess
from msgraph.generated.models.service_principal import ServicePrincipal
from msgraph.generated.service_principals.service_principals_request_builder import (
    ServicePrincipalsRequestBuilder,
)
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph_core import GraphClientFactory

from m365sim.directory.models import Tenant
from m365sim.server import SimServer
from support.entra_client import CONTOSO, Browser, confidential_app
from support.sim_tokens import GRAPH_DEFAULT, sim_async_client

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
SETUP_APP_ID = "11111111-2222-4333-8444-0000000000aa"
SETUP_SECRET = "Zx8Q~setup.app.secret-value-for-tests-01"
SETUP_REDIRECT = "http://localhost:8365/connections/setup/callback"
ADMIN_ID = "00000000-0000-4000-8000-00000000a001"  # admin@contoso.com in the demo seed
MANAGEMENT_SCOPES = ["Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"]

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:msal.*"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:msgraph.*"),
]


async def admin_code(sim: SimServer) -> str:
    """The administrator signs in to the setup app and consents for the organization; the
    browser lands on the setup app's redirect URI with an authorization code."""
    async with sim_async_client(sim) as control:
        registered = await control.post(
            f"/_sim/tenants/{CONTOSO}/apps",
            json={
                "displayName": "m365sync setup",
                "appId": SETUP_APP_ID,
                "redirectUris": [SETUP_REDIRECT],
                "delegatedPermissions": ["openid", "offline_access", *MANAGEMENT_SCOPES],
                "secrets": [{"value": SETUP_SECRET}],
            },
        )
        assert registered.status_code == 201, registered.text
    query = urlencode(
        {
            "client_id": SETUP_APP_ID,
            "response_type": "code",
            "redirect_uri": SETUP_REDIRECT,
            "scope": "openid offline_access https://graph.microsoft.com/.default",
            "state": "setup",
        }
    )
    with Browser(sim) as browser:
        answer = browser.sign_in(
            f"{sim.url}/{CONTOSO}/oauth2/v2.0/authorize?{query}",
            "admin@contoso.com",
            "Demo-Admin-1!",
            for_organization=True,
        )
    assert answer.get("state") == "setup", answer
    return answer["code"]


@pytest.fixture
async def sdk(sim: SimServer, demo_tenant: Tenant) -> AsyncIterator[GraphServiceClient]:
    """msgraph-sdk acting for the administrator (authorization code flow, azure-identity)."""
    code = await admin_code(sim)
    credential = AuthorizationCodeCredential(
        demo_tenant.id,
        SETUP_APP_ID,
        code,
        SETUP_REDIRECT,
        client_secret=SETUP_SECRET,
        authority=sim.url.removeprefix("https://"),
    )
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=GRAPH_DEFAULT, allowed_hosts=["127.0.0.1"]
    )
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=ssl.create_default_context(cafile=sim.tls.ca_pem))
    )
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = sim.graph_url
    yield GraphServiceClient(request_adapter=adapter)
    await credential.close()


async def test_sdk_registers_an_app_with_a_secret_and_admin_consent(
    sim: SimServer, sdk: GraphServiceClient, demo_tenant: Tenant
) -> None:
    query = ServicePrincipalsRequestBuilder.ServicePrincipalsRequestBuilderGetQueryParameters(
        filter=f"appId eq '{GRAPH_APP_ID}'"
    )
    found = await sdk.service_principals.get(RequestConfiguration(query_parameters=query))
    assert found is not None and found.value is not None
    (graph_sp,) = found.value
    assert graph_sp.app_roles is not None
    mail_read = next(r for r in graph_sp.app_roles if r.value == "Mail.Read")
    assert str(mail_read.id) == "810c84a8-4a9e-49e6-bf7d-12d183f40d01"

    app = await sdk.applications.post(
        Application(
            display_name="m365sync (set up for me)",
            sign_in_audience="AzureADMyOrg",
            required_resource_access=[
                RequiredResourceAccess(
                    resource_app_id=GRAPH_APP_ID,
                    resource_access=[ResourceAccess(id=mail_read.id, type="Role")],
                )
            ],
        )
    )
    assert app is not None and app.id and app.app_id
    assert app.required_resource_access is not None
    (requested,) = app.required_resource_access
    assert [access.id for access in requested.resource_access or []] == [mail_read.id]

    principal = await sdk.service_principals.post(ServicePrincipal(app_id=app.app_id))
    assert principal is not None and principal.id and principal.app_id == app.app_id

    secret = await sdk.applications.by_application_id(app.id).add_password.post(
        AddPasswordPostRequestBody(password_credential=PasswordCredential(display_name="sync"))
    )
    assert secret is not None and secret.secret_text and secret.key_id is not None
    assert secret.display_name == "sync" and secret.hint == secret.secret_text[:3]

    assert graph_sp.id is not None
    assignment = await sdk.service_principals.by_service_principal_id(
        graph_sp.id
    ).app_role_assigned_to.post(
        AppRoleAssignment(
            principal_id=UUID(principal.id),
            resource_id=UUID(graph_sp.id),
            app_role_id=mail_read.id,
        )
    )
    assert assignment is not None and assignment.app_role_id == mail_read.id
    assert assignment.resource_display_name == "Microsoft Graph"

    result = confidential_app(sim, app.app_id, secret.secret_text).acquire_token_for_client(
        GRAPH_DEFAULT
    )
    assert "access_token" in result, result
    claims = jwt.decode(result["access_token"], options={"verify_signature": False})
    assert claims["roles"] == ["Mail.Read"] and claims["appid"] == app.app_id

    # Exactly one app, one service principal, one secret and the consented role.
    registered = demo_tenant.apps[app.app_id]
    assert registered.owner_ids == {ADMIN_ID}
    assert [s.key_id for s in registered.secrets] == [str(secret.key_id)]
    assert demo_tenant.service_principals[app.app_id].granted_application_permissions == {
        "Mail.Read"
    }
