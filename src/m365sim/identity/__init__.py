"""Microsoft Entra ID (identity platform v2.0): discovery, tokens, sign-in and consent pages."""
