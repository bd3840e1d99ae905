"""App management through Graph (raw httpx for the shapes, MSAL for the sign-ins): an admin
registers an app, gives it a secret or a certificate and grants it application permissions,
and the app signs in with exactly those; the mistakes and missing rights are refused with
Graph's and Entra's errors; replication delays the token service as in Entra."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from m365sim.directory.models import Tenant
from m365sim.server import SimServer
from support.demo import SERVICE_APP_ID, USER_APP_ID, USER_APP_SECRET
from support.entra_client import (
    CONTOSO,
    REDIRECT_URI,
    Browser,
    GeneratedCertificate,
    make_certificate,
)
from support.entra_client import confidential_app as msal_app
from support.sim_tokens import GRAPH_DEFAULT, GraphFactory, bearer, sim_client

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
MAIL_READ_ROLE = "810c84a8-4a9e-49e6-bf7d-12d183f40d01"
CALENDARS_READWRITE_ROLE = "ef54d2bf-783f-4e0f-bca1-3210c0444d99"
MAIL_READ_SCOPE = "570282fd-fa5c-430d-a7fd-fc8dc98a9dca"
ADMIN_SCOPES = ["Application.ReadWrite.All", "AppRoleAssignment.ReadWrite.All"]
AZURE_AD_GRAPH = "00000002-0000-0000-c000-000000000000"
ADMIN_ID = "00000000-0000-4000-8000-00000000a001"  # admin@contoso.com in the demo seed

pytestmark = [
    pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:msal.*"),
]


def token_claims(result: dict[str, Any]) -> dict[str, Any]:
    assert "access_token" in result, result
    claims: dict[str, Any] = jwt.decode(result["access_token"], options={"verify_signature": False})
    return claims


def app_token(sim: SimServer, app_id: str, credential: Any) -> dict[str, Any]:
    """A fresh MSAL app each time: MSAL replays a failed answer from its own cache."""
    result: dict[str, Any] = msal_app(sim, app_id, credential).acquire_token_for_client(
        GRAPH_DEFAULT
    )
    return result


def cert_credential(cert: GeneratedCertificate) -> dict[str, str]:
    return {"private_key": cert.private_key_pem, "thumbprint": cert.sha1_thumbprint}


def key_credential(cert: GeneratedCertificate, name: str = "sync") -> dict[str, Any]:
    der = x509.load_pem_x509_certificate(cert.certificate_pem.encode()).public_bytes(
        serialization.Encoding.DER
    )
    return {
        "type": "AsymmetricX509Cert",
        "usage": "Verify",
        "key": base64.b64encode(der).decode(),
        "displayName": name,
    }


def proof_of_possession(
    sim: SimServer,
    cert: GeneratedCertificate,
    object_id: str,
    *,
    aud: str = AZURE_AD_GRAPH,
    lifetime: int = 600,
) -> str:
    """The proof addKey / removeKey want, built as Microsoft's guide builds it."""
    now = int(sim.state.now().timestamp())
    x5t = base64.urlsafe_b64encode(bytes.fromhex(cert.sha1_thumbprint)).rstrip(b"=").decode()
    return jwt.encode(
        {"aud": aud, "iss": object_id, "nbf": now, "exp": now + lifetime},
        cert.private_key_pem,
        algorithm="RS256",
        headers={"x5t": x5t},
    )


def graph_principal_id(client: httpx.Client) -> str:
    found = client.get("/servicePrincipals", params={"$filter": f"appId eq '{GRAPH_APP_ID}'"})
    (principal,) = found.json()["value"]
    return str(principal["id"])


def register(
    client: httpx.Client, name: str = "m365sync (set up for me)", **extra: Any
) -> dict[str, Any]:
    """An app with its service principal."""
    created = client.post("/applications", json={"displayName": name, **extra})
    assert created.status_code == 201, created.text
    app: dict[str, Any] = created.json()
    principal = client.post("/servicePrincipals", json={"appId": app["appId"]})
    assert principal.status_code == 201, principal.text
    app["servicePrincipalId"] = principal.json()["id"]
    return app


