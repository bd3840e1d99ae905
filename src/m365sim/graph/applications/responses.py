"""Graph routes for app management: ``/applications``, ``/servicePrincipals``,
``/oauth2PermissionGrants``. Handlers parse, call ``ApplicationsBackend`` and serialise;
the rules (who may, what changes) live in ``models``.

Collections take ``$filter`` (``appId eq '...'``, ``displayName eq '...'``,
``startswith(displayName,'...')``, ``clientId eq '...'`` ...), ``$select``, ``$top`` (up to
999), ``$count`` and page with ``$skiptoken``; single objects take ``$select``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from m365sim.directory.models import AppRegistration
from m365sim.graph.applications import exceptions as errors
from m365sim.graph.applications.formats import (
    APPLICATION_PROPERTIES,
    GRANT_PROPERTIES,
    SERVICE_PRINCIPAL_PROPERTIES,
    application_json,
    assignment_json,
    grant_json,
    key_json,
    password_json,
    service_principal_json,
)
from m365sim.graph.applications.models import (
    ApplicationsBackend,
    Principal,
    applications_backend,
)
from m365sim.graph.auth import Caller, authenticate
from m365sim.graph.odata import (
    ODataQuery,
    compile_filter,
    metadata_url,
    next_link,
    render_collection,
    select_fields,
)
from m365sim.http import JSONResponse, json_body, sim_state

DEFAULT_PAGE_SIZE = 100
ASSIGNMENT_PROPERTIES = frozenset(
    {
        "id", "deletedDateTime", "appRoleId", "createdDateTime", "principalDisplayName",
        "principalId", "principalType", "resourceDisplayName", "resourceId",
    }
)  # fmt: skip


def _backend(request: Request) -> tuple[Caller, ApplicationsBackend]:
    caller = authenticate(request)
    return caller, applications_backend(sim_state(request), caller.tenant)


async def _body(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise errors.DirectoryBadRequest("The request body must be a JSON object.")
    return body


def _entity(request: Request, fragment: str, body: dict[str, Any], status: int = 200) -> Response:
    return JSONResponse(
        {"@odata.context": metadata_url(request, fragment), **body}, status_code=status
    )


def _single(
    request: Request, fragment: str, entity: str, properties: Collection[str], body: dict[str, Any]
) -> Response:
    query = ODataQuery.from_request(
        request, allowed={"select"}, entity=entity, properties=properties, directory=True
    )
    return _entity(request, fragment, select_fields(body, query.select))


def _collection(
    request: Request,
    fragment: str,
    entity: str,
    properties: Collection[str],
    items: Iterable[dict[str, Any]],
) -> Response:
    query = ODataQuery.from_request(
        request,
        allowed={"filter", "select", "top", "skiptoken", "count"},
        entity=entity,
        properties=properties,
        directory=True,
        max_top=999,
    )
    values = list(items)
    if query.filter is not None:
        predicate = compile_filter(query.filter)
        values = [v for v in values if predicate(v)]
    start = int(query.skiptoken) if query.skiptoken and query.skiptoken.isdigit() else 0
    size = query.top or DEFAULT_PAGE_SIZE
    chunk = values[start : start + size]
    more = start + size < len(values)
    body = render_collection(
        metadata_url(request, fragment),
        [select_fields(v, query.select) for v in chunk],
        next_link=next_link(request, **{"$skiptoken": start + size}) if more else None,
        count=len(values) if query.count else None,
    )
    return Response(body, media_type="application/json")


def _application(request: Request, backend: ApplicationsBackend) -> AppRegistration:
    """The application a path names: ``/applications/{id}`` or ``/applications(appId='..')``."""
    if "app_id" in request.path_params:
        return backend.application_by_app_id(str(request.path_params["app_id"]))
    return backend.application(str(request.path_params["application_id"]))


def _principal(request: Request, backend: ApplicationsBackend) -> Principal:
    if "app_id" in request.path_params:
        return backend.service_principal_by_app_id(str(request.path_params["app_id"]))
    return backend.service_principal(str(request.path_params["sp_id"]))


# -- applications ----------------------------------------------------------------------------
async def applications(request: Request) -> Response:
    """List app registrations (GET) or register one (POST): an application, no service principal."""
    caller, backend = _backend(request)
    tenant = caller.tenant
    if request.method == "POST":
        app = backend.create_application(caller, await _body(request))
        return _entity(request, "applications/$entity", application_json(tenant, app), 201)
    backend.require_read(caller)
    items = (application_json(tenant, app) for app in tenant.apps.values())
    return _collection(request, "applications", "application", APPLICATION_PROPERTIES, items)


async def application(request: Request) -> Response:
    """Read (GET), update (PATCH) or delete an application, by object id or ``(appId='..')``.

    PATCH takes displayName, signInAudience, requiredResourceAccess, keyCredentials,
    web.redirectUris and isFallbackPublicClient."""
    caller, backend = _backend(request)
    app = _application(request, backend)
    if request.method == "PATCH":
        backend.update_application(caller, app, await _body(request))
        return Response(status_code=204)
    if request.method == "DELETE":
        backend.delete_application(caller, app)
        return Response(status_code=204)
    backend.require_read(caller)
    select = request.query_params.get("$select") or request.query_params.get("select") or ""
    with_keys = "keyCredentials" in {s.strip() for s in select.split(",")}
    body = application_json(caller.tenant, app, with_keys=with_keys)
    return _single(request, "applications/$entity", "application", APPLICATION_PROPERTIES, body)


async def add_password(request: Request) -> Response:
    """Add a client secret; the answer is the only time its value (``secretText``) is shown."""
    caller, backend = _backend(request)
    secret = backend.add_password(caller, _application(request, backend), await _body(request))
    return _entity(
        request, "microsoft.graph.passwordCredential", password_json(secret, with_text=True)
    )


async def remove_password(request: Request) -> Response:
    """Remove a client secret by its ``keyId``."""
    caller, backend = _backend(request)
    backend.remove_password(caller, _application(request, backend), await _body(request))
    return Response(status_code=204)


async def add_key(request: Request) -> Response:
    """Add a certificate, with a proof of possession signed by a current certificate's key."""
    caller, backend = _backend(request)
    certificate = backend.add_key(caller, _application(request, backend), await _body(request))
    return _entity(request, "microsoft.graph.keyCredential", key_json(certificate))


