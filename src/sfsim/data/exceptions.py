"""REST API errors, with Salesforce's error codes, statuses and wording.

Backends raise these; ``render_sf_error`` turns them into ``[{"message", "errorCode",
"fields"}]``. Messages that Salesforce fills with a value take it in the constructor.
"""

from __future__ import annotations

from sfsim.exceptions import ApiError


class NotFound(ApiError):
    status = 404
    code = "NOT_FOUND"
    message = "The requested resource does not exist"


class EntityIsDeleted(ApiError):
    status = 404
    code = "ENTITY_IS_DELETED"
    message = "entity is deleted"


class MethodNotAllowed(ApiError):
    status = 405
    code = "METHOD_NOT_ALLOWED"
    message = "HTTP Method not allowed."


class InvalidSessionId(ApiError):
    status = 401
    code = "INVALID_SESSION_ID"
    message = "Session expired or invalid"


class RequestLimitExceeded(ApiError):
    status = 403
    code = "REQUEST_LIMIT_EXCEEDED"
    message = "TotalRequests Limit exceeded."


class UnableToLockRow(ApiError):
    status = 400
    code = "UNABLE_TO_LOCK_ROW"
    message = "unable to obtain exclusive access to this record"


class ServerUnavailable(ApiError):
    status = 503
    code = "SERVER_UNAVAILABLE"
    message = "Server temporarily unavailable. Please try again later."


class UnknownException(ApiError):
    status = 500
    code = "UNKNOWN_EXCEPTION"
    message = (
        "An unexpected error occurred. Please include this ErrorId if you contact support: "
        "1234567890-12345 (-1234567890)"
    )


class MalformedQuery(ApiError):
    code = "MALFORMED_QUERY"
    message = "unexpected token"


class InvalidField(ApiError):
    code = "INVALID_FIELD"
    message = "No such column on entity"


class InvalidType(ApiError):
    code = "INVALID_TYPE"
    message = "sObject type is not supported."


class InvalidQueryLocator(ApiError):
    code = "INVALID_QUERY_LOCATOR"
    message = "invalid query locator"


class InvalidQueryFilterOperator(ApiError):
    code = "INVALID_QUERY_FILTER_OPERATOR"
    message = "invalid operator"


class InvalidFieldForInsertUpdate(ApiError):
    code = "INVALID_FIELD_FOR_INSERT_UPDATE"
    message = "Unable to create/update fields."


class RequiredFieldMissing(ApiError):
    code = "REQUIRED_FIELD_MISSING"
    message = "Required fields are missing"


class StringTooLong(ApiError):
    code = "STRING_TOO_LONG"
    message = "data value too large"


class InvalidRestrictedPicklist(ApiError):
    code = "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    message = "bad value for restricted picklist field"


class JsonParserError(ApiError):
    code = "JSON_PARSER_ERROR"
    message = "The request body is not valid JSON."


class MalformedId(ApiError):
    code = "MALFORMED_ID"
    message = "malformed id"


class InvalidCrossReferenceKey(ApiError):
    code = "INVALID_CROSS_REFERENCE_KEY"
    message = "invalid cross reference id"


class InvalidEmailAddress(ApiError):
    code = "INVALID_EMAIL_ADDRESS"
    message = "invalid email address"


class InactiveOwnerOrUser(ApiError):
    code = "INACTIVE_OWNER_OR_USER"
    message = "owner or user is inactive."


class DuplicateValue(ApiError):
    code = "DUPLICATE_VALUE"
    message = "duplicate value found"


class DuplicateExternalId(ApiError):
    status = 300
    code = "DUPLICATE_EXTERNAL_ID"
    message = "more than one record found for external id field"


class DuplicatesDetected(ApiError):
    code = "DUPLICATES_DETECTED"
    message = "You're creating a duplicate record. We recommend you use an existing record instead."


class FieldCustomValidationException(ApiError):
    code = "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    message = "Validation failed."


class InsufficientAccessOrReadonly(ApiError):
    code = "INSUFFICIENT_ACCESS_OR_READONLY"
    message = "insufficient access rights on object id"


class FieldIntegrityException(ApiError):
    code = "FIELD_INTEGRITY_EXCEPTION"
    message = "field integrity exception"


class CannotUpdateConvertedLead(ApiError):
    code = "CANNOT_UPDATE_CONVERTED_LEAD"
    message = "cannot reference converted lead"


class StorageLimitExceeded(ApiError):
    code = "STORAGE_LIMIT_EXCEEDED"
    message = "storage limit exceeded"


class InvalidReplicationDate(ApiError):
    code = "INVALID_REPLICATION_DATE"
    message = "startDate must chronologically precede endDate"


class InvalidDateFormat(ApiError):
    code = "INVALID_DATE_FORMAT"
    message = "invalid date format"


class InvalidBatchSize(ApiError):
    code = "INVALID_BATCH_SIZE"
    message = "invalid batch size"


class ExceededIdLimit(ApiError):
    code = "EXCEEDED_ID_LIMIT"
    message = "record limit reached. cannot submit more than 200 records into this call"


class InvalidInput(ApiError):
    code = "INVALID_INPUT"
    message = "invalid input"


class AllOrNoneRolledBack(ApiError):
    code = "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    message = (
        "Record rolled back because not all records were valid and the request was using "
        "AllOrNone header"
    )


class ProcessingHalted(ApiError):
    code = "PROCESSING_HALTED"
    message = (
        "The transaction was rolled back since another operation in the same transaction failed."
    )


class InvalidIdField(ApiError):
    code = "INVALID_ID_FIELD"
    message = "invalid record id"


class EntityIsLocked(ApiError):
    code = "ENTITY_IS_LOCKED"
    message = "the entity is locked for editing"


class MissingArgument(ApiError):
    code = "MISSING_ARGUMENT"
    message = "missing argument"
