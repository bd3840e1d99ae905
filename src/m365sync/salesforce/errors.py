"""Every Salesforce failure, classified in this one place.

Code elsewhere branches on these classes (or on their ``category``), never on raw status
codes, ``errorCode`` values or OAuth ``error_description`` texts. The classifiers return
(never raise) the error:

- ``classify_response`` reads a REST answer (``[{"message", "errorCode", "fields"}]``);
- ``classify_save_errors`` reads the ``errors`` of one record's SaveResult (sObject
  Collections say ``statusCode``);
- ``classify_oauth_error`` reads a token endpoint answer (``{"error", "error_description"}``)
  or the ``error`` a sign-in callback carries;
- ``classify_exception`` reads what requests or simple-salesforce raised.

::

    SalesforceError                   root (an M365SyncError); .category, .code, .http_status,
    │                                 .retryable, .reconnect, .sobject, .record, .fields
    ├── SessionExpired                401 INVALID_SESSION_ID: get a new token, retry once
    ├── LimitExceeded                 403 REQUEST_LIMIT_EXCEEDED: the org's rolling 24-hour
    │   │                             API request limit is used up; .usage, .resumes_at
    │   └── ApiShareUsed              m365sync's share of that limit is used (refused here,
    │                                 before calling Salesforce)
    ├── Transient                     UNABLE_TO_LOCK_ROW, SERVER_UNAVAILABLE, 5xx, timeouts,
    │   │                             dropped connections, records rolled back with others
    │   └── LoginRateLimited          rate_limit_exceeded: too many logins this hour
    ├── NeedsPerson                   Salesforce refuses until a person changes data or setup;
    │   │                             the record and the rule are named
    │   ├── ValidationRuleFailed      FIELD_CUSTOM_VALIDATION_EXCEPTION
    │   ├── DuplicateDetected         DUPLICATES_DETECTED (a duplicate rule), DUPLICATE_VALUE,
    │   │                             DUPLICATE_EXTERNAL_ID
    │   ├── FieldMissing              INVALID_FIELD, INVALID_FIELD_FOR_INSERT_UPDATE,
    │   │                             INVALID_TYPE: the org lacks a field or object m365sync
    │   │                             uses, or the integration user can't see it
    │   ├── RequiredFieldMissing      REQUIRED_FIELD_MISSING
    │   ├── RelatedRecordGone         ENTITY_IS_DELETED, INVALID_CROSS_REFERENCE_KEY,
    │   │                             CANNOT_UPDATE_CONVERTED_LEAD
    │   ├── StorageFull               STORAGE_LIMIT_EXCEEDED
    │   ├── AccessDenied              INSUFFICIENT_ACCESS_*, API_DISABLED_FOR_ORG, other 403s
    │   ├── TlsUntrusted              Salesforce's (or a proxy's) certificate is not trusted
    │   └── RecordRejected            any other refusal of a record's data
    ├── NotFound                      404 NOT_FOUND: the record or resource does not exist
    ├── AuthFailed                    the token endpoint refused; .reconnect is True
    │   ├── ConsumerKeyWrong          invalid_client_id
    │   ├── ConsumerSecretWrong       invalid_client, invalid_client_credentials
    │   ├── CertificateMismatch       invalid_grant "invalid assertion"
    │   ├── AudienceInvalid           invalid_grant "audience is invalid"
    │   ├── AppNotApproved            "user hasn't approved this consumer", invalid_app_access
    │   ├── LoginFailed               "authentication failure": no such user at this login URL
    │   ├── ClientCredentialsOff      "no client credentials user enabled"
    │   ├── MyDomainRequired          "request not supported on this domain"
    │   ├── UserInactive              inactive_user, "inactive user"
    │   ├── OrgInactive               inactive_org
    │   ├── IpRestricted              "IP restricted or invalid login hours"
    │   ├── ClockSkew                 a JWT found expired on arrival: this server's clock
    │   ├── ScopeNotAllowed           invalid_scope
    │   ├── ConnectionRevoked         "expired access/refresh token": connect again
    │   └── SignInIncomplete          the Connect Salesforce round trip failed: denied, state
    │                                 mismatch, code expired or reused, wrong PKCE verifier,
    │                                 callback URL not registered
    └── UnexpectedResponse            anything else (MALFORMED_QUERY, JSON_PARSER_ERROR...):
        │                             m365sync sent something Salesforce could not take
        └── TooManyIds                EXCEEDED_ID_LIMIT: more ids than one answer may hold
                                      (change polling narrows its window on it)

Every message says what went wrong in plain words and every class carries a ``fix``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import requests
from simple_salesforce.exceptions import SalesforceError as SimpleSalesforceError

from m365sync.errors import M365SyncError

if TYPE_CHECKING:
    from m365sync.salesforce.limits import ApiUsage

OAuthFlow = Literal["jwt_bearer", "client_credentials", "authorization_code", "refresh_token"]

APP_MANAGER = "Setup → App Manager → your connected app"
PERMISSIONS_HINT = (
    "Give the integration user a permission set with API Enabled, Read on Account, Contact, "
    "Lead and Opportunity, and Create, Read and Edit on Task, Event and EmailMessage."
)


class ErrorCategory(StrEnum):
    """What a caller does about an error; stored and shown as is."""

    SESSION_EXPIRED = "session_expired"
    """Get a new access token and retry once (the client does it)."""
    LIMIT_EXCEEDED = "limit_exceeded"
    """Wait for the rolling 24-hour window to free calls (``resumes_at``)."""
    TRANSIENT = "transient"
    """Retry later with back-off; nobody has to do anything."""
    NEEDS_PERSON = "needs_person"
    """Park the record: a person must change data or the org's setup first."""
    NOT_FOUND = "not_found"
    """The record is gone; the next sync catches up."""
    AUTH_FAILED = "auth_failed"
    """The connection's credentials or the connected app's setup must be fixed."""
    UNEXPECTED = "unexpected"
    """m365sync sent something Salesforce could not take: a defect to report."""


