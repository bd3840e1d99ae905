"""FastAPI dependencies that guard every dashboard route: the database session of the
request, who is signed in, their role, and the CSRF check on every form.

Organization isolation starts here: a page gets the ``SignedIn`` member and passes its
``organization_id`` to the services, which only ever read that organization's rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import ip_address
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from m365sync.auth.service import SignedIn, csrf_token_matches, resolve_session
from m365sync.db.session import Database
from m365sync.errors import Forbidden, M365SyncError
from m365sync.settings import Settings, get_settings

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


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


def settings_of(request: Request) -> Settings:
    settings = getattr(request.app.state, "settings", None)
    return settings if isinstance(settings, Settings) else get_settings()


def database_of(request: Request) -> Database:
    database = getattr(request.app.state, "database", None)
    if not isinstance(database, Database):  # pragma: no cover - a wiring mistake
        raise RuntimeError("app.state.database is not set: build the app with m365sync.web.app")
    return database


def db_session(request: Request) -> Iterator[Session]:
    """The request's unit of work: committed when the route returns, rolled back on error."""
    with database_of(request).session() as session:
        yield session


DbSession = Annotated[Session, Depends(db_session, scope="function")]


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


Member = Annotated[SignedIn, Depends(signed_in_member)]
Admin = Annotated[SignedIn, Depends(signed_in_admin)]
MemberForm = Annotated[SignedIn, Depends(csrf_protected)]


def csrf_protected_admin(member: Annotated[SignedIn, Depends(csrf_protected)]) -> SignedIn:
    return signed_in_admin(member)


AdminForm = Annotated[SignedIn, Depends(csrf_protected_admin)]
