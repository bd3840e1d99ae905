"""Microsoft Graph's published permissions: the app roles and delegated scopes of its service
principal (appId ``00000003-0000-0000-c000-000000000000``), with Microsoft's real ids.

Every tenant has this service principal; apps name its permissions by id in
``requiredResourceAccess`` and in ``appRoleAssignment.appRoleId``, and by value in
``oauth2PermissionGrant.scope`` and token claims. m365sim carries the subset below, the
permissions its Graph workloads and app management check. The ids were taken from
Microsoft's permissions reference and from dumps of the Graph service principal's
``appRoles`` / ``oauth2PermissionScopes``; each was confirmed in more than one source.

Difference from Microsoft Graph: the real service principal publishes several hundred
permissions; asking m365sim for one not listed here is refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "GRAPH_PERMISSIONS",
    "MICROSOFT_TENANT_ID",
    "GraphPermission",
    "app_role",
    "app_role_by_id",
    "scope",
    "scope_by_id",
]

MICROSOFT_TENANT_ID = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
"""``appOwnerOrganizationId`` of Microsoft's first-party apps."""


@dataclass(frozen=True)
class GraphPermission:
    """One permission ``value``; ``role_id`` / ``scope_id`` are None where Graph publishes no
    application (app role) or delegated (scope) variant."""

    value: str
    role_id: str | None
    scope_id: str | None
    display_name: str
    admin_only_scope: bool = True  # the delegated variant's "Admin consent required"

    @property
    def role_description(self) -> str:
        return f"Allows the app to {self._phrase}, without a signed-in user."

    @property
    def scope_description(self) -> str:
        return f"Allows the app to {self._phrase}, on behalf of the signed-in user."

    @property
    def _phrase(self) -> str:
        return self.display_name[0].lower() + self.display_name[1:]


