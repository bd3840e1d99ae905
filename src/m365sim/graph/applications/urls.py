"""App-management routes. Applications and service principals are addressed by object id
(``/applications/{id}``) or by app id (``/applications(appId='{appId}')``), as in Graph."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from m365sim.graph.applications import responses
from m365sim.graph.routing import GRAPH_PREFIX

_APPS = f"{GRAPH_PREFIX}/applications"
_APP_KEYS = (f"{_APPS}/{{application_id}}", f"{_APPS}(appId='{{app_id}}')")
_SPS = f"{GRAPH_PREFIX}/servicePrincipals"
_SP_KEYS = (f"{_SPS}/{{sp_id}}", f"{_SPS}(appId='{{app_id}}')")
_GRANTS = f"{GRAPH_PREFIX}/oauth2PermissionGrants"


def _routes() -> list[BaseRoute]:
    found: list[BaseRoute] = [
        Route(_APPS, responses.applications, methods=["GET", "POST"]),
        Route(_SPS, responses.service_principals, methods=["GET", "POST"]),
        Route(_GRANTS, responses.oauth2_permission_grants, methods=["GET", "POST"]),
        Route(
            f"{_GRANTS}/{{grant_id}}",
            responses.oauth2_permission_grant,
            methods=["GET", "PATCH", "DELETE"],
        ),
    ]
    for app in _APP_KEYS:
        found += [
            Route(app, responses.application, methods=["GET", "PATCH", "DELETE"]),
            Route(f"{app}/addPassword", responses.add_password, methods=["POST"]),
            Route(f"{app}/removePassword", responses.remove_password, methods=["POST"]),
            Route(f"{app}/addKey", responses.add_key, methods=["POST"]),
            Route(f"{app}/removeKey", responses.remove_key, methods=["POST"]),
        ]
    for sp in _SP_KEYS:
        found += [
            Route(sp, responses.service_principal, methods=["GET", "DELETE"]),
            Route(
                f"{sp}/appRoleAssignedTo", responses.app_role_assigned_to, methods=["GET", "POST"]
            ),
            Route(
                f"{sp}/appRoleAssignedTo/{{assignment_id}}",
                responses.delete_assignment,
                methods=["DELETE"],
            ),
            Route(
                f"{sp}/appRoleAssignments", responses.app_role_assignments, methods=["GET", "POST"]
            ),
            Route(
                f"{sp}/appRoleAssignments/{{assignment_id}}",
                responses.delete_assignment,
                methods=["DELETE"],
            ),
        ]
    return found


routes: list[BaseRoute] = _routes()
