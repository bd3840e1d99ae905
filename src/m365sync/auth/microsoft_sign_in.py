""" "Sign in with Microsoft": OpenID Connect against the organization's own tenant.

The person types their work email; its domain names the organization and the authority.
Only a *verified* domain routes a sign-in (one organization at most holds a domain verified,
see ``m365sync.organizations``), and only one verified in a Microsoft 365 tenant: the
authority is ``{authority_host}/{tenant id}``, so the sign-in page they see is their own
tenant's. MSAL (through ``microsoft.auth.OpenIdSignIn``) runs the authorization-code flow
with PKCE and checks the ``state`` and the ID token's nonce; the flow is kept server-side,
bound to the browser that started it (a random cookie whose hash is stored with it), so a
sign-in link cannot be replayed in another browser. The ID token's address must be in a
domain the same organization verified in the token's tenant (``tid``), and its user must be
a member of the organization.

The app signed in to is the one for user connections (``user_app_client_id``).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from m365sync.auth import repository
from m365sync.auth.models import MicrosoftSignInRequest
from m365sync.auth.service import NewSession, SignInRefused, start_session
from m365sync.db.base import utcnow
from m365sync.microsoft.auth import OpenIdSignIn
from m365sync.microsoft.errors import Transient, classify_aad_error
from m365sync.settings import Settings

SIGN_IN_SCOPES = ["User.Read"]
_REQUEST_LIFETIME = timedelta(minutes=15)


@dataclass(frozen=True)
class MicrosoftSignInStart:
    authorization_url: str
    browser_binding: str  # set as a short-lived cookie


class DomainNotVerifiedForSignIn(SignInRefused):
    """No organization verified the email's domain (in a tenant): nowhere to sign in. A door
    may say where an admin verifies a domain."""

    def __init__(self, domain: str) -> None:
        super().__init__(
            f"No organization here has verified the domain {domain} for Sign in with Microsoft.",
            fix="Check the address, or sign in with your email and password. An admin of your "
            f"organization verifies {domain} first.",
        )
        self.domain = domain


class NotAMember(SignInRefused):
    """Microsoft signed the person in, but the organization has no member of that address.
    A door may say where an admin adds members."""

    def __init__(self, email: str) -> None:
        super().__init__(
            f"{email} is not a member of this organization in m365sync.",
            fix="Ask an admin of your organization to add you as a member.",
        )
        self.email = email


def _client(settings: Settings, authority: str) -> OpenIdSignIn:
    if not settings.user_app_client_id or not settings.user_app_client_secret:
        raise SignInRefused(
            "Sign in with Microsoft is not set up on this server.",
            fix="Sign in with your email and password, or ask the server's operator to give it "
            "the app registration people sign in to (its client ID and secret; see "
            "docs/configuration.md).",
        )
    try:
        return OpenIdSignIn(
            settings,
            client_id=settings.user_app_client_id,
            client_secret=settings.user_app_client_secret,
            authority=authority,
        )
    except Transient as exc:
        raise _unreachable(exc) from exc


def _unreachable(exc: Transient) -> SignInRefused:
    cause = exc.__cause__ or exc  # what failed on the way to Entra ID
    return SignInRefused(
        f"Microsoft Entra ID could not be reached to sign you in ({type(cause).__name__}).",
        fix="Try again in a minute, or sign in with your email and password. If it keeps "
        "failing, the administrator checks this server's connection to Microsoft.",
    )


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def begin_microsoft_sign_in(
    db: Session, settings: Settings, email: str, redirect_uri: str
) -> MicrosoftSignInStart:
    email = email.strip().lower()
    domain = email.rpartition("@")[2]
    if "@" not in email or not domain:
        raise SignInRefused(
            "Enter your work email address.", fix="For example: you@yourcompany.com."
        )
    verified = repository.organization_with_verified_domain(db, domain)
    if verified is None or verified[1].tenant_id is None:
        raise DomainNotVerifiedForSignIn(domain)
    organization, verified_domain = verified
    repository.delete_stale_microsoft_sign_in_requests(db, utcnow() - _REQUEST_LIFETIME)
    authority = f"{settings.authority_host.rstrip('/')}/{verified_domain.tenant_id}"
    try:
        flow = _client(settings, authority).start(
            SIGN_IN_SCOPES, redirect_uri=redirect_uri, login_hint=email
        )
    except Transient as exc:
        raise _unreachable(exc) from exc
    binding = secrets.token_urlsafe(32)
    db.add(
        MicrosoftSignInRequest(
            state=flow["state"],
            browser_binding_hash=_hash(binding),
            organization_id=organization.id,
            authority=authority,
            flow=dict(flow),
        )
    )
    return MicrosoftSignInStart(authorization_url=flow["auth_uri"], browser_binding=binding)


def complete_microsoft_sign_in(
    db: Session, settings: Settings, query: Mapping[str, str], browser_binding: str | None
) -> NewSession:
    request = repository.pop_microsoft_sign_in_request(db, query.get("state", ""))
    if (
        request is None
        or not browser_binding
        or not secrets.compare_digest(request.browser_binding_hash, _hash(browser_binding))
        or request.created_at < utcnow() - _REQUEST_LIFETIME
    ):
        raise SignInRefused(
            "This sign-in link has expired or was started in another browser.",
            fix="Click 'Sign in with Microsoft' again.",
        )
    if "error" in query:
        error = classify_aad_error(dict(query))
        raise SignInRefused(f"Microsoft did not sign you in: {error.message}", fix=error.fix)
    try:
        result = _client(settings, request.authority).finish(request.flow, query, SIGN_IN_SCOPES)
    except Transient as exc:
        raise _unreachable(exc) from exc
    except ValueError as exc:  # MSAL: the answer does not match the flow (state, code)
        raise SignInRefused(
            "Microsoft's answer does not match the sign-in that was started.",
            fix="Click 'Sign in with Microsoft' again.",
        ) from exc
    if "error" in result:
        error = classify_aad_error(result)
        raise SignInRefused(f"Microsoft did not sign you in: {error.message}", fix=error.fix)
    claims: dict[str, Any] = result.get("id_token_claims") or {}
    email = str(claims.get("preferred_username") or claims.get("email") or "").lower()
    tenant_id = str(claims.get("tid") or "")
    verified = repository.organization_with_verified_domain(db, email.rpartition("@")[2])
    if (
        verified is None
        or verified[0].id != request.organization_id
        or not tenant_id
        or verified[1].tenant_id != tenant_id
    ):
        raise SignInRefused(
            f"{email or 'This account'} does not belong to this organization's "
            "Microsoft 365 tenant.",
            fix="Sign in with your work account of the organization's domain.",
        )
    member = repository.member_by_email(db, request.organization_id, email)
    if member is None:
        raise NotAMember(email)
    return start_session(db, member, sign_in_method="microsoft")
