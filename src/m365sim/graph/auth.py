"""Who is calling Graph, and may they touch this mailbox?

Every Graph route starts with ``authenticate`` (bearer token → ``Caller``) and, for
mailbox resources, ``resolve_mailbox``, which applies Exchange Online's rules in this
order (each step's error is the one Microsoft answers with):

1. the token is valid → else 401 ``InvalidAuthenticationToken``;
2. the addressed user exists → else 404 ``ErrorInvalidUser``;
3. the caller holds the permission at all — app-only: the token's ``roles`` or an RBAC
   for Applications role assignment for that permission (in any scope); delegated: the
   ``scp`` scope for their own mailbox, or a ``.Shared`` scope plus a mailbox permission
   the owner granted → else 403 ``ErrorAccessDenied`` "Access is denied...". The
   permission is the resource's ``Read``/``ReadWrite`` pair unless the operation names its
   own (``sendMail`` needs ``Mail.Send``, whatever else the caller holds);
4. the mailbox is reachable over REST (licensed, not soft-deleted, in the cloud) →
   else 404 ``MailboxNotEnabledForRESTAPI``. Graph routes to the mailbox before Exchange
   evaluates mailbox-level policy, so an unlicensed mailbox answers 404 even for an app
   a policy would deny;
5. app-only: the Entra grant survives the Application Access Policies, or an RBAC role
   assignment covers this mailbox → else 403 ``ErrorAccessDenied`` "Access to OData is
   disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.", judged
   on the settings as they have propagated (``TenantPolicies.enforced``);
6. a full mailbox refuses writes and delta (whose sync state is stored in the mailbox)
   → 403 ``ErrorQuotaExceeded``;
7. Outlook's throttling for the (app, mailbox) pair → 429 ``ApplicationThrottled``.

Access tokens are the RS256 JWTs m365sim's identity endpoints issue, in the v1.0 shape
Microsoft issues for Graph: ``aud`` = ``https://graph.microsoft.com``,
``iss`` = ``https://sts.windows.net/{tid}/``, ``tid``, ``appid``, ``oid``, ``idtyp``
(``app`` / ``user``), ``roles`` (app-only, granted permissions only) or ``scp``
(delegated, space separated), ``iat``, ``exp``. Expiry is judged on the simulator's clock.

Differences from Microsoft Graph: a still-valid token of a user who has since been
disabled is refused at once (Microsoft keeps honouring it until it expires unless
continuous access evaluation applies); To Do is delegated-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import jwt
from starlette.requests import Request

from m365sim.directory.models import GRAPH_APP_ID, Tenant, User
from m365sim.graph import exceptions as errors
from m365sim.graph.policies.models import policies_for
from m365sim.http import sim_state, tag_request
from m365sim.state import SimState
from m365sim.throttling import admit

__all__ = [
    "GRAPH_AUDIENCES",
    "Caller",
    "Resource",
    "authenticate",
    "check_mailbox_reachable",
    "decode_access_token",
    "find_target_user",
    "has_permission",
    "resolve_mailbox",
]

GRAPH_AUDIENCES = ("https://graph.microsoft.com", GRAPH_APP_ID, "https://graph.microsoft.com/")

Resource = Literal["Mail", "Calendars", "Tasks"]

_WWW_AUTHENTICATE = (
    'Bearer realm="", '
    'authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    f'client_id="{GRAPH_APP_ID}"'
)


def _invalid_token(message: str) -> errors.InvalidAuthenticationToken:
    return errors.InvalidAuthenticationToken(
        message, headers={"WWW-Authenticate": _WWW_AUTHENTICATE}
    )


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
    """Verify signature, audience, issuer shape and expiry; the claims, or 401 with Graph's text."""
    if token.count(".") != 2:
        raise _invalid_token(
            "IDX14100: JWT is not well formed, there are no dots (.).\n"
            "The token needs to be in JWS or JWE Compact Serialization Format. (JWS): "
            "'EncodedHeader.EncodedPayload.EncodedSignature'. (JWE): "
            "'EncodedProtectedHeader.EncodedEncryptedKey.EncodedInitializationVector.EncodedCiphertext.EncodedAuthenticationTag'."
            if "." not in token
            else "Invalid JWT token. The token is malformed."
        )
    try:
        claims: dict[str, object] = jwt.decode(
            token,
            key=state.signing_key.public_key(),
            algorithms=["RS256"],
            audience=list(GRAPH_AUDIENCES),
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.InvalidAudienceError as exc:
        raise _invalid_token("Access token validation failure. Invalid audience.") from exc
    except jwt.InvalidSignatureError as exc:
        raise _invalid_token("Access token validation failure.") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise _invalid_token("Access token validation failure. Invalid audience.") from exc
    except jwt.PyJWTError as exc:
        raise _invalid_token("Invalid JWT token. The token is malformed.") from exc
    tid = str(claims.get("tid", ""))
    issuer = str(claims.get("iss", ""))
    if issuer and tid and tid.lower() not in issuer.lower():
        raise _invalid_token("Access token validation failure. Invalid issuer.")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp < state.now().timestamp():
        raise _invalid_token("Lifetime validation failed, the token is expired.")
    return claims


def authenticate(request: Request) -> Caller:
    state = sim_state(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _invalid_token("Access token is empty.")
    claims = decode_access_token(state, token.strip())
    tenant = state.find_tenant(str(claims.get("tid", "")))
    if tenant is None:
        raise _invalid_token("Access token validation failure. Invalid issuer.")
    app_id = str(claims.get("appid") or claims.get("azp") or "")
    user: User | None = None
    if claims.get("idtyp") != "app":
        user = tenant.users.get(str(claims.get("oid", "")))
        if user is None or not user.account_enabled:
            raise _invalid_token("Access token validation failure.")
        revoked = user.sessions_revoked_at
        iat = claims.get("iat")
        if revoked is not None and isinstance(iat, int | float) and iat < revoked.timestamp():
            raise _invalid_token("Lifetime validation failed, the token is expired.")
    roles = claims.get("roles") or []
    scp = str(claims.get("scp") or "")
    caller = Caller(
        tenant=tenant,
        app_id=app_id,
        user=user,
        roles=frozenset(str(r) for r in roles) if isinstance(roles, list) else frozenset(),
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


def _wanted(
    resource: Resource, write: bool, permission: str | None = None, suffix: str = ""
) -> set[str]:
    if permission is not None:
        return {f"{permission}{suffix}"}
    names = ("ReadWrite",) if write else ("Read", "ReadWrite")
    return {f"{resource}.{name}{suffix}" for name in names}


def has_permission(
    caller: Caller,
    resource: Resource,
    write: bool,
    target: User,
    *,
    permission: str | None = None,
) -> bool:
    """Does the token itself carry the permission this operation needs on ``target``'s mailbox?

    ``permission`` names it when it is not the resource's Read/ReadWrite pair (``Mail.Send``).
    Token claims only: RBAC for Applications grants and mailbox sharing are state, and
    ``resolve_mailbox`` adds them.
    """
    if caller.app_only:
        if resource == "Tasks":
            return False  # To Do is delegated-only here (see docs/m365sim.md)
        return bool(caller.roles & _wanted(resource, write, permission))
    own = caller.user is not None and caller.user.id == target.id
    return bool(caller.scopes & _wanted(resource, write, permission, "" if own else ".Shared"))


def check_mailbox_reachable(target: User) -> None:
    if target.soft_deleted or not target.licensed or target.mailbox_location != "cloud":
        raise errors.MailboxNotEnabledForRESTAPI()


def _is_delta(request: Request) -> bool:
    path = request.url.path.rstrip("/")
    return path.endswith("/delta") or path.endswith("/delta()")


def _authorize(
    state: SimState,
    caller: Caller,
    target: User,
    resource: Resource,
    write: bool,
    permission: str | None,
) -> None:
    """Steps 3-5 of the module docstring (policies as they have propagated to Graph)."""
    policies = policies_for(state, caller.tenant).enforced(state.now())
    wanted = _wanted(resource, write, permission)
    if caller.app_only:
        entra = has_permission(caller, resource, write, target, permission=permission)
        rbac_anywhere = resource != "Tasks" and bool(
            policies.rbac_permissions(caller.app_id, None) & wanted
        )
        if not entra and not rbac_anywhere:
            raise errors.ErrorAccessDenied()
        check_mailbox_reachable(target)
        if entra and policies.access_policy_allows(caller.app_id, target):
            return
        if rbac_anywhere and policies.rbac_permissions(caller.app_id, target) & wanted:
            return
        raise errors.AccessDeniedByPolicy()
    assert caller.user is not None
    if not has_permission(caller, resource, write, target, permission=permission):
        raise errors.ErrorAccessDenied()
    if caller.user.id != target.id and not policies.shared_access(target, caller.user, write):
        raise errors.ErrorAccessDenied()
    check_mailbox_reachable(target)


def resolve_mailbox(
    request: Request,
    user_key: str | None,
    resource: Resource,
    *,
    write: bool = False,
    permission: str | None = None,
) -> tuple[Caller, User]:
    """Authenticate and authorize a mailbox operation; returns the caller and mailbox owner.

    The operation needs ``{resource}.Read`` or ``{resource}.ReadWrite`` (only the latter if
    ``write``), or exactly ``permission`` when given (``"Mail.Send"``: an app with only
    Mail.Send may send, one with only Mail.Read may not). ``write`` also decides whether a
    delegate needs FullAccess rather than ReadPermission and whether a full mailbox refuses.
    """
    state = sim_state(request)
    caller = authenticate(request)
    target = find_target_user(caller, user_key)
    tag_request(request, mailbox=target.id)
    _authorize(state, caller, target, resource, write, permission)
    if target.mailbox_full and (write or _is_delta(request)):
        raise errors.ErrorQuotaExceeded()
    admit(state, request.scope, caller.app_id, target.id)
    return caller, target
