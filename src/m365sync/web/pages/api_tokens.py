"""Admin → My Organization → API tokens: the organization's tokens for the JSON API, and
Revoke."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Request, Response

from m365sync.organizations import service as organizations
from m365sync.web.dependencies import AdminForm, DbSession, SignedInAdmin, organization_of
from m365sync.web.pages.rendering import PageRoute, redirect, render

router = APIRouter(prefix="/admin", route_class=PageRoute)

NOTICES = {"revoked": "API token revoked: it no longer works."}


@dataclass(frozen=True)
class ApiTokenView:
    """One API token as the list shows it: never the token, only its first characters."""

    id: str
    name: str
    prefix: str
    admin: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@router.get("/api-tokens", include_in_schema=False)
def api_tokens_page(
    request: Request, db: DbSession, me: SignedInAdmin, notice: str = ""
) -> Response:
    return render(
        request,
        "admin/api_tokens.html",
        title="API tokens",
        area="admin",
        nav="api-tokens",
        tokens=[
            ApiTokenView(
                id=t.id,
                name=t.name,
                prefix=t.prefix,
                admin=t.member.email,
                created_at=t.created_at,
                last_used_at=t.last_used_at,
                revoked_at=t.revoked_at,
            )
            for t in organizations.list_api_tokens(db, organization_of(db, me))
        ],
        notice=NOTICES.get(notice),
    )


@router.post("/api-tokens/{token_id}/revoke", include_in_schema=False)
def revoke_api_token(db: DbSession, me: AdminForm, token_id: str) -> Response:
    organizations.revoke_api_token(db, organization_of(db, me), token_id, actor=me.email)
    return redirect("/admin/api-tokens?notice=revoked")
