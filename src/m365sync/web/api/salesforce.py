"""JSON API: Salesforce as the organization's CRM — the connection (JWT bearer, client
credentials, Connect Salesforce), Run Test, disconnect, the API share, Leads for people
who book, members ↔ Salesforce users, the backlog of records waiting with Retry, and a
drain or mirror run now. Secrets go in, never out: no answer holds one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from m365sync.crm import salesforce_service as salesforce
from m365sync.crm.salesforce_mirror import refresh_salesforce_people
from m365sync.crm.salesforce_schemas import (
    SalesforceClientCredentialsIn,
    SalesforceConnectCompleteIn,
    SalesforceConnectStartIn,
    SalesforceJwtIn,
    SalesforceLeadsIn,
    SalesforceLinkIn,
    SalesforceRetryIn,
    SalesforceShareIn,
    SalesforceTestReport,
)
from m365sync.crm.salesforce_writer import drain_salesforce
from m365sync.db.session import Database
from m365sync.web.dependencies import ApiAdmin, DbSession, Runtime, database_of

router = APIRouter(prefix="/organizations/{org}/salesforce", tags=["salesforce"])
DatabaseDep = Annotated[Database, Depends(database_of)]
Json = dict[str, Any]


def _overview(session: DbSession, runtime: Runtime, organization_id: str) -> Json:
    found = salesforce.salesforce_overview(session, organization_id)
    body = found.as_json()
    body["effective_share"] = found.api_share or runtime.settings.salesforce_api_share
    return body


def _report(report: SalesforceTestReport) -> Json:
    return report.as_json()


@router.get("")
def get_salesforce(caller: ApiAdmin, session: DbSession, runtime: Runtime) -> Json:
    """The connection: status, who m365sync signs in as, org, instance, API usage and share,
    the writer's pause and records per state, members' users, the last Run Test."""
    return _overview(session, runtime, caller.organization.id)


@router.post("/connect/jwt")
def connect_jwt(
    caller: ApiAdmin, session: DbSession, runtime: Runtime, body: SalesforceJwtIn
) -> Json:
    """Connect with the JWT bearer flow; runs Run Test (saved only if the sign-in works)."""
    return _report(
        salesforce.connect_with_jwt(
            session,
            runtime.box,
            runtime.settings,
            caller.organization.id,
            consumer_key=body.consumer_key,
            username=body.username,
            private_key_pem=body.private_key_pem.get_secret_value(),
            certificate_pem=body.certificate_pem,
            login_url=body.login_url,
        )
    )


@router.post("/connect/client-credentials")
def connect_client_credentials(
    caller: ApiAdmin, session: DbSession, runtime: Runtime, body: SalesforceClientCredentialsIn
) -> Json:
    """Connect with the client credentials flow (My Domain login URL only)."""
    return _report(
        salesforce.connect_with_client_credentials(
            session,
            runtime.box,
            runtime.settings,
            caller.organization.id,
            consumer_key=body.consumer_key,
            consumer_secret=body.consumer_secret.get_secret_value(),
            login_url=body.login_url,
        )
    )


@router.post("/connect/start")
def connect_start(
    caller: ApiAdmin, session: DbSession, runtime: Runtime, body: SalesforceConnectStartIn
) -> Json:
    """Connect Salesforce: the address of Salesforce's sign-in page to send the admin to."""
    url = salesforce.begin_connect_salesforce(
        session,
        runtime.box,
        runtime.settings,
        caller.organization.id,
        consumer_key=body.consumer_key,
        consumer_secret=body.consumer_secret.get_secret_value() if body.consumer_secret else None,
        login_url=body.login_url,
        redirect_uri=body.redirect_uri,
    )
    return {"authorization_url": url}


@router.post("/connect/complete")
def connect_complete(
    caller: ApiAdmin, session: DbSession, runtime: Runtime, body: SalesforceConnectCompleteIn
) -> Json:
    """Finish Connect Salesforce with what Salesforce sent back; runs Run Test."""
    _, report = salesforce.complete_connect_salesforce(
        session, runtime.box, runtime.settings, body.callback
    )
    return _report(report)


