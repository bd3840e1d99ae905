"""Graph v1.0 JSON for app management: application, servicePrincipal, passwordCredential,
keyCredential, appRoleAssignment and oAuth2PermissionGrant, in the order and with the
defaults Microsoft Graph returns them. Properties m365sim doesn't model carry Graph's
defaults for a new registration (empty lists, nulls)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from m365sim.dates import graph_timestamp
from m365sim.directory.graph_permissions import (
    GRAPH_PERMISSIONS,
    MICROSOFT_TENANT_ID,
    app_role,
    scope,
)
from m365sim.directory.models import (
    GRAPH_APP_ID,
    AppRegistration,
    Certificate,
    ClientSecret,
    DelegatedGrant,
    RoleAssignment,
    ServicePrincipal,
    Tenant,
)
from m365sim.graph.applications.models import GraphResource, Principal, grant_id

__all__ = [
    "APPLICATION_PROPERTIES",
    "GRANT_PROPERTIES",
    "SERVICE_PRINCIPAL_PROPERTIES",
    "application_json",
    "assignment_json",
    "grant_json",
    "key_json",
    "password_json",
    "service_principal_json",
]


def _stamp(value: datetime | None) -> str | None:
    return graph_timestamp(value) if value is not None else None


def _info() -> dict[str, Any]:
    return {
        "logoUrl": None,
        "marketingUrl": None,
        "privacyStatementUrl": None,
        "supportUrl": None,
        "termsOfServiceUrl": None,
    }


def _verified_publisher() -> dict[str, Any]:
    return {"displayName": None, "verifiedPublisherId": None, "addedDateTime": None}


def publisher_domain(tenant: Tenant) -> str:
    initial = [d for d in tenant.domains if d.endswith(".onmicrosoft.com")]
    return (initial or tenant.domains)[0]


def password_json(secret: ClientSecret, *, with_text: bool = False) -> dict[str, Any]:
    """A passwordCredential; ``secretText`` only in addPassword's answer."""
    return {
        "customKeyIdentifier": None,
        "displayName": secret.display_name or None,
        "endDateTime": _stamp(secret.expires_at),
        "hint": secret.hint,
        "keyId": secret.key_id,
        "secretText": secret.value if with_text else None,
        "startDateTime": _stamp(secret.starts_at or secret.expires_at),
    }


def key_json(certificate: Certificate, *, with_key: bool = False) -> dict[str, Any]:
    """A keyCredential; ``key`` (base64 DER) only when asked for with ``$select`` on one
    object, and ``customKeyIdentifier`` the certificate's SHA-1 thumbprint bytes."""
    thumbprint = bytes.fromhex(certificate.sha1_thumbprint)
    return {
        "customKeyIdentifier": base64.b64encode(thumbprint).decode("ascii"),
        "displayName": certificate.display_name or None,
        "endDateTime": _stamp(certificate.expires_at),
        "key": base64.b64encode(certificate.der).decode("ascii") if with_key else None,
        "keyId": certificate.key_id,
        "startDateTime": _stamp(certificate.starts_at),
        "type": "AsymmetricX509Cert",
        "usage": certificate.usage,
    }


def required_resource_access(app: AppRegistration) -> list[dict[str, Any]]:
    """The app's requested Graph permissions by id (names Graph doesn't publish are left out)."""
    access = [
        {"id": found.role_id, "type": "Role"}
        for name in sorted(app.application_permissions)
        if (found := app_role(name)) is not None
    ]
    access += [
        {"id": found.scope_id, "type": "Scope"}
        for name in sorted(app.delegated_permissions)
        if (found := scope(name)) is not None
    ]
    return [{"resourceAppId": GRAPH_APP_ID, "resourceAccess": access}] if access else []


