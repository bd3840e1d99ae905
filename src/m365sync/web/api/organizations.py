"""JSON API: the caller's organization, its domains to sync, members, API tokens and audit
log."""

from __future__ import annotations

from fastapi import APIRouter, Body, Request, Response

from m365sync.audit import service as audit
from m365sync.connections import service_accounts
from m365sync.organizations import service as orgs
from m365sync.organizations.models import ApiToken, Domain
from m365sync.organizations.schemas import (
    ApiTokenOut,
    AuditEventOut,
    DnsRecordOut,
    DomainIn,
    DomainOut,
    ImportOut,
    MemberIn,
    MemberOut,
    MemberPatch,
    OrganizationOut,
)
from m365sync.web.dependencies import ApiAdmin, DbSession, Runtime

router = APIRouter(prefix="/organizations/{org}", tags=["organizations"])


@router.get("", response_model=OrganizationOut)
def get_organization(caller: ApiAdmin) -> OrganizationOut:
    return OrganizationOut.model_validate(caller.organization)


def _domain_out(domain: Domain) -> DomainOut:
    record = orgs.dns_record(domain)
    return DomainOut(
        name=domain.name,
        verified=domain.verified,
        verified_at=domain.verified_at,
        verification_method=domain.verification_method,
        tenant_id=domain.tenant_id,
        dns_txt_record=DnsRecordOut(host=record.host, value=record.value),
        created_at=domain.created_at,
    )


def _txt_lookup(request: Request) -> orgs.TxtLookup | None:
    """The system's resolvers, unless the app was built with another (tests)."""
    lookup: orgs.TxtLookup | None = getattr(request.app.state, "txt_lookup", None)
    return lookup


@router.get("/domains", response_model=list[DomainOut])
def list_domains(caller: ApiAdmin, session: DbSession) -> list[DomainOut]:
    return [_domain_out(d) for d in orgs.list_domains(session, caller.organization)]


@router.post("/domains", response_model=DomainOut, status_code=201)
async def add_domain(
    caller: ApiAdmin, session: DbSession, runtime: Runtime, body: DomainIn
) -> DomainOut:
    """Claim a domain: unverified until proven (409 when another organization verified it).
    ``warning`` says when Microsoft 365 puts it in a tenant other than the service accounts'
    (a customer's domain, say); it is added all the same."""
    added = await service_accounts.add_domain_checked(
        session, runtime, caller.organization, body.name, actor=caller.actor
    )
    out = _domain_out(added.domain)
    out.warning, out.warning_fix = added.warning, added.warning_fix
    return out


@router.post("/domains/{name}/verify", response_model=DomainOut)
def verify_domain(caller: ApiAdmin, session: DbSession, request: Request, name: str) -> DomainOut:
    """Verify the domain by its DNS TXT record (``dns_txt_record``); 422 while it is not
    published. Domains of a Microsoft 365 tenant are also verified by saving a service
    account of that tenant, or by an admin in the domain connecting their Office 365."""
    return _domain_out(
        orgs.verify_domain_by_dns(
            session, caller.organization, name, lookup=_txt_lookup(request), actor=caller.actor
        )
    )


@router.delete("/domains/{name}", status_code=204)
def remove_domain(caller: ApiAdmin, session: DbSession, name: str) -> Response:
    orgs.remove_domain(session, caller.organization, name, actor=caller.actor)
    return Response(status_code=204)


@router.get("/members", response_model=list[MemberOut])
def list_members(caller: ApiAdmin, session: DbSession) -> list[MemberOut]:
    return [MemberOut.model_validate(m) for m in orgs.list_members(session, caller.organization)]


@router.post("/members", response_model=MemberOut, status_code=201)
def add_member(caller: ApiAdmin, session: DbSession, body: MemberIn) -> MemberOut:
    member = orgs.add_member(
        session,
        caller.organization,
        body.email,
        name=body.name,
        role=body.role,
        crm_user_id=body.crm_user_id,
        actor=caller.actor,
    )
    return MemberOut.model_validate(member)


@router.post("/members/import", response_model=ImportOut)
def import_members(
    caller: ApiAdmin,
    session: DbSession,
    csv_text: str = Body(..., media_type="text/csv", description="email,name,role,crm_user_id"),
) -> ImportOut:
    result = orgs.import_members_csv(session, caller.organization, csv_text, actor=caller.actor)
    return ImportOut(created=result.created, updated=result.updated, errors=result.errors)


@router.get("/members/{member_id}", response_model=MemberOut)
def get_member(caller: ApiAdmin, session: DbSession, member_id: str) -> MemberOut:
    return MemberOut.model_validate(orgs.get_member(session, caller.organization, member_id))


@router.patch("/members/{member_id}", response_model=MemberOut)
def update_member(
    caller: ApiAdmin, session: DbSession, member_id: str, body: MemberPatch
) -> MemberOut:
    member = orgs.get_member(session, caller.organization, member_id)
    orgs.update_member(
        session,
        caller.organization,
        member,
        name=body.name,
        role=body.role,
        crm_user_id=body.crm_user_id,
        acting_member_id=caller.member.id,
        actor=caller.actor,
    )
    return MemberOut.model_validate(member)


@router.delete("/members/{member_id}", status_code=204)
def remove_member(caller: ApiAdmin, session: DbSession, member_id: str) -> Response:
    member = orgs.get_member(session, caller.organization, member_id)
    orgs.remove_member(session, caller.organization, member, actor=caller.actor)
    return Response(status_code=204)


def _token_out(token: ApiToken) -> ApiTokenOut:
    return ApiTokenOut(
        id=token.id,
        name=token.name,
        prefix=token.prefix,
        admin=token.member.email,
        created_at=token.created_at,
        last_used_at=token.last_used_at,
        revoked_at=token.revoked_at,
    )


@router.get("/api-tokens", response_model=list[ApiTokenOut])
def list_api_tokens(caller: ApiAdmin, session: DbSession) -> list[ApiTokenOut]:
    return [_token_out(t) for t in orgs.list_api_tokens(session, caller.organization)]


@router.delete("/api-tokens/{token_id}", status_code=204)
def revoke_api_token(caller: ApiAdmin, session: DbSession, token_id: str) -> Response:
    orgs.revoke_api_token(session, caller.organization, token_id, actor=caller.actor)
    return Response(status_code=204)


@router.get("/audit", response_model=list[AuditEventOut])
def audit_log(caller: ApiAdmin, session: DbSession, limit: int = 100) -> list[AuditEventOut]:
    return [
        AuditEventOut.model_validate(e)
        for e in audit.list_events(session, caller.organization.id, limit)
    ]
