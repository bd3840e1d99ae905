"""The only code that talks to Salesforce: OAuth, the REST client, limits, error classification.

A remote-system package (like ``m365sync.microsoft``): it imports settings, errors and
third-party libraries only, never a capability, a door or an emulator. The CRM target
adapter, the drain writer and the connection capability build on this public surface::

    from m365sync.salesforce import ApiBudget, JwtBearerFlow, SalesforceClient

    flow = JwtBearerFlow(settings, consumer_key=key, username=user, signing_key=signing_key)
    budget = ApiBudget(settings.salesforce_api_share)
    with SalesforceClient(settings, flow, budget=budget) as client:
        results = client.upsert("EmailMessage", "M365Sync_Message_Id__c", records)

See ``docs/salesforce.md`` for what the product needs from a Salesforce org.
"""

from m365sync.salesforce.auth import (
    DEFAULT_SCOPES,
    AuthorizationRequest,
    ClientCredentialsFlow,
    ConsumerSecret,
    JwtBearerFlow,
    JwtSigningKey,
    RefreshTokenFlow,
    SalesforceToken,
    TokenSource,
    WebServerFlow,
    generate_signing_key,
    jwt_audience,
    normalize_login_url,
    revoke,
)
from m365sync.salesforce.client import (
    API_VERSION,
    COLLECTION_SIZE,
    COMPOSITE_COLLECTIONS,
    COMPOSITE_SIZE,
    DeletedRecord,
    DeletedRecords,
    RecordResult,
    SalesforceClient,
    Subrequest,
    SubrequestResult,
    UpdatedRecords,
    in_clause_queries,
    parse_salesforce_datetime,
    quote_soql,
)
from m365sync.salesforce.errors import ErrorCategory, SalesforceError
from m365sync.salesforce.limits import ApiBudget, ApiUsage, BudgetDecision

__all__ = [
    "API_VERSION",
    "COLLECTION_SIZE",
    "COMPOSITE_COLLECTIONS",
    "COMPOSITE_SIZE",
    "DEFAULT_SCOPES",
    "ApiBudget",
    "ApiUsage",
    "AuthorizationRequest",
    "BudgetDecision",
    "ClientCredentialsFlow",
    "ConsumerSecret",
    "DeletedRecord",
    "DeletedRecords",
    "ErrorCategory",
    "JwtBearerFlow",
    "JwtSigningKey",
    "RecordResult",
    "RefreshTokenFlow",
    "SalesforceClient",
    "SalesforceError",
    "SalesforceToken",
    "Subrequest",
    "SubrequestResult",
    "TokenSource",
    "UpdatedRecords",
    "WebServerFlow",
    "generate_signing_key",
    "in_clause_queries",
    "jwt_audience",
    "normalize_login_url",
    "parse_salesforce_datetime",
    "quote_soql",
    "revoke",
]