_P = GraphPermission
GRAPH_PERMISSIONS: tuple[GraphPermission, ...] = (
    # OpenID Connect
    _P("openid", None, "37f7f235-527c-4136-accd-4a02d197296e", "Sign users in", False),
    _P("profile", None, "14dad69e-099b-42c9-810b-d002981feec1", "View users' basic profile", False),
    _P("email", None, "64a6cdd6-aab1-4aaf-94b8-3cc8405e90d0", "View users' email address", False),
    _P(
        "offline_access",
        None,
        "7427e0e9-2fba-42fe-b0c0-848c9e6a8182",
        "Maintain access to data you have given it access to",
        False,
    ),
    # Mail
    _P(
        "Mail.Read",
        "810c84a8-4a9e-49e6-bf7d-12d183f40d01",
        "570282fd-fa5c-430d-a7fd-fc8dc98a9dca",
        "Read mail in all mailboxes",
        False,
    ),
    _P(
        "Mail.ReadWrite",
        "e2a3a72e-5f79-4c64-b1b1-878b674786c9",
        "024d486e-b451-40bb-833d-3e66d98c5c73",
        "Read and write mail in all mailboxes",
        False,
    ),
    _P(
        "Mail.Send",
        "b633e1c5-b582-4048-a93e-9f11b44c7e96",
        "e383f46e-2787-4529-855e-0e479a3ffac0",
        "Send mail as any user",
        False,
    ),
    _P(
        "Mail.Read.Shared",
        None,
        "7b9103a5-4610-446b-9670-80643382c1fa",
        "Read user and shared mail",
        False,
    ),
    _P(
        "Mail.ReadWrite.Shared",
        None,
        "5df07973-7d5d-46ed-9847-1271055cbd51",
        "Read and write user and shared mail",
        False,
    ),
    _P(
        "Mail.Send.Shared",
        None,
        "a367ab51-6b49-43bf-a716-a1fb06d2a174",
        "Send mail on behalf of others",
        False,
    ),
    _P(
        "MailboxSettings.Read",
        "40f97065-369a-49f4-947c-6a255697ae91",
        "87f447af-9fa4-4c32-9dfa-4a57a73d18ce",
        "Read all user mailbox settings",
        False,
    ),
    _P(
        "MailboxSettings.ReadWrite",
        "6931bccd-447a-43d1-b442-00a195474933",
        "818c620a-27a9-40bd-a6a5-d96f7d610b4b",
        "Read and write all user mailbox settings",
        False,
    ),
    # Calendars
    _P(
        "Calendars.Read",
        "798ee544-9d2d-430c-a058-570e29e34338",
        "465a38f9-76ea-45b9-9f34-9e8b0d4b0b42",
        "Read calendars in all mailboxes",
        False,
    ),
    _P(
        "Calendars.ReadWrite",
        "ef54d2bf-783f-4e0f-bca1-3210c0444d99",
        "1ec239c2-d7c9-4623-a91a-a9775856bb36",
        "Read and write calendars in all mailboxes",
        False,
    ),
    _P(
        "Calendars.ReadWrite.Shared",
        None,
        "12466101-c9b8-439a-8589-dd09ee67e8e9",
        "Read and write user and shared calendars",
        False,
    ),
    # Places (room mailboxes)
    _P(
        "Place.Read.All",
        "913b9306-0ce1-42b8-9137-6a7df690a760",
        "cb8f45a0-5c2e-4ea1-b803-84b870a7d7ec",
        "Read all company places",
    ),
    # Contacts
    _P(
        "Contacts.Read",
        "089fe4d0-434a-44c5-8827-41ba8a0b17f5",
        "ff74d97f-43af-4b68-9f2a-b77ee6968c5d",
        "Read contacts in all mailboxes",
        False,
    ),
    _P(
        "Contacts.ReadWrite",
        "6918b873-d17a-4dc1-b314-35f528134491",
        "d56682ec-c09e-4743-aaf4-1a3aac4caa21",
        "Read and write contacts in all mailboxes",
        False,
    ),
    # To Do (Graph publishes Tasks.ReadWrite as a scope and Tasks.ReadWrite.All as an app role)
    _P(
        "Tasks.Read",
        None,
        "f45671fb-e0fe-4b4b-be20-3d3ce43f1bcb",
        "Read user's tasks and task lists",
        False,
    ),
    _P(
        "Tasks.ReadWrite",
        None,
        "2219042f-cab5-40cc-b0d2-16b1540b4c5f",
        "Create, read, update, and delete user's tasks and task lists",
        False,
    ),
    _P(
        "Tasks.Read.All",
        "f10e1f91-74ed-437f-a6fd-d6ae88e26c1f",
        None,
        "Read all users' tasks and tasklists",
    ),
    _P(
        "Tasks.ReadWrite.All",
        "44e666d1-d276-445b-a5fc-8815eeb81d55",
        None,
        "Read and write all users' tasks and tasklists",
    ),
    # Users, groups, directory
    _P(
        "User.Read",
        None,
        "e1fe6dd8-ba31-4d61-89e7-88639da4683d",
        "Sign in and read user profile",
        False,
    ),
    _P(
        "User.ReadBasic.All",
        None,
        "b340eb25-3456-403f-be2f-af7a0d370277",
        "Read all users' basic profiles",
        False,
    ),
    _P(
        "User.Read.All",
        "df021288-bdef-4463-88db-98f22de89214",
        "a154be20-db9c-4678-8ab7-66f6cc099a59",
        "Read all users' full profiles",
    ),
    _P(
        "User.ReadWrite.All",
        "741f803b-c850-494e-b5df-cde7c675a1ca",
        "204e0828-b5ca-4ad8-b9f3-f32a958e7cc4",
        "Read and write all users' full profiles",
    ),
    _P(
        "Group.Read.All",
        "5b567255-7703-4780-807c-7be8301ae99b",
        "5f8c59db-677d-491f-a6b8-5f174b11ec1d",
        "Read all groups",
    ),
    _P(
        "Directory.Read.All",
        "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
        "06da0dbc-49e2-44d2-8312-53f166ab848a",
        "Read directory data",
    ),
    _P(
        "Directory.ReadWrite.All",
        "19dbc75e-c2e2-444c-a770-ec69d8559fc7",
        "c5366453-9fb0-48a5-a156-24f0c49a4b84",
        "Read and write directory data",
    ),
    _P(
        "Directory.AccessAsUser.All",
        None,
        "0e263e50-5827-48a4-b97c-d940288653c7",
        "Access the directory as the signed-in user",
    ),
    # App management and consent
    _P(
        "Application.Read.All",
        "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
        "c79f8feb-a9db-4090-85f9-90d820caa0eb",
        "Read all applications",
    ),
    _P(
        "Application.ReadWrite.All",
        "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
        "bdfbf15f-ee85-4955-8675-146e8e5296b5",
        "Read and write all applications",
    ),
    _P(
        "Application.ReadWrite.OwnedBy",
        "18a4783c-866b-4cc7-a460-3d5e5662c884",
        None,
        "Manage apps that this app creates or owns",
    ),
    _P(
        "AppRoleAssignment.ReadWrite.All",
        "06b708a9-e830-4db3-a914-8e69da51d44f",
        "84bccea3-f856-4a8a-967b-dbe0a3d53a64",
        "Manage app permission grants and app role assignments",
    ),
    _P(
        "DelegatedPermissionGrant.ReadWrite.All",
        "8e8e4742-1d95-4f68-9d56-6ee75648c72a",
        "41ce6ca6-6826-4807-84f1-1c82854f7ee5",
        "Manage all delegated permission grants",
    ),
)
"""The permissions m365sim's Microsoft Graph service principal publishes."""

_BY_VALUE = {p.value: p for p in GRAPH_PERMISSIONS}
_BY_ROLE_ID = {p.role_id: p for p in GRAPH_PERMISSIONS if p.role_id}
_BY_SCOPE_ID = {p.scope_id: p for p in GRAPH_PERMISSIONS if p.scope_id}


def app_role(value: str) -> GraphPermission | None:
    """The application permission (app role) named ``value``, if Graph publishes one."""
    found = _BY_VALUE.get(value)
    return found if found is not None and found.role_id else None


def scope(value: str) -> GraphPermission | None:
    """The delegated permission (scope) named ``value``, if Graph publishes one."""
    found = _BY_VALUE.get(value)
    return found if found is not None and found.scope_id else None


def app_role_by_id(role_id: str) -> GraphPermission | None:
    return _BY_ROLE_ID.get(role_id.lower())


def scope_by_id(scope_id: str) -> GraphPermission | None:
    return _BY_SCOPE_ID.get(scope_id.lower())
