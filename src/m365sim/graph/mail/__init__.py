"""Microsoft Graph: mail."""
