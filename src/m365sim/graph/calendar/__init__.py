"""Microsoft Graph: calendar."""