def grant_role(client: httpx.Client, principal_id: str, role_id: str) -> httpx.Response:
    resource = graph_principal_id(client)
    return client.post(
        f"/servicePrincipals/{resource}/appRoleAssignedTo",
        json={"principalId": principal_id, "resourceId": resource, "appRoleId": role_id},
    )


@pytest.fixture
def admin(graph: GraphFactory) -> httpx.Client:
    """Megan, a Global Administrator, with the management scopes consented."""
    return graph("admin@contoso.com", scopes=ADMIN_SCOPES)


def test_admin_registers_an_app_whose_new_secret_gets_the_consented_roles(
    sim: SimServer, admin: httpx.Client, demo_tenant: Tenant, control: httpx.Client
) -> None:
    created = admin.post(
        "/applications",
        json={
            "displayName": "m365sync (set up for me)",
            "signInAudience": "AzureADMyOrg",
            "requiredResourceAccess": [
                {
                    "resourceAppId": GRAPH_APP_ID,
                    "resourceAccess": [
                        {"id": MAIL_READ_ROLE, "type": "Role"},
                        {"id": CALENDARS_READWRITE_ROLE, "type": "Role"},
                    ],
                }
            ],
        },
    )
    assert created.status_code == 201
    app = created.json()
    assert app["@odata.context"].endswith("/v1.0/$metadata#applications/$entity")
    assert app["displayName"] == "m365sync (set up for me)"
    assert app["signInAudience"] == "AzureADMyOrg"
    assert app["passwordCredentials"] == [] and app["keyCredentials"] == []
    assert app["publisherDomain"] == "contoso.onmicrosoft.com"
    assert {a["id"] for a in app["requiredResourceAccess"][0]["resourceAccess"]} == {
        MAIL_READ_ROLE,
        CALENDARS_READWRITE_ROLE,
    }
    by_filter = admin.get("/applications", params={"$filter": f"appId eq '{app['appId']}'"})
    assert [a["id"] for a in by_filter.json()["value"]] == [app["id"]]
    by_app_id = admin.get(f"/applications(appId='{app['appId']}')")
    assert by_app_id.status_code == 200 and by_app_id.json()["id"] == app["id"]

    # Registered but without a service principal: Entra refuses to sign it in.
    secret = admin.post(f"/applications/{app['id']}/addPassword", json={}).json()
    no_principal = app_token(sim, app["appId"], secret["secretText"])
    assert no_principal["error_codes"] == [7000229]

    principal = admin.post("/servicePrincipals", json={"appId": app["appId"]})
    assert principal.status_code == 201
    sp = principal.json()
    assert sp["appId"] == app["appId"] and sp["servicePrincipalType"] == "Application"
    assert sp["appOwnerOrganizationId"] == demo_tenant.id
    twice = admin.post("/servicePrincipals", json={"appId": app["appId"]})
    assert twice.status_code == 409
    assert twice.json()["error"]["code"] == "Request_MultipleObjectsWithSameKeyValue"

    added = admin.post(
        f"/applications/{app['id']}/addPassword",
        json={"passwordCredential": {"displayName": "m365sync"}},
    )
    assert added.status_code == 200
    password = added.json()
    assert password["@odata.context"].endswith("$metadata#microsoft.graph.passwordCredential")
    assert password["displayName"] == "m365sync" and len(password["secretText"]) == 40
    assert password["hint"] == password["secretText"][:3]
    assert password["endDateTime"] > password["startDateTime"]
    listed = admin.get(f"/applications/{app['id']}").json()["passwordCredentials"]
    assert {p["keyId"] for p in listed} == {secret["keyId"], password["keyId"]}
    assert all(p["secretText"] is None for p in listed)

    # No consent yet: a token without roles.
    assert "roles" not in token_claims(app_token(sim, app["appId"], password["secretText"]))

    granted = grant_role(admin, sp["id"], MAIL_READ_ROLE)
    assert granted.status_code == 201
    assignment = granted.json()
    assert assignment["appRoleId"] == MAIL_READ_ROLE
    assert (
        assignment["principalId"] == sp["id"] and assignment["principalType"] == "ServicePrincipal"
    )
    assert assignment["resourceDisplayName"] == "Microsoft Graph"
    assert assignment["principalDisplayName"] == "m365sync (set up for me)"
    assert grant_role(admin, sp["id"], CALENDARS_READWRITE_ROLE).status_code == 201
    again = grant_role(admin, sp["id"], MAIL_READ_ROLE)
    assert again.status_code == 400
    assert again.json()["error"]["message"] == (
        "Permission being assigned already exists on the object."
    )

    claims = token_claims(app_token(sim, app["appId"], password["secretText"]))
    assert claims["roles"] == ["Calendars.ReadWrite", "Mail.Read"]
    assert claims["oid"] == sp["id"] and claims["appidacr"] == "1"
    access = app_token(sim, app["appId"], password["secretText"])["access_token"]
    with sim_client(sim, base_url=sim.graph_url, headers=bearer(access)) as as_the_app:
        mail = as_the_app.get("/users/adele@contoso.com/messages")
    assert mail.status_code == 200

    listing = control.get(f"/_sim/tenants/{CONTOSO}/applications").json()["value"]
    (audited,) = [a for a in listing if a["appId"] == app["appId"]]
    assert audited["servicePrincipal"]["grantedApplicationPermissions"] == [
        "Calendars.ReadWrite",
        "Mail.Read",
    ]
    assert len(audited["secrets"]) == 2 and "value" not in audited["secrets"][0]
    assert audited["owners"] == [ADMIN_ID]  # the administrator who registered it


