"""Salesforce's answers, classified in one place; and the package's place in the layout."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import requests

from m365sync.salesforce import errors as sf_errors
from m365sync.salesforce.errors import (
    ErrorCategory,
    classify_exception,
    classify_oauth_error,
    classify_response,
    classify_save_errors,
)

PACKAGE = Path(__file__).resolve().parents[3] / "src" / "m365sync" / "salesforce"


def every_error_class() -> list[type[sf_errors.SalesforceError]]:
    found: list[type[sf_errors.SalesforceError]] = []
    pending = [sf_errors.SalesforceError]
    while pending:
        kind = pending.pop()
        found.append(kind)
        pending.extend(kind.__subclasses__())
    return found


@pytest.mark.parametrize("kind", every_error_class(), ids=lambda k: k.__name__)
def test_every_error_names_a_fix(kind: type[sf_errors.SalesforceError]) -> None:
    if kind is sf_errors.SalesforceError:
        return
    error = kind()
    assert error.message and error.fix, kind
    assert isinstance(error.category, ErrorCategory)


def test_the_tree_in_the_docstring_lists_every_class() -> None:
    tree = sf_errors.__doc__ or ""
    missing = [k.__name__ for k in every_error_class() if k.__name__ not in tree]
    assert missing == []


@pytest.mark.parametrize(
    ("description", "flow", "kind"),
    [
        ("invalid assertion", "jwt_bearer", sf_errors.CertificateMismatch),
        ("audience is invalid", "jwt_bearer", sf_errors.AudienceInvalid),
        ("user hasn't approved this consumer", "jwt_bearer", sf_errors.AppNotApproved),
        ("authentication failure", "jwt_bearer", sf_errors.LoginFailed),
        ("expired authorization code", "jwt_bearer", sf_errors.ClockSkew),
        ("expired authorization code", "authorization_code", sf_errors.SignInIncomplete),
        (
            "no client credentials user enabled",
            "client_credentials",
            sf_errors.ClientCredentialsOff,
        ),
        ("request not supported on this domain", "client_credentials", sf_errors.MyDomainRequired),
        ("IP restricted or invalid login hours", "jwt_bearer", sf_errors.IpRestricted),
        ("inactive user", "refresh_token", sf_errors.UserInactive),
        ("expired access/refresh token", "refresh_token", sf_errors.ConnectionRevoked),
        ("something new", "refresh_token", sf_errors.ConnectionRevoked),
        ("something new", "jwt_bearer", sf_errors.AuthFailed),
    ],
)
def test_invalid_grant_descriptions(
    description: str, flow: sf_errors.OAuthFlow, kind: type[sf_errors.SalesforceError]
) -> None:
    error = classify_oauth_error(
        {"error": "invalid_grant", "error_description": description}, flow=flow
    )
    assert type(error) is kind
    assert error.code == "invalid_grant"
    assert error.salesforce_message == description


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("invalid_client_id", sf_errors.ConsumerKeyWrong),
        ("invalid_client", sf_errors.ConsumerSecretWrong),
        ("invalid_client_credentials", sf_errors.ConsumerSecretWrong),
        ("invalid_app_access", sf_errors.AppNotApproved),
        ("inactive_user", sf_errors.UserInactive),
        ("inactive_org", sf_errors.OrgInactive),
        ("invalid_scope", sf_errors.ScopeNotAllowed),
        ("rate_limit_exceeded", sf_errors.LoginRateLimited),
        ("unsupported_grant_type", sf_errors.UnexpectedResponse),
    ],
)
def test_oauth_error_codes(code: str, kind: type[sf_errors.SalesforceError]) -> None:
    assert type(classify_oauth_error({"error": code, "error_description": "x"})) is kind


def test_the_consumer_key_fix_says_where_to_copy_it_from() -> None:
    error = classify_oauth_error(
        {"error": "invalid_client_id", "error_description": "client identifier invalid"}
    )
    assert "consumer key is wrong" in (error.fix or "")
    assert "App Manager" in (error.fix or "")


def test_sign_in_service_outages_are_transient() -> None:
    assert isinstance(classify_oauth_error("<html>down</html>", status=503), sf_errors.Transient)


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (401, "INVALID_SESSION_ID", sf_errors.SessionExpired),
        (403, "REQUEST_LIMIT_EXCEEDED", sf_errors.LimitExceeded),
        (400, "UNABLE_TO_LOCK_ROW", sf_errors.Transient),
        (503, "SERVER_UNAVAILABLE", sf_errors.Transient),
        (500, "UNKNOWN_EXCEPTION", sf_errors.Transient),
        (400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", sf_errors.ValidationRuleFailed),
        (400, "DUPLICATES_DETECTED", sf_errors.DuplicateDetected),
        (400, "INVALID_FIELD", sf_errors.FieldMissing),
        (400, "REQUIRED_FIELD_MISSING", sf_errors.RequiredFieldMissing),
        (404, "ENTITY_IS_DELETED", sf_errors.RelatedRecordGone),
        (400, "STORAGE_LIMIT_EXCEEDED", sf_errors.StorageFull),
        (403, "INSUFFICIENT_ACCESS_OR_READONLY", sf_errors.AccessDenied),
        (403, "API_DISABLED_FOR_ORG", sf_errors.AccessDenied),
        (404, "NOT_FOUND", sf_errors.NotFound),
        (400, "MALFORMED_QUERY", sf_errors.UnexpectedResponse),
        (400, "EXCEEDED_ID_LIMIT", sf_errors.TooManyIds),
        (403, "SOMETHING_NEW", sf_errors.AccessDenied),
        (502, "", sf_errors.Transient),
        (400, "SOMETHING_NEW", sf_errors.UnexpectedResponse),
    ],
)
def test_rest_error_codes(status: int, code: str, kind: type[sf_errors.SalesforceError]) -> None:
    body = [{"message": "m", "errorCode": code, "fields": []}] if code else b"<html/>"
    error = classify_response(status, body)
    assert type(error) is kind
    assert error.http_status == status


def test_concurrent_long_running_requests_are_transient_not_the_daily_limit() -> None:
    error = classify_response(
        403,
        [
            {
                "message": "ConcurrentPerOrgLongTxn Limit exceeded.",
                "errorCode": "REQUEST_LIMIT_EXCEEDED",
            }
        ],
    )
    assert type(error) is sf_errors.Transient


def test_several_records_for_one_external_id_need_a_person() -> None:
    error = classify_response(
        300,
        ["/services/data/v59.0/sobjects/Task/00T1", "/services/data/v59.0/sobjects/Task/00T2"],
        sobject="Task",
    )
    assert isinstance(error, sf_errors.DuplicateDetected)
    assert error.category == ErrorCategory.NEEDS_PERSON


def test_unknown_record_refusals_still_name_the_record() -> None:
    error = classify_save_errors(
        [{"statusCode": "ENTITY_IS_LOCKED", "message": "the entity is locked", "fields": []}],
        sobject="Event",
        record="Event M365Sync_Event_Id__c 'abc'",
    )
    assert isinstance(error, sf_errors.RecordRejected)
    assert "Event M365Sync_Event_Id__c 'abc'" in error.message
    assert "ENTITY_IS_LOCKED" in error.message


def test_network_failures_are_transient() -> None:
    assert isinstance(classify_exception(requests.ConnectionError("reset")), sf_errors.Transient)
    assert isinstance(classify_exception(requests.ReadTimeout("slow")), sf_errors.Transient)
    assert isinstance(
        classify_exception(requests.exceptions.SSLError("bad cert")), sf_errors.TlsUntrusted
    )


def test_the_package_imports_only_foundations_and_libraries() -> None:
    allowed = {"m365sync.settings", "m365sync.errors", "m365sync.crypto", "m365sync.metrics"}
    offenders = []
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                ours = name.startswith(("m365sync", "m365sim", "sfsim"))
                inside = name.startswith("m365sync.salesforce") or name in allowed
                if ours and not inside:
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []
