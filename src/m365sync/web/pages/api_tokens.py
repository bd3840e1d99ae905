"""Admin → My Organization → API tokens: the organization's tokens for the JSON API, and
Revoke."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from m365sync.web.dependencies import AdminForm, DbSession, SignedInAdmin
from m365sync.web.pages import services
from m365sync.web.pages.rendering import PageRoute, redirect, render

router = APIRouter(prefix="/admin", route_class=PageRoute)

NOTICES = {"revoked": "API token revoked: it no longer works."}


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
        tokens=services.list_api_tokens(db, me.organization_id),
        notice=NOTICES.get(notice),
    )


@router.post("/api-tokens/{token_id}/revoke", include_in_schema=False)
def revoke_api_token(db: DbSession, me: AdminForm, token_id: str) -> Response:
    services.revoke_api_token(db, me, token_id)
    return redirect("/admin/api-tokens?notice=revoked")
