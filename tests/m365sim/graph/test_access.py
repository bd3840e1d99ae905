"""Mailbox authorization as Exchange Online enforces it: tokens, consent, Application Access
Policies, RBAC for Applications, delegated sharing, unreachable and full mailboxes."""

from __future__ import annotations

import httpx
import jwt
import pytest
from sim_tokens import (
    PENDING_APP_ID,
    SERVICE_APP_ID,
    USER_APP_ID,
    bearer,
    mint_app_token,
    mint_user_token,
)

from m365sim.directory.models import Group
from m365sim.server import SimServer
from m365sim.state import SimConfig

TENANT = "contoso.com"
ALL_MAIL = ["Mail.Read", "Mail.ReadWrite", "Calendars.Read", "Calendars.ReadWrite"]
CONTROL = f"/_sim/tenants/{TENANT}"
POLICY_DENIED = (
    "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy "
    "settings."
)


@pytest.fixture(autouse=True)
def instant_policies(http: httpx.Client) -> None:
    """These tests are about what policies decide, not when: changes apply at once here
    (``test_policy_changes_reach_graph_only_after_they_propagate`` puts the delay back)."""
    http.patch("/_sim/config", json={"policy_propagation_seconds": 0})


def app_headers(
    sim: SimServer, roles: list[str] | None = None, app_id: str = SERVICE_APP_ID
) -> dict[str, str]:
    return bearer(mint_app_token(sim, TENANT, app_id, ALL_MAIL if roles is None else roles))


def read_mail(http: httpx.Client, headers: dict[str, str], user: str) -> httpx.Response:
    return http.get(f"/v1.0/users/{user}/messages", headers=headers)


def write_mail(http: httpx.Client, headers: dict[str, str], user: str) -> httpx.Response:
    return http.post(f"/v1.0/users/{user}/messages", headers=headers, json={"subject": "draft"})


def add_policy(http: httpx.Client, app_id: str, scope: str, access_right: str) -> httpx.Response:
    """``New-ApplicationAccessPolicy -AppId app_id -PolicyScopeGroupId scope -AccessRight``."""
    return http.post(
        f"{CONTROL}/accessPolicies",
        json={"AppId": app_id, "PolicyScopeGroupId": scope, "AccessRight": access_right},
    )


def error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()["error"]
    return response.status_code, body["code"], body["message"]


# -- tokens -------------------------------------------------------------------------------------


def test_missing_token_is_401_empty(sim: SimServer, http: httpx.Client) -> None:
    response = http.get("/v1.0/users/adele@contoso.com/messages")
    assert error(response) == (401, "InvalidAuthenticationToken", "Access token is empty.")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_garbled_token_is_401_not_well_formed(sim: SimServer, http: httpx.Client) -> None:
    status, code, message = error(read_mail(http, bearer("not-a-jwt"), "adele@contoso.com"))
    assert (status, code) == (401, "InvalidAuthenticationToken")
    assert message.startswith("IDX14100: JWT is not well formed")


def test_expired_token_is_401_lifetime(sim: SimServer, http: httpx.Client) -> None:
    token = mint_app_token(sim, TENANT, SERVICE_APP_ID, ALL_MAIL, lifetime=60)
    assert read_mail(http, bearer(token), "adele@contoso.com").status_code == 200
    http.post("/_sim/clock", json={"advanceSeconds": 61})
    assert error(read_mail(http, bearer(token), "adele@contoso.com")) == (
        401,
        "InvalidAuthenticationToken",
        "Lifetime validation failed, the token is expired.",
    )


def test_wrong_audience_is_401_invalid_audience(sim: SimServer, http: httpx.Client) -> None:
    token = mint_app_token(sim, TENANT, SERVICE_APP_ID, ALL_MAIL, aud="https://outlook.office.com")
    assert error(read_mail(http, bearer(token), "adele@contoso.com")) == (
        401,
        "InvalidAuthenticationToken",
        "Access token validation failure. Invalid audience.",
    )


