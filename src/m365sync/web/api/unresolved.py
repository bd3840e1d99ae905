"""JSON API: a member's unresolved queue (emails and meetings with people who are no
Salesforce Contact or Lead) and what is decided for each address (the rules are
``m365sync.crm.salesforce_unresolved``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from m365sync.crm import salesforce_unresolved as unresolved
from m365sync.crm.salesforce_schemas import DismissIn, LeadIn, RelateIn
from m365sync.web.dependencies import ApiAdmin, DbSession

router = APIRouter(prefix="/organizations/{org}/unresolved", tags=["unresolved"])


@router.get("")
def list_unresolved(
    caller: ApiAdmin, session: DbSession, member_id: str | None = None
) -> list[dict[str, Any]]:
    """The member's waiting emails and meetings (default: the token's own member)."""
    items = unresolved.unresolved_items(
        session, caller.organization.id, member_id or caller.member.id
    )
    return [item.as_json() for item in items]


@router.get("/records")
def search_records(caller: ApiAdmin, session: DbSession, q: str = "") -> list[dict[str, Any]]:
    """Salesforce Contacts, Leads, Accounts and open Opportunities matching ``q``."""
    found = unresolved.find_salesforce_records(session, caller.organization.id, q)
    return [record.as_json() for record in found]


@router.post("/addresses/{address}/relate")
def relate(caller: ApiAdmin, session: DbSession, address: str, body: RelateIn) -> dict[str, Any]:
    decision = unresolved.relate_address(
        session,
        caller.organization.id,
        body.member_id or caller.member.id,
        address,
        body.salesforce_id,
    )
    return decision.as_json()


@router.post("/addresses/{address}/lead", status_code=201)
def create_lead(
    caller: ApiAdmin, session: DbSession, request: Request, address: str, body: LeadIn
) -> dict[str, Any]:
    state = request.app.state
    decision = unresolved.create_lead_for_address(
        session,
        caller.organization.id,
        body.member_id or caller.member.id,
        address,
        name=body.name,
        company=body.company,
        settings=state.settings,
        box=state.runtime.box,
    )
    return decision.as_json()


@router.post("/addresses/{address}/dismiss")
def dismiss(
    caller: ApiAdmin, session: DbSession, address: str, body: DismissIn | None = None
) -> dict[str, Any]:
    member_id = (body.member_id if body else None) or caller.member.id
    return unresolved.dismiss_address(session, caller.organization.id, member_id, address).as_json()
