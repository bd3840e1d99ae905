"""The org's records and the rules Salesforce applies to them."""