class SalesforceError(M365SyncError):
    status: ClassVar[int] = 502
    category: ClassVar[ErrorCategory] = ErrorCategory.UNEXPECTED
    retryable: ClassVar[bool] = False
    """Retrying the same call later may succeed without anyone doing anything."""
    reconnect: ClassVar[bool] = False
    """The connection's sign-in must be redone or its credentials fixed."""
    default_message: ClassVar[str] = "Salesforce answered with an error."
    default_fix: ClassVar[str | None] = None

    def __init__(
        self,
        message: str | None = None,
        *,
        fix: str | None = None,
        code: str | None = None,
        http_status: int | None = None,
        sobject: str | None = None,
        record: str | None = None,
        fields: Sequence[str] = (),
        salesforce_message: str | None = None,
    ) -> None:
        super().__init__(
            message or self.default_message, fix=fix if fix is not None else self.default_fix
        )
        self.code = code
        """Salesforce's own code: the ``errorCode``/``statusCode`` or the OAuth ``error``."""
        self.http_status = http_status
        self.sobject = sobject
        self.record = record
        """The record concerned, in words (``EmailMessage M365Sync_Message_Id__c '<a@b>'``)."""
        self.fields = tuple(fields)
        self.salesforce_message = salesforce_message
        """Salesforce's own text, kept for the log and for people who search for it."""


class SessionExpired(SalesforceError):
    status = 502
    category = ErrorCategory.SESSION_EXPIRED
    retryable = True
    default_message = "Salesforce ended the session (it expired, or was revoked or logged out)."
    default_fix = (
        "Nothing to do: m365sync signs in again and retries once. If it keeps happening, check "
        f"the session policies of the connected app ({APP_MANAGER} ▾ Manage → Edit Policies)."
    )


