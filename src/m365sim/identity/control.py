"""``/_sim/tenants/...``: the directory's control API (not part of Microsoft's surface).

What the Azure portal and Entra admin center do by hand, tests and demos do here: create
tenants, users, groups and app registrations; add and remove client secrets (the answer
carries the secret's ID *and* value, once, like the portal) and certificates; grant and
revoke admin consent and delegated consent; revoke a user's sessions; flip a user's
licence, mailbox and account flags. Bodies and answers are JSON with the seed format's
field names (see ``docs/m365sim/identity.md``). Errors use Graph's JSON error shape.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from m365sim.dates import timestamp_to_second
from m365sim.directory.models import (
    AppRegistration,
    Certificate,
    Group,
    ServicePrincipal,
    Tenant,
    User,
)
from m365sim.graph.exceptions import BadRequest, ResourceNotFound
from m365sim.http import JSONResponse, json_body, sim_state
from m365sim.identity.models import grant_delegated, revoke_delegated
from m365sim.seed import (
    SeedError,
    app_from_spec,
    apply_tenant_fields,
    apply_user_fields,
    certificate_from_spec,
    group_from_spec,
    load_seed,
    secret_from_spec,
    user_from_spec,
)

APP_FIELDS = {
    "displayName": ("display_name", str),
    "disabled": ("disabled", bool),
    "signInAudience": ("sign_in_audience", str),
    "allowPublicClient": ("allow_public_client", bool),
}


def _iso(value: datetime | None) -> str | None:
    return timestamp_to_second(value) if value else None


# -- lookups ----------------------------------------------------------------------------------
def _tenant(request: Request) -> Tenant:
    key = str(request.path_params["tenant"])
    tenant = sim_state(request).find_tenant(key)
    if tenant is None:
        raise ResourceNotFound(
            f"No tenant {key!r}: use a tenant id or one of its verified domains."
        )
    return tenant


def _user(tenant: Tenant, key: str) -> User:
    user = tenant.find_user(key)
    if user is None:
        raise ResourceNotFound(f"No user {key!r} in tenant {tenant.display_name!r}.")
    return user


def _group(tenant: Tenant, key: str) -> Group:
    group = tenant.find_group(key)
    if group is None:
        raise ResourceNotFound(f"No group {key!r} in tenant {tenant.display_name!r}.")
    return group


def _app(request: Request) -> tuple[Tenant, AppRegistration]:
    tenant = _tenant(request)
    app_id = str(request.path_params["app_id"])
    app = tenant.apps.get(app_id)
    if app is None:
        raise ResourceNotFound(
            f"No app registration with appId {app_id!r} in tenant {tenant.display_name!r}."
        )
    return tenant, app


def _strings(body: dict[str, Any], key: str) -> set[str] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadRequest(f"{key} must be a list of strings")
    return set(value)


async def _object_body(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    return body


# -- serialisers ------------------------------------------------------------------------------
def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "userPrincipalName": user.user_principal_name,
        "mail": user.mail,
        "displayName": user.display_name,
        "accountEnabled": user.account_enabled,
        "isAdmin": user.is_admin,
        "licensed": user.licensed,
        "mailboxLocation": user.mailbox_location,
        "softDeleted": user.soft_deleted,
        "mailboxFull": user.mailbox_full,
        "timeZone": user.time_zone,
        "sessionsRevokedAt": _iso(user.sessions_revoked_at),
        "directoryRoles": sorted(user.directory_roles),
    }


def group_json(group: Group) -> dict[str, Any]:
    return {
        "id": group.id,
        "displayName": group.display_name,
        "mail": group.mail,
        "mailEnabled": group.mail_enabled,
        "securityEnabled": group.security_enabled,
        "members": sorted(group.member_ids),
    }


def principal_json(principal: ServicePrincipal) -> dict[str, Any]:
    """The service principal: what was granted (``appRoleAssignments`` names each granted
    application permission with its Graph id) and when the token service learns of it."""
    return {
        "id": principal.id,
        "grantedApplicationPermissions": sorted(principal.granted_application_permissions),
        "appRoleAssignments": [
            {
                "permission": permission,
                "id": principal.assignment(permission).id,
                "createdDateTime": _iso(principal.assignment(permission).created_at),
                "replicatedAt": _iso(principal.assignment(permission).visible_at),
            }
            for permission in sorted(principal.granted_application_permissions)
        ],
        "delegatedGrants": [
            {"user": grant.user_id, "scopes": sorted(grant.scopes)}
            for grant in principal.delegated_grants
        ],
        "owners": sorted(principal.owner_ids),
        "createdDateTime": _iso(principal.created_at),
        "replicatedAt": _iso(principal.visible_at),
    }


def app_json(tenant: Tenant, app: AppRegistration, now: datetime) -> dict[str, Any]:
    """An app registration as the admin center shows it; ``servicePrincipal`` is null for an
    app registered through Graph whose service principal wasn't created yet. ``replicatedAt``
    (app, secrets, certificates, service principal, assignments) is when the token service
    learns of an object created through Graph; null means from the start."""
    principal = tenant.service_principals.get(app.app_id)
    return {
        "appId": app.app_id,
        "id": app.object_id,
        "displayName": app.display_name,
        "tenantId": tenant.id,
        "signInAudience": app.sign_in_audience,
        "disabled": app.disabled,
        "allowPublicClient": app.allow_public_client,
        "redirectUris": list(app.redirect_uris),
        "applicationPermissions": sorted(app.application_permissions),
        "delegatedPermissions": sorted(app.delegated_permissions),
        "owners": sorted(app.owner_ids),
        "createdDateTime": _iso(app.created_at),
        "replicatedAt": _iso(app.visible_at),
        "secrets": [
            {
                "keyId": secret.key_id,
                "displayName": secret.display_name,
                "hint": secret.hint,
                "endDateTime": _iso(secret.expires_at),
                "expired": secret.is_expired(now),
                "replicatedAt": _iso(secret.visible_at),
            }
            for secret in app.secrets
        ],
        "certificates": [certificate_json(c) for c in app.certificates],
        "servicePrincipal": principal_json(principal) if principal is not None else None,
    }


def certificate_json(certificate: Certificate) -> dict[str, Any]:
    return {
        "keyId": certificate.key_id,
        "displayName": certificate.display_name,
        "thumbprint": certificate.sha1_thumbprint,
        "thumbprintSha256": certificate.sha256_thumbprint,
        "startDateTime": _iso(certificate.starts_at),
        "endDateTime": _iso(certificate.expires_at),
        "replicatedAt": _iso(certificate.visible_at),
    }


def tenant_json(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": tenant.id,
        "displayName": tenant.display_name,
        "domains": list(tenant.domains),
        "userConsentAllowed": tenant.user_consent_allowed,
        "usersCanRegisterApps": tenant.users_can_register_apps,
        "replicationDelaySeconds": tenant.replication_delay_seconds,
        "users": len(tenant.users),
        "groups": len(tenant.groups),
        "apps": sorted(tenant.apps),
    }


# -- tenants ----------------------------------------------------------------------------------
async def list_tenants(request: Request) -> Response:
    """Every tenant: id, display name, verified domains, counts."""
    return JSONResponse({"value": [tenant_json(t) for t in sim_state(request).tenants.values()]})


async def create_tenant(request: Request) -> Response:
    """A whole tenant in the seed format (``displayName``, ``domains``, users, groups, apps)."""
    body = await _object_body(request)
    try:
        (tenant,) = load_seed(sim_state(request), {"tenants": [body]})
    except (SeedError, KeyError, TypeError, ValueError) as exc:
        raise BadRequest(f"Tenant rejected: {exc}") from exc
    return JSONResponse(tenant_json(tenant), status_code=201)


async def tenant(request: Request) -> Response:
    """GET a tenant, or PATCH its name, domains, consent switches and replication delay.

    PATCH takes ``displayName``, ``domains``, ``userConsentAllowed``,
    ``usersCanRegisterApps`` and ``replicationDelaySeconds``."""
    found = _tenant(request)
    if request.method == "PATCH":
        body = await _object_body(request)
        if "displayName" in body:
            found.display_name = str(body["displayName"])
        if "domains" in body:
            domains = _strings(body, "domains")
            if not domains:
                raise BadRequest("domains must list at least one verified domain")
            found.domains = [d.lower() for d in body["domains"]]
        try:
            apply_tenant_fields(found, body)
        except SeedError as exc:
            raise BadRequest(str(exc)) from exc
    return JSONResponse(tenant_json(found))


# -- users and groups ---------------------------------------------------------------------------
async def create_user(request: Request) -> Response:
    """Create a user (seed format: ``userPrincipalName``, ``password``, flags)."""
    found = _tenant(request)
    body = await _object_body(request)
    if "userPrincipalName" not in body:
        raise BadRequest("userPrincipalName is required")
    if found.find_user(str(body["userPrincipalName"])) is not None:
        raise BadRequest(f"A user {body['userPrincipalName']!r} already exists in this tenant.")
    try:
        user = user_from_spec(body)
    except SeedError as exc:
        raise BadRequest(str(exc)) from exc
    found.add_user(user)
    return JSONResponse(user_json(user), status_code=201)


async def user(request: Request) -> Response:
    """GET a user; PATCH its flags (licensed, accountEnabled, mailboxLocation, softDeleted,
    mailboxFull, isAdmin, password, displayName, ...)."""
    found = _user(_tenant(request), str(request.path_params["user"]))
    if request.method == "PATCH":
        body = await _object_body(request)
        try:
            apply_user_fields(found, body)
        except SeedError as exc:
            raise BadRequest(str(exc)) from exc
    return JSONResponse(user_json(found))


async def revoke_sessions(request: Request) -> Response:
    """Like ``revokeSignInSessions``: refresh tokens and codes issued before now stop working
    (AADSTS50173) and the user must sign in again."""
    found = _user(_tenant(request), str(request.path_params["user"]))
    found.sessions_revoked_at = sim_state(request).now()
    return JSONResponse(user_json(found))


async def create_group(request: Request) -> Response:
    """Create a group (mail-enabled security group by default) with ``members``."""
    found = _tenant(request)
    body = await _object_body(request)
    try:
        group = group_from_spec(found, body)
    except (SeedError, KeyError) as exc:
        raise BadRequest(f"Group rejected: {exc}") from exc
    found.add_group(group)
    return JSONResponse(group_json(group), status_code=201)


async def add_group_member(request: Request) -> Response:
    """Add ``{"user": id or UPN}`` to a group."""
    found = _tenant(request)
    group = _group(found, str(request.path_params["group"]))
    body = await _object_body(request)
    group.member_ids.add(_user(found, str(body.get("user", ""))).id)
    return JSONResponse(group_json(group))


async def remove_group_member(request: Request) -> Response:
    """Remove a user from a group."""
    found = _tenant(request)
    group = _group(found, str(request.path_params["group"]))
    group.member_ids.discard(_user(found, str(request.path_params["user"])).id)
    return JSONResponse(group_json(group))


# -- app registrations ----------------------------------------------------------------------------
async def list_apps(request: Request) -> Response:
    """Every app registration in the tenant, however created, with credentials and consent.

    Secrets are listed without their values; each app carries its owners, service principal
    (null if none), granted permissions and delegated grants."""
    found = _tenant(request)
    now = sim_state(request).now()
    return JSONResponse({"value": [app_json(found, a, now) for a in found.apps.values()]})


async def create_app(request: Request) -> Response:
    """Register an app (seed format). Secrets created here are returned with their values."""
    found = _tenant(request)
    body = await _object_body(request)
    if body.get("appId") and body["appId"] in found.apps:
        raise BadRequest(f"An app with appId {body['appId']!r} already exists in this tenant.")
    state = sim_state(request)
    try:
        registered = app_from_spec(found, body, state.now())
    except (SeedError, KeyError, TypeError, ValueError) as exc:
        raise BadRequest(f"App rejected: {exc}") from exc
    answer = app_json(found, registered, state.now())
    answer["secrets"] = [
        {**shown, "secretText": secret.value, "value": secret.value}
        for shown, secret in zip(answer["secrets"], registered.secrets, strict=True)
    ]
    return JSONResponse(answer, status_code=201)


async def app(request: Request) -> Response:
    """GET an app registration; PATCH ``displayName``, ``disabled``, ``signInAudience``,
    ``allowPublicClient``, ``redirectUris``, ``applicationPermissions``,
    ``delegatedPermissions``."""
    found, registered = _app(request)
    if request.method == "PATCH":
        body = await _object_body(request)
        for key, (attribute, kind) in APP_FIELDS.items():
            if key in body:
                if not isinstance(body[key], kind):
                    raise BadRequest(f"{key} must be {kind.__name__}")
                setattr(registered, attribute, body[key])
        if _strings(body, "redirectUris") is not None:
            registered.redirect_uris = list(body["redirectUris"])
        if (application := _strings(body, "applicationPermissions")) is not None:
            registered.application_permissions = application
        if (delegated := _strings(body, "delegatedPermissions")) is not None:
            registered.delegated_permissions = delegated
    return JSONResponse(app_json(found, registered, sim_state(request).now()))


async def delete_app(request: Request) -> Response:
    """Delete an app registration and its service principal (and so its consent)."""
    found, registered = _app(request)
    del found.apps[registered.app_id]
    found.service_principals.pop(registered.app_id, None)
    return Response(status_code=204)


async def add_secret(request: Request) -> Response:
    """Add a client secret (``displayName``, ``expires`` as ``"+30d"`` or ISO, optional
    ``value``/``keyId``). The answer is the only place the value is shown."""
    _, registered = _app(request)
    body = await _object_body(request)
    now = sim_state(request).now()
    try:
        secret = secret_from_spec(body, now)
    except ValueError as exc:
        raise BadRequest(f"Secret rejected: {exc}") from exc
    registered.secrets.append(secret)
    return JSONResponse(
        {
            "keyId": secret.key_id,
            "displayName": secret.display_name,
            "hint": secret.hint,
            "startDateTime": _iso(now),
            "endDateTime": _iso(secret.expires_at),
            "secretText": secret.value,
            "value": secret.value,
        },
        status_code=201,
    )


async def remove_secret(request: Request) -> Response:
    """Delete a client secret by its ID (``keyId``)."""
    _, registered = _app(request)
    key_id = str(request.path_params["key_id"])
    kept = [s for s in registered.secrets if s.key_id != key_id]
    if len(kept) == len(registered.secrets):
        raise ResourceNotFound(f"No secret with keyId {key_id!r} on app {registered.app_id!r}.")
    registered.secrets = kept
    return Response(status_code=204)


async def add_certificate(request: Request) -> Response:
    """Upload a public certificate (``pem``, ``displayName``); answers its thumbprints."""
    _, registered = _app(request)
    body = await _object_body(request)
    if not isinstance(body.get("pem"), str):
        raise BadRequest("pem (the public certificate, PEM text) is required")
    try:
        certificate = certificate_from_spec(body)
    except SeedError as exc:
        raise BadRequest(str(exc)) from exc
    registered.certificates.append(certificate)
    return JSONResponse(certificate_json(certificate), status_code=201)


async def remove_certificate(request: Request) -> Response:
    """Delete an uploaded certificate by its ``keyId``."""
    _, registered = _app(request)
    key_id = str(request.path_params["key_id"])
    kept = [c for c in registered.certificates if c.key_id != key_id]
    if len(kept) == len(registered.certificates):
        raise ResourceNotFound(
            f"No certificate with keyId {key_id!r} on app {registered.app_id!r}."
        )
    registered.certificates = kept
    return Response(status_code=204)


# -- consent ----------------------------------------------------------------------------------
async def admin_consent(request: Request) -> Response:
    """POST: "Grant admin consent" for ``permissions`` (default: every configured application
    permission). DELETE: revoke ``permissions`` (default: all)."""
    found, registered = _app(request)
    body = await _object_body(request)
    permissions = _strings(body, "permissions")
    principal = found.service_principals.setdefault(
        registered.app_id, ServicePrincipal(app_id=registered.app_id)
    )
    if request.method == "POST":
        added = permissions if permissions is not None else set(registered.application_permissions)
        for permission in added - principal.granted_application_permissions:
            principal.role_assignments.pop(permission, None)  # granted from now on, at once
        principal.granted_application_permissions |= added
    else:
        removed = (
            set(principal.granted_application_permissions) if permissions is None else permissions
        )
        principal.granted_application_permissions -= removed
        for permission in removed:
            principal.role_assignments.pop(permission, None)
    return JSONResponse(principal_json(principal))


async def delegated_consent(request: Request) -> Response:
    """POST: grant delegated ``scopes`` (default: the configured ones) to ``user`` or, without
    ``user``, to everyone (admin consent). DELETE: revoke ``scopes`` (default: all)."""
    found, registered = _app(request)
    body = await _object_body(request)
    scopes = _strings(body, "scopes")
    user_id = _user(found, str(body["user"])).id if body.get("user") else None
    principal = found.service_principals.setdefault(
        registered.app_id, ServicePrincipal(app_id=registered.app_id)
    )
    if request.method == "POST":
        grant_delegated(
            principal,
            scopes if scopes is not None else set(registered.delegated_permissions),
            user_id,
        )
    else:
        revoke_delegated(principal, scopes, user_id)
    return JSONResponse(principal_json(principal))
