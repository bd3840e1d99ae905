"""OAuth errors with Salesforce's ``error`` codes and ``error_description`` wording."""

from __future__ import annotations

from sfsim.exceptions import OAuthError


class InvalidRequest(OAuthError):
    code = "invalid_request"
    message = "invalid request"


class UnsupportedGrantType(OAuthError):
    code = "unsupported_grant_type"
    message = "grant type not supported"


class InvalidClientId(OAuthError):
    code = "invalid_client_id"
    message = "client identifier invalid"


class InvalidClient(OAuthError):
    code = "invalid_client"
    message = "invalid client credentials"


class InvalidGrant(OAuthError):
    """``error_description`` varies: "authentication failure", "invalid assertion",
    "audience is invalid", "user hasn't approved this consumer", "expired access/refresh
    token", "invalid authorization code", "invalid code verifier", ..."""

    code = "invalid_grant"
    message = "authentication failure"


class RedirectUriMismatch(OAuthError):
    code = "redirect_uri_mismatch"
    message = "redirect_uri must match configuration"


class UnsupportedResponseType(OAuthError):
    code = "unsupported_response_type"
    message = "response type not supported"


class UnsupportedTokenType(OAuthError):
    code = "unsupported_token_type"
    message = "this token type is not supported"


class InvalidToken(OAuthError):
    code = "invalid_token"
    message = "invalid token"


class InvalidAppAccess(OAuthError):
    code = "invalid_app_access"
    message = "user is not admin approved to access this app"