def test_token_signed_by_another_key_is_401(sim: SimServer, http: httpx.Client) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    claims = jwt.decode(
        mint_app_token(sim, TENANT, SERVICE_APP_ID, ALL_MAIL), options={"verify_signature": False}
    )
    forged = jwt.encode(claims, rsa.generate_private_key(65537, 2048), algorithm="RS256")
    assert error(read_mail(http, bearer(forged), "adele@contoso.com")) == (
        401,
        "InvalidAuthenticationToken",
        "Access token validation failure.",
    )


def test_disabled_users_token_is_refused(sim: SimServer, http: httpx.Client) -> None:
    token = mint_user_token(sim, TENANT, "former@contoso.com", ["Mail.Read"])
    assert read_mail(http, bearer(token), "former@contoso.com").status_code == 401


# -- application permissions --------------------------------------------------------------------


def test_app_without_consent_is_access_denied(sim: SimServer, http: httpx.Client) -> None:
    headers = app_headers(sim, roles=[], app_id=PENDING_APP_ID)
    assert error(read_mail(http, headers, "adele@contoso.com")) == (
        403,
        "ErrorAccessDenied",
        "Access is denied. Check credentials and try again.",
    )


def test_read_role_cannot_write(sim: SimServer, http: httpx.Client) -> None:
    headers = app_headers(sim, roles=["Mail.Read"])
    assert read_mail(http, headers, "adele@contoso.com").status_code == 200
    assert error(write_mail(http, headers, "adele@contoso.com"))[:2] == (403, "ErrorAccessDenied")
    assert (
        write_mail(http, app_headers(sim, ["Mail.ReadWrite"]), "adele@contoso.com").status_code
        == 201
    )


def test_mail_role_does_not_open_calendars(sim: SimServer, http: httpx.Client) -> None:
    headers = app_headers(sim, roles=["Mail.ReadWrite"])
    assert http.get("/v1.0/users/adele@contoso.com/events", headers=headers).status_code == 403


def test_unknown_user_is_error_invalid_user(sim: SimServer, http: httpx.Client) -> None:
    status, code, _ = error(read_mail(http, app_headers(sim), "nobody@contoso.com"))
    assert (status, code) == (404, "ErrorInvalidUser")


# -- Application Access Policies ----------------------------------------------------------------


def test_restrict_access_allows_only_group_members(sim: SimServer, http: httpx.Client) -> None:
    created = add_policy(http, SERVICE_APP_ID, "crm-sync@contoso.com", "RestrictAccess")
    assert created.status_code == 201
    headers = app_headers(sim)
    assert read_mail(http, headers, "adele@contoso.com").status_code == 200  # member
    assert error(read_mail(http, headers, "johanna@contoso.com")) == (
        403,
        "ErrorAccessDenied",
        POLICY_DENIED,
    )
    # Another app is not affected by this app's policy.
    other = app_headers(sim, app_id=USER_APP_ID)
    assert read_mail(http, other, "johanna@contoso.com").status_code == 200


def test_deny_access_blocks_members_and_wins_over_restrict(
    sim: SimServer, http: httpx.Client
) -> None:
    tenant = sim.state.find_tenant(TENANT)
    assert tenant is not None
    tenant.add_group(
        Group(
            display_name="Legal",
            mail="legal@contoso.com",
            member_ids={tenant.find_user("adele@contoso.com").id},
        )
    )  # type: ignore[union-attr]
    add_policy(http, SERVICE_APP_ID, "legal@contoso.com", "DenyAccess")
    headers = app_headers(sim)
    assert error(read_mail(http, headers, "adele@contoso.com"))[2] == POLICY_DENIED
    assert read_mail(http, headers, "johanna@contoso.com").status_code == 200  # not in a Deny group
    add_policy(http, SERVICE_APP_ID, "crm-sync@contoso.com", "RestrictAccess")
    # adele is in both groups: DenyAccess is evaluated first.
    assert read_mail(http, headers, "adele@contoso.com").status_code == 403
    assert read_mail(http, headers, "alex@contoso.com").status_code == 200


