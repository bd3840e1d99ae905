"""EWS and Autodiscover routes: authenticate, read the SOAP header, dispatch, serialise.

The order is the server's: IIS authentication first (401 before any SOAP is read), then
the SOAP header (``RequestServerVersion``, ``ExchangeImpersonation``,
``TimeZoneContext``), the throttling budget, and finally the operation. Faults are
rendered as Exchange renders them (HTTP 500, SOAP ``Fault``); everything else is HTTP 200
with ``ServerVersionInfo`` in the header, errors included.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from m365sim.ews import exceptions as errors
from m365sim.ews.auth import Principal, authenticate
from m365sim.ews.autodiscover import (
    pox_requested_address,
    pox_response,
    requested_users_and_settings,
    soap_user_settings,
)
from m365sim.ews.calls import EwsCall
from m365sim.ews.operations import OPERATIONS, error_response, graph_error
from m365sim.ews.soap import (
    SOAP,
    XmlError,
    child,
    children,
    envelope,
    fault,
    local_name,
    parse_xml,
    qname,
    t,
    text_of,
    to_bytes,
)
from m365sim.exceptions import GraphError
from m365sim.graph.timezones import UnknownTimeZone, windows_name
from m365sim.http import sim_state, tag_request
from m365sim.throttling import admit

__all__ = ["autodiscover_pox", "autodiscover_soap", "exchange_web_services"]

XML = "text/xml; charset=utf-8"
REQUEST_VERSIONS = frozenset(
    {
        "Exchange2007",
        "Exchange2007_SP1",
        "Exchange2009",
        "Exchange2010",
        "Exchange2010_SP1",
        "Exchange2010_SP2",
        "Exchange2012",
        "Exchange2013",
        "Exchange2013_SP1",
        "Exchange2015",
        "Exchange2016",
        "V2015_10_05",
        "V2016_01_06",
        "V2016_04_13",
        "V2016_07_13",
        "V2016_10_10",
        "V2017_01_07",
        "V2017_04_14",
        "V2017_07_11",
    }
)
"""``RequestServerVersion`` values Exchange 2016/2019/SE accept (``ExchangeVersionType``)."""


def _refusal(exc: errors.HttpRefusal) -> Response:
    response = Response(b"", status_code=exc.status)
    for name, value in exc.headers:
        response.headers.append(name, value)
    return response


def _fault_response(exc: errors.SoapFault) -> Response:
    body = fault(exc.code, exc.detail, detail_values=exc.detail_values())
    return Response(to_bytes(body), status_code=500, media_type=XML)


async def _principal(request: Request) -> Principal:
    return authenticate(sim_state(request), request.scope, request.headers.get("authorization"))


async def exchange_web_services(request: Request) -> Response:
    """Exchange Web Services (SOAP) of the caller's Exchange Server; operations listed below."""
    state = sim_state(request)
    raw = await request.body()
    try:
        principal = await _principal(request)
    except errors.HttpRefusal as exc:
        return _refusal(exc)
    tag_request(request, tenant_id=principal.tenant.id, user_id=principal.user.id)
    org = principal.organization
    name = "Unknown"
    try:
        call, operation_el, name = _prepare(state, principal, raw)
        tag_request(request, mailbox=call.acting.id)
        try:
            admit(state, request.scope, f"ews:{principal.user.id}", call.acting.id)
        except GraphError as exc:
            retry = int(exc.headers.get("Retry-After", "1") or "1")
            raise errors.ErrorServerBusy(back_off_ms=retry * 1000) from exc
        operation = OPERATIONS[name]
        body = operation.handler(call, operation_el)
    except errors.SoapFault as exc:
        return _fault_response(exc)
    except errors.ResponseError as exc:
        # A refusal of the whole request (the mailbox itself): one error response message.
        body = error_response(name, exc)
    except GraphError as exc:
        # A store refused something no item-level handler caught: Exchange's closest error.
        body = error_response(name, graph_error(exc))
    document = envelope([body], server_version=org.server_version())
    return Response(to_bytes(document), media_type=XML)


