"""Control endpoints and the seed section for a tenant's Exchange Server.

``exchange:`` under a tenant in a seed file (the same JSON for ``PATCH
/_sim/tenants/{tenant}/exchange``)::

    exchange:
      flavour: onpremises          # online (default) | onpremises | hybrid
      version: Exchange2019        # Exchange2016 | Exchange2019 | ExchangeSE
      build: 15.2.1748.24          # optional: another build number to report
      authentication: [ntlm, basic]  # what the EWS virtual directory accepts
      netbiosName: CONTOSO         # the DOMAIN of DOMAIN\\user sign-ins
      roleAssignments:             # New-ManagementRoleAssignment -Role ApplicationImpersonation
        - {user: svc-ews@contoso.com}                                   # organization-wide
        - {user: svc-emea@contoso.com, customRecipientWriteScope: EMEA sales}

A management scope named by ``customRecipientWriteScope`` must exist in the tenant's
``managementScopes``. Refusals are 400 with the reason in ``error.message``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from m365sim.directory.models import Tenant
from m365sim.ews.models import ExchangeOrganization, ExchangeSettingsError, organization_for
from m365sim.graph.exceptions import BadRequest, ResourceNotFound
from m365sim.http import JSONResponse, json_body, sim_state
from m365sim.state import SimState

__all__ = ["load_exchange"]


def load_exchange(state: SimState, tenant: Tenant, spec: dict[str, Any]) -> None:
    """Load a tenant's ``exchange:`` seed section; ``ExchangeSettingsError`` names the entry."""
    section = spec.get("exchange")
    if section is None:
        return
    if not isinstance(section, dict):
        raise ExchangeSettingsError("exchange: expected a mapping")
    organization_for(state, tenant).apply(section)


def _organization(request: Request) -> ExchangeOrganization:
    key = str(request.path_params["tenant"])
    state = sim_state(request)
    tenant = state.find_tenant(key)
    if tenant is None:
        raise ResourceNotFound(f"No tenant '{key}'.")
    return organization_for(state, tenant)


async def _object(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("Expected a JSON object.")
    return body


async def exchange_settings(request: Request) -> Response:
    """GET or PATCH a tenant's Exchange Server: flavour, version, authentication, roles."""
    org = _organization(request)
    if request.method == "PATCH":
        try:
            org.apply(await _object(request))
        except ExchangeSettingsError as exc:
            raise BadRequest(str(exc)) from exc
    return JSONResponse(org.as_json())


async def impersonation(request: Request) -> Response:
    """GET the ApplicationImpersonation assignments, or POST one.

    The body is ``{user, customRecipientWriteScope}`` (the scope is optional)."""
    org = _organization(request)
    if request.method == "POST":
        body = await _object(request)
        if not body.get("user"):
            raise BadRequest("user is required.")
        try:
            assignment = org.add_impersonation(
                str(body["user"]), body.get("customRecipientWriteScope"), body.get("name")
            )
        except ExchangeSettingsError as exc:
            raise BadRequest(str(exc)) from exc
        return JSONResponse(assignment.as_json(org.tenant), status_code=201)
    return JSONResponse({"value": [a.as_json(org.tenant) for a in org.impersonation]})


async def remove_impersonation(request: Request) -> Response:
    """Remove an ApplicationImpersonation assignment (by identity, name or user)."""
    org = _organization(request)
    try:
        org.remove_impersonation(str(request.path_params["identity"]))
    except ExchangeSettingsError as exc:
        raise ResourceNotFound(str(exc)) from exc
    return Response(status_code=204)