def test_microsoft_graph_service_principal_publishes_the_real_permission_ids(
    graph: GraphFactory,
) -> None:
    client = graph(roles=["Application.Read.All"])
    answer = client.get(f"/servicePrincipals(appId='{GRAPH_APP_ID}')")
    assert answer.status_code == 200
    sp = answer.json()
    assert sp["displayName"] == "Microsoft Graph"
    roles = {r["value"]: r["id"] for r in sp["appRoles"]}
    assert roles["Mail.Read"] == MAIL_READ_ROLE
    assert roles["Mail.ReadWrite"] == "e2a3a72e-5f79-4c64-b1b1-878b674786c9"
    assert roles["Calendars.Read"] == "798ee544-9d2d-430c-a058-570e29e34338"
    assert roles["Calendars.ReadWrite"] == CALENDARS_READWRITE_ROLE
    assert roles["Application.ReadWrite.OwnedBy"] == "18a4783c-866b-4cc7-a460-3d5e5662c884"
    scopes = {s["value"]: s["id"] for s in sp["oauth2PermissionScopes"]}
    assert scopes["Mail.Read"] == MAIL_READ_SCOPE
    assert scopes["Application.ReadWrite.All"] == "bdfbf15f-ee85-4955-8675-146e8e5296b5"
    assert "Application.ReadWrite.OwnedBy" not in scopes  # Graph publishes no delegated variant
    assert graph_principal_id(client) == sp["id"]


def test_a_user_without_an_admin_role_cannot_grant_application_permissions(
    graph: GraphFactory, control: httpx.Client, admin: httpx.Client
) -> None:
    adele = graph("adele@contoso.com", scopes=ADMIN_SCOPES)
    # Users may register apps (the tenant's default), and own what they register ...
    app = register(adele, "Adele's tool")
    assert adele.post(f"/applications/{app['id']}/addPassword", json={}).status_code == 200
    # ... but only an administrator grants Microsoft Graph's application permissions.
    denied = grant_role(adele, app["servicePrincipalId"], MAIL_READ_ROLE)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "Authorization_RequestDenied"
    assert denied.json()["error"]["message"].startswith(
        "Insufficient privileges to complete the operation."
    )
    # Not an owner of someone else's app:
    theirs = register(admin, "Admin's tool")
    assert adele.post(f"/applications/{theirs['id']}/addPassword", json={}).status_code == 403
    # A Cloud Application Administrator manages apps but may not grant Graph's app roles.
    control.patch(
        f"/_sim/tenants/{CONTOSO}/users/alex@contoso.com",
        json={"directoryRoles": ["Cloud Application Administrator"]},
    )
    alex = graph("alex@contoso.com", scopes=ADMIN_SCOPES)
    assert alex.post(f"/applications/{theirs['id']}/addPassword", json={}).status_code == 200
    assert grant_role(alex, theirs["servicePrincipalId"], MAIL_READ_ROLE).status_code == 403
    # A Privileged Role Administrator may.
    control.patch(
        f"/_sim/tenants/{CONTOSO}/users/alex@contoso.com",
        json={"directoryRoles": ["Privileged Role Administrator"]},
    )
    assert grant_role(alex, theirs["servicePrincipalId"], MAIL_READ_ROLE).status_code == 201
    # With "Users can register applications" off, a plain user can't register one.
    control.patch(f"/_sim/tenants/{CONTOSO}", json={"usersCanRegisterApps": False})
    refused = adele.post("/applications", json={"displayName": "Another tool"})
    assert refused.status_code == 403
    assert "Application Developer" in refused.json()["error"]["message"]


