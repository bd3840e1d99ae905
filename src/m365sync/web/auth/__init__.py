"""Who is using the dashboard: local accounts (argon2, lockout), "Sign in with Microsoft"
(OpenID Connect against the organization's tenant), sessions, CSRF tokens and roles."""

from m365sync.web.auth.service import (
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
