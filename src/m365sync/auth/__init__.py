"""Sign-in: who is using the dashboard. Local accounts (argon2, lockout), "Sign in with
Microsoft" (OpenID Connect against the organization's tenant, ``microsoft_sign_in``),
sessions, CSRF tokens and roles. The web's request dependencies (``m365sync.web.dependencies``)
turn a session cookie into the ``SignedIn`` member through ``resolve_session``."""

from m365sync.auth.service import (
    SignedIn,
    SignInRefused,
    end_session,
    resolve_session,
    set_password,
    sign_in_with_password,
    start_session,
)

__all__ = [
    "SignInRefused",
    "SignedIn",
    "end_session",
    "resolve_session",
    "set_password",
    "sign_in_with_password",
    "start_session",
]
