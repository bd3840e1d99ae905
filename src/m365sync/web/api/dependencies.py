"""What every JSON API route depends on: the request's database session (committed when
the route returns, rolled back on error), the connection runtime, and the caller — an
admin authenticated by an API token, acting within that token's organization only."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from m365sync.connections.runtime import ConnectionRuntime
from m365sync.db.session import Database
from m365sync.errors import Forbidden, Unauthorized
from m365sync.organizations import service as orgs
from m365sync.organizations.models import Member, Organization
from m365sync.settings import Settings


def api_session(request: Request) -> Iterator[Session]:
    database: Database = request.app.state.database
    with database.session() as session:
        yield session


ApiSession = Annotated[Session, Depends(api_session)]


def runtime_of(request: Request) -> ConnectionRuntime:
    runtime: ConnectionRuntime = request.app.state.runtime
    return runtime


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


Runtime = Annotated[ConnectionRuntime, Depends(runtime_of)]


@dataclass
class Caller:
    organization: Organization
    member: Member

    @property
    def actor(self) -> str:
        return f"{self.member.email} (API)"


def api_caller(request: Request, session: ApiSession, org: str) -> Caller:
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
    return Caller(organization=organization, member=member)


Admin = Annotated[Caller, Depends(api_caller)]
