"""Microsoft Graph: change-notification subscriptions for Outlook messages and events."""

from m365sim.graph.subscriptions.delivery import install

__all__ = ["install"]
