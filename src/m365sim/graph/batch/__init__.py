"""Microsoft Graph: batch."""
