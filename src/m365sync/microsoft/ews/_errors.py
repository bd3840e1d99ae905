"""exchangelib's exceptions sorted into ``m365sync.microsoft.errors`` categories, in one place.

Sync and Run Test branch on the categories only. Exchange's own response codes are kept in
``code`` for the log.
"""

from __future__ import annotations

import requests
from exchangelib import errors as ews

from m365sync.microsoft import errors as ms

_TLS_MARKERS = ("SSLError", "CERTIFICATE_VERIFY_FAILED", "certificate verify failed")

_TRANSIENT = (
    ews.ErrorInternalServerError,
    ews.ErrorInternalServerTransientError,
    ews.ErrorTimeoutExpired,
    ews.ErrorMailboxStoreUnavailable,
    ews.ErrorMailboxMoveInProgress,
    ews.ErrorConnectionFailed,
    ews.ErrorTooManyObjectsOpened,
    ews.ErrorNoRespondingCASInDestinationSite,
    ews.CASError,
)


def _code(error: BaseException) -> str:
    return type(error).__name__


def classify_ews_error(error: BaseException) -> ms.MicrosoftError:
    """The category of an exchangelib (or requests) failure; returns, never raises."""
    if isinstance(error, ms.MicrosoftError):
        return error
    code = _code(error)
    if isinstance(error, ews.ErrorServerBusy):
        back_off = error.back_off
        return ms.Throttled(
            "The Exchange server is busy (ErrorServerBusy) and asked to wait"
            + (f" {back_off:g} s." if back_off else "."),
            code=code,
            retry_after=back_off,
        )
    if isinstance(error, ews.ErrorInvalidSyncStateData):
        return ms.SyncStateExpired(
            "Exchange no longer accepts the folder's sync state (ErrorInvalidSyncStateData).",
            code=code,
        )
    if isinstance(error, ews.ErrorItemNotFound):
        return ms.ItemNotFound(code=code)
    if isinstance(error, ews.ErrorImpersonateUserDenied | ews.ErrorImpersonationFailed):
        return ms.ImpersonationDenied(code=code)
    if isinstance(error, ews.ErrorNonExistentMailbox):
        return ms.MailboxNotOnServer(code=code)
    if isinstance(error, ews.ErrorAccessDenied):
        return ms.ExchangeAccessDenied(code=code)
    if isinstance(error, ews.UnauthorizedError):
        return ms.ExchangeCredentialsRejected(code=code, http_status=401)
    if isinstance(error, ews.AutoDiscoverFailed):
        return ms.AutodiscoverFailed(code=code)
    if isinstance(error, _TRANSIENT):
        return ms.Transient(f"The Exchange server answered a temporary error ({code}).", code=code)
    if isinstance(error, requests.exceptions.SSLError) or (
        isinstance(error, ews.TransportError | requests.RequestException)
        and any(marker in str(error) for marker in _TLS_MARKERS)
    ):
        return ms.ExchangeTlsUntrusted(code="TLS")
    if isinstance(
        error,
        requests.ConnectionError | requests.Timeout | ews.TransportError | ConnectionError,
    ):
        return ms.ExchangeServerUnreachable(code=code)
    if isinstance(error, ews.ResponseMessageError | ews.EWSError):
        return ms.UnexpectedResponse(
            f"The Exchange server answered an error: {code}: {error}", code=code
        )
    return ms.UnexpectedResponse(f"The Exchange request failed: {code}: {error}", code=code)
