"""Control endpoints for mailbox authorization (the Exchange Online PowerShell cmdlets' stand-ins).

Bodies use the cmdlets' parameter names, case-insensitively (``AppId`` or ``appId``).
Answers use the PascalCase property names the cmdlets print. Refusals are 400 with the
reason in ``error.message``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from m365sim.directory.models import Tenant
from m365sim.graph.exceptions import BadRequest, ResourceNotFound
from m365sim.graph.policies.models import (
    APPLICATION_ROLES,
    PolicyError,
    TenantPolicies,
    policies_for,
)
from m365sim.graph.policies.seed import _as_list
from m365sim.http import JSONResponse, json_body, sim_state


def _tenant(request: Request) -> Tenant:
    key = str(request.path_params["tenant"])
    tenant = sim_state(request).find_tenant(key)
    if tenant is None:
        raise ResourceNotFound(f"No tenant '{key}'.")
    return tenant


def _policies(request: Request) -> TenantPolicies:
    return policies_for(sim_state(request), _tenant(request))


def _changed(request: Request, policies: TenantPolicies) -> None:
    """A change reaches Graph after the configured propagation delay (see the models)."""
    state = sim_state(request)
    policies.record_change(state.now(), state.config.policy_propagation_seconds)


async def _body(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("Expected a JSON object.")
    return {str(k).lower(): v for k, v in body.items()}


def _required(body: dict[str, Any], name: str) -> Any:
    value = body.get(name.lower())
    if value in (None, "", []):
        raise BadRequest(f"{name} is required.")
    return value


@contextmanager
def _refusals() -> Iterator[None]:
    """A cmdlet's refusal (``PolicyError``) answers 400 with its reason."""
    try:
        yield
    except PolicyError as exc:
        raise BadRequest(str(exc)) from exc


async def access_policies(request: Request) -> Response:
    """GET: ``Get-ApplicationAccessPolicy``. POST: ``New-ApplicationAccessPolicy``."""
    policies = _policies(request)
    if request.method == "POST":
        body = await _body(request)
        with _refusals():
            created = policies.add_access_policy(
                _as_list(_required(body, "AppId")),
                str(_required(body, "PolicyScopeGroupId")),
                str(_required(body, "AccessRight")),
                str(body.get("description", "")),
            )
        _changed(request, policies)
        return JSONResponse(
            {"value": [p.as_json(policies.tenant) for p in created]}, status_code=201
        )
    return JSONResponse({"value": [p.as_json(policies.tenant) for p in policies.access_policies]})


async def remove_access_policy(request: Request) -> Response:
    """``Remove-ApplicationAccessPolicy -Identity``."""
    policies = _policies(request)
    with _refusals():
        policies.remove_access_policy(str(request.path_params["identity"]))
    _changed(request, policies)
    return Response(status_code=204)


async def test_access_policy(request: Request) -> Response:
    """``Test-ApplicationAccessPolicy -Identity <mailbox> -AppId <app>``: policies only,
    not Entra consent and not RBAC for Applications, exactly like the cmdlet."""
    policies = _policies(request)
    body = await _body(request)
    app_id = str(_required(body, "AppId"))
    with _refusals():
        user = policies.user(str(_required(body, "Identity")))
    allowed = policies.access_policy_allows(app_id, user)
    return JSONResponse(
        {
            "AppId": app_id,
            "Mailbox": user.user_principal_name.split("@")[0],
            "MailboxId": user.id,
            "MailboxSid": f"S-1-5-21-{zlib.crc32(user.id.encode())}",
            "AccessCheckResult": "Granted" if allowed else "Denied",
        }
    )


async def management_scopes(request: Request) -> Response:
    """GET: ``Get-ManagementScope``.
    POST: ``New-ManagementScope -Name -RecipientRestrictionFilter``."""
    policies = _policies(request)
    if request.method == "POST":
        body = await _body(request)
        with _refusals():
            scope = policies.add_scope(
                str(_required(body, "Name")), str(_required(body, "RecipientRestrictionFilter"))
            )
        _changed(request, policies)
        return JSONResponse(scope.as_json(), status_code=201)
    return JSONResponse({"value": [s.as_json() for s in policies.scopes.values()]})


