"""Who is calling EWS: IIS-style Windows authentication in front of the simulated server.

``authenticate`` runs before any SOAP is read, as IIS does, and returns the ``Principal``
or raises ``HttpRefusal`` (401 with the server's challenges). The rules:

- **Basic** (``Authorization: Basic``): checked on every request, when the account's
  organization enables it (``exchange.authentication``).
- **NTLM** (``Authorization: NTLM`` or ``Negotiate`` carrying raw NTLM): the three-message
  handshake of ``m365sim.ews.ntlm``, bound to the TCP connection. Once the AUTHENTICATE
  message is accepted the connection stays authenticated, so later requests on it need no
  header (IIS's default, and what requests-ntlm relies on: it sends each request without
  credentials first and only answers a 401).
- An account belongs to the tenant whose users include it: ``user@domain`` (UPN or
  address), ``DOMAIN\\user`` or ``user`` with the organization's NetBIOS name (sAMAccountName
  is the UPN's local part). Disabled accounts and wrong passwords get 401.
- An account of a tenant whose Exchange is **Exchange Online** gets 401 with Exchange
  Online's Bearer-only challenge (basic authentication to EWS in Exchange Online was
  turned off in 2022), and a request bearing a token gets 403 with an empty body (EWS is
  blocked in Exchange Online since 2026-10-01).

The 401 of an unauthenticated request advertises what the simulated servers accept:
``Negotiate``, ``NTLM`` and ``Basic realm="..."`` (as separate headers, like IIS), or
Exchange Online's challenge when no tenant has an Exchange Server.

Differences from IIS/Exchange: Kerberos (a real ``Negotiate`` SPNEGO token) is refused;
NTLM's channel binding and MIC are not checked; the connection key is the server's own
connection id (or the client address when run without the m365sim server).
"""

from __future__ import annotations

import base64
import binascii
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from starlette.types import Scope

from m365sim.directory.models import Tenant, User
from m365sim.ews import ntlm
from m365sim.ews.exceptions import HttpRefusal
from m365sim.ews.models import ExchangeOrganization, organization_for, organizations
from m365sim.state import SimState

__all__ = [
    "CONNECTION_KEY",
    "EXO_CHALLENGE",
    "Principal",
    "authenticate",
    "challenge_headers",
    "looks_authenticated",
]

CONNECTION_KEY = "m365sim.connection"
"""The ASGI scope extension the m365sim server sets to ``{"id": <connection id>}``."""

EXO_CHALLENGE = (
    'Bearer client_id="00000002-0000-0ff1-ce00-000000000000", '
    'trusted_issuers="00000001-0000-0000-c000-000000000000@*", '
    'token_types="app_asserted_user_v1 service_asserted_app_v1", '
    'authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize"'
)
"""Exchange Online's challenge: OAuth only, for Office 365 Exchange Online's app id."""

SERVER_NAME = "EXCH01"
_MAX_CONNECTIONS = 4096


@dataclass(frozen=True)
class Principal:
    tenant: Tenant
    user: User
    organization: ExchangeOrganization
    method: str  # "basic" | "ntlm"


@dataclass
class _NtlmConnection:
    challenge: ntlm.Challenge | None = None
    scheme: str = "NTLM"
    tenant_id: str | None = None
    user_id: str | None = None


def _connections(state: SimState) -> OrderedDict[Any, _NtlmConnection]:
    table: OrderedDict[Any, _NtlmConnection] = state.extension("ews.ntlm", OrderedDict)
    return table


def _connection_key(scope: Scope) -> Any:
    extensions = scope.get("extensions") or {}
    if CONNECTION_KEY in extensions:
        return extensions[CONNECTION_KEY]["id"]
    return tuple(scope.get("client") or ("?", 0))


def _server_orgs(state: SimState) -> list[ExchangeOrganization]:
    return [org for org in organizations(state).values() if org.serves_ews]


def challenge_headers(state: SimState) -> list[tuple[str, str]]:
    """The ``WWW-Authenticate`` headers of an unauthenticated request's 401."""
    orgs = _server_orgs(state)
    if not orgs:
        return [("WWW-Authenticate", EXO_CHALLENGE)]
    headers: list[tuple[str, str]] = []
    if any("ntlm" in org.authentication for org in orgs):
        headers += [("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", "NTLM")]
    if any("basic" in org.authentication for org in orgs):
        headers.append(("WWW-Authenticate", f'Basic realm="{_realm(orgs[0])}"'))
    return headers


def _realm(org: ExchangeOrganization) -> str:
    return f"mail.{org.tenant.domains[0]}" if org.tenant.domains else "mail"


def _refuse(state: SimState, message: str) -> HttpRefusal:
    return HttpRefusal(message, headers=challenge_headers(state))


def _exchange_online(message: str) -> HttpRefusal:
    return HttpRefusal(message, headers=[("WWW-Authenticate", EXO_CHALLENGE)])


class _BearerRefused(HttpRefusal):
    status = 403


