"""Microsoft Entra ID (identity platform v2.0): discovery, tokens, sign-in and consent pages.

``identity_backend(state)`` (the token service: codes, refresh tokens, grants) and
``sign_in_flow(state)`` (browser sessions and the sign-in pages) are the entry points other
packages need (e.g. to inspect issued refresh tokens in a test); routes are in ``urls.py``.
"""

from m365sim.identity.models import IdentityBackend, identity_backend
from m365sim.identity.sign_in import SignInFlow, sign_in_flow

__all__ = ["IdentityBackend", "SignInFlow", "identity_backend", "sign_in_flow"]
