"""Microsoft Graph: app management (applications, service principals, their credentials,
app role assignments and delegated permission grants) over the tenant's directory."""

from m365sim.graph.applications.models import ApplicationsBackend, applications_backend

__all__ = ["ApplicationsBackend", "applications_backend"]
