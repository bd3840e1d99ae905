"""Who is calling Graph, and may they touch this mailbox?

Every Graph route starts with ``authenticate`` (bearer token → ``Caller``) and, for
mailbox resources, ``resolve_mailbox`` (which applies Exchange Online's rules in order:
user exists → token grants the permission → Application Access Policy / RBAC for
Applications → mailbox reachable).

Access tokens are the RS256 JWTs m365sim's identity endpoints issue, in the v1.0 shape
Microsoft issues for Graph: ``aud`` = ``https://graph.microsoft.com``,
``iss`` = ``https://sts.windows.net/{tid}/``, ``tid``, ``appid``, ``oid``, ``idtyp``
(``app`` / ``user``), ``roles`` (app-only, granted permissions only) or ``scp``
(delegated, space separated), ``exp``. Expiry is judged on the simulator's clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import jwt
from starlette.requests import Request

from m365sim.directory.models import GRAPH_APP_ID, Tenant, User
from m365sim.graph import exceptions as errors
from m365sim.http import sim_state, tag_request
from m365sim.state import SimState

GRAPH_AUDIENCES = ("https://graph.microsoft.com", GRAPH_APP_ID, "https://graph.microsoft.com/")

Resource = Literal["Mail", "Calendars", "Tasks"]


@dataclass(frozen=True)
class Caller:
    tenant: Tenant
    app_id: str
    user: User | None  # the signed-in user for delegated tokens; None for app-only
    roles: frozenset[str]
    scopes: frozenset[str]

    @property
    def app_only(self) -> bool:
        return self.user is None


def decode_access_token(state: SimState, token: str) -> dict[str, object]:
    try:
        claims: dict[str, object] = jwt.decode(
            token,
            key=state.signing_key.public_key(),
            algorithms=["RS256"],
            audience=list(GRAPH_AUDIENCES),
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.InvalidAudienceError as exc:
        raise errors.InvalidAuthenticationToken("Access token validation failure. Invalid audience.") from exc
    except jwt.InvalidSignatureError as exc:
        raise errors.InvalidAuthenticationToken("Access token validation failure.") from exc
    except jwt.PyJWTError as exc:
        raise errors.InvalidAuthenticationToken(
            "IDX14100: JWT is not well formed, there are no dots (.)."
            if "." not in token
            else "Access token validation failure."
        ) from exc
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp < state.now().timestamp():
        raise errors.InvalidAuthenticationToken("Lifetime validation failed, the token is expired.")
    return claims


def authenticate(request: Request) -> Caller:
    state = sim_state(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise errors.InvalidAuthenticationToken("Access token is empty.")
    claims = decode_access_token(state, token.strip())
    tenant = state.find_tenant(str(claims.get("tid", "")))
    if tenant is None:
        raise errors.InvalidAuthenticationToken("Access token validation failure.")
    app_id = str(claims.get("appid", ""))
    user: User | None = None
    if claims.get("idtyp") != "app":
        user = tenant.users.get(str(claims.get("oid", "")))
        if user is None or not user.account_enabled:
            raise errors.InvalidAuthenticationToken("Access token validation failure.")
        revoked = user.sessions_revoked_at
        iat = claims.get("iat")
        if revoked is not None and isinstance(iat, int | float) and iat < revoked.timestamp():
            raise errors.InvalidAuthenticationToken("Lifetime validation failed, the token is expired.")
    roles = claims.get("roles") or []
    scp = str(claims.get("scp") or "")
    caller = Caller(
        tenant=tenant,
        app_id=app_id,
        user=user,
        roles=frozenset(roles if isinstance(roles, list) else []),
        scopes=frozenset(scp.split()),
    )
    tag_request(request, tenant_id=tenant.id, app_id=app_id, user_id=user.id if user else None)
    return caller


def find_target_user(caller: Caller, user_key: str | None) -> User:
    """The user a ``/me`` (``user_key`` None) or ``/users/{id|upn}`` path addresses."""
    if user_key is None:
        if caller.user is None:
            raise errors.BadRequest("/me request is only valid with delegated authentication flow.")
        return caller.user
    user = caller.tenant.find_user(user_key)
    if user is None:
        raise errors.ErrorInvalidUser(f"The requested user '{user_key}' is invalid.")
    return user


def has_permission(caller: Caller, resource: Resource, write: bool, target: User) -> bool:
    """Does the token carry the permission this operation needs on ``target``'s mailbox?"""
    if caller.app_only:
        if resource == "Tasks":
            return False  # To Do is delegated-only here (see docs/m365sim.md)
        wanted = {f"{resource}.ReadWrite"} if write else {f"{resource}.Read", f"{resource}.ReadWrite"}
        return bool(caller.roles & wanted)
    own = caller.user is not None and caller.user.id == target.id
    suffixes = ("",) if own else (".Shared",)
    names = ("ReadWrite",) if write else ("Read", "ReadWrite")
    wanted = {f"{resource}.{name}{suffix}" for name in names for suffix in suffixes}
    return bool(caller.scopes & wanted)


def check_mailbox_reachable(target: User) -> None:
    if target.soft_deleted or not target.licensed or target.mailbox_location != "cloud":
        raise errors.MailboxNotEnabledForRESTAPI()


def resolve_mailbox(
    request: Request, user_key: str | None, resource: Resource, *, write: bool = False
) -> tuple[Caller, User]:
    """Authenticate and authorize a mailbox operation; returns the caller and mailbox owner."""
    caller = authenticate(request)
    target = find_target_user(caller, user_key)
    tag_request(request, mailbox=target.id)
    if not has_permission(caller, resource, write, target):
        raise errors.ErrorAccessDenied()
    check_mailbox_reachable(target)
    return caller, target
