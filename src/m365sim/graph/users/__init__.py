"""Microsoft Graph: users."""
