"""Entra ID (AADSTS) errors, one tiny class per code.

The tree, under ``m365sim.exceptions.AadError``::

    EntraError                    Entra's exact body: parts of error_description split by "\\r\\n"
    ├── invalid_request (400)     MissingParameter (900144), UnsupportedGrantType (70003),
    │                             TenantNotFound (90002, error "invalid_tenant"),
    │                             RedirectUriMismatch (50011), SingleTenantAppOnCommon (50194),
    │                             AccountNotInTenant (50020)
    ├── invalid_client (401)      InvalidClientSecret (7000215), ClientSecretExpired (7000222),
    │                             CredentialRequired (7000218), AssertionKeyNotFound (700027),
    │                             AssertionSignatureInvalid (700027), AssertionInvalid (50027),
    │                             AssertionOutOfTime (700024), ServicePrincipalMissing (7000229)
    ├── unauthorized_client (400) AppNotFound (700016), AppDisabled (7000112)
    ├── invalid_scope (400)       InvalidScope (70011), ClientCredentialsScope (1002012),
    │                             ScopeNotOnResource (650053), ResourceNotFound (500011)
    └── invalid_grant (400)       ConsentRequired (65001, suberror consent_required),
                                  AdminConsentRequired (90094), InvalidCredentials (50126),
                                  UserNotFound (50034), UserDisabled (50057),
                                  RefreshTokenExpired (700082), GrantRevoked (50173),
                                  CodeExpired (70008), CodeRedeemed (54005),
                                  PkceMismatch (501481), ReplyAddressMismatch (500112),
                                  GrantNotForClient (70000)

Messages follow Microsoft's wording; where Microsoft fills in a value (an app id, a tenant)
the raising code passes the finished sentence.
"""

from __future__ import annotations

from m365sim.exceptions import AadError


class EntraError(AadError):
    """Base of the identity endpoints' errors (the rendering lives in ``AadError``)."""


# -- invalid_request ------------------------------------------------------------------------
class MissingParameter(EntraError):
    status = 400
    code = "invalid_request"
    aadsts = 900144
    message = "The request body must contain the following parameter: 'grant_type'."


class UnsupportedGrantType(EntraError):
    status = 400
    code = "unsupported_grant_type"
    aadsts = 70003
    message = "The app requested an unsupported grant type."


class UnsupportedResponseType(EntraError):
    status = 400
    code = "unsupported_response_type"
    aadsts = 900144
    message = (
        "The provided value for the input parameter 'response_type' is not allowed for this "
        "request. Expected value: 'code'."
    )


class TenantNotFound(EntraError):
    status = 400
    code = "invalid_tenant"
    aadsts = 90002
    message = (
        "Tenant not found. Check to make sure you have the correct tenant ID and are signing "
        "into the correct cloud. Check with your subscription administrator, this may happen "
        "if there are no active subscriptions for the tenant."
    )


class RedirectUriMismatch(EntraError):
    status = 400
    code = "invalid_request"
    aadsts = 50011
    message = (
        "The redirect URI specified in the request does not match the redirect URIs configured "
        "for the application."
    )


class SingleTenantAppOnCommon(EntraError):
    status = 400
    code = "invalid_request"
    aadsts = 50194
    message = "The application is not configured as a multi-tenant application."


class AccountNotInTenant(EntraError):
    status = 400
    code = "invalid_request"
    aadsts = 50020
    message = "The user account does not exist in this tenant and cannot access the application."


class LoginRequired(EntraError):
    status = 400
    code = "login_required"
    aadsts = 50058
    message = "A silent sign-in request was sent but no user is signed in."


class InteractionRequired(EntraError):
    status = 400
    code = "interaction_required"
    aadsts = 16000
    message = (
        "Multiple user identities are available for the current request; select an account "
        "interactively."
    )


class UserDeclinedConsent(EntraError):
    status = 400
    code = "access_denied"
    aadsts = 65004
    message = "User declined to consent to access the app."


# -- invalid_client -------------------------------------------------------------------------
class InvalidClientSecret(EntraError):
    status = 401
    code = "invalid_client"
    aadsts = 7000215
    message = (
        "Invalid client secret provided. Ensure the secret being sent in the request is the "
        "client secret value, not the client secret ID."
    )


class ClientSecretExpired(EntraError):
    status = 401
    code = "invalid_client"
    aadsts = 7000222
    message = "The provided client secret keys are expired."


class CredentialRequired(EntraError):
    status = 401
    code = "invalid_client"
    aadsts = 7000218
    message = (
        "The request body must contain the following parameter: 'client_assertion' or "
        "'client_secret'."
    )


