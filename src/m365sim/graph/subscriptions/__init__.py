"""Microsoft Graph: subscriptions."""
