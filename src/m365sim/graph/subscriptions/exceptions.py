"""Errors of ``/subscriptions``, with Microsoft Graph's codes and texts.

GraphError
├── SubscriptionInvalidRequest    400 InvalidRequest (bad body, failed validation handshake)
├── ExpirationTooFar              400 ExtensionError "Subscription expiration can only be ..."
├── SubscriptionNotFound          404 ResourceNotFound
└── ExtensionError                any status: a mailbox error while creating or renewing,
                                  wrapped as "Operation: Create; Exception: [Status Code: ...]"
"""

from __future__ import annotations

from http import HTTPStatus

from m365sim.exceptions import GraphError

VALIDATION_FAILED = (
    "Subscription validation request failed. "
    "Notification endpoint must respond with 200 OK to validation request."
)
VALIDATION_MISMATCH = (
    "Subscription validation request failed. "
    "Response must exactly match validationToken query parameter."
)


class SubscriptionInvalidRequest(GraphError):
    status = 400
    code = "InvalidRequest"
    message = "Invalid request."


class ExpirationTooFar(GraphError):
    status = 400
    code = "ExtensionError"
    message = "Subscription expiration can only be 10080 minutes in the future."


class SubscriptionNotFound(GraphError):
    status = 404
    code = "ResourceNotFound"
    message = "The object was not found."


class ExtensionError(GraphError):
    """A mailbox-side failure surfaced through the subscription service."""

    code = "ExtensionError"

    def __init__(self, operation: str, inner: GraphError) -> None:
        reason = HTTPStatus(inner.status).phrase.replace(" ", "")
        super().__init__(
            f"Operation: {operation}; Exception: [Status Code: {reason}; Reason: {inner.detail}]"
        )
        self.status = inner.status  # type: ignore[misc]
