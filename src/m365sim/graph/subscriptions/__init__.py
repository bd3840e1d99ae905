"""Microsoft Graph: change-notification subscriptions for Outlook messages and events, and
Microsoft To Do tasks."""

from m365sim.graph.subscriptions.delivery import install

__all__ = ["install"]
