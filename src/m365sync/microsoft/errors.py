"""Every Microsoft failure, classified in this one place.

Code elsewhere branches on these classes, never on raw status codes or AADSTS numbers.
``classify_graph_response`` reads a Graph error response; ``classify_aad_error`` reads an
MSAL result dict (``{"error", "error_description", "error_codes"}``);
``classify_entra_response`` reads an HTTP answer of Microsoft Entra ID (tenant discovery,
the token endpoint) before MSAL does. All return (never raise) the error, and ``code``
keeps Microsoft's own code for the log.

Entra ID answers 429, 5xx or something unreadable (cut short, not JSON) when it is
overloaded or unwell: those are ``Throttled`` / ``Transient`` like Graph's, never a
credential problem. Only an answer naming the tenant as unknown (AADSTS90002,
``invalid_tenant``) is ``TenantNotFound``.

::

    MicrosoftError                    root (an M365SyncError); .code, .retryable, .reconnect
    ├── Throttled                     429 / 503 with Retry-After; .retry_after seconds
    ├── Transient                     5xx, timeouts, dropped connections, unreadable answers:
    │                                 retry with back-off
    ├── AuthRevoked                   refresh token expired or revoked (AADSTS700082, 50173,
    │                                 50078...), token rejected: the user must reconnect
    ├── ConsentMissing                admin consent not granted (AADSTS65001, 90094), no roles
    │   └── ConsentDeclined           the person at Microsoft's consent page said no (AADSTS65004)
    ├── PermissionMissing             the token lacks the permission this call needs (403)
    │   └── DirectoryAccessDenied     Entra ID's directory refused (Authorization_RequestDenied):
    │                                 a missing permission or directory role
    ├── AccessDeniedByPolicy          "Access to OData is disabled." (Application Access
    │                                 Policy or RBAC for Applications excludes the mailbox)
    ├── MailboxUnreachable            the mailbox can't be used through Graph
    │   ├── MailboxNotEnabled         MailboxNotEnabledForRESTAPI: unlicensed, soft-deleted,
    │   │                             on-premises
    │   └── UserNotFound              no such user in the tenant
    ├── QuotaExceeded                 ErrorQuotaExceeded: the mailbox is full
    ├── SyncStateExpired              410 / syncStateNotFound: resync from scratch, not a failure
    ├── ItemNotFound                  the item is gone (deleted meanwhile)
    ├── CredentialError               the app's own credentials or registration are wrong
    │   ├── InvalidCredentials        AADSTS7000215 / 700027: wrong secret or certificate
    │   │   └── SecretIdGiven         a GUID was given: the secret's ID, not its value
    │   ├── SecretExpired             AADSTS7000222
    │   ├── AppNotFound               AADSTS700016: client id not registered in that tenant
    │   ├── ServicePrincipalMissing   AADSTS7000229: the app has no service principal there
    │   ├── ProofRejected             addKey / removeKey: the proof of possession of the app's
    │   │                             current certificate was refused (401)
    │   ├── TenantNotFound            AADSTS90002 / invalid_tenant: domain or tenant unknown
    │   └── AppDisabled               AADSTS7000112
    ├── ExchangeError                 on-premises Exchange over EWS (``microsoft.ews``):
    │   ├── ExchangeServerUnreachable   no answer from the server (DNS, refused, timeout); a
    │   │                               Transient for sync, a cause for Run Test
    │   ├── ExchangeTlsUntrusted        the server's certificate is not trusted
    │   ├── ExchangeCredentialsRejected HTTP 401: wrong username or password
    │   ├── ExchangeOnlineRefusesEws    the server is Exchange Online (OAuth-only challenge)
    │   ├── ExchangeServerTooOld        older than Exchange Server 2016
    │   ├── AutodiscoverFailed          no EWS address was found for the mailbox
    │   ├── ImpersonationDenied         ErrorImpersonateUserDenied: no ApplicationImpersonation
    │   │                               role for this mailbox
    │   ├── ExchangeAccessDenied        ErrorAccessDenied: the account may not open the mailbox
    │   └── MailboxNotOnServer          ErrorNonExistentMailbox (also a MailboxUnreachable)
    └── UnexpectedResponse            anything else Microsoft answered

EWS answers are classified into these same categories by ``microsoft.ews.classify_ews_error``
(it reads exchangelib's exceptions, so it lives beside the only code importing exchangelib):
``ErrorServerBusy`` is ``Throttled`` with its ``BackOffMilliseconds``,
``ErrorInvalidSyncStateData`` is ``SyncStateExpired``, ``ErrorItemNotFound`` is
``ItemNotFound``, a dropped connection or a 5xx is ``Transient``.

Right after an app, its service principal or a credential is created through Graph, Entra
ID's token service may not know it yet (replication takes seconds to minutes): it then
answers as ``REPLICATION_LAG`` says, which means "wait", not "wrong".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from m365sync.errors import M365SyncError

SECRET_STEPS = (
    "In the Microsoft Entra admin center open App registrations → your app → Certificates & "
    "secrets → New client secret, then copy the Value column (not the Secret ID) right away "
    "and enter it here."
)


class MicrosoftError(M365SyncError):
    status: ClassVar[int] = 502
    retryable: ClassVar[bool] = False
    """Retrying the same call later may succeed without anyone doing anything."""
    reconnect: ClassVar[bool] = False
    """A person must sign in again (user connection) or fix the credentials."""
    default_message: ClassVar[str] = "Microsoft answered with an error."
    default_fix: ClassVar[str | None] = None

    def __init__(
        self,
        message: str | None = None,
        *,
        fix: str | None = None,
        code: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message or self.default_message, fix=fix if fix is not None else self.default_fix
        )
        self.code = code
        self.http_status = http_status
        self.retry_after = retry_after


class Throttled(MicrosoftError):
    status = 503
    retryable = True
    default_message = "Microsoft is throttling requests for this mailbox."
    default_fix = "Nothing to do: m365sync waits as long as Microsoft asks and tries again."


class Transient(MicrosoftError):
    status = 502
    retryable = True
    default_message = "Microsoft did not answer properly (a temporary server or network error)."
    default_fix = "Nothing to do: the request is retried with back-off."


class AuthRevoked(MicrosoftError):
    status = 409
    reconnect = True
    default_message = "Microsoft no longer accepts this connection's sign-in (expired or revoked)."
    default_fix = "Reconnect: Disconnect, then Connect your Office 365 and sign in again."


class ConsentMissing(MicrosoftError):
    status = 409
    reconnect = True
    default_message = "Admin consent has not been granted to the app."
    default_fix = (
        "In the Microsoft Entra admin center open App registrations → your app → API permissions "
        "and click 'Grant admin consent for <your tenant>'."
    )


class ConsentDeclined(ConsentMissing):
    default_message = "The permissions were declined on Microsoft's consent page."
    default_fix = "Start again and click Accept on Microsoft's consent page."


class PermissionMissing(MicrosoftError):
    status = 409
    default_message = "The app lacks the Microsoft Graph permission this operation needs."
    default_fix = (
        "Add the application permission under API permissions → Add a permission → Microsoft "
        "Graph → Application permissions, then grant admin consent."
    )


class DirectoryAccessDenied(PermissionMissing):
    """Microsoft Entra ID's directory (apps, service principals, consent, users) refused the
    caller: a permission, a directory role or ownership is missing; Microsoft's message says
    which."""

    status = 403
    default_message = (
        "Microsoft Entra ID refused the operation: insufficient privileges to complete it."
    )
    default_fix = (
        "Sign in as a Global Administrator or Privileged Role Administrator of your Microsoft "
        "365 tenant, or ask one to do it."
    )


class AccessDeniedByPolicy(MicrosoftError):
    status = 409
    default_message = (
        "An Application Access Policy (or RBAC for Applications scope) in Exchange Online "
        "excludes this mailbox from the app."
    )
    default_fix = (
        "Add the mailbox to the mail-enabled security group the policy names, or change the "
        "policy (m365sync shows the Exchange Online PowerShell commands that limit a service "
        "account to a group)."
    )


class MailboxUnreachable(MicrosoftError):
    status = 409
    default_message = "This mailbox can't be reached through Microsoft Graph."
    default_fix = "Check that the user exists and has an Exchange Online mailbox."


class MailboxNotEnabled(MailboxUnreachable):
    default_message = (
        "The mailbox is not enabled for Microsoft Graph: the user has no Exchange Online "
        "licence, the mailbox is soft-deleted, or it is still on-premises."
    )
    default_fix = (
        "Assign an Exchange Online licence in the Microsoft 365 admin center (or finish "
        "migrating the mailbox to Exchange Online); on-premises mailboxes use an Exchange "
        "connection."
    )


class UserNotFound(MailboxUnreachable):
    default_message = "No such user in the Microsoft 365 tenant."
    default_fix = "Check the address: use the user's primary email address or user principal name."


class QuotaExceeded(MicrosoftError):
    status = 409
    default_message = "The mailbox is full (Exchange Online quota exceeded)."
    default_fix = "Free space in the mailbox or raise its quota; syncing resumes by itself."


class SyncStateExpired(MicrosoftError):
    status = 409
    default_message = "Microsoft expired the sync cursor (delta token)."
    default_fix = "Nothing to do: the folder is resynced from scratch."


class ItemNotFound(MicrosoftError):
    status = 404
    default_message = "The item no longer exists in the mailbox."
    default_fix = "Nothing to do: it was deleted or moved meanwhile, and the next sync catches up."


class CredentialError(MicrosoftError):
    status = 422
    reconnect = True
    default_message = "Microsoft Entra ID rejected the app's credentials."


class InvalidCredentials(CredentialError):
    default_message = (
        "Microsoft Entra ID rejected the client secret (or certificate) for this app. A common "
        "cause: the secret's ID was entered instead of its value."
    )
    default_fix = (
        "Enter the secret's Value exactly as shown when it was created (the Value column in "
        "Certificates & secrets, not the Secret ID). " + SECRET_STEPS
    )


class SecretIdGiven(InvalidCredentials):
    default_message = "This is the secret's ID, not its value."
    default_fix = (
        "Copy the Value column in Certificates & secrets (shown only right after the secret is "
        "created). If you can no longer see it, create a new client secret: " + SECRET_STEPS
    )


class SecretExpired(CredentialError):
    default_message = "The client secret has expired."
    default_fix = "Create a new secret and enter its value here. " + SECRET_STEPS


class AppNotFound(CredentialError):
    default_message = "No app with this Client ID is registered in the organization's tenant."
    default_fix = (
        "Copy the 'Application (client) ID' from the app registration's Overview, and check the "
        "app is registered in the tenant of your domains to sync."
    )


class ServicePrincipalMissing(CredentialError):
    default_message = (
        "The app has no service principal (enterprise application) in the organization's tenant."
    )
    default_fix = (
        "In the Microsoft Entra admin center open App registrations → your app → API "
        "permissions and click 'Grant admin consent for <your tenant>': it creates the "
        "enterprise application."
    )


class ProofRejected(CredentialError):
    default_message = (
        "Microsoft Entra ID did not accept the proof that m365sync holds the app's current "
        "certificate, so the certificate could not be changed."
    )
    default_fix = (
        "Check that the app registration still lists m365sync's certificate (App registrations "
        "→ your app → Certificates & secrets → Certificates); if it was deleted there, set the "
        "service account up again."
    )


class TenantNotFound(CredentialError):
    default_message = "Microsoft knows no tenant for this domain or tenant id."
    default_fix = (
        "Check the domain is spelled right and verified in Microsoft 365 (Settings → Domains), "
        "or enter the Directory (tenant) ID from the app registration's Overview."
    )


class AppDisabled(CredentialError):
    default_message = "The app is disabled in Microsoft Entra ID."
    default_fix = (
        "In Enterprise applications → your app → Properties, set 'Enabled for users to sign-in' "
        "to Yes."
    )


class ExchangeError(MicrosoftError):
    """A failure only on-premises Exchange (EWS) has; see the tree above."""

    status = 409
    default_message = "The Exchange server refused the request."


class ExchangeServerUnreachable(ExchangeError, Transient):
    status = 502
    default_message = "The Exchange server did not answer."
    default_fix = (
        "Check the server address, and that the machine running m365sync can reach it "
        "(DNS name, firewall, reverse proxy publishing /EWS/Exchange.asmx)."
    )


class ExchangeTlsUntrusted(ExchangeError):
    status = 422
    default_message = "The Exchange server's TLS certificate is not trusted."
    default_fix = (
        "Give the server a certificate from a public authority, or add your organization's "
        "root CA certificate to the CA bundle m365sync trusts (the ca_bundle setting)."
    )


class ExchangeCredentialsRejected(ExchangeError, CredentialError):
    status = 422
    default_message = "The Exchange server rejected the username or password."
    default_fix = (
        "Check the username (user@domain or DOMAIN\\user) and the password; if the password "
        "was changed, enter the new one."
    )


class ExchangeOnlineRefusesEws(ExchangeError):
    status = 422
    default_message = (
        "This server is Exchange Online, which no longer accepts EWS with a username and password."
    )
    default_fix = (
        "Use Microsoft Graph instead: connect with 'Connect your Office 365', or have an admin "
        "add an Office 365 service account."
    )


class ExchangeServerTooOld(ExchangeError):
    status = 422
    default_message = "The Exchange server is older than Exchange Server 2016."
    default_fix = (
        "Upgrade to Exchange Server 2016, 2019 or Subscription Edition (older versions are "
        "out of Microsoft support), or connect a newer server of the organization."
    )


class AutodiscoverFailed(ExchangeError):
    status = 422
    default_message = "Autodiscover found no Exchange server for this mailbox."
    default_fix = (
        "Enter the server's EWS address instead (such as "
        "https://mail.contoso.com/EWS/Exchange.asmx), or publish autodiscover.<your domain>."
    )


class ImpersonationDenied(ExchangeError):
    default_message = "The service account may not impersonate this mailbox."
    default_fix = (
        "In the Exchange Management Shell run: New-ManagementRoleAssignment -Role "
        "ApplicationImpersonation -User <service account> (add -CustomRecipientWriteScope "
        "<scope> to limit it), and make sure the scope includes this mailbox."
    )


class ExchangeAccessDenied(ExchangeError):
    default_message = "Exchange denied this account access to the mailbox."
    default_fix = (
        "Sign in with the mailbox owner's own account, or grant this account FullAccess to the "
        "mailbox (Add-MailboxPermission)."
    )


class MailboxNotOnServer(ExchangeError, MailboxUnreachable):
    default_message = "This Exchange server has no mailbox for this address."
    default_fix = (
        "Check the address (the mailbox's primary SMTP address). A mailbox already moved to "
        "Exchange Online is synced through Microsoft Graph."
    )


class UnexpectedResponse(MicrosoftError):
    status = 502
    default_message = "Microsoft answered with an unexpected error."
    default_fix = "Try again; if it persists, check Microsoft 365 service health."


REPLICATION_LAG: tuple[type[MicrosoftError], ...] = (
    AppNotFound,
    ServicePrincipalMissing,
    InvalidCredentials,
)
"""What Entra ID's token service answers about an app, its service principal or a credential
it hasn't learnt of yet (AADSTS700016, 7000229, 700027): right after they were created
through Graph, a reason to wait and ask again, not a wrong credential. (A consented
permission not replicated yet is simply missing from the token's ``roles``.)"""


GUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


def looks_like_secret_id(value: str) -> bool:
    """Secret IDs are GUIDs; secret values never are (they contain ``~`` and are 40 chars)."""
    return bool(GUID_RE.match(value.strip()))


# -- Graph -----------------------------------------------------------------------------------


def _parse_retry_after(headers: Mapping[str, str]) -> float | None:
    value = None
    for key, item in headers.items():
        if key.lower() == "retry-after":
            value = item
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _graph_error(body: bytes | str | Mapping[str, Any] | None) -> tuple[str, str]:
    data: Any = body
    if isinstance(body, bytes | str):
        try:
            data = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            data = None
    if isinstance(data, Mapping):
        error = data.get("error")
        if isinstance(error, Mapping):
            return str(error.get("code") or ""), str(error.get("message") or "")
        if isinstance(error, str):  # OAuth-shaped
            return error, str(data.get("error_description") or "")
    return "", ""


_LIMIT_NAMED = re.compile(r"over its (\w+) limit", re.IGNORECASE)


def throttled_limit(body: bytes | str | Mapping[str, Any] | None) -> str:
    """Which limit a throttled Graph answer names: Outlook says "Application is over its
    MailboxConcurrency limit."; otherwise the error code ("unknown" without one)."""
    code, message = _graph_error(body)
    found = _LIMIT_NAMED.search(message)
    return found.group(1) if found else (code or "unknown")


_SYNC_STATE_CODES = {"syncstatenotfound", "syncstateinvalid", "resyncrequired", "invaliddeltatoken"}


def classify_graph_response(
    status: int,
    body: bytes | str | Mapping[str, Any] | None,
    headers: Mapping[str, str] | None = None,
) -> MicrosoftError:
    """The category of a Graph error response (status >= 400)."""
    headers = headers or {}
    code, message = _graph_error(body)
    lowered = code.lower()
    said = f" Microsoft said: {message}" if message else ""
    kwargs: dict[str, Any] = {"code": code or None, "http_status": status}
    if status == 429 or lowered in {"toomanyrequests", "applicationthrottled", "errorserverbusy"}:
        return Throttled(retry_after=_parse_retry_after(headers), **kwargs)
    if lowered in _SYNC_STATE_CODES or status == 410:
        return SyncStateExpired(**kwargs)
    if lowered == "mailboxnotenabledforrestapi" or lowered == "mailboxnotsupportedforrestapi":
        return MailboxNotEnabled(**kwargs)
    if lowered == "errorquotaexceeded":
        return QuotaExceeded(**kwargs)
    if status == 401 and lowered == "authentication_missingormalformed":
        # What Graph answers addKey / removeKey when their proof of possession doesn't verify
        # (the caller's own token was accepted).
        return ProofRejected(
            "Microsoft Entra ID did not accept the proof of possession of the app's current "
            "certificate." + said,
            **kwargs,
        )
    if status == 401 or lowered in {"invalidauthenticationtoken", "compacttoken.parsing"}:
        return AuthRevoked("Microsoft Graph rejected the access token." + said, **kwargs)
    if status == 403:
        if "access to odata is disabled" in message.lower():
            return AccessDeniedByPolicy(**kwargs)
        if lowered == "authorization_requestdenied":
            return DirectoryAccessDenied(
                "Microsoft Entra ID refused the operation." + said, **kwargs
            )
        return PermissionMissing(
            "Microsoft Graph denied access: the app or user lacks the permission for this "
            "mailbox." + said,
            **kwargs,
        )
    if status == 404:
        if lowered in {"errorinvaliduser", "request_resourcenotfound", "errornonexistentmailbox"}:
            return UserNotFound(**kwargs)
        if lowered in {
            "erroritemnotfound",
            "resourcenotfound",
            "itemnotfound",
            "errorfoldernotfound",
        }:
            return ItemNotFound(**kwargs)
        return ItemNotFound(**kwargs)
    if status == 503 and _parse_retry_after(headers) is not None:
        return Throttled(retry_after=_parse_retry_after(headers), **kwargs)
    if status >= 500 or status == 408:
        return Transient(retry_after=_parse_retry_after(headers), **kwargs)
    return UnexpectedResponse(
        f"Microsoft Graph answered {status} {code or ''}.".replace(" .", ".") + said, **kwargs
    )


# -- Entra ID (MSAL results) ----------------------------------------------------------------

_AADSTS_RE = re.compile(r"AADSTS(\d+)")

_AAD_CODES: dict[int, type[MicrosoftError]] = {
    7000215: InvalidCredentials,
    700027: InvalidCredentials,
    7000222: SecretExpired,
    700016: AppNotFound,
    7000229: ServicePrincipalMissing,
    90002: TenantNotFound,
    900023: TenantNotFound,
    90023: TenantNotFound,
    65001: ConsentMissing,
    90094: ConsentMissing,
    90008: ConsentMissing,
    65004: ConsentDeclined,
    7000112: AppDisabled,
    700082: AuthRevoked,
    50173: AuthRevoked,
    50078: AuthRevoked,
    50076: AuthRevoked,
    50079: AuthRevoked,
    70008: AuthRevoked,
    50057: AuthRevoked,
    700084: AuthRevoked,
    50053: Throttled,
    50196: Throttled,
}


def aad_codes(result: Mapping[str, Any]) -> list[int]:
    codes = [
        int(c)
        for c in result.get("error_codes") or []
        if isinstance(c, int | str) and str(c).isdigit()
    ]
    codes += [int(c) for c in _AADSTS_RE.findall(str(result.get("error_description") or ""))]
    return codes


def classify_aad_error(result: Mapping[str, Any]) -> MicrosoftError:
    """The category of a failed MSAL result (``{"error": ..., "error_description": ...}``)."""
    codes = aad_codes(result)
    description = str(result.get("error_description") or "")
    first_line = description.splitlines()[0] if description else ""
    code = f"AADSTS{codes[0]}" if codes else str(result.get("error") or "") or None
    for number in codes:
        kind = _AAD_CODES.get(number)
        if kind is not None:
            if kind is AuthRevoked:
                return AuthRevoked(code=code)
            return kind(code=code)
    error = str(result.get("error") or "")
    if error == "invalid_grant":
        return AuthRevoked(code=code)
    if error in {"temporarily_unavailable", "server_error"}:
        return Transient(code=code)
    if error == "invalid_client":
        return InvalidCredentials(code=code)
    if error == "unauthorized_client":
        return AppNotFound(code=code)
    if error == "consent_required" or error == "interaction_required":
        return ConsentMissing(code=code)
    reason = code or error or "unknown error"
    return UnexpectedResponse(
        f"Microsoft Entra ID refused the request ({reason}): {first_line}".rstrip(": "),
        code=code,
    )


# -- Entra ID (HTTP answers, before MSAL reads them) -------------------------------------------

ENTRA_UNAVAILABLE_FIX = (
    "Nothing to fix on your side: syncing retries by itself and resumes once Microsoft answers "
    "again; for anything else, try again in a few minutes. If it lasts for hours, check "
    "Microsoft 365 service health."
)
_TENANT_CODES = {90002, 900023}


def _json_object(body: bytes | str) -> dict[str, Any] | None:
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def classify_entra_response(
    status: int,
    body: bytes | str,
    headers: Mapping[str, str] | None = None,
    *,
    what: str = "sign-in",
    discovery: bool = False,
) -> MicrosoftError | None:
    """The problem with an HTTP answer of Microsoft Entra ID, or ``None`` when MSAL can read
    it: a JSON object, which for the token endpoint may be an OAuth error MSAL reports (and
    ``classify_aad_error`` reads). ``what`` names the request for people ("tenant
    discovery"). A discovery answer must be a JSON object naming the token endpoint; a
    discovery error is ``TenantNotFound`` only when it says so (AADSTS90002,
    ``invalid_tenant``), any other is unexpected, never "unknown tenant"."""
    headers = headers or {}
    data = _json_object(body)
    retry_after = _parse_retry_after(headers)
    if status == 429 or (status == 503 and retry_after is not None):
        wait = f" It asked to wait {retry_after:.0f} seconds." if retry_after is not None else ""
        return Throttled(
            f"Microsoft unavailable, retrying: Microsoft Entra ID is throttling {what} "
            f"(HTTP {status}).{wait}",
            fix=ENTRA_UNAVAILABLE_FIX,
            http_status=status,
            retry_after=retry_after,
        )
    if status >= 500 or status == 408:
        return Transient(
            f"Microsoft unavailable, retrying: Microsoft Entra ID answered {what} with HTTP "
            f"{status} (a temporary server error).",
            fix=ENTRA_UNAVAILABLE_FIX,
            http_status=status,
            retry_after=retry_after,
        )
    if 200 <= status < 300:
        if data is None or (discovery and not data.get("token_endpoint")):
            return Transient(
                f"Microsoft unavailable, retrying: Microsoft Entra ID's answer to {what} could "
                "not be read (cut short, or not the JSON it sends).",
                fix=ENTRA_UNAVAILABLE_FIX
                + " If it keeps happening, check for a proxy or firewall that alters HTTPS "
                "answers from Microsoft.",
                http_status=status,
            )
        return None
    if data is None:
        return UnexpectedResponse(
            f"Microsoft Entra ID answered {what} with HTTP {status} and a body that is not JSON.",
            fix="Try again; if it persists, check for a proxy or firewall in front of Microsoft "
            "Entra ID, and Microsoft 365 service health.",
            http_status=status,
        )
    if not discovery:
        return None  # an OAuth error: MSAL hands it over as its result
    error = classify_aad_error(data)
    error.http_status = status
    if isinstance(error, TenantNotFound) and (
        _TENANT_CODES.intersection(aad_codes(data)) or data.get("error") == "invalid_tenant"
    ):
        return error
    if isinstance(error, TenantNotFound | UnexpectedResponse):
        said = str(data.get("error_description") or "").splitlines()
        return UnexpectedResponse(
            f"Microsoft Entra ID answered {what} with HTTP {status}"
            + (f": {said[0]}" if said else "."),
            code=error.code,
            http_status=status,
        )
    return error


__all__ = [
    "REPLICATION_LAG",
    "AccessDeniedByPolicy",
    "AppDisabled",
    "AppNotFound",
    "AuthRevoked",
    "AutodiscoverFailed",
    "ConsentDeclined",
    "ConsentMissing",
    "CredentialError",
    "DirectoryAccessDenied",
    "ExchangeAccessDenied",
    "ExchangeCredentialsRejected",
    "ExchangeError",
    "ExchangeOnlineRefusesEws",
    "ExchangeServerTooOld",
    "ExchangeServerUnreachable",
    "ExchangeTlsUntrusted",
    "ImpersonationDenied",
    "InvalidCredentials",
    "ItemNotFound",
    "MailboxNotEnabled",
    "MailboxNotOnServer",
    "MailboxUnreachable",
    "MicrosoftError",
    "PermissionMissing",
    "ProofRejected",
    "QuotaExceeded",
    "SecretExpired",
    "SecretIdGiven",
    "ServicePrincipalMissing",
    "SyncStateExpired",
    "TenantNotFound",
    "Throttled",
    "Transient",
    "UnexpectedResponse",
    "UserNotFound",
    "aad_codes",
    "classify_aad_error",
    "classify_entra_response",
    "classify_graph_response",
    "looks_like_secret_id",
    "throttled_limit",
]
