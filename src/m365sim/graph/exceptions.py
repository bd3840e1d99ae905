"""Microsoft Graph errors, with Microsoft's codes, statuses and messages.

Backends raise these; ``render_sim_error`` turns them into Graph's JSON
(``{"error": {"code", "message", "innerError"}}``). Add a class per distinct error
Microsoft documents rather than passing ad-hoc codes around.
"""

from __future__ import annotations

from m365sim.exceptions import GraphError


class BadRequest(GraphError):
    status = 400
    code = "BadRequest"
    message = "Bad request."


class InvalidRequest(GraphError):
    status = 400
    code = "invalidRequest"
    message = "Invalid request."


class ErrorInvalidIdMalformed(GraphError):
    status = 400
    code = "ErrorInvalidIdMalformed"
    message = "Id is malformed."


class InvalidAuthenticationToken(GraphError):
    status = 401
    code = "InvalidAuthenticationToken"
    message = "Access token validation failure. Invalid audience."


class ErrorAccessDenied(GraphError):
    status = 403
    code = "ErrorAccessDenied"
    message = "Access is denied. Check credentials and try again."


class AccessDeniedByPolicy(GraphError):
    """The mailbox is outside what an Application Access Policy / RBAC scope allows.

    The text is the one Exchange Online answers today, "[RAOP]" suffix included (quoted in
    many reports of the error, e.g. "ErrorAccessDenied: Access to OData is disabled: [RAOP]
    : Blocked by tenant configured AppOnly AccessPolicy settings.").
    """

    status = 403
    code = "ErrorAccessDenied"
    message = (
        "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly "
        "AccessPolicy settings."
    )


class AuthorizationRequestDenied(GraphError):
    status = 403
    code = "Authorization_RequestDenied"
    message = "Insufficient privileges to complete the operation."


class ErrorItemNotFound(GraphError):
    status = 404
    code = "ErrorItemNotFound"
    message = "The specified object was not found in the store."


class ResourceNotFound(GraphError):
    status = 404
    code = "ResourceNotFound"
    message = "Resource not found for the segment."


class ErrorInvalidUser(GraphError):
    status = 404
    code = "ErrorInvalidUser"
    message = "The requested user is invalid."


class RequestUnsupportedQuery(GraphError):
    """A directory query that needs the advanced query parameters, or that Entra ID does not
    evaluate at all."""

    status = 400
    code = "Request_UnsupportedQuery"
    message = "Unsupported Query."


class CountNotSupported(GraphError):
    """``/$count`` on a directory collection without ``ConsistencyLevel: eventual``."""

    status = 400
    code = "Request_BadRequest"
    message = "$count is not currently supported."


class UserNotFound(GraphError):
    status = 404
    code = "Request_ResourceNotFound"
    message = (
        "Resource does not exist or one of its queried reference-property objects are not present."
    )


class MailboxNotEnabledForRESTAPI(GraphError):
    status = 404
    code = "MailboxNotEnabledForRESTAPI"
    message = "The mailbox is either inactive, soft-deleted, or is hosted on-premise."


class ErrorQuotaExceeded(GraphError):
    status = 403
    code = "ErrorQuotaExceeded"
    message = "The process failed to get the correct properties."


class SyncStateNotFound(GraphError):
    """An expired or unknown delta token: the client must start a full sync again."""

    status = 410
    code = "SyncStateNotFound"
    message = "The sync state generation is not found."


class ApplicationThrottled(GraphError):
    status = 429
    code = "ApplicationThrottled"
    message = "Application is over its MailboxConcurrency limit."


class NotModelled(GraphError):
    """A part of Microsoft Graph (a route, a property, a relation) m365sim does not simulate.

    Graph's own 501 ``NotImplemented`` shape, with a message that says plainly that the
    emulator, not Microsoft, lacks it: neither "not found" nor "does not exist on type",
    which would be false about Graph.
    """

    status = 501
    code = "NotImplemented"
    message = "m365sim does not model this part of Microsoft Graph."


class MethodNotAllowed(GraphError):
    """A method a modelled route does not take (Graph's text for a 405)."""

    status = 405
    code = "Request_BadRequest"
    message = "Specified HTTP method is not allowed for the request target."


class ServiceUnavailable(GraphError):
    status = 503
    code = "ServiceNotAvailable"
    message = "Service is unavailable. Please try again later."


# -- OData query options (raised by m365sim.graph.odata) -----------------------------------


class UnrecognizedQueryOption(GraphError):
    status = 400
    code = "BadRequest"
    message = "Unrecognized query argument specified."


class QueryOptionNotAllowed(GraphError):
    status = 400
    code = "BadRequest"
    message = "The query option is not supported for this request."


class InvalidTopValue(GraphError):
    status = 400
    code = "BadRequest"
    message = "Invalid value for $top query option found."


class TopLimitExceeded(GraphError):
    status = 400
    code = "BadRequest"
    message = "The limit for Top query has been exceeded."


class InvalidFilterClause(GraphError):
    """A ``$filter`` that does not parse."""

    status = 400
    code = "BadRequest"
    message = "Invalid filter clause."


class UnsupportedFilter(GraphError):
    """A ``$filter`` that parses but uses a construct the workload does not evaluate
    (Exchange answers this for lambda operators on recipients, for example)."""

    status = 400
    code = "ErrorInvalidUrlQueryFilter"
    message = "The query filter contains one or more invalid nodes."


class PropertyNotFound(GraphError):
    """``$select``/``$orderby``/``$filter`` naming a property the entity does not have."""

    status = 400
    code = "RequestBroker--ParseUri"
    message = "Could not find a property named on the type."


class DirectoryPropertyNotFound(GraphError):
    """The Entra ID (directory) flavour of ``PropertyNotFound``."""

    status = 400
    code = "BadRequest"
    message = "Parsing OData Select and Expand failed: Could not find a property."
