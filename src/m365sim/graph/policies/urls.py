"""``/_sim/tenants/{tenant}/...`` control routes for mailbox authorization."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from m365sim.graph.policies import responses

_BASE = "/_sim/tenants/{tenant}"

routes: list[BaseRoute] = [
    Route(f"{_BASE}/accessPolicies/test", responses.test_access_policy, methods=["POST"]),
    Route(f"{_BASE}/accessPolicies", responses.access_policies, methods=["GET", "POST"]),
    Route(
        f"{_BASE}/accessPolicies/{{identity:path}}",
        responses.remove_access_policy,
        methods=["DELETE"],
    ),
    Route(f"{_BASE}/managementScopes", responses.management_scopes, methods=["GET", "POST"]),
    Route(
        f"{_BASE}/managementScopes/{{identity}}",
        responses.remove_management_scope,
        methods=["DELETE"],
    ),
    Route(f"{_BASE}/roleAssignments", responses.role_assignments, methods=["GET", "POST"]),
    Route(
        f"{_BASE}/roleAssignments/{{identity}}",
        responses.remove_role_assignment,
        methods=["DELETE"],
    ),
    Route(
        f"{_BASE}/servicePrincipalAuthorization/test",
        responses.test_service_principal_authorization,
        methods=["POST"],
    ),
    Route(f"{_BASE}/recipients/{{user}}", responses.recipient, methods=["GET", "PATCH"]),
    Route(f"{_BASE}/mailboxPermissions", responses.mailbox_permissions, methods=["GET", "POST"]),
    Route(
        f"{_BASE}/mailboxPermissions/{{identity}}",
        responses.remove_mailbox_permission,
        methods=["DELETE"],
    ),
]