def test_policy_changes_apply_and_removal_restores_access(
    sim: SimServer, http: httpx.Client
) -> None:
    created = add_policy(http, SERVICE_APP_ID, "crm-sync@contoso.com", "RestrictAccess")
    policy = created.json()["value"][0]
    headers = app_headers(sim)
    assert read_mail(http, headers, "johanna@contoso.com").status_code == 403
    assert http.delete(f"{CONTROL}/accessPolicies/{policy['Identity']}").status_code == 204
    assert read_mail(http, headers, "johanna@contoso.com").status_code == 200


def test_policy_changes_reach_graph_only_after_they_propagate(
    sim: SimServer, http: httpx.Client
) -> None:
    """Exchange: "changes to application access policies can take longer than 1 hour to take
    effect in Microsoft Graph REST API calls, even when Test-ApplicationAccessPolicy shows
    positive results"; RBAC for Applications changes take 30 minutes to 2 hours."""
    default = SimConfig().policy_propagation_seconds
    assert default == 3600
    http.patch("/_sim/config", json={"policy_propagation_seconds": default})
    headers = app_headers(sim)
    policy = add_policy(http, SERVICE_APP_ID, "crm-sync@contoso.com", "RestrictAccess").json()
    tested = http.post(
        f"{CONTROL}/accessPolicies/test",
        json={"AppId": SERVICE_APP_ID, "Identity": "johanna@contoso.com"},
    )
    assert tested.json()["AccessCheckResult"] == "Denied"  # the cmdlet sees it at once...
    assert read_mail(http, headers, "johanna@contoso.com").status_code == 200  # Graph doesn't
    http.post("/_sim/clock", json={"advanceSeconds": 3599})
    headers = app_headers(sim)  # fresh tokens on the moved clock
    assert read_mail(http, headers, "johanna@contoso.com").status_code == 200
    http.post("/_sim/clock", json={"advanceSeconds": 2})
    headers = app_headers(sim)
    assert error(read_mail(http, headers, "johanna@contoso.com"))[2] == POLICY_DENIED
    # Removal propagates the same way.
    http.delete(f"{CONTROL}/accessPolicies/{policy['value'][0]['Identity']}")
    assert read_mail(http, headers, "johanna@contoso.com").status_code == 403
    http.post("/_sim/clock", json={"advanceSeconds": 3601})
    assert read_mail(http, app_headers(sim), "johanna@contoso.com").status_code == 200


def test_policy_needs_a_mail_enabled_security_group(sim: SimServer, http: httpx.Client) -> None:
    tenant = sim.state.find_tenant(TENANT)
    assert tenant is not None
    tenant.add_group(
        Group(display_name="Newsletter", mail="news@contoso.com", security_enabled=False)
    )
    refused = add_policy(http, SERVICE_APP_ID, "news@contoso.com", "RestrictAccess")
    assert refused.status_code == 400
    assert "isn't a valid security principal" in refused.json()["error"]["message"]


def test_test_application_access_policy(sim: SimServer, http: httpx.Client) -> None:
    add_policy(http, SERVICE_APP_ID, "crm-sync@contoso.com", "RestrictAccess")
    granted = http.post(
        f"{CONTROL}/accessPolicies/test",
        json={"AppId": SERVICE_APP_ID, "Identity": "lee@contoso.com"},
    )
    denied = http.post(
        f"{CONTROL}/accessPolicies/test",
        json={"AppId": SERVICE_APP_ID, "Identity": "lidia@contoso.com"},
    )
    assert granted.json()["AccessCheckResult"] == "Granted"
    assert denied.json()["AccessCheckResult"] == "Denied"


def test_policies_do_not_touch_delegated_access(sim: SimServer, http: httpx.Client) -> None:
    add_policy(http, USER_APP_ID, "crm-sync@contoso.com", "RestrictAccess")
    token = mint_user_token(sim, TENANT, "johanna@contoso.com", ["Mail.ReadWrite"])
    assert http.get("/v1.0/me/messages", headers=bearer(token)).status_code == 200


# -- RBAC for Applications ----------------------------------------------------------------------