def test_a_missing_permission_is_refused(graph: GraphFactory, admin: httpx.Client) -> None:
    no_scope = graph("admin@contoso.com", scopes=["User.Read"])
    assert no_scope.post("/applications", json={"displayName": "x"}).status_code == 403
    assert no_scope.get("/applications").status_code == 403
    app = register(admin)
    only_apps = graph("admin@contoso.com", scopes=["Application.ReadWrite.All"])
    denied = grant_role(only_apps, app["servicePrincipalId"], MAIL_READ_ROLE)
    assert denied.status_code == 403
    assert "AppRoleAssignment.ReadWrite.All" in denied.json()["error"]["message"]
    mail_reader = graph(roles=["Mail.Read"])
    assert mail_reader.get("/applications").json()["error"]["code"] == (
        "Authorization_RequestDenied"
    )
    # App-only consent needs AppRoleAssignment.ReadWrite.All and a way to read apps.
    assignments_only = graph(roles=["AppRoleAssignment.ReadWrite.All"])
    assert grant_role(admin, app["servicePrincipalId"], MAIL_READ_ROLE).status_code == 201
    resource = graph_principal_id(admin)
    blocked = assignments_only.post(
        f"/servicePrincipals/{resource}/appRoleAssignedTo",
        json={
            "principalId": app["servicePrincipalId"],
            "resourceId": resource,
            "appRoleId": CALENDARS_READWRITE_ROLE,
        },
    )
    assert blocked.status_code == 403
    both = graph(roles=["AppRoleAssignment.ReadWrite.All", "Application.Read.All"])
    assert grant_role(both, app["servicePrincipalId"], CALENDARS_READWRITE_ROLE).status_code == 201


def test_an_app_with_owned_by_manages_only_the_apps_it_created(
    sim: SimServer, graph: GraphFactory, demo_tenant: Tenant
) -> None:
    manager = graph(roles=["Application.ReadWrite.OwnedBy"], app_id=SERVICE_APP_ID)
    app = register(manager, "Created by the service account")
    assert manager.post(f"/applications/{app['id']}/addPassword", json={}).status_code == 200
    demo_app = demo_tenant.apps[USER_APP_ID]
    assert manager.post(f"/applications/{demo_app.object_id}/addPassword").status_code == 403
    assert manager.get("/applications").status_code == 200  # listing is allowed
    patched = manager.patch(
        f"/applications(appId='{app['appId']}')",
        json={
            "requiredResourceAccess": [
                {
                    "resourceAppId": GRAPH_APP_ID,
                    "resourceAccess": [
                        {"id": MAIL_READ_ROLE, "type": "Role"},
                        {"id": MAIL_READ_SCOPE, "type": "Scope"},
                    ],
                }
            ]
        },
    )
    assert patched.status_code == 204
    assert demo_tenant.apps[app["appId"]].application_permissions == {"Mail.Read"}
    assert demo_tenant.apps[app["appId"]].delegated_permissions == {"Mail.Read"}
    unknown = manager.patch(
        f"/applications/{app['id']}",
        json={
            "requiredResourceAccess": [
                {
                    "resourceAppId": GRAPH_APP_ID,
                    "resourceAccess": [{"id": MAIL_READ_SCOPE, "type": "Role"}],
                }
            ]
        },
    )
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "Request_BadRequest"
    assert manager.delete(f"/applications/{app['id']}").status_code == 204
    assert manager.get(f"/applications/{app['id']}").status_code == 404
    assert app["appId"] not in demo_tenant.service_principals


