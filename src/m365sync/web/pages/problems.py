"""What a browser meets when a request goes wrong outside a page's own handling: the product's
page, never raw JSON or text, for an unknown address (404), a method an address doesn't take
(405), an address missing what it needs (422), an expected error of a route that is not a
``PageRoute`` (the scheduling pages), and a server error (500, with a reference to quote).

Under ``/api/`` (and Microsoft's ``/webhooks/``), or for a caller that asks for JSON only,
the answer keeps the JSON API's shape, ``{"error": {"message", "fix"}}``.

``install_problem_pages(app)`` installs the handlers; ``m365sync.web.pages.install_pages``
calls it.
"""

from __future__ import annotations

import logging
import secrets
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from m365sync.auth.service import resolve_session
from m365sync.errors import M365SyncError, NotFound
from m365sync.settings import Settings
from m365sync.web.dependencies import NotSignedIn, database_of, session_cookie_name
from m365sync.web.pages.rendering import (
    is_fragment_request,
    problem_response,
    redirect,
)
from m365sync.web.security import response_headers, security_headers

__all__ = ["install_problem_pages", "wants_json"]

log = logging.getLogger(__name__)


class MethodNotAllowed(M365SyncError):
    status = 405


class AddressIncomplete(M365SyncError):
    status = 422


class ServerError(M365SyncError):
    status = 500


def wants_json(request: Request) -> bool:
    """The JSON API's callers (and Microsoft's webhooks), or a caller that asks for JSON and
    not for a page."""
    if request.url.path.startswith(("/api/", "/webhooks/")):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _json(error: M365SyncError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": error.message, "fix": error.fix}},
        status_code=error.status,
        headers={**response_headers(error), **(headers or {})},
    )


def _recognise(request: Request) -> None:
    """Who is asking, so the page shows their menus (a route that never ran its sign-in
    check: an unknown address). Only the page's look depends on it."""
    if getattr(request.state, "signed_in", None) is not None:
        return
    try:
        with database_of(request).session() as db:
            signed_in = resolve_session(db, request.cookies.get(session_cookie_name(request)))
    except SQLAlchemyError:  # the page is shown without menus
        return
    if signed_in is not None:
        request.state.signed_in = signed_in


def _http_problem(request: Request, exc: StarletteHTTPException) -> M365SyncError:
    if exc.status_code == 404:
        if wants_json(request):
            return NotFound(
                f"There is nothing at {request.url.path}.",
                fix="Check the address: the API's routes are listed at /api/docs.",
            )
        return NotFound(
            "There is no page at this address.",
            fix="Check the address for a typo, or start again from your start page.",
        )
    if exc.status_code == 405:
        return MethodNotAllowed(
            "This address can't be opened that way.",
            fix="Go back and use the page's own buttons and links.",
        )
    problem_class = type("HttpProblem", (M365SyncError,), {"status": exc.status_code})
    problem: M365SyncError = problem_class(
        str(exc.detail) if isinstance(exc.detail, str) else "The request could not be served.",
        fix="Go back and try again.",
    )
    return problem


async def _page(request: Request, problem: M365SyncError) -> Response:
    await run_in_threadpool(_recognise, request)
    return problem_response(request, problem)


def install_problem_pages(app: FastAPI, settings: Settings) -> None:
    headers_of_last_resort = {
        name.decode(): value.decode()
        for name, value in security_headers(sign_in_origins=(settings.authority_host,))
    }

    async def expected_error(request: Request, exc: M365SyncError) -> Response:
        """An expected error of a route outside ``/api/`` that is not a ``PageRoute``: the
        JSON API's handler hands it here (``app.state.page_error_handler``)."""
        if isinstance(exc, NotSignedIn):
            if request.method == "GET" and not is_fragment_request(request):
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return redirect(f"/sign-in?next={quote(target)}")
            return redirect("/sign-in")
        return problem_response(request, exc)

    app.state.page_error_handler = expected_error

    @app.exception_handler(StarletteHTTPException)
    async def http_problem(request: Request, exc: StarletteHTTPException) -> Response:
        problem = _http_problem(request, exc)
        if wants_json(request):
            return _json(problem, dict(exc.headers or {}))
        response = await _page(request, problem)
        response.headers.update(exc.headers or {})
        return response

    async def incomplete_address(request: Request, exc: RequestValidationError) -> Response:
        """A page's address or form missing what it needs (the JSON API answers its own)."""
        problem = AddressIncomplete(
            "This address is missing something the page needs, or has it in a form it can't use.",
            fix="Go back and use the page's own links and buttons.",
        )
        return await _page(request, problem)

    app.state.page_validation_handler = incomplete_address

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        # Answered outside the middleware stack: this response carries its own headers.
        reference = secrets.token_hex(4)
        log.error(
            "Unexpected error on %s %s (reference %s): %r",
            request.method,
            request.url.path,
            reference,
            exc,
        )
        problem = ServerError(
            "Something went wrong on our side: this request was not finished.",
            fix=(
                "Try again in a moment. If it keeps happening, tell whoever runs this server "
                f"and quote reference {reference}: the server's log has the details."
            ),
        )
        response: Response
        if wants_json(request):
            response = _json(problem)
        else:
            try:
                response = problem_response(request, problem)
            except Exception:  # the page itself can't be drawn: a plain one, still no raw text
                response = HTMLResponse(_PLAIN_SERVER_ERROR.format(reference=reference), 500)
        response.headers.update(headers_of_last_resort)
        return response


_PLAIN_SERVER_ERROR = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Something went wrong · m365sync</title>
<link rel="stylesheet" href="/static/web/app.css"></head>
<body class="app"><main id="main" class="problem-page"><p class="status-code">500</p>
<h1>Something went wrong</h1><div class="error-box" role="alert">
<p class="error-message">Something went wrong on our side: this request was not finished.</p>
<p class="error-fix"><strong>How to fix it:</strong> Try again in a moment. If it keeps happening,
tell whoever runs this server and quote reference {reference}.</p></div>
<p><a class="button primary" href="/">Go to your start page</a></p></main></body></html>"""
