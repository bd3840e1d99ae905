"""Entra ID routes (Microsoft's paths) and the directory's ``/_sim/tenants`` control routes.

Control routes come first: every Microsoft path here starts with ``/{tenant}``, which would
otherwise also match ``/_sim``.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from m365sim.identity import control, responses

TENANT = "/_sim/tenants/{tenant}"
APP = f"{TENANT}/apps/{{app_id}}"

control_routes: list[BaseRoute] = [
    Route("/_sim/tenants", control.list_tenants, methods=["GET"]),
    Route("/_sim/tenants", control.create_tenant, methods=["POST"]),
    Route(TENANT, control.tenant, methods=["GET", "PATCH"]),
    Route(f"{TENANT}/users", control.create_user, methods=["POST"]),
    Route(f"{TENANT}/users/{{user}}", control.user, methods=["GET", "PATCH"]),
    Route(f"{TENANT}/users/{{user}}/revokeSessions", control.revoke_sessions, methods=["POST"]),
    Route(f"{TENANT}/groups", control.create_group, methods=["POST"]),
    Route(f"{TENANT}/groups/{{group}}/members", control.add_group_member, methods=["POST"]),
    Route(
        f"{TENANT}/groups/{{group}}/members/{{user}}",
        control.remove_group_member,
        methods=["DELETE"],
    ),
    Route(f"{TENANT}/apps", control.list_apps, methods=["GET"]),
    Route(f"{TENANT}/applications", control.list_apps, methods=["GET"]),
    Route(f"{TENANT}/apps", control.create_app, methods=["POST"]),
    Route(APP, control.app, methods=["GET", "PATCH"]),
    Route(APP, control.delete_app, methods=["DELETE"]),
    Route(f"{APP}/secrets", control.add_secret, methods=["POST"]),
    Route(f"{APP}/secrets/{{key_id}}", control.remove_secret, methods=["DELETE"]),
    Route(f"{APP}/certificates", control.add_certificate, methods=["POST"]),
    Route(f"{APP}/certificates/{{key_id}}", control.remove_certificate, methods=["DELETE"]),
    Route(f"{APP}/consent", control.admin_consent, methods=["POST", "DELETE"]),
    Route(f"{APP}/delegatedConsent", control.delegated_consent, methods=["POST", "DELETE"]),
]

entra_routes: list[BaseRoute] = [
    Route("/common/discovery/instance", responses.instance_discovery, methods=["GET"]),
    Route("/common/userrealm/{username}", responses.user_realm, methods=["GET"]),
    Route("/oidc/userinfo", responses.userinfo, methods=["GET", "POST"]),
    Route(
        "/{tenant}/v2.0/.well-known/openid-configuration",
        responses.openid_configuration,
        methods=["GET"],
    ),
    Route("/{tenant}/discovery/v2.0/keys", responses.keys, methods=["GET"]),
    Route("/{tenant}/discovery/keys", responses.keys, methods=["GET"]),
    Route("/{tenant}/oauth2/v2.0/token", responses.token, methods=["POST"]),
    Route("/{tenant}/oauth2/v2.0/authorize", responses.authorize, methods=["GET", "POST"]),
    Route("/{tenant}/oauth2/v2.0/logout", responses.logout, methods=["GET", "POST"]),
    Route("/{tenant}/login", responses.submit_password, methods=["POST"]),
    Route("/{tenant}/login/select", responses.select_account, methods=["POST"]),
    Route("/{tenant}/Consent/Set", responses.submit_consent, methods=["POST"]),
    Route("/{tenant}/Consent/Decline", responses.decline_admin_approval, methods=["POST"]),
    Route("/{tenant}/adminconsent", responses.admin_consent, methods=["GET"]),
    Route("/{tenant}/v2.0/adminconsent", responses.admin_consent, methods=["GET"]),
]

routes: list[BaseRoute] = [*control_routes, *entra_routes]