def test_replication_delay_answers_with_entras_errors_until_it_has_passed(
    sim: SimServer, admin: httpx.Client, control: httpx.Client
) -> None:
    control.patch(f"/_sim/tenants/{CONTOSO}", json={"replicationDelaySeconds": 30})

    def later() -> None:
        control.post("/_sim/clock", json={"advanceSeconds": 31})

    app = admin.post("/applications", json={"displayName": "slow"}).json()
    secret = admin.post(f"/applications/{app['id']}/addPassword", json={}).json()["secretText"]
    assert app_token(sim, app["appId"], secret)["error_codes"] == [700016]
    later()
    sp = admin.post("/servicePrincipals", json={"appId": app["appId"]}).json()
    assert app_token(sim, app["appId"], secret)["error_codes"] == [7000229]
    later()
    assert grant_role(admin, sp["id"], MAIL_READ_ROLE).status_code == 201
    assert "roles" not in token_claims(app_token(sim, app["appId"], secret))
    later()
    assert token_claims(app_token(sim, app["appId"], secret))["roles"] == ["Mail.Read"]

    newer = admin.post(f"/applications/{app['id']}/addPassword", json={}).json()["secretText"]
    unknown = app_token(sim, app["appId"], newer)
    assert unknown["error_codes"] == [7000215] and unknown["error"] == "invalid_client"
    later()
    assert token_claims(app_token(sim, app["appId"], newer))["roles"] == ["Mail.Read"]


def test_remove_password_stops_the_secret(
    sim: SimServer, admin: httpx.Client, control: httpx.Client
) -> None:
    app = register(admin)
    first = admin.post(f"/applications/{app['id']}/addPassword", json={}).json()
    second = admin.post(f"/applications/{app['id']}/addPassword", json={}).json()
    assert "access_token" in app_token(sim, app["appId"], first["secretText"])
    removed = admin.post(
        f"/applications(appId='{app['appId']}')/removePassword", json={"keyId": first["keyId"]}
    )
    assert removed.status_code == 204
    assert app_token(sim, app["appId"], first["secretText"])["error_codes"] == [7000215]
    assert "access_token" in app_token(sim, app["appId"], second["secretText"])
    again = admin.post(f"/applications/{app['id']}/removePassword", json={"keyId": first["keyId"]})
    assert again.status_code == 400
    app_json = control.get(f"/_sim/tenants/{CONTOSO}/apps/{app['appId']}").json()
    assert [s["keyId"] for s in app_json["secrets"]] == [second["keyId"]]


