"""Exchange Online's mailbox authorization for apps and delegates: Application Access
Policies, RBAC for Applications, mailbox permissions (models, seed loading, control API)."""

from m365sim.graph.policies.models import TenantPolicies, policies_for
from m365sim.graph.policies.seed import load_policies

__all__ = ["TenantPolicies", "load_policies", "policies_for"]