async def remove_key(request: Request) -> Response:
    """Remove a certificate by its ``keyId``, with a proof of possession."""
    caller, backend = _backend(request)
    backend.remove_key(caller, _application(request, backend), await _body(request))
    return Response(status_code=204)


# -- service principals ------------------------------------------------------------------------
async def service_principals(request: Request) -> Response:
    """List service principals, Microsoft Graph's too (GET), or create one for an app (POST)."""
    caller, backend = _backend(request)
    tenant = caller.tenant
    if request.method == "POST":
        principal = backend.create_service_principal(caller, await _body(request))
        body = service_principal_json(tenant, principal)
        return _entity(request, "servicePrincipals/$entity", body, 201)
    backend.require_read(caller)
    items = (service_principal_json(tenant, p) for p in backend.service_principals())
    return _collection(
        request, "servicePrincipals", "servicePrincipal", SERVICE_PRINCIPAL_PROPERTIES, items
    )


async def service_principal(request: Request) -> Response:
    """Read (GET) or delete a service principal, by object id or ``(appId='...')``."""
    caller, backend = _backend(request)
    principal = _principal(request, backend)
    if request.method == "DELETE":
        backend.delete_service_principal(caller, principal)
        return Response(status_code=204)
    backend.require_read(caller)
    body = service_principal_json(caller.tenant, principal)
    return _single(
        request, "servicePrincipals/$entity", "servicePrincipal", SERVICE_PRINCIPAL_PROPERTIES, body
    )


def _assignments(
    request: Request, caller: Caller, backend: ApplicationsBackend, principal: Principal, via: str
) -> Response:
    backend.require_read_assignments(caller)
    items = (
        assignment_json(caller.tenant, client, permission, record)
        for client, permission, record in backend.assignments(principal)
    )
    fragment = f"servicePrincipals('{principal.id}')/{via}"
    return _collection(request, fragment, "appRoleAssignment", ASSIGNMENT_PROPERTIES, items)


async def _assign(request: Request, via: str) -> Response:
    caller, backend = _backend(request)
    principal = _principal(request, backend)
    if request.method == "GET":
        return _assignments(request, caller, backend, principal, via)
    client, permission, record = backend.assign(caller, principal, await _body(request), via=via)
    body = assignment_json(caller.tenant, client, permission, record)
    return _entity(request, f"servicePrincipals('{principal.id}')/{via}/$entity", body, 201)


async def app_role_assigned_to(request: Request) -> Response:
    """Who holds the resource's app roles (GET), or grant one: admin consent (POST).

    POST takes principalId (the app's service principal), resourceId and appRoleId."""
    return await _assign(request, "appRoleAssignedTo")


async def app_role_assignments(request: Request) -> Response:
    """The application permissions granted to a service principal (GET), or grant one (POST)."""
    return await _assign(request, "appRoleAssignments")


async def delete_assignment(request: Request) -> Response:
    """Revoke an application permission (an appRoleAssignment) by its id."""
    caller, backend = _backend(request)
    backend.unassign(
        caller, _principal(request, backend), str(request.path_params["assignment_id"])
    )
    return Response(status_code=204)


# -- delegated permission grants -------------------------------------------------------------
async def oauth2_permission_grants(request: Request) -> Response:
    """List delegated permission grants (GET) or grant delegated scopes (POST)."""
    caller, backend = _backend(request)
    tenant = caller.tenant
    if request.method == "POST":
        client, grant = backend.create_grant(caller, await _body(request))
        body = grant_json(tenant, client, grant)
        return _entity(request, "oauth2PermissionGrants/$entity", body, 201)
    backend.require_read_grants(caller)
    items = (grant_json(tenant, client, grant) for client, grant in backend.grants())
    return _collection(
        request, "oauth2PermissionGrants", "oAuth2PermissionGrant", GRANT_PROPERTIES, items
    )


async def oauth2_permission_grant(request: Request) -> Response:
    """Read (GET), change the ``scope`` of (PATCH) or delete a delegated permission grant."""
    caller, backend = _backend(request)
    key = str(request.path_params["grant_id"])
    if request.method == "PATCH":
        backend.update_grant(caller, key, await _body(request))
        return Response(status_code=204)
    if request.method == "DELETE":
        backend.delete_grant(caller, key)
        return Response(status_code=204)
    backend.require_read_grants(caller)
    client, grant = backend.grant(key)
    body = grant_json(caller.tenant, client, grant)
    return _single(
        request, "oauth2PermissionGrants/$entity", "oAuth2PermissionGrant", GRANT_PROPERTIES, body
    )
