"""Mail-specific Graph errors, with Exchange Online's codes and messages.

The shared ones (``ErrorItemNotFound``, ``ErrorInvalidIdMalformed``, ``SyncStateNotFound``,
``BadRequest``...) live in ``m365sim.graph.exceptions``; these are the ones only the mail
backend raises::

    GraphError
    ├── ErrorInvalidRecipients        sendMail without any recipient
    ├── ErrorInvalidRequestBody       a body property Graph does not accept
    ├── InefficientFilter             $filter + $orderby that Exchange refuses to combine
    ├── ErrorFolderExists             a child folder with the same display name
    └── ErrorMoveCopyFailed           moving a folder into itself, or a message to a non-folder
"""

from __future__ import annotations

from m365sim.exceptions import GraphError


class ErrorInvalidRecipients(GraphError):
    status = 400
    code = "ErrorInvalidRecipients"
    message = (
        "At least one recipient is not valid., "
        "A message can't be sent because it contains no recipients."
    )


class ErrorInvalidRequestBody(GraphError):
    status = 400
    code = "RequestBodyRead"
    message = "The request body could not be read."


class InefficientFilter(GraphError):
    status = 400
    code = "InefficientFilter"
    message = "The restriction or sort order is too complex for this operation."


class ErrorFolderExists(GraphError):
    status = 409
    code = "ErrorFolderExists"
    message = "A folder with the specified name already exists."


class ErrorMoveCopyFailed(GraphError):
    status = 400
    code = "ErrorMoveCopyFailed"
    message = "The move or copy operation failed."
