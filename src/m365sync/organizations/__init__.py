"""Organizations, members, domains to sync, API tokens."""
