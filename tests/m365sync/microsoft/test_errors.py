"""One place classifies Microsoft's failures; these are the answers people hit."""

from __future__ import annotations

import pytest

from m365sync.microsoft import errors as ms


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind"),
    [
        (
            429,
            {"error": {"code": "ApplicationThrottled", "message": "busy"}},
            {"Retry-After": "7"},
            ms.Throttled,
        ),
        (503, {"error": {"code": "ServiceUnavailable"}}, {}, ms.Transient),
        (504, b"<html>gateway</html>", {}, ms.Transient),
        (
            401,
            {"error": {"code": "InvalidAuthenticationToken", "message": "expired"}},
            {},
            ms.AuthRevoked,
        ),
        (
            403,
            {"error": {"code": "ErrorAccessDenied", "message": "Access to OData is disabled."}},
            {},
            ms.AccessDeniedByPolicy,
        ),
        (
            403,
            {"error": {"code": "ErrorAccessDenied", "message": "Access is denied."}},
            {},
            ms.PermissionMissing,
        ),
        (
            404,
            {
                "error": {
                    "code": "MailboxNotEnabledForRESTAPI",
                    "message": "REST API is not yet supported",
                }
            },
            {},
            ms.MailboxNotEnabled,
        ),
        (403, {"error": {"code": "ErrorQuotaExceeded", "message": "full"}}, {}, ms.QuotaExceeded),
        (410, {"error": {"code": "SyncStateNotFound"}}, {}, ms.SyncStateExpired),
        (400, {"error": {"code": "resyncRequired"}}, {}, ms.SyncStateExpired),
        (404, {"error": {"code": "ErrorInvalidUser"}}, {}, ms.UserNotFound),
        (404, {"error": {"code": "ErrorItemNotFound"}}, {}, ms.ItemNotFound),
        (400, {"error": {"code": "BadRequest", "message": "nope"}}, {}, ms.UnexpectedResponse),
    ],
)
def test_classify_graph_response(status, body, headers, kind):
    error = ms.classify_graph_response(status, body, headers)
    assert type(error) is kind
    assert error.message and error.fix


def test_retry_after_is_read():
    error = ms.classify_graph_response(
        429, b'{"error":{"code":"TooManyRequests"}}', {"retry-after": "12"}
    )
    assert isinstance(error, ms.Throttled) and error.retry_after == 12 and error.retryable


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (7000215, ms.InvalidCredentials),
        (7000222, ms.SecretExpired),
        (700016, ms.AppNotFound),
        (90002, ms.TenantNotFound),
        (65001, ms.ConsentMissing),
        (90094, ms.ConsentMissing),
        (7000112, ms.AppDisabled),
        (700082, ms.AuthRevoked),
        (50173, ms.AuthRevoked),
    ],
)
def test_classify_aad_error(code, kind):
    result = {
        "error": "invalid_client",
        "error_description": f"AADSTS{code}: something\r\nTrace ID: x",
        "error_codes": [code],
    }
    error = ms.classify_aad_error(result)
    assert type(error) is kind
    assert error.code == f"AADSTS{code}"
    assert error.fix


def test_secret_ids_look_like_guids_and_values_do_not():
    assert ms.looks_like_secret_id("5ec2e7a1-0000-4000-8000-000000000001")
    assert not ms.looks_like_secret_id("Zx8Q~demo.service-account.secret-value-0001")