def test_rbac_scope_grants_without_entra_consent(sim: SimServer, http: httpx.Client) -> None:
    http.patch(f"{CONTROL}/recipients/lee@contoso.com", json={"CustomAttribute1": "EMEA"})
    scope = http.post(
        f"{CONTROL}/managementScopes",
        json={"Name": "EMEA", "RecipientRestrictionFilter": "CustomAttribute1 -eq 'EMEA'"},
    )
    assert scope.status_code == 201
    assigned = http.post(
        f"{CONTROL}/roleAssignments",
        json={
            "App": PENDING_APP_ID,
            "Role": "Application Mail.Read",
            "CustomResourceScope": "EMEA",
        },
    )
    assert assigned.status_code == 201
    headers = app_headers(sim, roles=[], app_id=PENDING_APP_ID)  # no Entra roles at all
    assert read_mail(http, headers, "lee@contoso.com").status_code == 200
    assert error(read_mail(http, headers, "adele@contoso.com"))[2] == POLICY_DENIED
    assert error(write_mail(http, headers, "lee@contoso.com"))[:2] == (403, "ErrorAccessDenied")
    report = http.post(
        f"{CONTROL}/servicePrincipalAuthorization/test",
        json={"Identity": PENDING_APP_ID, "Resource": "adele@contoso.com"},
    ).json()["value"]
    assert report == [
        {
            "RoleName": "Application Mail.Read",
            "GrantedPermissions": "Mail.Read",
            "AllowedResourceScope": "EMEA",
            "ScopeType": "CustomRecipientScope",
            "InScope": False,
        }
    ]


def test_send_mail_is_authorized_on_mail_send_like_any_mailbox_operation(
    sim: SimServer, http: httpx.Client
) -> None:
    message = {
        "message": {
            "subject": "x",
            "toRecipients": [{"emailAddress": {"address": "alex@contoso.com"}}],
        }
    }
    sender = app_headers(sim, roles=["Mail.Send"])
    add_policy(http, SERVICE_APP_ID, "crm-sync@contoso.com", "RestrictAccess")
    sent = http.post("/v1.0/users/adele@contoso.com/sendMail", headers=sender, json=message)
    assert sent.status_code == 202  # adele is in the policy's group
    outside = http.post("/v1.0/users/johanna@contoso.com/sendMail", headers=sender, json=message)
    assert error(outside)[:3] == (403, "ErrorAccessDenied", POLICY_DENIED)
    # RBAC for Applications: "Application Mail.Send" without any Entra consent.
    assigned = http.post(
        f"{CONTROL}/roleAssignments",
        json={"App": PENDING_APP_ID, "Role": "Application Mail.Send"},
    )
    assert assigned.status_code == 201
    pending = app_headers(sim, roles=[], app_id=PENDING_APP_ID)
    via_rbac = http.post("/v1.0/users/johanna@contoso.com/sendMail", headers=pending, json=message)
    assert via_rbac.status_code == 202
    assert read_mail(http, pending, "johanna@contoso.com").status_code == 403


def test_rbac_member_of_group_scope_and_union_with_restricted_entra_grant(
    sim: SimServer, http: httpx.Client
) -> None:
    # Entra grant restricted by a policy to the CRM group; RBAC adds johanna's mailbox.
    add_policy(http, SERVICE_APP_ID, "crm-sync@contoso.com", "RestrictAccess")
    http.post(
        f"{CONTROL}/managementScopes",
        json={
            "Name": "Johanna",
            "RecipientRestrictionFilter": "PrimarySmtpAddress -eq 'johanna@contoso.com'",
        },
    )
    http.post(
        f"{CONTROL}/roleAssignments",
        json={
            "App": SERVICE_APP_ID,
            "Role": "Application Mail.Read",
            "CustomResourceScope": "Johanna",
        },
    )
    headers = app_headers(sim)
    assert (
        read_mail(http, headers, "johanna@contoso.com").status_code == 200
    )  # RBAC, not policed by AAP
    assert read_mail(http, headers, "adele@contoso.com").status_code == 200  # Entra, allowed by AAP
    assert read_mail(http, headers, "lidia@contoso.com").status_code == 403  # neither


