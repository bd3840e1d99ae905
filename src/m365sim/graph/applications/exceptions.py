"""App-management Graph errors (the shared ones live in ``m365sim.graph.exceptions``).

These are Entra's directory errors as Microsoft Graph relays them::

    GraphError
    ├── InsufficientPrivileges         403 Authorization_RequestDenied (missing permission,
    │                                      directory role or ownership; addKey without proof)
    ├── ProofInvalid                   401 Authentication_MissingOrMalformed (addKey/removeKey
    │                                      proof that does not verify)
    ├── DirectoryObjectNotFound        404 Request_ResourceNotFound
    ├── InvalidPropertyValue           400 Request_BadRequest "Invalid value specified for ..."
    ├── DirectoryBadRequest            400 Request_BadRequest (other refusals)
    ├── PermissionAlreadyAssigned      400 Request_BadRequest (duplicate appRoleAssignment)
    ├── PermissionNotFoundOnResource   400 Request_BadRequest (appRoleId not on the resource)
    └── ObjectConflict                 409 Request_MultipleObjectsWithSameKeyValue (second
                                           service principal for an app, duplicate grant)
"""

from __future__ import annotations

from m365sim.exceptions import GraphError

__all__ = [
    "DirectoryBadRequest",
    "DirectoryObjectNotFound",
    "InsufficientPrivileges",
    "InvalidPropertyValue",
    "ObjectConflict",
    "PermissionAlreadyAssigned",
    "PermissionNotFoundOnResource",
    "ProofInvalid",
]


class InsufficientPrivileges(GraphError):
    status = 403
    code = "Authorization_RequestDenied"
    message = "Insufficient privileges to complete the operation."


class ProofInvalid(GraphError):
    status = 401
    code = "Authentication_MissingOrMalformed"
    message = "Access Token missing or malformed."


class DirectoryObjectNotFound(GraphError):
    status = 404
    code = "Request_ResourceNotFound"
    message = (
        "Resource does not exist or one of its queried reference-property objects are not present."
    )

    @classmethod
    def named(cls, key: str) -> DirectoryObjectNotFound:
        return cls(
            f"Resource '{key}' does not exist or one of its queried reference-property objects "
            "are not present."
        )


class InvalidPropertyValue(GraphError):
    status = 400
    code = "Request_BadRequest"
    message = "Invalid value specified for property."

    @classmethod
    def of(cls, prop: str, resource: str, why: str = "") -> InvalidPropertyValue:
        text = f"Invalid value specified for property '{prop}' of resource '{resource}'."
        return cls(f"{text} {why}" if why else text)


class DirectoryBadRequest(GraphError):
    status = 400
    code = "Request_BadRequest"
    message = "One or more properties are invalid."


class PermissionAlreadyAssigned(GraphError):
    status = 400
    code = "Request_BadRequest"
    message = "Permission being assigned already exists on the object."


class PermissionNotFoundOnResource(GraphError):
    status = 400
    code = "Request_BadRequest"
    message = "Permission being assigned was not found on application."


class ObjectConflict(GraphError):
    status = 409
    code = "Request_MultipleObjectsWithSameKeyValue"
    message = "Another object with the same value for property already exists."
