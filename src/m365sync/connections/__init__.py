"""Service accounts and user connections: storage, Run Test, access-policy guidance."""
