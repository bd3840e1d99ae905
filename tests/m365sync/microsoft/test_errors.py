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
            {
                "error": {
                    "code": "ErrorAccessDenied",
                    "message": "Access to OData is disabled: [RAOP] : Blocked by tenant "
                    "configured AppOnly AccessPolicy settings.",
                }
            },
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


UNKNOWN_TENANT = (
    b'{"error":"invalid_tenant","error_description":"AADSTS90002: Tenant \'x\' not found.'
    b'\\r\\nTrace ID: 1","error_codes":[90002]}'
)
DISCOVERY_DOCUMENT = b'{"issuer":"https://login.example/t/v2.0","token_endpoint":"https://t"}'


@pytest.mark.parametrize(
    ("status", "body", "headers", "discovery", "kind"),
    [
        (400, UNKNOWN_TENANT, {}, True, ms.TenantNotFound),
        (
            429,
            b'{"error":{"code":"ApplicationThrottled"}}',
            {"Retry-After": "7"},
            True,
            ms.Throttled,
        ),
        (429, b"", {}, False, ms.Throttled),
        (503, b"<html>busy</html>", {"Retry-After": "3"}, True, ms.Throttled),
        (500, b'{"error":"server_error"}', {}, True, ms.Transient),
        (504, b"", {}, False, ms.Transient),
        (200, DISCOVERY_DOCUMENT[:30], {}, True, ms.Transient),  # cut short
        (200, b'{"issuer":"https://login.example/t/v2.0"}', {}, True, ms.Transient),
        (200, b"<html>sign in to the proxy</html>", {}, False, ms.Transient),
        (400, b'{"error":{"code":"BadRequest","message":"?"}}', {}, True, ms.UnexpectedResponse),
        (404, b"<html>not found</html>", {}, True, ms.UnexpectedResponse),
        (200, DISCOVERY_DOCUMENT, {}, True, type(None)),
        (401, b'{"error":"invalid_client","error_codes":[7000215]}', {}, False, type(None)),
    ],
)
def test_classify_entra_response(status, body, headers, discovery, kind):
    error = ms.classify_entra_response(status, body, headers, discovery=discovery)
    assert type(error) is kind
    if error is not None:
        assert error.message and error.fix
        if error.retryable:
            assert error.message.startswith("Microsoft unavailable, retrying")
        assert (type(error) is ms.TenantNotFound) == ("no tenant" in error.message.lower())


def test_entra_retry_after_is_kept():
    error = ms.classify_entra_response(429, b"", {"retry-after": "30"})
    assert isinstance(error, ms.Throttled) and error.retry_after == 30
    assert "30 seconds" in error.message
