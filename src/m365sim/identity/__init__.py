"""Microsoft Entra ID (identity platform v2.0): discovery, tokens, sign-in and consent pages.

``identity_backend(state)`` is the one entry point other packages need (e.g. to inspect
issued refresh tokens in a test); routes are in ``urls.py``.
"""

from m365sim.identity.models import IdentityBackend, identity_backend

__all__ = ["IdentityBackend", "identity_backend"]
