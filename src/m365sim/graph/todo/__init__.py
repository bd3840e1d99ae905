"""Microsoft Graph: todo."""