def test_certificates_roll_with_add_key_and_remove_key(sim: SimServer, admin: httpx.Client) -> None:
    app = register(admin)
    assert grant_role(admin, app["servicePrincipalId"], MAIL_READ_ROLE).status_code == 201
    first, second = make_certificate("first"), make_certificate("second")

    # No certificate yet: addKey has nothing to prove possession of; the first one is set
    # by updating the application.
    early = admin.post(
        f"/applications/{app['id']}/addKey",
        json={
            "keyCredential": key_credential(first),
            "passwordCredential": None,
            "proof": proof_of_possession(sim, first, app["id"]),
        },
    )
    assert early.status_code == 401
    assert early.json()["error"]["code"] == "Authentication_MissingOrMalformed"
    patched = admin.patch(
        f"/applications/{app['id']}", json={"keyCredentials": [key_credential(first, "first")]}
    )
    assert patched.status_code == 204
    claims = token_claims(app_token(sim, app["appId"], cert_credential(first)))
    assert claims["roles"] == ["Mail.Read"] and claims["appidacr"] == "2"

    # The app rolls its own certificate: its own token needs no permission, the proof is
    # signed with the current key.
    own = app_token(sim, app["appId"], cert_credential(first))["access_token"]
    with sim_client(sim, base_url=sim.graph_url, headers=bearer(own)) as as_the_app:
        rolled = as_the_app.post(
            f"/applications/{app['id']}/addKey",
            json={
                "keyCredential": key_credential(second, "second"),
                "passwordCredential": None,
                "proof": proof_of_possession(sim, first, app["id"]),
            },
        )
    assert rolled.status_code == 200, rolled.text
    key = rolled.json()
    assert key["@odata.context"].endswith("$metadata#microsoft.graph.keyCredential")
    assert key["type"] == "AsymmetricX509Cert" and key["usage"] == "Verify"
    assert key["displayName"] == "second" and key["key"] is None
    assert base64.b64decode(key["customKeyIdentifier"]).hex().upper() == second.sha1_thumbprint
    assert token_claims(app_token(sim, app["appId"], cert_credential(second)))["roles"] == [
        "Mail.Read"
    ]
    keys = admin.get(f"/applications/{app['id']}", params={"$select": "id,keyCredentials"}).json()
    assert set(keys) == {"@odata.context", "id", "keyCredentials"}
    assert all(k["key"] for k in keys["keyCredentials"])  # the key only on $select
    first_id = next(k["keyId"] for k in keys["keyCredentials"] if k["displayName"] == "first")

    removed = admin.post(
        f"/applications/{app['id']}/removeKey",
        json={"keyId": first_id, "proof": proof_of_possession(sim, second, app["id"])},
    )
    assert removed.status_code == 204
    gone = app_token(sim, app["appId"], cert_credential(first))
    assert gone["error_codes"] == [700027]
    assert "access_token" in app_token(sim, app["appId"], cert_credential(second))


def test_add_key_checks_the_proof_of_possession(sim: SimServer, admin: httpx.Client) -> None:
    app = register(admin)
    current, new, stranger = make_certificate(), make_certificate(), make_certificate()
    admin.patch(f"/applications/{app['id']}", json={"keyCredentials": [key_credential(current)]})

    def add(proof: str | None) -> httpx.Response:
        return admin.post(
            f"/applications/{app['id']}/addKey",
            json={"keyCredential": key_credential(new), "passwordCredential": None, "proof": proof},
        )

    missing = add(None)
    assert missing.status_code == 403
    assert missing.json()["error"]["code"] == "Authorization_RequestDenied"
    for bad, why in (
        (proof_of_possession(sim, current, app["appId"]), "object id"),
        (proof_of_possession(sim, current, app["id"], lifetime=1200), "10 minutes"),
        (proof_of_possession(sim, current, app["id"], aud="https://graph.microsoft.com"), "aud"),
        (proof_of_possession(sim, stranger, app["id"]), "private key"),
    ):
        refused = add(bad)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "Authentication_MissingOrMalformed"
        assert why in refused.json()["error"]["message"]
    # Microsoft's newer guide names Microsoft Graph's app id as the audience; both work.
    assert add(proof_of_possession(sim, current, app["id"], aud=GRAPH_APP_ID)).status_code == 200


