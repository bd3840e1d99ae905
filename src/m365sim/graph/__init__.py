"""Microsoft Graph v1.0, as Exchange Online answers it (``/v1.0/...``)."""