class AssertionKeyNotFound(EntraError):
    status = 401
    code = "invalid_client"
    aadsts = 700027
    message = (
        "The certificate with identifier used to sign the client assertion is not registered on "
        "application."
    )


class AssertionSignatureInvalid(EntraError):
    status = 401
    code = "invalid_client"
    aadsts = 700027
    message = "Client assertion failed signature validation."


class AssertionInvalid(EntraError):
    status = 401
    code = "invalid_client"
    aadsts = 50027
    message = "JWT token is invalid or malformed."


class AssertionOutOfTime(EntraError):
    status = 401
    code = "invalid_client"
    aadsts = 700024
    message = "Client assertion is not within its valid time range."


class ServicePrincipalMissing(EntraError):
    """An app registered without a service principal (``POST /applications`` alone), or one
    whose service principal has not reached the token service yet."""

    status = 401
    code = "invalid_client"
    aadsts = 7000229
    message = "The client application is missing service principal in the tenant."


# -- unauthorized_client --------------------------------------------------------------------
class AppNotFound(EntraError):
    status = 400
    code = "unauthorized_client"
    aadsts = 700016
    message = "Application was not found in the directory."


class AppDisabled(EntraError):
    status = 400
    code = "unauthorized_client"
    aadsts = 7000112
    message = "Application is disabled."


# -- invalid_scope --------------------------------------------------------------------------
class InvalidScope(EntraError):
    status = 400
    code = "invalid_scope"
    aadsts = 70011
    message = (
        "The provided request must include a 'scope' input parameter. The provided value for the "
        "input parameter 'scope' is not valid."
    )


class ClientCredentialsScope(EntraError):
    status = 400
    code = "invalid_scope"
    aadsts = 1002012
    message = (
        "Client credential flows must have a scope value with /.default suffixed to the resource "
        "identifier (application ID URI)."
    )


class ScopeNotOnResource(EntraError):
    status = 400
    code = "invalid_client"
    aadsts = 650053
    message = "The application asked for a scope that doesn't exist on the resource."


class ResourceNotFound(EntraError):
    status = 400
    code = "invalid_resource"
    aadsts = 500011
    message = "The resource principal was not found in the tenant."


# -- invalid_grant --------------------------------------------------------------------------
class ConsentRequired(EntraError):
    status = 400
    code = "invalid_grant"
    aadsts = 65001
    suberror = "consent_required"
    message = (
        "The user or administrator has not consented to use the application. Send an interactive "
        "authorization request for this user and resource."
    )


class AdminConsentRequired(EntraError):
    status = 400
    code = "invalid_grant"
    aadsts = 90094
    suberror = "consent_required"
    message = "The grant requires admin permission."


class InvalidCredentials(EntraError):
    status = 400
    code = "invalid_grant"
    aadsts = 50126
    message = "Error validating credentials due to invalid username or password."


class UserNotFound(EntraError):
    status = 400
    code = "invalid_grant"
    aadsts = 50034
    message = (
        "The user account does not exist in the directory. To sign into this application, the "
        "account must be added to the directory."
    )


class UserDisabled(EntraError):
    status = 400
    code = "invalid_grant"
    aadsts = 50057
    message = "The user account is disabled."


class RefreshTokenExpired(EntraError):
    status = 400
    code = "invalid_grant"
    aadsts = 700082
    message = "The refresh token has expired due to inactivity."


class GrantRevoked(EntraError):
    status = 400
    code = "invalid_grant"
    aadsts = 50173
    message = (
        "The provided grant has expired due to it being revoked, a fresh auth token is needed."
    )


class CodeExpired(EntraError):
    status = 400
    code = "invalid_grant"
    aadsts = 70008
    message = (
        "The provided authorization code or refresh token has expired due to inactivity. "
        "Send a new interactive authorization request for this user and resource."
    )


class CodeRedeemed(EntraError):
    status = 400
    code = "invalid_grant"
    aadsts = 54005
    message = (
        "OAuth2 Authorization code was already redeemed, please retry with a new valid code or "
        "use an existing refresh token."
    )


class PkceMismatch(EntraError):
    status = 400
    code = "invalid_grant"
    aadsts = 501481
    message = (
        "The Code_Verifier does not match the code_challenge supplied in the authorization request."
    )


class ReplyAddressMismatch(EntraError):
    status = 400
    code = "invalid_grant"
    aadsts = 500112
    message = (
        "The reply address does not match the reply address provided when requesting the "
        "authorization code."
    )


class GrantNotForClient(EntraError):
    status = 400
    code = "invalid_grant"
    aadsts = 70000
    message = "Provided grant is invalid or malformed."
