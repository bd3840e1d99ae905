"""The HTML dashboard: sign-in, Admin (My Organization with its API tokens, Salesforce,
members and mailboxes, sync settings, audit log), the user portal (connections, profile and
time zone) and Activities.

``install_pages(app)`` mounts the routers, the static files (one stylesheet, the favicon,
also answered at ``/favicon.ico``), the JSON API's documentation (``api_docs``), the
product's pages for errors (``problems``) and the security headers; the app factory
``m365sync.web.app.create_app`` calls it (a second call changes nothing).
Calendar Scheduling's pages (``scheduling``: public booking, rep and admin) are mounted by
its own ``install_scheduling``, which the app factory calls too.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from m365sync.settings import get_settings
from m365sync.web.pages import (
    activities,
    admin_organization,
    api_tokens,
    members,
    profile,
    salesforce,
    service_accounts,
    sign_in,
    unresolved,
    user_connections,
)
from m365sync.web.pages.api_docs import install_api_docs
from m365sync.web.pages.problems import install_problem_pages
from m365sync.web.pages.rendering import STATIC_DIR
from m365sync.web.security import SecurityHeadersMiddleware

__all__ = ["install_pages"]

SALESFORCE_SIGN_IN = (
    "https://login.salesforce.com",
    "https://test.salesforce.com",
    "https://*.my.salesforce.com",
)
"""Where "Connect Salesforce" may send the admin (production, sandboxes, My Domains)."""


def install_pages(app: FastAPI) -> None:
    if getattr(app.state, "pages_installed", False):
        return
    app.state.pages_installed = True
    settings = getattr(app.state, "settings", None) or get_settings()
    app.mount("/static/web", StaticFiles(directory=str(STATIC_DIR)), name="web_static")
    for module in (
        sign_in,
        admin_organization,
        api_tokens,
        service_accounts,
        salesforce,
        members,
        user_connections,
        profile,
        activities,
        unresolved,
    ):
        app.include_router(module.router)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        # Browsers ask for /favicon.ico wherever a page doesn't name its icon.
        return FileResponse(
            STATIC_DIR / "favicon.svg",
            media_type="image/svg+xml",
            headers={"cache-control": "public, max-age=86400"},
        )

    install_api_docs(app)
    install_problem_pages(app, settings)
    app.add_middleware(
        SecurityHeadersMiddleware,
        sign_in_origins=(
            settings.authority_host,
            *SALESFORCE_SIGN_IN,
            settings.salesforce_login_url,
        ),
    )
