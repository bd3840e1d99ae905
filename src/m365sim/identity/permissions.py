"""Which scopes exist, which need an administrator, and how they read on a consent page.

Scopes are Microsoft Graph permissions (the only resource m365sim serves tokens for) plus
the OpenID Connect scopes. A scope is written short (``Mail.Read``) or qualified
(``https://graph.microsoft.com/Mail.Read`` or with Graph's app id); ``/.default`` means
"everything configured on the app registration".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from m365sim.directory.models import GRAPH_APP_ID

OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
GRAPH_RESOURCE_IDS = frozenset(
    {"https://graph.microsoft.com", "https://graph.microsoft.com/", GRAPH_APP_ID}
)
GRAPH_PERMISSION_NAME = re.compile(r"^[A-Z][A-Za-z]*(\.[A-Z][A-Za-z]*)+$")

ADMIN_ONLY_DELEGATED = frozenset(
    {
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
        "Mail.Read.All",
        "Calendars.Read.All",
        "MailboxSettings.ReadWrite.All",
        "Application.Read.All",
        "Application.ReadWrite.All",
        "AppRoleAssignment.ReadWrite.All",
        "DelegatedPermissionGrant.ReadWrite.All",
        "Directory.AccessAsUser.All",
    }
)
"""Delegated Graph permissions whose "Admin consent required" column says Yes."""

DESCRIPTIONS = {
    "openid": "Sign you in",
    "profile": "View your basic profile",
    "email": "View your email address",
    "offline_access": "Maintain access to data you have given it access to",
    "User.Read": "Sign you in and read your profile",
    "User.Read.All": "Read all users' full profiles",
    "User.ReadBasic.All": "Read all users' basic profiles",
    "Mail.Read": "Read your mail",
    "Mail.ReadWrite": "Read and write access to your mail",
    "Mail.Send": "Send mail as you",
    "Calendars.Read": "Read your calendars",
    "Calendars.ReadWrite": "Have full access to your calendars",
    "Tasks.Read": "Read your tasks and task lists",
    "Tasks.ReadWrite": "Create, read, update, and delete your tasks and task lists",
    "MailboxSettings.Read": "Read your mailbox settings",
    "Contacts.Read": "Read your contacts",
    "Application.Read.All": "Read applications",
    "Application.ReadWrite.All": "Read and write all applications",
    "AppRoleAssignment.ReadWrite.All": "Manage app permission grants and app role assignments",
    "DelegatedPermissionGrant.ReadWrite.All": "Manage all delegated permission grants",
}
APPLICATION_DESCRIPTIONS = {
    "Mail.Read": "Read mail in all mailboxes",
    "Mail.ReadWrite": "Read and write mail in all mailboxes",
    "Mail.Send": "Send mail as any user",
    "Calendars.Read": "Read calendars in all mailboxes",
    "Calendars.ReadWrite": "Read and write calendars in all mailboxes",
    "User.Read.All": "Read all users' full profiles",
    "MailboxSettings.Read": "Read all user mailbox settings",
}


@dataclass(frozen=True)
class Permission:
    """One line of a consent page."""

    name: str
    description: str
    kind: str  # "delegated" | "application"
    admin_only: bool = False


def describe_delegated(name: str) -> Permission:
    return Permission(
        name=name,
        description=DESCRIPTIONS.get(name, name),
        kind="delegated",
        admin_only=name in ADMIN_ONLY_DELEGATED,
    )


def describe_application(name: str) -> Permission:
    return Permission(
        name=name,
        description=APPLICATION_DESCRIPTIONS.get(name, name),
        kind="application",
        admin_only=True,
    )


@dataclass
class RequestedScopes:
    """A parsed ``scope`` parameter.

    ``raw`` keeps each scope as the client wrote it (token responses echo that form, and
    MSAL's cache matches on it); ``graph`` holds short Graph permission names.
    """

    raw: list[str] = field(default_factory=list)
    oidc: set[str] = field(default_factory=set)
    graph: set[str] = field(default_factory=set)
    default: bool = False
    resources: set[str] = field(default_factory=set)
    unknown_resources: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, scope: str) -> RequestedScopes:
        parsed = cls()
        for item in scope.split():
            if item in parsed.raw:
                continue
            parsed.raw.append(item)
            if item.lower() in OIDC_SCOPES:
                parsed.oidc.add(item.lower())
                continue
            resource, slash, name = item.rpartition("/")
            if slash:
                if resource.lower().rstrip("/") not in {r.rstrip("/") for r in GRAPH_RESOURCE_IDS}:
                    parsed.unknown_resources.append(resource)
                    continue
                parsed.resources.add("graph")
                if name == ".default":
                    parsed.default = True
                elif GRAPH_PERMISSION_NAME.match(name):
                    parsed.graph.add(name)
                else:
                    parsed.malformed.append(item)
            elif GRAPH_PERMISSION_NAME.match(item):
                parsed.resources.add("graph")
                parsed.graph.add(item)
            else:
                parsed.malformed.append(item)
        return parsed

    def wanted(self, configured: set[str]) -> set[str]:
        """The Graph permissions this request asks for (``/.default`` = the configured ones)."""
        return self.graph | ((configured - OIDC_SCOPES) if self.default else set())