APPLICATION_PROPERTIES = frozenset(
    {
        "id", "deletedDateTime", "appId", "applicationTemplateId", "disabledByMicrosoftStatus",
        "createdDateTime", "displayName", "description", "groupMembershipClaims",
        "identifierUris", "isDeviceOnlyAuthSupported", "isFallbackPublicClient", "notes",
        "publisherDomain", "serviceManagementReference", "signInAudience", "tags",
        "tokenEncryptionKeyId", "defaultRedirectUri", "optionalClaims", "addIns", "api",
        "appRoles", "info", "keyCredentials", "parentalControlSettings", "passwordCredentials",
        "publicClient", "requiredResourceAccess", "verifiedPublisher", "web", "spa",
    }
)  # fmt: skip


def application_json(
    tenant: Tenant, app: AppRegistration, *, with_keys: bool = False
) -> dict[str, Any]:
    return {
        "id": app.object_id,
        "deletedDateTime": None,
        "appId": app.app_id,
        "applicationTemplateId": None,
        "disabledByMicrosoftStatus": None,
        "createdDateTime": _stamp(app.created_at),
        "displayName": app.display_name,
        "description": None,
        "groupMembershipClaims": None,
        "identifierUris": [],
        "isDeviceOnlyAuthSupported": None,
        "isFallbackPublicClient": app.allow_public_client or None,
        "notes": None,
        "publisherDomain": publisher_domain(tenant),
        "serviceManagementReference": None,
        "signInAudience": app.sign_in_audience,
        "tags": [],
        "tokenEncryptionKeyId": None,
        "defaultRedirectUri": None,
        "optionalClaims": None,
        "addIns": [],
        "api": {
            "acceptMappedClaims": None,
            "knownClientApplications": [],
            "requestedAccessTokenVersion": None,
            "oauth2PermissionScopes": [],
            "preAuthorizedApplications": [],
        },
        "appRoles": [],
        "info": _info(),
        "keyCredentials": [key_json(c, with_key=with_keys) for c in app.certificates],
        "parentalControlSettings": {"countriesBlockedForMinors": [], "legalAgeGroupRule": "Allow"},
        "passwordCredentials": [password_json(s) for s in app.secrets],
        "publicClient": {"redirectUris": []},
        "requiredResourceAccess": required_resource_access(app),
        "verifiedPublisher": _verified_publisher(),
        "web": {
            "homePageUrl": None,
            "logoutUrl": None,
            "redirectUris": list(app.redirect_uris),
            "implicitGrantSettings": {
                "enableAccessTokenIssuance": False,
                "enableIdTokenIssuance": False,
            },
            "redirectUriSettings": [{"uri": uri, "index": None} for uri in app.redirect_uris],
        },
        "spa": {"redirectUris": []},
    }


SERVICE_PRINCIPAL_PROPERTIES = frozenset(
    {
        "id", "deletedDateTime", "accountEnabled", "alternativeNames", "appDisplayName",
        "appDescription", "appId", "applicationTemplateId", "appOwnerOrganizationId",
        "appRoleAssignmentRequired", "createdDateTime", "description",
        "disabledByMicrosoftStatus", "displayName", "homepage", "loginUrl", "logoutUrl",
        "notes", "notificationEmailAddresses", "preferredSingleSignOnMode",
        "preferredTokenSigningKeyThumbprint", "replyUrls", "servicePrincipalNames",
        "servicePrincipalType", "signInAudience", "tags", "tokenEncryptionKeyId", "info",
        "samlSingleSignOnSettings", "verifiedPublisher", "addIns", "appRoles", "keyCredentials",
        "oauth2PermissionScopes", "passwordCredentials", "resourceSpecificApplicationPermissions",
    }
)  # fmt: skip


def _graph_app_roles() -> list[dict[str, Any]]:
    return [
        {
            "allowedMemberTypes": ["Application"],
            "description": p.role_description,
            "displayName": p.display_name,
            "id": p.role_id,
            "isEnabled": True,
            "origin": "Application",
            "value": p.value,
        }
        for p in GRAPH_PERMISSIONS
        if p.role_id
    ]