def _prepare(state: Any, principal: Principal, raw: bytes) -> tuple[EwsCall, Any, str]:
    try:
        root = parse_xml(raw)
    except XmlError as exc:
        raise errors.ErrorSchemaValidation(f"The request failed schema validation: {exc}") from exc
    if root.tag != qname(SOAP, "Envelope"):
        raise errors.ErrorSchemaValidation(
            "The request failed schema validation: the root element is not a SOAP 1.1 Envelope."
        )
    header = child(root, qname(SOAP, "Header"))
    body = child(root, qname(SOAP, "Body"))
    operations = children(body)
    if not operations:
        raise errors.ErrorSchemaValidation("The request failed schema validation: empty Body.")
    operation_el = operations[0]
    name = local_name(operation_el)
    if name == "GetUserAvailabilityRequest":
        name = "GetUserAvailability"
    if name not in OPERATIONS:
        raise errors.ErrorInvalidOperationFault(
            f"m365sim's Exchange Server does not serve the {name} operation; "
            "docs/m365sim/ews.md lists the operations it serves."
        )
    version_el = child(header, t("RequestServerVersion"))
    version = str(version_el.get("Version")) if version_el is not None else "Exchange2007"
    if version not in REQUEST_VERSIONS:
        raise errors.ErrorInvalidServerVersion()
    zone_name = "UTC"
    definition = child(child(header, t("TimeZoneContext")), t("TimeZoneDefinition"))
    if definition is not None and definition.get("Id"):
        try:
            zone_name = windows_name(str(definition.get("Id")))
        except UnknownTimeZone as exc:
            raise errors.ErrorSchemaValidation(
                f"The request failed schema validation: unknown time zone '{definition.get('Id')}'."
            ) from exc
    acting = principal.user
    impersonating = False
    impersonation = child(header, t("ExchangeImpersonation"))
    if impersonation is not None:
        acting = _impersonated(principal, impersonation)
        impersonating = True
    call = EwsCall(
        state=state,
        principal=principal,
        acting=acting,
        impersonating=impersonating,
        zone_name=zone_name,
        requested_version=version,
    )
    return call, operation_el, name


def _impersonated(principal: Principal, impersonation: Any) -> Any:
    org = principal.organization
    if not any(a.user_id == principal.user.id for a in org.impersonation):
        raise errors.ErrorImpersonateUserDenied()
    sid = child(impersonation, t("ConnectingSID"))
    address = (
        text_of(sid, t("PrimarySmtpAddress"))
        or text_of(sid, t("SmtpAddress"))
        or text_of(sid, t("PrincipalName"))
    )
    target = org.tenant.find_user(address) if address else None
    if target is None or not org.hosts_mailbox(target):
        raise errors.ImpersonatedMailboxNotFound()
    if not org.may_impersonate(principal.user, target):
        raise errors.ErrorImpersonateUserDenied()
    return target


# -- Autodiscover ------------------------------------------------------------------------------


async def autodiscover_pox(request: Request) -> Response:
    """Autodiscover (POX): the EWS URL and settings for an e-mail address."""
    state = sim_state(request)
    raw = await request.body()
    try:
        principal = await _principal(request)
    except errors.HttpRefusal as exc:
        return _refusal(exc)
    tag_request(request, tenant_id=principal.tenant.id, user_id=principal.user.id)
    try:
        address = pox_requested_address(parse_xml(raw))
    except XmlError:
        return Response(b"", status_code=400)
    document = pox_response(principal.organization, state.base_url, address)
    return Response(to_bytes(document), media_type=XML)


async def autodiscover_soap(request: Request) -> Response:
    """Autodiscover (SOAP): GetUserSettings for one or more users."""
    state = sim_state(request)
    raw = await request.body()
    try:
        principal = await _principal(request)
    except errors.HttpRefusal as exc:
        return _refusal(exc)
    tag_request(request, tenant_id=principal.tenant.id, user_id=principal.user.id)
    try:
        users, settings = requested_users_and_settings(parse_xml(raw))
    except XmlError:
        return Response(b"", status_code=400)
    document = soap_user_settings(principal.organization, state.base_url, users, settings)
    return Response(to_bytes(document), media_type=XML)
