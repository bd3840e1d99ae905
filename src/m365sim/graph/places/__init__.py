"""Graph ``places``: the tenant's rooms and equipment (resource mailboxes)."""
