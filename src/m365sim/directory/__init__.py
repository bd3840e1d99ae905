"""The tenant directory: tenants, users, groups, app registrations and their consent."""

from m365sim.directory.models import (
    GRAPH_APP_ID,
    AppRegistration,
    Certificate,
    ClientSecret,
    DelegatedGrant,
    Group,
    ServicePrincipal,
    Tenant,
    User,
)

__all__ = [
    "GRAPH_APP_ID",
    "AppRegistration",
    "Certificate",
    "ClientSecret",
    "DelegatedGrant",
    "Group",
    "ServicePrincipal",
    "Tenant",
    "User",
]