def _graph_scopes() -> list[dict[str, Any]]:
    return [
        {
            "adminConsentDescription": p.scope_description,
            "adminConsentDisplayName": p.display_name,
            "id": p.scope_id,
            "isEnabled": True,
            "type": "Admin" if p.admin_only_scope else "User",
            "userConsentDescription": p.scope_description,
            "userConsentDisplayName": p.display_name,
            "value": p.value,
        }
        for p in GRAPH_PERMISSIONS
        if p.scope_id
    ]


def service_principal_json(tenant: Tenant, principal: Principal) -> dict[str, Any]:
    """A tenant app's service principal, or Microsoft Graph's with its published permissions."""
    if isinstance(principal, GraphResource):
        name, owner, audience = "Microsoft Graph", MICROSOFT_TENANT_ID, "AzureADMultipleOrgs"
        names = [GRAPH_APP_ID, "https://graph.microsoft.com", "https://graph.microsoft.com/"]
        created, roles, scopes = None, _graph_app_roles(), _graph_scopes()
        reply_urls: list[str] = []
    else:
        app = tenant.apps.get(principal.app_id)
        name = app.display_name if app else principal.app_id
        owner, audience = tenant.id, app.sign_in_audience if app else "AzureADMyOrg"
        names, created, roles, scopes = [principal.app_id], principal.created_at, [], []
        reply_urls = list(app.redirect_uris) if app else []
    return {
        "id": principal.id,
        "deletedDateTime": None,
        "accountEnabled": True,
        "alternativeNames": [],
        "appDisplayName": name,
        "appDescription": None,
        "appId": principal.app_id,
        "applicationTemplateId": None,
        "appOwnerOrganizationId": owner,
        "appRoleAssignmentRequired": False,
        "createdDateTime": _stamp(created),
        "description": None,
        "disabledByMicrosoftStatus": None,
        "displayName": name,
        "homepage": None,
        "loginUrl": None,
        "logoutUrl": None,
        "notes": None,
        "notificationEmailAddresses": [],
        "preferredSingleSignOnMode": None,
        "preferredTokenSigningKeyThumbprint": None,
        "replyUrls": reply_urls,
        "servicePrincipalNames": names,
        "servicePrincipalType": "Application",
        "signInAudience": audience,
        "tags": [],
        "tokenEncryptionKeyId": None,
        "info": _info(),
        "samlSingleSignOnSettings": None,
        "verifiedPublisher": _verified_publisher(),
        "addIns": [],
        "appRoles": roles,
        "keyCredentials": [],
        "oauth2PermissionScopes": scopes,
        "passwordCredentials": [],
        "resourceSpecificApplicationPermissions": [],
    }


def assignment_json(
    tenant: Tenant, client: ServicePrincipal, permission: str, record: RoleAssignment
) -> dict[str, Any]:
    app = tenant.apps.get(client.app_id)
    found = app_role(permission)
    return {
        "id": record.id,
        "deletedDateTime": None,
        "appRoleId": found.role_id if found else None,
        "createdDateTime": _stamp(record.created_at),
        "principalDisplayName": app.display_name if app else client.app_id,
        "principalId": client.id,
        "principalType": "ServicePrincipal",
        "resourceDisplayName": "Microsoft Graph",
        "resourceId": tenant.graph_principal_id,
    }


GRANT_PROPERTIES = frozenset(
    {"id", "clientId", "consentType", "principalId", "resourceId", "scope"}
)


def grant_json(tenant: Tenant, client: ServicePrincipal, grant: DelegatedGrant) -> dict[str, Any]:
    resource = tenant.graph_principal_id
    return {
        "clientId": client.id,
        "consentType": "Principal" if grant.user_id else "AllPrincipals",
        "id": grant_id(client, resource, grant.user_id),
        "principalId": grant.user_id,
        "resourceId": resource,
        "scope": " ".join(sorted(grant.scopes)),
    }
