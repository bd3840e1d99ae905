"""Errors m365sim answers with, rendered exactly in Microsoft's JSON shapes.

Two families, because Microsoft has two error formats::

    SimError                       root; never rendered itself
    ├── AadError                   Entra ID (login.microsoftonline.com) OAuth errors:
    │                              {"error", "error_description": "AADSTSnnnn: ...",
    │                               "error_codes", "timestamp", "trace_id", "correlation_id"}
    │   └── ... one class per AADSTS code, in ``m365sim.identity.exceptions``
    └── GraphError                 Microsoft Graph errors:
                                   {"error": {"code", "message", "innerError": {...}}}
        └── ... one class per Graph error, in ``m365sim.graph.exceptions``

Each concrete error is a tiny class whose ``status``, ``code`` and ``message`` are class
attributes (moto style); an instance may override the message when Microsoft's text
carries a value.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar


class SimError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internalServerError"
    message: ClassVar[str] = "An internal server error occurred."

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None):
        self.detail = message if message is not None else type(self).message
        self.headers = headers or {}
        super().__init__(self.detail)

    def body(self, *, request_id: str, client_request_id: str | None = None) -> dict[str, Any]:
        raise NotImplementedError


class AadError(SimError):
    """An OAuth 2.0 error from the Microsoft identity platform v2.0 endpoints.

    Entra separates the message, trace id, correlation id and timestamp in
    ``error_description`` with ``\\r\\n``; some errors add a ``suberror`` (MSAL surfaces it
    to apps, e.g. ``consent_required``).
    """

    status = 400
    code = "invalid_request"  # the OAuth ``error`` field
    aadsts: ClassVar[int] = 900144
    suberror: ClassVar[str | None] = None
    message = "The request body must contain the following parameter: 'grant_type'."

    def body(self, *, request_id: str, client_request_id: str | None = None) -> dict[str, Any]:
        stamp = f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S}Z"
        correlation_id = client_request_id or str(uuid.uuid4())
        body: dict[str, Any] = {
            "error": self.code,
            "error_description": (
                f"AADSTS{self.aadsts}: {self.detail}\r\nTrace ID: {request_id}\r\n"
                f"Correlation ID: {correlation_id}\r\nTimestamp: {stamp}"
            ),
            "error_codes": [self.aadsts],
            "timestamp": stamp,
            "trace_id": request_id,
            "correlation_id": correlation_id,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.aadsts}",
        }
        if self.suberror:
            body["suberror"] = self.suberror
        return body

    @property
    def redirect_description(self) -> str:
        """The ``error_description`` an authorize redirect carries (no trace details)."""
        return f"AADSTS{self.aadsts}: {self.detail}"


class GraphError(SimError):
    """An error from Microsoft Graph v1.0."""

    status = 500
    code = "generalException"
    message = "General exception while processing."

    def body(self, *, request_id: str, client_request_id: str | None = None) -> dict[str, Any]:
        inner: dict[str, Any] = {
            "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "request-id": request_id,
            "client-request-id": client_request_id or request_id,
        }
        return {"error": {"code": self.code, "message": self.detail, "innerError": inner}}