async def remove_management_scope(request: Request) -> Response:
    policies = _policies(request)
    with _refusals():
        policies.remove_scope(str(request.path_params["identity"]))
    _changed(request, policies)
    return Response(status_code=204)


async def role_assignments(request: Request) -> Response:
    """GET: ``Get-ManagementRoleAssignment``. POST: ``New-ManagementRoleAssignment -App -Role
    [-CustomResourceScope] [-Name]``."""
    policies = _policies(request)
    if request.method == "POST":
        body = await _body(request)
        scope = body.get("customresourcescope")
        with _refusals():
            assignment = policies.add_role_assignment(
                str(_required(body, "App")),
                str(_required(body, "Role")),
                str(scope) if scope else None,
                str(body["name"]) if body.get("name") else None,
            )
        _changed(request, policies)
        return JSONResponse(assignment.as_json(), status_code=201)
    return JSONResponse({"value": [a.as_json() for a in policies.role_assignments]})


async def remove_role_assignment(request: Request) -> Response:
    policies = _policies(request)
    with _refusals():
        policies.remove_role_assignment(str(request.path_params["identity"]))
    _changed(request, policies)
    return Response(status_code=204)


async def test_service_principal_authorization(request: Request) -> Response:
    """``Test-ServicePrincipalAuthorization -Identity <app> [-Resource <mailbox>]``: RBAC only."""
    policies = _policies(request)
    body = await _body(request)
    with _refusals():
        app_id, _principal_id = policies.service_principal(str(_required(body, "Identity")))
        resource = body.get("resource")
        user = policies.user(str(resource)) if resource else None
    rows = [
        {
            "RoleName": a.role,
            "GrantedPermissions": ", ".join(sorted(APPLICATION_ROLES[a.role])),
            "AllowedResourceScope": a.scope_name or "Organization",
            "ScopeType": "CustomRecipientScope" if a.scope_name else "Organization",
            "InScope": "Not Run" if user is None else policies.in_scope(a, user),
        }
        for a in policies.role_assignments
        if a.app_id == app_id
    ]
    return JSONResponse({"value": rows})


async def recipient(request: Request) -> Response:
    """GET / PATCH the recipient properties management scopes filter on (``Set-User``,
    ``Set-Mailbox -CustomAttribute1``...). PATCH merges; a null value removes a property."""
    policies = _policies(request)
    try:
        user = policies.user(str(request.path_params["user"]))
    except PolicyError as exc:
        raise ResourceNotFound(str(exc)) from exc
    attributes = policies.recipient_attributes.setdefault(user.id, {})
    if request.method == "PATCH":
        body = await json_body(request)
        if not isinstance(body, dict):
            raise BadRequest("Expected a JSON object.")
        for key, value in body.items():
            existing = next((k for k in attributes if k.lower() == str(key).lower()), None)
            if existing is not None:
                del attributes[existing]
            if value is not None:
                attributes[str(key)] = str(value)
    return JSONResponse({"Identity": user.user_principal_name, **attributes})


async def mailbox_permissions(request: Request) -> Response:
    """GET: list. POST: ``Add-MailboxPermission -Identity <owner> -User <delegate>
    -AccessRights FullAccess|ReadPermission``."""
    policies = _policies(request)
    if request.method == "POST":
        body = await _body(request)
        with _refusals():
            permission = policies.add_mailbox_permission(
                str(_required(body, "Identity")),
                str(_required(body, "User")),
                str(body.get("accessrights") or "FullAccess"),
            )
        return JSONResponse(_permission_json(permission), status_code=201)
    return JSONResponse({"value": [_permission_json(p) for p in policies.mailbox_permissions]})


def _permission_json(permission: Any) -> dict[str, Any]:
    return {
        "Identity": permission.identity,
        "Mailbox": permission.mailbox_id,
        "User": permission.user_id,
        "AccessRights": [permission.access_rights],
    }


async def remove_mailbox_permission(request: Request) -> Response:
    with _refusals():
        _policies(request).remove_mailbox_permission(str(request.path_params["identity"]))
    return Response(status_code=204)
