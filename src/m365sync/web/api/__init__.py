"""The JSON API under ``/api/v1``: organization-scoped routes, API-token authentication,
errors as ``{"error": {"message", "fix"}}`` with their proper status (never a 500 for an
expected error). The OpenAPI schema is published at ``/api/openapi.json``.

One module per capability: ``organizations`` (the organization, domains, members, API
tokens, audit log), ``connections`` (service accounts, user connections),
``salesforce`` (Salesforce as the CRM) and ``unresolved`` (a member's unresolved queue,
Salesforce as the CRM) under ``/api/v1``; ``notifications`` is Microsoft's door (change
notifications, mounted by the app factory outside ``/api/v1``)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from m365sync.connections.errors import DraftIncomplete, RunTestFailed
from m365sync.errors import M365SyncError
from m365sync.web.api.connections import router as connections_router
from m365sync.web.api.organizations import router as organizations_router
from m365sync.web.api.salesforce import router as salesforce_router
from m365sync.web.api.unresolved import router as unresolved_router
from m365sync.web.security import response_headers

API_PREFIX = "/api/v1"


def api_router() -> APIRouter:
    router = APIRouter(prefix=API_PREFIX)
    router.include_router(organizations_router)
    router.include_router(connections_router)
    router.include_router(salesforce_router)
    router.include_router(unresolved_router)
    return router


def api_fix(error: M365SyncError) -> str | None:
    """The error's fix in the API's words: services say what to give in words of no door;
    where a JSON field gives it, name the field."""
    if isinstance(error, RunTestFailed):
        return f'{error.fix} To save it anyway, send the request again with "partial": true.'
    if isinstance(error, DraftIncomplete):
        fields = {
            "client_id": '"client_id"',
            "credential": '"client_secret" (the secret\'s Value) or "certificate_pem"',
            "test_mailbox": '"test_mailbox"',
            "username": '"username"',
            "password": '"password"',
        }
        return f"Send {', '.join(fields[m] for m in error.missing)}. {error.fix}"
    return error.fix


def error_body(error: M365SyncError) -> dict[str, object]:
    body: dict[str, object] = {"message": error.message, "fix": api_fix(error)}
    code = getattr(error, "code", None)
    if isinstance(code, str):
        body["code"] = code
    if isinstance(error, RunTestFailed):
        body["test"] = error.report.as_json()
    return {"error": body}


def install_api(app: FastAPI) -> None:
    app.include_router(api_router())

    @app.exception_handler(M365SyncError)
    async def expected_error(request: Request, exc: M365SyncError) -> JSONResponse:
        if not request.url.path.startswith("/api/"):
            handler = getattr(request.app.state, "page_error_handler", None)
            if handler is not None:
                response: JSONResponse = await handler(request, exc)
                return response
        return JSONResponse(error_body(exc), status_code=exc.status, headers=response_headers(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        if not request.url.path.startswith("/api/"):
            page_handler = getattr(request.app.state, "page_validation_handler", None)
            if page_handler is not None:
                page: JSONResponse = await page_handler(request, exc)
                return page
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body')}: {e.get('msg')}"
            for e in exc.errors()
        )
        return JSONResponse(
            {
                "error": {
                    "message": f"The request is not valid: {problems}",
                    "fix": "Correct the fields named above.",
                }
            },
            status_code=422,
        )


__all__ = ["API_PREFIX", "api_router", "error_body", "install_api"]