def _find_accounts(state: SimState, name: str, domain: str) -> list[tuple[Tenant, User]]:
    found: list[tuple[Tenant, User]] = []
    for tenant in state.tenants.values():
        org = organization_for(state, tenant)
        user = org.find_account(name, domain)
        if user is not None:
            found.append((tenant, user))
    return found


def _admit(state: SimState, tenant: Tenant, user: User, method: str) -> Principal:
    org = organization_for(state, tenant)
    if not org.serves_ews:
        raise _exchange_online(
            "This account's mailbox is in Exchange Online, which no longer accepts EWS."
        )
    if method not in org.authentication:
        raise _refuse(state, f"{method} authentication is not enabled on this server.")
    if not user.account_enabled:
        raise _refuse(state, "The account is disabled.")
    return Principal(tenant=tenant, user=user, organization=org, method=method)


def looks_authenticated(state: SimState, scope: Scope, authorization: str | None) -> bool:
    """Will this request reach EWS as someone (credentials, an NTLM AUTHENTICATE message or
    an already authenticated connection)? Changes nothing."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() == "basic":
        return True
    if scheme.lower() in ("ntlm", "negotiate"):
        try:
            message = base64.b64decode(token.strip(), validate=True)
        except binascii.Error:
            return False
        return len(message) > 8 and message[8] == 3
    known = _connections(state).get(_connection_key(scope))
    return known is not None and known.user_id is not None


def authenticate(state: SimState, scope: Scope, authorization: str | None) -> Principal:
    """The caller of this request, or ``HttpRefusal``; may answer an NTLM step with a 401."""
    key = _connection_key(scope)
    table = _connections(state)
    scheme, _, token = (authorization or "").strip().partition(" ")
    scheme_lower = scheme.lower()
    if scheme_lower == "basic":
        return _basic(state, token.strip())
    if scheme_lower == "bearer":
        raise _BearerRefused(
            "EWS is blocked in Exchange Online.", headers=[("WWW-Authenticate", EXO_CHALLENGE)]
        )
    if scheme_lower in ("ntlm", "negotiate"):
        return _ntlm_step(
            state, table, key, "NTLM" if scheme_lower == "ntlm" else "Negotiate", token
        )
    known = table.get(key)
    if known is not None and known.user_id and known.tenant_id:
        tenant = state.tenants.get(known.tenant_id)
        user = tenant.users.get(known.user_id) if tenant else None
        if tenant is not None and user is not None:
            return _admit(state, tenant, user, "ntlm")
    raise _refuse(state, "The request has no credentials.")


def _basic(state: SimState, token: str) -> Principal:
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _refuse(state, "The Basic credentials are not base64.") from exc
    name, sep, password = decoded.partition(":")
    if not sep:
        raise _refuse(state, "The Basic credentials have no password.")
    for tenant, user in _find_accounts(state, name, ""):
        if user.password == password:
            return _admit(state, tenant, user, "basic")
    raise _refuse(state, "Wrong user name or password.")


def _ntlm_step(
    state: SimState,
    table: OrderedDict[Any, _NtlmConnection],
    key: Any,
    scheme: str,
    token: str,
) -> Principal:
    try:
        message = base64.b64decode(token.strip(), validate=True)
    except binascii.Error as exc:
        raise _refuse(state, "The NTLM token is not base64.") from exc
    if not message.startswith(ntlm.SIGNATURE):
        raise _refuse(state, "Only NTLM is accepted; Kerberos tickets are not.")
    kind = message[8] if len(message) > 8 else 0
    if kind == 1:
        try:
            flags = ntlm.parse_negotiate(message)
        except ntlm.NtlmError as exc:
            raise _refuse(state, str(exc)) from exc
        orgs = _server_orgs(state)
        netbios = orgs[0].netbios_name if orgs else "CONTOSO"
        dns = orgs[0].tenant.domains[0] if orgs and orgs[0].tenant.domains else "contoso.com"
        challenge = ntlm.build_challenge(
            flags, netbios_domain=netbios, netbios_computer=SERVER_NAME, dns_domain=dns
        )
        table[key] = _NtlmConnection(challenge=challenge, scheme=scheme)
        table.move_to_end(key)
        while len(table) > _MAX_CONNECTIONS:
            table.popitem(last=False)
        raise HttpRefusal(
            "NTLM challenge",
            headers=[
                (
                    "WWW-Authenticate",
                    f"{scheme} {base64.b64encode(challenge.message).decode('ascii')}",
                )
            ],
        )
    pending = table.pop(key, None)
    if kind != 3 or pending is None or pending.challenge is None:
        raise _refuse(state, "The NTLM handshake is out of order.")
    try:
        answer = ntlm.parse_authenticate(message)
    except ntlm.NtlmError as exc:
        raise _refuse(state, str(exc)) from exc
    for tenant, user in _find_accounts(state, answer.user, answer.domain):
        if ntlm.verify_ntlmv2(answer, pending.challenge.server_challenge, user.password):
            principal = _admit(state, tenant, user, "ntlm")
            table[key] = _NtlmConnection(scheme=scheme, tenant_id=tenant.id, user_id=user.id)
            return principal
    raise _refuse(state, "Wrong user name or password.")
