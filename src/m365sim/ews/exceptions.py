"""Errors the simulated Exchange Server answers EWS requests with, in Exchange's own shapes.

EWS fails in three ways, so there are three families::

    EwsError                         root; never rendered itself
    ├── ResponseError                one item or folder failed: the operation's ResponseMessage
    │   │                            says ResponseClass="Error", with MessageText, ResponseCode
    │   │                            and DescriptiveLinkKey; the other messages still succeed
    │   ├── ErrorItemNotFound, ErrorFolderNotFound, ErrorInvalidIdMalformed
    │   ├── ErrorAccessDenied, ErrorNonExistentMailbox, ErrorMailRecipientNotFound
    │   ├── ErrorInvalidSyncStateData, ErrorIrresolvableConflict
    │   └── ErrorSendMeetingInvitationsRequired, ErrorCalendarEndDateIsEarlierThanStartDate,
    │       ErrorInvalidOperation, ErrorInvalidRequest, ErrorInvalidPropertySet
    ├── SoapFault                    the whole request failed: HTTP 500 with a SOAP Fault whose
    │   │                            detail carries e:ResponseCode, e:Message, t:MessageXml
    │   ├── ErrorServerBusy          (BackOffMilliseconds in MessageXml)
    │   ├── ErrorImpersonateUserDenied, ImpersonatedMailboxNotFound (ErrorNonExistentMailbox)
    │   ├── ErrorInvalidServerVersion, ErrorSchemaValidation, ErrorInternalServerError
    │   └── ErrorInvalidOperationFault (an operation m365sim does not serve)
    └── HttpRefusal                  no SOAP at all: 401 with the server's challenges (bad or
                                     missing credentials, Exchange Online's Bearer-only
                                     challenge) or 403 with an empty body (EWS blocked)

Each concrete error is a tiny class whose ``code`` and ``message`` are class attributes
(moto style); an instance may override the message when Exchange's text carries a value.
The message texts are the ones Exchange 2016/2019 send in English.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "EwsError",
    "HttpRefusal",
    "ResponseError",
    "SoapFault",
]


class EwsError(Exception):
    code: ClassVar[str] = "ErrorInternalServerError"
    message: ClassVar[str] = "An internal server error occurred. The operation failed."

    def __init__(self, message: str | None = None) -> None:
        self.detail = message if message is not None else type(self).message
        super().__init__(self.detail)


# -- response messages -------------------------------------------------------------------------


class ResponseError(EwsError):
    """Rendered inside the operation's ``...ResponseMessage`` with ``ResponseClass="Error"``."""


class ErrorItemNotFound(ResponseError):
    code = "ErrorItemNotFound"
    message = "The specified object was not found in the store."


class ErrorFolderNotFound(ResponseError):
    code = "ErrorFolderNotFound"
    message = "The specified folder could not be found in the store."


class ErrorInvalidIdMalformed(ResponseError):
    code = "ErrorInvalidIdMalformed"
    message = "Id is malformed."


class ErrorAccessDenied(ResponseError):
    code = "ErrorAccessDenied"
    message = "Access is denied. Check credentials and try again."


class ErrorNonExistentMailbox(ResponseError):
    code = "ErrorNonExistentMailbox"
    message = "The SMTP address has no mailbox associated with it."


class ErrorMailRecipientNotFound(ResponseError):
    code = "ErrorMailRecipientNotFound"
    message = "The e-mail address cannot be found."


class ErrorInvalidSyncStateData(ResponseError):
    code = "ErrorInvalidSyncStateData"
    message = "Synchronization state data is corrupt or otherwise invalid."


class ErrorIrresolvableConflict(ResponseError):
    code = "ErrorIrresolvableConflict"
    message = (
        "The send or update operation could not be performed because the change key passed "
        "in the request does not match the current change key for the item."
    )


class ErrorSendMeetingInvitationsRequired(ResponseError):
    code = "ErrorSendMeetingInvitationsRequired"
    message = "SendMeetingInvitations attribute is required for calendar items."


class ErrorCalendarEndDateIsEarlierThanStartDate(ResponseError):
    code = "ErrorCalendarEndDateIsEarlierThanStartDate"
    message = "EndDate is earlier than StartDate"


class ErrorInvalidOperation(ResponseError):
    code = "ErrorInvalidOperation"
    message = "The operation isn't valid."


class ErrorInvalidRequest(ResponseError):
    code = "ErrorInvalidRequest"
    message = "The request is invalid."


class ErrorInvalidPropertySet(ResponseError):
    code = "ErrorInvalidPropertySet"
    message = "The property can't be set."


class ErrorInvalidChangeKey(ResponseError):
    code = "ErrorInvalidChangeKey"
    message = "The change key is invalid."


class ErrorCalendarIsNotOrganizer(ResponseError):
    code = "ErrorCalendarIsNotOrganizer"
    message = "The user isn't the organizer of this meeting."


# -- SOAP faults -------------------------------------------------------------------------------


class SoapFault(EwsError):
    """The whole request fails: HTTP 500 and a SOAP ``Fault``."""

    def detail_values(self) -> dict[str, str]:
        return {}


class ErrorServerBusy(SoapFault):
    code = "ErrorServerBusy"
    message = "The server cannot service this request right now. Try again later."

    def __init__(self, back_off_ms: int, message: str | None = None) -> None:
        super().__init__(message)
        self.back_off_ms = back_off_ms

    def detail_values(self) -> dict[str, str]:
        return {"BackOffMilliseconds": str(self.back_off_ms)}


class ErrorImpersonateUserDenied(SoapFault):
    code = "ErrorImpersonateUserDenied"
    message = "The account does not have permission to impersonate the requested user."


class ImpersonatedMailboxNotFound(SoapFault):
    """``ExchangeImpersonation`` naming an address with no mailbox on this server."""

    code = "ErrorNonExistentMailbox"
    message = "The SMTP address has no mailbox associated with it."


class ErrorInvalidServerVersion(SoapFault):
    code = "ErrorInvalidServerVersion"
    message = "The specified server version is invalid."


class ErrorSchemaValidation(SoapFault):
    code = "ErrorSchemaValidation"
    message = "The request failed schema validation."


class ErrorInternalServerError(SoapFault):
    code = "ErrorInternalServerError"
    message = "An internal server error occurred. The operation failed."


class ErrorInvalidOperationFault(SoapFault):
    code = "ErrorInvalidOperation"
    message = "The operation isn't valid."


# -- HTTP refusals -----------------------------------------------------------------------------


class HttpRefusal(EwsError):
    """Answered before any SOAP is read: a status, headers and (usually) an empty body."""

    status: ClassVar[int] = 401

    def __init__(self, message: str | None = None, *, headers: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.headers = headers