@router.post("/test")
def run_test(caller: ApiAdmin, session: DbSession, runtime: Runtime) -> Json:
    """Run Test for Salesforce on the saved connection."""
    return _report(
        salesforce.run_salesforce_test(
            session, runtime.box, runtime.settings, caller.organization.id
        )
    )


@router.delete("", status_code=204)
def disconnect(caller: ApiAdmin, session: DbSession, runtime: Runtime) -> Response:
    """Stop writing to Salesforce and forget the secrets (what was written stays)."""
    salesforce.disconnect_salesforce(session, runtime.box, runtime.settings, caller.organization.id)
    return Response(status_code=204)


@router.put("/share")
def set_share(
    caller: ApiAdmin, session: DbSession, runtime: Runtime, body: SalesforceShareIn
) -> Json:
    """How much of the org's daily API requests m365sync may use."""
    salesforce.set_salesforce_api_share(session, caller.organization.id, body.share)
    return _overview(session, runtime, caller.organization.id)


@router.put("/create-leads")
def set_create_leads(
    caller: ApiAdmin, session: DbSession, runtime: Runtime, body: SalesforceLeadsIn
) -> Json:
    """Whether an unknown person who books a meeting becomes a Salesforce Lead."""
    salesforce.set_salesforce_lead_creation(session, caller.organization.id, body.enabled)
    return _overview(session, runtime, caller.organization.id)


@router.get("/members")
def list_members(caller: ApiAdmin, session: DbSession) -> list[Json]:
    """Each member and the Salesforce user their activities belong to."""
    return [m.as_json() for m in salesforce.salesforce_members(session, caller.organization.id)]


@router.post("/members/match")
def match_members(caller: ApiAdmin, session: DbSession, runtime: Runtime) -> list[Json]:
    """Match members to Salesforce users by email address now (an admin's choices stay)."""
    found = salesforce.match_salesforce_users(
        session, runtime.box, runtime.settings, caller.organization.id
    )
    return [m.as_json() for m in found]


@router.put("/members/{member_id}")
def link_member(
    caller: ApiAdmin, session: DbSession, runtime: Runtime, member_id: str, body: SalesforceLinkIn
) -> Json:
    """Choose the member's Salesforce user (kept by later matching)."""
    return salesforce.link_member_to_salesforce_user(
        session, runtime.box, runtime.settings, caller.organization.id, member_id, body.user
    ).as_json()


@router.delete("/members/{member_id}", status_code=204)
def unlink_member(caller: ApiAdmin, session: DbSession, member_id: str) -> Response:
    """Back to matching by email address."""
    salesforce.unlink_member_from_salesforce_user(session, caller.organization.id, member_id)
    return Response(status_code=204)


@router.get("/backlog")
def backlog(
    caller: ApiAdmin,
    session: DbSession,
    member: Annotated[str | None, Query(description="Only this member's (id).")] = None,
) -> list[Json]:
    """Records parked for a person or waiting for a retry, with the reason and the fix."""
    items = salesforce.salesforce_backlog(session, caller.organization.id, member_id=member)
    return [item.as_json() for item in items]


@router.post("/backlog/retry")
def retry(caller: ApiAdmin, session: DbSession, body: SalesforceRetryIn) -> Json:
    """Write parked records again (after the rule or field was fixed in Salesforce)."""
    count = salesforce.retry_parked_salesforce_records(
        session, caller.organization.id, body.activity_ids
    )
    return {"retried": count}


def _settle(session: DbSession) -> None:
    """Commit what authenticating the caller wrote: the writer and the mirror work in
    transactions of their own, which must not wait on this request's."""
    session.commit()


@router.post("/drain")
def drain(caller: ApiAdmin, session: DbSession, database: DatabaseDep, runtime: Runtime) -> Json:
    """Write what is due to Salesforce now (the workers do it by themselves too)."""
    _settle(session)
    return drain_salesforce(
        database, caller.organization.id, settings=runtime.settings, box=runtime.box
    ).as_json()


@router.post("/refresh")
def refresh(caller: ApiAdmin, session: DbSession, database: DatabaseDep, runtime: Runtime) -> Json:
    """Read Salesforce's contacts, leads, accounts and opportunities now (hourly anyway)."""
    _settle(session)
    return refresh_salesforce_people(
        database, caller.organization.id, settings=runtime.settings, box=runtime.box
    ).as_json()
