"""The only code that talks to Microsoft: MSAL auth, the Graph client, error classification, EWS."""