def test_delegated_consent_through_oauth2_permission_grants(
    sim: SimServer, admin: httpx.Client, graph: GraphFactory, demo_tenant: Tenant
) -> None:
    grants = graph(
        "admin@contoso.com",
        scopes=["DelegatedPermissionGrant.ReadWrite.All", "Application.Read.All"],
    )
    client_sp = demo_tenant.service_principals[USER_APP_ID].id
    resource = graph_principal_id(grants)
    created = grants.post(
        "/oauth2PermissionGrants",
        json={
            "clientId": client_sp,
            "consentType": "AllPrincipals",
            "resourceId": resource,
            "scope": "openid offline_access Mail.ReadWrite Calendars.ReadWrite",
        },
    )
    assert created.status_code == 201, created.text
    grant = created.json()
    assert grant["consentType"] == "AllPrincipals" and grant["principalId"] is None
    raw = base64.urlsafe_b64decode(grant["id"] + "==")  # Entra's: client + resource GUID bytes
    assert raw == uuid.UUID(client_sp).bytes_le + uuid.UUID(resource).bytes_le
    duplicate = grants.post(
        "/oauth2PermissionGrants",
        json={
            "clientId": client_sp,
            "consentType": "AllPrincipals",
            "resourceId": resource,
            "scope": "Mail.Read",
        },
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["message"] == "Permission entry already exists."
    listed = grants.get("/oauth2PermissionGrants", params={"$filter": f"clientId eq '{client_sp}'"})
    assert [g["id"] for g in listed.json()["value"]] == [grant["id"]]

    # Users of the app are no longer asked.
    with Browser(sim) as browser:
        app = msal_app(sim, USER_APP_ID, USER_APP_SECRET)
        flow = app.initiate_auth_code_flow(
            ["Mail.ReadWrite", "Calendars.ReadWrite"], redirect_uri=REDIRECT_URI
        )
        answer = browser.sign_in(flow["auth_uri"], "adele@contoso.com", "Demo-User-1!")
        assert browser.visited == ["Sign in"]
        assert "access_token" in app.acquire_token_by_auth_code_flow(flow, answer)

    assert grants.delete(f"/oauth2PermissionGrants/{grant['id']}").status_code == 204
    assert grants.get(f"/oauth2PermissionGrants/{grant['id']}").status_code == 404
    adele = graph("adele@contoso.com", scopes=["DelegatedPermissionGrant.ReadWrite.All"])
    refused = adele.post(
        "/oauth2PermissionGrants",
        json={
            "clientId": client_sp,
            "consentType": "AllPrincipals",
            "resourceId": resource,
            "scope": "Mail.Read",
        },
    )
    assert refused.status_code == 403
    unknown = grants.post(
        "/oauth2PermissionGrants",
        json={
            "clientId": client_sp,
            "consentType": "AllPrincipals",
            "resourceId": resource,
            "scope": "Mail.Everything",
        },
    )
    assert unknown.status_code == 400 and "Mail.Everything" in unknown.json()["error"]["message"]


def test_revoking_an_app_role_assignment_removes_the_role(
    sim: SimServer, admin: httpx.Client
) -> None:
    app = register(admin)
    secret = admin.post(f"/applications/{app['id']}/addPassword", json={}).json()["secretText"]
    assert grant_role(admin, app["servicePrincipalId"], MAIL_READ_ROLE).status_code == 201
    assert grant_role(admin, app["servicePrincipalId"], CALENDARS_READWRITE_ROLE).status_code == 201
    held = admin.get(f"/servicePrincipals/{app['servicePrincipalId']}/appRoleAssignments").json()
    assert {a["appRoleId"] for a in held["value"]} == {MAIL_READ_ROLE, CALENDARS_READWRITE_ROLE}
    mail = next(a for a in held["value"] if a["appRoleId"] == MAIL_READ_ROLE)
    revoked = admin.delete(
        f"/servicePrincipals/{app['servicePrincipalId']}/appRoleAssignments/{mail['id']}"
    )
    assert revoked.status_code == 204
    assert token_claims(app_token(sim, app["appId"], secret))["roles"] == ["Calendars.ReadWrite"]
    unknown_role = grant_role(admin, app["servicePrincipalId"], MAIL_READ_SCOPE)
    assert unknown_role.status_code == 400
    assert "was not found on application" in unknown_role.json()["error"]["message"]


def test_graph_tokens_carry_the_users_directory_roles(
    sim: SimServer, control: httpx.Client, demo_tenant: Tenant
) -> None:
    """Delegated tokens carry ``wids``; a Global Administrator's includes its template id."""
    user_app = demo_tenant.apps[USER_APP_ID]
    user_app.delegated_permissions |= {"User.Read"}
    control.post(
        f"/_sim/tenants/{CONTOSO}/apps/{USER_APP_ID}/delegatedConsent",
        json={"scopes": ["User.Read"]},
    )
    with Browser(sim) as browser:
        app = msal_app(sim, USER_APP_ID, USER_APP_SECRET)
        flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=REDIRECT_URI)
        answer = browser.sign_in(flow["auth_uri"], "admin@contoso.com", "Demo-Admin-1!")
        claims = token_claims(app.acquire_token_by_auth_code_flow(flow, answer))
    assert "62e90394-69f5-4237-9190-012177145e10" in claims["wids"]
    assert claims["wids"][-1] == "b79fbf4d-3ef9-4689-8143-76b194e85509"
