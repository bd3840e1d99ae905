"""The web: the FastAPI app, the admin dashboard and user portal, the JSON API, webhooks."""