class LimitExceeded(SalesforceError):
    status = 503
    category = ErrorCategory.LIMIT_EXCEEDED
    retryable = True
    default_message = (
        "The Salesforce org has used its whole API request limit for the rolling 24 hours."
    )
    default_fix = (
        "Nothing to do: syncing resumes when the rolling 24-hour window frees calls. To raise "
        "the limit, buy more API calls from Salesforce or lower other integrations' use "
        "(Setup → Company Information shows API Requests, Last 24 Hours)."
    )

    def __init__(
        self,
        message: str | None = None,
        *,
        usage: ApiUsage | None = None,
        resumes_at: datetime | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.usage = usage
        self.resumes_at = resumes_at
        """When calls are expected to be possible again (an estimate: Salesforce reports how
        many calls the window holds, not when each was made)."""

    @classmethod
    def org_limit_reached(
        cls,
        usage: ApiUsage | None,
        resumes_at: datetime | None,
        *,
        code: str | None = "REQUEST_LIMIT_EXCEEDED",
        http_status: int | None = 403,
        salesforce_message: str | None = None,
    ) -> LimitExceeded:
        counted = (
            f" ({usage.used:,} of {usage.limit:,} requests in the last 24 hours)" if usage else ""
        )
        return cls(
            "The Salesforce org has used its whole API request limit for the rolling 24 hours"
            f"{counted}.",
            fix=(
                "Nothing to do: syncing resumes when the rolling 24-hour window frees calls"
                f"{_around(resumes_at)}. To raise the limit, buy more API calls from Salesforce "
                "or lower other integrations' use (Setup → Company Information shows API "
                "Requests, Last 24 Hours)."
            ),
            usage=usage,
            resumes_at=resumes_at,
            code=code,
            http_status=http_status,
            salesforce_message=salesforce_message,
        )


class ApiShareUsed(LimitExceeded):
    default_message = "m365sync has used its share of the Salesforce org's daily API requests."
    default_fix = (
        "Nothing to do: syncing resumes when the rolling 24-hour window frees calls. To let "
        "m365sync use more of the org's limit, raise its Salesforce API share setting."
    )

    @classmethod
    def for_share(cls, usage: ApiUsage, share: float, resumes_at: datetime | None) -> ApiShareUsed:
        return cls(
            f"m365sync has paused its Salesforce calls: the org has used {usage.used:,} of its "
            f"{usage.limit:,} API requests in the last 24 hours, and m365sync may use it only "
            f"up to {share:.0%} so the rest stays for the org's other users and integrations.",
            fix=(
                "Nothing to do: syncing resumes when the rolling 24-hour window frees calls"
                f"{_around(resumes_at)}. To let m365sync use more of the org's limit, raise its "
                "Salesforce API share setting."
            ),
            usage=usage,
            resumes_at=resumes_at,
            code="API_SHARE_USED",
        )


class Transient(SalesforceError):
    status = 502
    category = ErrorCategory.TRANSIENT
    retryable = True
    default_message = "Salesforce could not answer properly (a temporary server or network error)."
    default_fix = "Nothing to do: the request is tried again later."


class LoginRateLimited(Transient):
    default_message = "Salesforce refused the sign-in: too many logins for this user this hour."
    default_fix = (
        "Nothing to do: m365sync signs in again later. If it keeps happening, another system "
        "signs in as the same user: give m365sync an integration user of its own."
    )


class NeedsPerson(SalesforceError):
    status = 409
    category = ErrorCategory.NEEDS_PERSON
    default_message = "Salesforce refused to save a record."
    default_fix = (
        "Correct the data or the Salesforce setting named in the message; m365sync tries the "
        "record again after that."
    )


class ValidationRuleFailed(NeedsPerson):
    default_message = "A validation rule in Salesforce refused the record."
    default_fix = (
        "A Salesforce admin can change or deactivate the validation rule (Setup → Object "
        "Manager → the object → Validation Rules: the rule's error message is the text "
        "quoted), or let the integration user bypass it. m365sync tries again after that."
    )


class DuplicateDetected(NeedsPerson):
    default_message = "Salesforce found a duplicate and refused the record."
    default_fix = (
        "Merge the duplicate records, or have a Salesforce admin let the integration user "
        "save duplicates (Setup → Duplicate Rules → the rule → Action On Create/Edit: Allow)."
    )


class FieldMissing(NeedsPerson):
    default_message = (
        "Salesforce has no field or object m365sync needs, or the integration user can't see it."
    )
    default_fix = (
        "Create the field m365sync needs (Setup → Object Manager → the object → Fields & "
        "Relationships) and give the integration user Read and Edit access to it (its "
        "permission set's Field Permissions)."
    )


class RequiredFieldMissing(NeedsPerson):
    default_message = "Salesforce requires a field that m365sync does not fill in."
    default_fix = (
        "A Salesforce admin can make the field optional or give it a default value (Setup → "
        "Object Manager → the object → Fields & Relationships). m365sync tries again after."
    )


class RelatedRecordGone(NeedsPerson):
    default_message = (
        "The record refers to a Salesforce record that was deleted, merged or converted, or "
        "that the integration user can't see."
    )
    default_fix = (
        "If the related record was deleted or merged, nothing to do: the activity is linked "
        "again on the next sync. If it exists, share it with the integration user (or give "
        "the integration user View All Data)."
    )


class StorageFull(NeedsPerson):
    default_message = "The Salesforce org's data storage is full."
    default_fix = (
        "Free data storage or buy more (Setup → Storage Usage); syncing resumes by itself "
        "once there is room."
    )


class AccessDenied(NeedsPerson):
    default_message = "The integration user may not do this in Salesforce."
    default_fix = PERMISSIONS_HINT


class TlsUntrusted(NeedsPerson):
    default_message = "m365sync does not trust the TLS certificate Salesforce's address presented."
    default_fix = (
        "Check the Salesforce login URL. If a TLS-inspecting proxy sits between m365sync and "
        "Salesforce, add its certificate authority to m365sync's CA bundle setting."
    )


class RecordRejected(NeedsPerson):
    default_message = "Salesforce refused the record's data."


class NotFound(SalesforceError):
    status = 404
    category = ErrorCategory.NOT_FOUND
    default_message = "The Salesforce record does not exist (it was deleted meanwhile)."
    default_fix = "Nothing to do: the next sync catches up."


class AuthFailed(SalesforceError):
    status = 422
    category = ErrorCategory.AUTH_FAILED
    reconnect = True
    default_message = "Salesforce refused to sign m365sync in."
    default_fix = (
        "Check the connected app's consumer key, the integration user and the login URL, "
        "then connect again."
    )


class ConsumerKeyWrong(AuthFailed):
    default_message = "Salesforce knows no connected app with this consumer key."
    default_fix = (
        f"The connected app's consumer key is wrong: copy it from {APP_MANAGER} ▾ View → "
        "Manage Consumer Details. A connected app created in the last few minutes may not be "
        "active yet (wait up to 10 minutes). Check also that the login URL is the org that "
        "owns the app (production or sandbox)."
    )


class ConsumerSecretWrong(AuthFailed):
    default_message = "Salesforce rejected the connected app's consumer secret."
    default_fix = (
        f"Copy the Consumer Secret from {APP_MANAGER} ▾ View → Manage Consumer Details, exactly "
        "as shown, and enter it again."
    )


class CertificateMismatch(AuthFailed):
    default_message = (
        "Salesforce could not verify m365sync's signed sign-in request (JWT): the certificate "
        "of the connected app does not match m365sync's private key, or the app has none."
    )
    default_fix = (
        f"Upload m365sync's certificate to the connected app: {APP_MANAGER} ▾ Edit → API "
        "(Enable OAuth Settings) → Use digital signatures."
    )


class AudienceInvalid(AuthFailed):
    default_message = "Salesforce refused the audience of m365sync's signed sign-in request."
    default_fix = (
        "The audience must be Salesforce's login URL: https://login.salesforce.com for a "
        "production org (also behind a My Domain), https://test.salesforce.com for a sandbox. "
        "Check the connection's Salesforce login URL."
    )


class AppNotApproved(AuthFailed):
    default_message = "The integration user is not allowed to use the connected app."
    default_fix = (
        f"In {APP_MANAGER} ▾ Manage → Edit Policies set Permitted Users to 'Admin approved "
        "users are pre-authorized', then add the integration user's profile or permission set "
        "under Manage Profiles or Manage Permission Sets."
    )


class LoginFailed(AuthFailed):
    default_message = "Salesforce knows no such active user at this login URL."
    default_fix = (
        "Check the username (a sandbox's usernames end with the sandbox's name, such as "
        "user@acme.com.uat) and the login URL: https://login.salesforce.com for production, "
        "https://test.salesforce.com for a sandbox, or the org's My Domain URL."
    )


class ClientCredentialsOff(AuthFailed):
    default_message = "The connected app has no user for the client credentials flow."
    default_fix = (
        f"In {APP_MANAGER} ▾ Edit tick 'Enable Client Credentials Flow', then in Manage → Edit "
        "Policies → Client Credentials Flow choose the Run As user (the integration user)."
    )


class MyDomainRequired(AuthFailed):
    default_message = (
        "The client credentials flow works only on the org's My Domain URL, not on "
        "login.salesforce.com or test.salesforce.com."
    )
    default_fix = (
        "Use the org's My Domain login URL, https://<name>.my.salesforce.com (Setup → My Domain "
        "shows it)."
    )


class UserInactive(AuthFailed):
    default_message = "The Salesforce user m365sync signs in as is deactivated."
    default_fix = "Reactivate the user (Setup → Users) or choose another, active, integration user."


class OrgInactive(AuthFailed):
    default_message = "The Salesforce org is locked, suspended or closed."
    default_fix = "Ask your Salesforce administrator or Salesforce support about the org's status."


class IpRestricted(AuthFailed):
    default_message = (
        "Salesforce refused the sign-in from m365sync's network address or at this hour."
    )
    default_fix = (
        f"Set the connected app's IP Relaxation to 'Relax IP restrictions' ({APP_MANAGER} ▾ "
        "Manage → Edit Policies), or add m365sync's public IP address to the integration "
        "user's profile (Login IP Ranges), and check the profile's Login Hours."
    )


class ClockSkew(AuthFailed):
    default_message = (
        "Salesforce found m365sync's signed sign-in request already expired: this server's "
        "clock is probably wrong."
    )
    default_fix = "Synchronize this server's clock (NTP), then try again."


class ScopeNotAllowed(AuthFailed):
    default_message = "The connected app does not allow the access m365sync asks for."
    default_fix = (
        f"Add the OAuth scopes 'Manage user data via APIs (api)' and 'Perform requests at any "
        f"time (refresh_token, offline_access)' to the connected app ({APP_MANAGER} ▾ Edit)."
    )


class ConnectionRevoked(AuthFailed):
    default_message = (
        "Salesforce no longer accepts this connection's sign-in (the refresh token expired or "
        "was revoked)."
    )
    default_fix = (
        "Connect Salesforce again. If it keeps expiring, set the connected app's Refresh Token "
        f"Policy to 'Refresh token is valid until revoked' ({APP_MANAGER} ▾ Manage → Edit "
        "Policies)."
    )


class SignInIncomplete(AuthFailed):
    default_message = "The Salesforce sign-in did not complete."
    default_fix = "Start again with Connect Salesforce."


class UnexpectedResponse(SalesforceError):
    status = 502
    category = ErrorCategory.UNEXPECTED
    default_message = "Salesforce answered with an unexpected error."
    default_fix = (
        "Try again; if it persists, report it to m365sync's maintainers with the error code shown."
    )


class TooManyIds(UnexpectedResponse):
    """``EXCEEDED_ID_LIMIT``: the request names (or its answer would hold) more ids than
    Salesforce takes in one call. Change polling (``updated``/``deleted``, at most 600,000
    ids) answers it by asking for a shorter window; the client raises it itself when even
    one minute holds too many."""

    default_message = "Salesforce refused to answer with that many record ids at once."


# -- naming records --------------------------------------------------------------------------


def describe_record(
    sobject: str,
    *,
    record_id: str | None = None,
    external_id: tuple[str, str] | None = None,
) -> str:
    """A record in words, for messages: ``Task 00T...`` or ``Task M365Sync_Todo_Id__c 'x'``."""
    if record_id:
        return f"{sobject} {record_id}"
    if external_id is not None:
        field, value = external_id
        shown = value if len(value) <= 80 else value[:77] + "..."
        return f"{sobject} {field} '{shown}'"
    return f"a new {sobject}"


def _around(when: datetime | None) -> str:
    return f" (expected around {when:%Y-%m-%d %H:%M} UTC)" if when is not None else ""


def _with_record(text: str, record: str | None) -> str:
    return f"{text} Record: {record}." if record else text


# -- REST answers ----------------------------------------------------------------------------

_CODES: dict[str, type[SalesforceError]] = {
    "INVALID_SESSION_ID": SessionExpired,
    "REQUEST_LIMIT_EXCEEDED": LimitExceeded,
    "UNABLE_TO_LOCK_ROW": Transient,
    "SERVER_UNAVAILABLE": Transient,
    "UNKNOWN_EXCEPTION": Transient,
    "QUERY_TIMEOUT": Transient,
    "INVALID_QUERY_LOCATOR": Transient,
    "ALL_OR_NONE_OPERATION_ROLLED_BACK": Transient,
    "PROCESSING_HALTED": Transient,
    "API_CURRENTLY_DISABLED": Transient,
    "FIELD_CUSTOM_VALIDATION_EXCEPTION": ValidationRuleFailed,
    "DUPLICATES_DETECTED": DuplicateDetected,
    "DUPLICATE_VALUE": DuplicateDetected,
    "DUPLICATE_EXTERNAL_ID": DuplicateDetected,
    "INVALID_FIELD": FieldMissing,
    "INVALID_FIELD_FOR_INSERT_UPDATE": FieldMissing,
    "INVALID_TYPE": FieldMissing,
    "REQUIRED_FIELD_MISSING": RequiredFieldMissing,
    "ENTITY_IS_DELETED": RelatedRecordGone,
    "INVALID_CROSS_REFERENCE_KEY": RelatedRecordGone,
    "CANNOT_UPDATE_CONVERTED_LEAD": RelatedRecordGone,
    "STORAGE_LIMIT_EXCEEDED": StorageFull,
    "INSUFFICIENT_ACCESS": AccessDenied,
    "INSUFFICIENT_ACCESS_OR_READONLY": AccessDenied,
    "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY": AccessDenied,
    "API_DISABLED_FOR_ORG": AccessDenied,
    "NOT_FOUND": NotFound,
    "MALFORMED_QUERY": UnexpectedResponse,
    "JSON_PARSER_ERROR": UnexpectedResponse,
    "INVALID_INPUT": UnexpectedResponse,
    "MISSING_ARGUMENT": UnexpectedResponse,
    "METHOD_NOT_ALLOWED": UnexpectedResponse,
    "EXCEEDED_ID_LIMIT": TooManyIds,
    "INVALID_QUERY_FILTER_OPERATOR": UnexpectedResponse,
    "INVALID_BATCH_SIZE": UnexpectedResponse,
    "INVALID_REPLICATION_DATE": UnexpectedResponse,
    "INVALID_DATE_FORMAT": UnexpectedResponse,
}


def _rest_errors(body: Any) -> list[Mapping[str, Any]]:
    """The error entries of a REST answer body (bytes, text or parsed JSON)."""
    data = body
    if isinstance(body, bytes | str):
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = None
    if isinstance(data, Mapping):
        data = [data]
    if isinstance(data, list):
        return [entry for entry in data if isinstance(entry, Mapping)]
    return []


def _code_of(entry: Mapping[str, Any]) -> str:
    return str(entry.get("errorCode") or entry.get("statusCode") or entry.get("error") or "")


def _message_of(entry: Mapping[str, Any]) -> str:
    return str(entry.get("message") or entry.get("error_description") or "").strip()


def classify_response(
    status: int,
    body: bytes | str | Sequence[Any] | Mapping[str, Any] | None,
    headers: Mapping[str, str] | None = None,
    *,
    sobject: str | None = None,
    record: str | None = None,
) -> SalesforceError:
    """The category of a REST error answer (status >= 300)."""
    del headers  # the limit header is read by the client, which knows the budget
    entries = _rest_errors(body)
    if entries and "error" in entries[0] and "errorCode" not in entries[0]:
        return classify_oauth_error(entries[0], status=status)
    first = entries[0] if entries else {}
    code = _code_of(first)
    if status == 300 and not code:
        code = "DUPLICATE_EXTERNAL_ID"
    message = _message_of(first)
    fields = [str(f) for f in first.get("fields") or [] if isinstance(f, str)]
    return _from_code(
        code,
        message,
        fields,
        status=status,
        sobject=sobject,
        record=record,
        duplicate_result=first.get("duplicateResult"),
    )


def classify_save_errors(
    errors: Iterable[Mapping[str, Any]],
    *,
    sobject: str | None = None,
    record: str | None = None,
) -> SalesforceError:
    """The category of one record's SaveResult ``errors`` (the first error decides)."""
    entries = list(errors)
    first = entries[0] if entries else {}
    fields = [str(f) for f in first.get("fields") or [] if isinstance(f, str)]
    return _from_code(
        _code_of(first),
        _message_of(first),
        fields,
        status=None,
        sobject=sobject,
        record=record,
        duplicate_result=first.get("duplicateResult"),
    )


def _from_code(
    code: str,
    message: str,
    fields: list[str],
    *,
    status: int | None,
    sobject: str | None,
    record: str | None,
    duplicate_result: Any,
) -> SalesforceError:
    kwargs: dict[str, Any] = {
        "code": code or None,
        "http_status": status,
        "sobject": sobject,
        "record": record,
        "fields": fields,
        "salesforce_message": message or None,
    }
    said = f' Salesforce said: "{message}"' if message else ""
    on_fields = f" (field {', '.join(fields)})" if fields else ""
    kind = _CODES.get(code)
    if code == "REQUEST_LIMIT_EXCEEDED" and "ConcurrentPerOrgLongTxn" in message:
        # The limit of concurrent long-running requests, not the daily one: it clears in
        # seconds, as soon as other requests finish.
        return Transient(
            "Salesforce is busy with too many long-running requests of this org at once." + said,
            **kwargs,
        )
    if kind is None:
        kind = _kind_by_status(status, record)
    if kind is LimitExceeded:
        return LimitExceeded.org_limit_reached(
            None, None, code=code or None, http_status=status, salesforce_message=message
        )
    if kind is SessionExpired or kind is NotFound:
        return kind(**kwargs)
    if kind is Transient:
        return Transient(_transient_message(code, message), **kwargs)
    if kind is ValidationRuleFailed:
        where = f" (Setup → Object Manager → {sobject} → Validation Rules)" if sobject else ""
        return ValidationRuleFailed(
            _with_record(
                f'A validation rule in Salesforce refused the record: "{message}"{on_fields}.',
                record,
            ),
            fix=(
                "A Salesforce admin can change or deactivate the rule whose error message is "
                f"the text quoted{where}, or let the integration user bypass it; or correct "
                "the data it checks. m365sync tries the record again after that."
            ),
            **kwargs,
        )
    if kind is DuplicateDetected:
        return _duplicate(code, message, fields, sobject, record, duplicate_result, kwargs)
    if kind is FieldMissing:
        return _field_missing(code, message, fields, sobject, record, kwargs)
    if kind is RequiredFieldMissing:
        where = f"on {sobject} " if sobject else ""
        return RequiredFieldMissing(
            _with_record(
                f"Salesforce requires {', '.join(fields) or 'a field'} {where}and m365sync does "
                "not fill it in.",
                record,
            ),
            **kwargs,
        )
    if kind is RelatedRecordGone:
        return RelatedRecordGone(
            _with_record(RelatedRecordGone.default_message + said, record), **kwargs
        )
    if kind is StorageFull:
        return StorageFull(**kwargs)
    if kind is AccessDenied:
        if code == "API_DISABLED_FOR_ORG":
            return AccessDenied(
                "The Salesforce org or the integration user may not use the API.",
                fix=(
                    "API access needs Enterprise, Unlimited, Performance or Developer Edition "
                    "(or the API add-on) and the API Enabled permission on the integration "
                    "user's profile or permission set."
                ),
                **kwargs,
            )
        return AccessDenied(
            _with_record(f"The integration user may not do this in Salesforce.{said}", record),
            **kwargs,
        )
    if kind is RecordRejected:
        return RecordRejected(
            _with_record(
                f"Salesforce refused the record's data ({code}){on_fields}.{said}", record
            ),
            fix=(
                "Correct the data Salesforce names, or ask a Salesforce admin about the "
                "automation (flow, trigger, approval lock) that refused it; m365sync tries the "
                "record again after that."
            ),
            **kwargs,
        )
    shown = f"{status} " if status else ""
    if kind is TooManyIds:
        return TooManyIds(
            f"Salesforce refused m365sync's request ({shown}{code}): it names, or its answer "
            f"would hold, more record ids than Salesforce takes in one call.{said}",
            **kwargs,
        )
    return UnexpectedResponse(
        f"Salesforce refused m365sync's request ({shown}{code or 'no error code'}).{said}",
        **kwargs,
    )


def _kind_by_status(status: int | None, record: str | None) -> type[SalesforceError]:
    if status == 401:
        return SessionExpired
    if status == 403:
        return AccessDenied
    if status == 404:
        return NotFound
    if status is not None and (status >= 500 or status == 408):
        return Transient
    if status is None or record is not None:
        return RecordRejected
    return UnexpectedResponse


def _transient_message(code: str, message: str) -> str:
    if code == "UNABLE_TO_LOCK_ROW":
        return (
            "Another process was changing the same Salesforce record at that moment "
            "(UNABLE_TO_LOCK_ROW)."
        )
    if code in ("ALL_OR_NONE_OPERATION_ROLLED_BACK", "PROCESSING_HALTED"):
        return (
            "Salesforce rolled this record back because another record of the same request failed."
        )
    if code == "INVALID_QUERY_LOCATOR":
        return "Salesforce expired the query's cursor before all pages were read."
    said = f' Salesforce said: "{message}"' if message else ""
    return f"Salesforce could not process the request right now ({code or 'server error'}).{said}"


def _duplicate(
    code: str,
    message: str,
    fields: list[str],
    sobject: str | None,
    record: str | None,
    duplicate_result: Any,
    kwargs: dict[str, Any],
) -> DuplicateDetected:
    if code == "DUPLICATE_EXTERNAL_ID":
        field = fields[0] if fields else "external id"
        return DuplicateDetected(
            _with_record(
                f"More than one {sobject or 'record'} has the same {field} value, so "
                "Salesforce can't tell which one m365sync means.",
                record,
            ),
            fix=(
                "Delete or merge the extra records so each value appears once, and mark the "
                f"field {field} Unique where Setup offers it."
            ),
            **kwargs,
        )
    if code == "DUPLICATE_VALUE":
        return DuplicateDetected(
            _with_record(
                f"Another Salesforce record already has this value in a unique field"
                f"{' (' + ', '.join(fields) + ')' if fields else ''}: {message}",
                record,
            ),
            fix="Find the other record with the same value, then clear the value or merge them.",
            **kwargs,
        )
    rule = ""
    if isinstance(duplicate_result, Mapping):
        rule = str(duplicate_result.get("duplicateRule") or "")
    named = f"The duplicate rule {rule}" if rule else "A duplicate rule"
    return DuplicateDetected(
        _with_record(f'{named} in Salesforce refused the record: "{message}"', record),
        fix=(
            "Merge the duplicates, or have a Salesforce admin let the integration user save "
            f"them (Setup → Duplicate Rules → {rule or 'the rule'} → Action On Create/Edit: "
            "Allow, or a bypass for the integration user's profile)."
        ),
        **kwargs,
    )


def _field_missing(
    code: str,
    message: str,
    fields: list[str],
    sobject: str | None,
    record: str | None,
    kwargs: dict[str, Any],
) -> FieldMissing:
    said = f' Salesforce said: "{message}"' if message else ""
    if code == "INVALID_TYPE":
        return FieldMissing(
            f"An object m365sync uses is missing in Salesforce or hidden from the integration "
            f"user.{said}",
            fix=(
                "Check that the integration user's permission set grants access to the object. "
                "For EmailMessage, turn on Enhanced Email (Setup → Enhanced Email)."
            ),
            **kwargs,
        )
    where = f" on {sobject}" if sobject else ""
    named = ", ".join(fields) if fields else "a field"
    if code == "INVALID_FIELD_FOR_INSERT_UPDATE":
        return FieldMissing(
            _with_record(
                f"The integration user may not write {named}{where} in Salesforce.{said}", record
            ),
            fix=(
                f"Give the integration user Edit access to {named} (its permission set's Field "
                "Permissions)."
            ),
            **kwargs,
        )
    return FieldMissing(
        _with_record(
            f"Salesforce has no field {named}{where} that the integration user can see.{said}",
            record,
        ),
        fix=(
            f"Create the field{where} (Setup → Object Manager → {sobject or 'the object'} → "
            "Fields & Relationships) and give the integration user Read and Edit access to it "
            "(its permission set's Field Permissions)."
        ),
        **kwargs,
    )


# -- OAuth answers ---------------------------------------------------------------------------

_OAUTH_ERRORS: dict[str, type[SalesforceError]] = {
    "invalid_client_id": ConsumerKeyWrong,
    "invalid_client": ConsumerSecretWrong,
    "invalid_client_credentials": ConsumerSecretWrong,
    "invalid_app_access": AppNotApproved,
    "inactive_user": UserInactive,
    "inactive_org": OrgInactive,
    "invalid_scope": ScopeNotAllowed,
    "rate_limit_exceeded": LoginRateLimited,
    "access_denied": SignInIncomplete,
    "redirect_uri_mismatch": SignInIncomplete,
    "redirect_uri_missing": SignInIncomplete,
    "unsupported_grant_type": UnexpectedResponse,
    "unsupported_response_type": UnexpectedResponse,
    "invalid_request": UnexpectedResponse,
}

# invalid_grant descriptions, as Salesforce words them (lower-cased).
_GRANT_DESCRIPTIONS: dict[str, type[SalesforceError]] = {
    "invalid assertion": CertificateMismatch,
    "audience is invalid": AudienceInvalid,
    "audience validation failed": AudienceInvalid,
    "user hasn't approved this consumer": AppNotApproved,
    "authentication failure": LoginFailed,
    "invalid user credentials": LoginFailed,
    "no client credentials user enabled": ClientCredentialsOff,
    "request not supported on this domain": MyDomainRequired,
    "inactive user": UserInactive,
    "user is inactive": UserInactive,
    "ip restricted or invalid login hours": IpRestricted,
    "ip restricted": IpRestricted,
    "expired access/refresh token": ConnectionRevoked,
    "invalid authorization code": SignInIncomplete,
    "invalid code verifier": SignInIncomplete,
    "redirect_uri must match configuration": SignInIncomplete,
}


def classify_oauth_error(
    body: bytes | str | Mapping[str, Any] | None,
    *,
    status: int | None = 400,
    flow: OAuthFlow | None = None,
    redirect_uri: str | None = None,
) -> SalesforceError:
    """The category of a token endpoint refusal, or of the ``error`` a sign-in callback
    carries. ``flow`` tells apart descriptions Salesforce reuses across flows."""
    data: Any = body
    if isinstance(body, bytes | str):
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = None
    if not isinstance(data, Mapping):
        if status is not None and status >= 500:
            return Transient(
                f"Salesforce's sign-in service did not answer properly ({status}).",
                http_status=status,
            )
        return UnexpectedResponse(
            f"Salesforce's sign-in service answered {status} without an error description.",
            http_status=status,
        )
    error = str(data.get("error") or "")
    description = str(data.get("error_description") or "").strip()
    lowered = description.lower()
    kwargs: dict[str, Any] = {
        "code": error or None,
        "http_status": status,
        "salesforce_message": description or None,
    }
    said = f' Salesforce said: "{error}: {description}".' if description else ""
    if error == "invalid_grant":
        if lowered == "expired authorization code":
            if flow == "jwt_bearer":
                return ClockSkew(**kwargs)
            return SignInIncomplete(
                "The Salesforce sign-in code expired before m365sync could use it.", **kwargs
            )
        kind = _GRANT_DESCRIPTIONS.get(lowered)
        if kind is SignInIncomplete:
            return _sign_in_incomplete(lowered, redirect_uri, kwargs)
        if kind is not None:
            return kind(**kwargs)
        if flow == "refresh_token":
            return ConnectionRevoked(**kwargs)
        return AuthFailed(f"Salesforce refused to sign m365sync in.{said}", **kwargs)
    kind = _OAUTH_ERRORS.get(error)
    if kind is SignInIncomplete:
        return _sign_in_incomplete(error, redirect_uri, kwargs)
    if kind is UnexpectedResponse:
        return UnexpectedResponse(
            f"Salesforce's sign-in service refused m365sync's request.{said}", **kwargs
        )
    if kind is not None:
        return kind(**kwargs)
    if status is not None and status >= 500:
        return Transient(f"Salesforce's sign-in service failed ({status}).{said}", **kwargs)
    return AuthFailed(f"Salesforce refused to sign m365sync in.{said}", **kwargs)


def _sign_in_incomplete(
    reason: str, redirect_uri: str | None, kwargs: dict[str, Any]
) -> SignInIncomplete:
    if reason in ("redirect_uri must match configuration", "redirect_uri_mismatch"):
        where = redirect_uri or "m365sync's Salesforce callback URL"
        return SignInIncomplete(
            "The connected app does not list m365sync's callback URL.",
            fix=(
                f"Add {where} as a Callback URL of the connected app ({APP_MANAGER} ▾ Edit → "
                "API (Enable OAuth Settings) → Callback URL), then start again with Connect "
                "Salesforce."
            ),
            **kwargs,
        )
    if reason == "access_denied":
        return SignInIncomplete(
            "The Salesforce sign-in was cancelled: access was denied on Salesforce's page.",
            fix="Start again with Connect Salesforce and choose Allow.",
            **kwargs,
        )
    if reason == "invalid code verifier":
        return SignInIncomplete(
            "Salesforce refused the sign-in's proof key (PKCE code verifier): this response "
            "belongs to another sign-in attempt.",
            **kwargs,
        )
    if reason == "invalid authorization code":
        return SignInIncomplete(
            "The Salesforce sign-in code was already used or is not valid.", **kwargs
        )
    return SignInIncomplete(**kwargs)


# -- raised exceptions -----------------------------------------------------------------------


def classify_exception(
    exc: BaseException,
    *,
    sobject: str | None = None,
    record: str | None = None,
) -> SalesforceError:
    """The category of what requests or simple-salesforce raised while calling Salesforce."""
    if isinstance(exc, SalesforceError):
        return exc
    if isinstance(exc, SimpleSalesforceError):
        return classify_response(exc.status, exc.content, sobject=sobject, record=record)
    if isinstance(exc, requests.exceptions.SSLError):
        return TlsUntrusted(code=type(exc).__name__)
    if isinstance(exc, requests.Timeout):
        return Transient("Salesforce did not answer in time.", code=type(exc).__name__)
    if isinstance(exc, requests.RequestException):
        return Transient(
            f"Could not reach Salesforce, or the connection broke ({type(exc).__name__}).",
            code=type(exc).__name__,
        )
    if isinstance(exc, ValueError):  # a body cut short is not JSON
        return Transient(
            "Salesforce's answer was cut short (the connection broke while it was read).",
            code=type(exc).__name__,
        )
    return UnexpectedResponse(
        f"Calling Salesforce failed unexpectedly ({type(exc).__name__}).", code=type(exc).__name__
    )


__all__ = [
    "AccessDenied",
    "ApiShareUsed",
    "AppNotApproved",
    "AudienceInvalid",
    "AuthFailed",
    "CertificateMismatch",
    "ClientCredentialsOff",
    "ClockSkew",
    "ConnectionRevoked",
    "ConsumerKeyWrong",
    "ConsumerSecretWrong",
    "DuplicateDetected",
    "ErrorCategory",
    "FieldMissing",
    "IpRestricted",
    "LimitExceeded",
    "LoginFailed",
    "LoginRateLimited",
    "MyDomainRequired",
    "NeedsPerson",
    "NotFound",
    "OAuthFlow",
    "OrgInactive",
    "RecordRejected",
    "RelatedRecordGone",
    "RequiredFieldMissing",
    "SalesforceError",
    "ScopeNotAllowed",
    "SessionExpired",
    "SignInIncomplete",
    "StorageFull",
    "TlsUntrusted",
    "TooManyIds",
    "Transient",
    "UnexpectedResponse",
    "UserInactive",
    "ValidationRuleFailed",
    "classify_exception",
    "classify_oauth_error",
    "classify_response",
    "classify_save_errors",
    "describe_record",
]
