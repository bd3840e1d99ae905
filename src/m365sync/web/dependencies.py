"""What web routes depend on, as FastAPI dependencies: the request's database session,
what the app factory put on ``app.state`` (settings, the connection runtime, the sync
workers), and who is asking.

- The JSON API's caller (``ApiAdmin``): an admin authenticated by an API token, acting
  within that token's organization only.
- The dashboard's signed-in member (``SignedInMember``, ``SignedInAdmin``) from the session
  cookie, and the CSRF check on every form (``MemberForm``, ``AdminForm``); pages turn the
  ``SignedIn`` member into the organization and member rows the services take
  (``organization_of``, ``member_of``).

Organization isolation starts here: a route gets the caller or the ``SignedIn`` member and
passes its organization to the services, which only ever read that organization's rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from m365sync.auth.service import SignedIn, csrf_token_matches, resolve_session
from m365sync.connections.runtime import ConnectionRuntime
from m365sync.db.session import Database
from m365sync.errors import Forbidden, M365SyncError, Unauthorized
from m365sync.organizations import service as orgs
from m365sync.organizations.models import Member, Organization
from m365sync.settings import Settings, get_settings
from m365sync.workers.dispatch import SyncWorkers

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "AdminForm",
    "ApiAdmin",
    "ApiCaller",
    "CsrfRejected",
    "DbSession",
    "MemberForm",
    "NotSignedIn",
    "Runtime",
    "SignedInAdmin",
    "SignedInMember",
    "Workers",
    "cookie_is_secure",
    "database_of",
    "db_session",
    "member_of",
    "organization_of",
    "runtime_of",
    "session_cookie_name",
    "settings_of",
    "sync_workers_of",
]

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


# What the app factory (``m365sync.web.app.create_app``) put on ``app.state``.


def settings_of(request: Request) -> Settings:
    settings = getattr(request.app.state, "settings", None)
    return settings if isinstance(settings, Settings) else get_settings()


def database_of(request: Request) -> Database:
    database = getattr(request.app.state, "database", None)
    if not isinstance(database, Database):  # pragma: no cover - a wiring mistake
        raise RuntimeError("app.state.database is not set: build the app with m365sync.web.app")
    return database


def runtime_of(request: Request) -> ConnectionRuntime:
    runtime = getattr(request.app.state, "runtime", None)
    if not isinstance(runtime, ConnectionRuntime):  # pragma: no cover - a wiring mistake
        raise RuntimeError("app.state.runtime is not set: build the app with m365sync.web.app")
    return runtime


def sync_workers_of(request: Request) -> SyncWorkers:
    workers: SyncWorkers | None = getattr(request.app.state, "sync_workers", None)
    if workers is None:  # pragma: no cover - a wiring mistake
        raise RuntimeError("app.state.sync_workers is not set: build the app with m365sync.web.app")
    return workers


def db_session(request: Request) -> Iterator[Session]:
    """The request's unit of work: committed when the route returns, rolled back on error."""
    with database_of(request).session() as session:
        yield session


DbSession = Annotated[Session, Depends(db_session, scope="function")]
Runtime = Annotated[ConnectionRuntime, Depends(runtime_of)]
Workers = Annotated[SyncWorkers, Depends(sync_workers_of)]


def organization_of(db: Session, me: SignedIn) -> Organization:
    """The signed-in person's organization: every page acts within it only."""
    return orgs.get_organization(db, me.organization_id)


def member_of(db: Session, me: SignedIn) -> Member:
    """The signed-in person's member row, which the services take."""
    return orgs.get_member(db, organization_of(db, me), me.member_id)


# The JSON API: an admin's API token.


@dataclass
class ApiCaller:
    organization: Organization
    member: Member

    @property
    def actor(self) -> str:
        return f"{self.member.email} (API)"


def api_caller(request: Request, session: DbSession, org: str) -> ApiCaller:
    """The token's admin, refused (403) for any organization but the token's own."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "This API needs an API token.",
            fix=(
                "Send 'Authorization: Bearer <token>'; create one with: m365sync api-tokens "
                "create --org <org> --admin <email>"
            ),
        )
    organization, member = orgs.authenticate_token(session, token)
    if org not in (organization.id, organization.slug):
        raise Forbidden(
            "This API token belongs to another organization.",
            fix=(
                f"Use /api/v1/organizations/{organization.slug}/..., or a token of an admin of "
                f"'{org}'."
            ),
        )
    return ApiCaller(organization=organization, member=member)


ApiAdmin = Annotated[ApiCaller, Depends(api_caller)]


# The dashboard: a signed-in browser's session cookie.


class NotSignedIn(M365SyncError):
    """No valid session: pages answer with a redirect to the sign-in page."""

    status = 401


class CsrfRejected(Forbidden):
    pass


def cookie_is_secure(request: Request) -> bool:
    """Secure cookies everywhere browsers accept them: https, and loopback addresses
    (which browsers treat as secure contexts, so the local demo works over http)."""
    if request.url.scheme == "https":
        return True
    host = request.url.hostname or ""
    if host == "localhost":
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def session_cookie_name(request: Request) -> str:
    # The __Host- prefix makes browsers refuse the cookie unless it is Secure, host-only and
    # for path "/": a subdomain or a plain-http page cannot plant or shadow it.
    return "__Host-m365sync_session" if cookie_is_secure(request) else "m365sync_session"


def signed_in_member(request: Request, db: DbSession) -> SignedIn:
    signed_in = resolve_session(db, request.cookies.get(session_cookie_name(request)))
    if signed_in is None:
        raise NotSignedIn("Please sign in.")
    request.state.signed_in = signed_in
    return signed_in


def signed_in_admin(member: Annotated[SignedIn, Depends(signed_in_member)]) -> SignedIn:
    if not member.is_admin:
        raise Forbidden(
            "This page is for admins of your organization.",
            fix="Ask an admin of your organization if you need a change made here.",
        )
    return member


async def csrf_protected(
    request: Request, member: Annotated[SignedIn, Depends(signed_in_member)]
) -> SignedIn:
    """Every state-changing request must echo the session's CSRF token (form field or
    header); a forged cross-site form cannot know it."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return member
    given = request.headers.get(CSRF_HEADER)
    if not given:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not csrf_token_matches(member.csrf_token, given):
        raise CsrfRejected(
            "This form has expired or did not come from this site.",
            fix="Reload the page and submit it again.",
        )
    return member


def csrf_protected_admin(member: Annotated[SignedIn, Depends(csrf_protected)]) -> SignedIn:
    return signed_in_admin(member)


SignedInMember = Annotated[SignedIn, Depends(signed_in_member)]
SignedInAdmin = Annotated[SignedIn, Depends(signed_in_admin)]
MemberForm = Annotated[SignedIn, Depends(csrf_protected)]
AdminForm = Annotated[SignedIn, Depends(csrf_protected_admin)]
