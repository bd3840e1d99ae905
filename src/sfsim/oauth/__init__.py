"""OAuth 2.0 for the org's connected apps: JWT bearer, client credentials, web server
flow with PKCE, refresh tokens, and the sessions (access tokens) they issue."""