def test_member_of_group_filter(sim: SimServer, http: httpx.Client) -> None:
    http.post(
        f"{CONTROL}/managementScopes",
        json={
            "Name": "CRM",
            "RecipientRestrictionFilter": "MemberOfGroup -eq 'CN=CRM Synced Mailboxes,OU=contoso'",
        },
    )
    http.post(
        f"{CONTROL}/roleAssignments",
        json={
            "App": PENDING_APP_ID,
            "Role": "Application Calendars.ReadWrite",
            "CustomResourceScope": "CRM",
        },
    )
    headers = app_headers(sim, roles=[], app_id=PENDING_APP_ID)
    assert http.get("/v1.0/users/grady@contoso.com/events", headers=headers).status_code == 200
    assert http.get("/v1.0/users/lidia@contoso.com/events", headers=headers).status_code == 403
    assert read_mail(http, headers, "grady@contoso.com").status_code == 403  # calendar role only


def test_bad_scope_filter_is_refused(sim: SimServer, http: httpx.Client) -> None:
    refused = http.post(
        f"{CONTROL}/managementScopes",
        json={"Name": "x", "RecipientRestrictionFilter": "ShoeSize -eq '9'"},
    )
    assert refused.status_code == 400
    assert "ShoeSize" in refused.json()["error"]["message"]


# -- delegated access ---------------------------------------------------------------------------


def test_delegated_needs_shared_scope_and_a_mailbox_permission(
    sim: SimServer, http: httpx.Client
) -> None:
    own_only = bearer(mint_user_token(sim, TENANT, "adele@contoso.com", ["Mail.ReadWrite"]))
    shared = bearer(
        mint_user_token(sim, TENANT, "adele@contoso.com", ["Mail.ReadWrite", "Mail.Read.Shared"])
    )
    assert http.get("/v1.0/me/messages", headers=own_only).status_code == 200
    assert read_mail(http, own_only, "diego@contoso.com").status_code == 403
    assert read_mail(http, shared, "diego@contoso.com").status_code == 403  # not shared with adele
    http.post(
        f"{CONTROL}/mailboxPermissions",
        json={
            "Identity": "diego@contoso.com",
            "User": "adele@contoso.com",
            "AccessRights": "ReadPermission",
        },
    )
    assert read_mail(http, shared, "diego@contoso.com").status_code == 200
    assert write_mail(http, shared, "diego@contoso.com").status_code == 403


# -- unreachable and full mailboxes ---------------------------------------------------------------


@pytest.mark.parametrize("user", ["pradeep@contoso.com", "onprem@contoso.com"])
def test_unlicensed_and_onprem_mailboxes_are_not_rest_enabled(
    sim: SimServer, http: httpx.Client, user: str
) -> None:
    status, code, _ = error(read_mail(http, app_headers(sim), user))
    assert (status, code) == (404, "MailboxNotEnabledForRESTAPI")


def test_soft_deleted_mailbox_is_not_rest_enabled(sim: SimServer, http: httpx.Client) -> None:
    sim.state.find_tenant(TENANT).find_user("lee@contoso.com").soft_deleted = True  # type: ignore[union-attr]
    assert error(read_mail(http, app_headers(sim), "lee@contoso.com"))[:2] == (
        404,
        "MailboxNotEnabledForRESTAPI",
    )


def test_unreachable_mailbox_answers_404_before_policy_denial(
    sim: SimServer, http: httpx.Client
) -> None:
    add_policy(http, SERVICE_APP_ID, "crm-sync@contoso.com", "RestrictAccess")
    assert error(read_mail(http, app_headers(sim), "pradeep@contoso.com"))[:2] == (
        404,
        "MailboxNotEnabledForRESTAPI",
    )


def test_full_mailbox_refuses_writes_and_delta_but_reads(
    sim: SimServer, http: httpx.Client
) -> None:
    sim.state.find_tenant(TENANT).find_user("alex@contoso.com").mailbox_full = True  # type: ignore[union-attr]
    headers = app_headers(sim)
    assert read_mail(http, headers, "alex@contoso.com").status_code == 200
    assert error(write_mail(http, headers, "alex@contoso.com"))[:2] == (403, "ErrorQuotaExceeded")
    delta = http.get(
        "/v1.0/users/alex@contoso.com/mailFolders/inbox/messages/delta", headers=headers
    )
    assert error(delta)[:2] == (403, "ErrorQuotaExceeded")
