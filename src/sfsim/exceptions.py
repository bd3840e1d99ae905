"""Errors sfsim answers with, rendered exactly in Salesforce's JSON shapes.

Two families, because Salesforce has two error formats::

    SfError                        root; never rendered itself
    ├── ApiError                   REST API errors: a JSON list
    │                              [{"message", "errorCode", "fields"}]
    │   └── ... one class per errorCode, in ``sfsim.data.exceptions``
    └── OAuthError                 OAuth 2.0 token endpoint errors:
                                   {"error", "error_description"}
        └── ... one class per error, in ``sfsim.oauth.exceptions``

Each concrete error is a tiny class whose ``status``, ``code`` and ``message`` are class
attributes (moto style); an instance may override the message (Salesforce's text often
carries a field name or a value) and name the ``fields`` it concerns.
"""

from __future__ import annotations

from typing import Any, ClassVar


class SfError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "UNKNOWN_EXCEPTION"
    message: ClassVar[str] = "An unexpected error occurred."

    def __init__(
        self,
        message: str | None = None,
        *,
        fields: list[str] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.detail = message if message is not None else type(self).message
        self.fields = list(fields or [])
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})
        super().__init__(self.detail)

    def body(self) -> Any:
        raise NotImplementedError


class ApiError(SfError):
    """A REST API error: HTTP status plus ``[{"message", "errorCode", "fields"}]``."""

    status = 400
    code = "UNKNOWN_EXCEPTION"
    message = "An unexpected error occurred. Please include this ErrorId if you contact support."

    def error_dict(self) -> dict[str, Any]:
        """The entry this error is in a REST error list."""
        entry: dict[str, Any] = {**self.extra, "message": self.detail, "errorCode": self.code}
        if self.fields or self.status == 400:
            entry["fields"] = self.fields
        return entry

    def save_error(self) -> dict[str, Any]:
        """The entry in a SaveResult's ``errors`` (sObject Collections say ``statusCode``).
        Extra details travel too, as Salesforce's error subtypes carry them (a
        ``DuplicateError`` has its ``duplicateResult``)."""
        return {
            **self.extra,
            "statusCode": self.code,
            "message": self.detail,
            "fields": self.fields,
        }

    def body(self) -> list[dict[str, Any]]:
        return [self.error_dict()]


class OAuthError(SfError):
    """An error from ``/services/oauth2/token`` (and the authorize page)."""

    status = 400
    code = "invalid_request"
    message = "invalid request"

    def body(self) -> dict[str, str]:
        return {"error": self.code, "error_description": self.detail}
