"""Templates, and the route class every dashboard page uses.

``PageRoute`` turns the product's expected errors into pages instead of JSON: no session →
redirect to sign-in; any ``M365SyncError`` → the error page with its status, message and
fix (or just the error box, for the small fetches of ``app.js``). Only dashboard routes
use it, so the JSON API keeps its own error format.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from m365sync.auth.microsoft_sign_in import DomainNotVerifiedForSignIn, NotAMember
from m365sync.connections.errors import RunTestFailed
from m365sync.errors import M365SyncError
from m365sync.web.dependencies import NotSignedIn
from m365sync.web.security import response_headers

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _day(value: datetime | None) -> str:
    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d")


def web_fix(error: Any) -> str:
    """An error's fix in the dashboard's words: services say what to do in words of no door;
    where the dashboard has a control for it, name the control."""
    fix = str(getattr(error, "fix", None) or "")
    if isinstance(error, RunTestFailed):
        fix += ' To save it now, tick "Save anyway with the failing features turned off" and save.'
    elif isinstance(error, DomainNotVerifiedForSignIn):
        fix += " Admins verify domains under Admin → My Organization → Domains."
    elif isinstance(error, NotAMember):
        fix += " Admins add members under Admin → Members and mailboxes."
    return fix


templates.env.filters["when"] = _when
templates.env.filters["day"] = _day
templates.env.filters["fix"] = web_fix


def is_fragment_request(request: Request) -> bool:
    return request.headers.get("x-requested-with") == "fetch"


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("me", getattr(request.state, "signed_in", None))
    context.setdefault("notice", None)
    context.setdefault("error", None)
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


class PageRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except NotSignedIn:
                if request.method == "GET" and not is_fragment_request(request):
                    target = request.url.path + (
                        f"?{request.url.query}" if request.url.query else ""
                    )
                    return redirect(f"/sign-in?next={quote(target)}")
                return redirect("/sign-in")
            except M365SyncError as error:
                if is_fragment_request(request):
                    response = render(
                        request, "partials/error.html", status_code=error.status, error=error
                    )
                else:
                    response = render(
                        request,
                        "error_page.html",
                        status_code=error.status,
                        title={403: "Not allowed", 404: "Not found", 429: "Please wait"}.get(
                            error.status, "Something went wrong"
                        ),
                        error=error,
                        area="admin" if request.url.path.startswith("/admin") else "user",
                    )
                response.headers.update(response_headers(error))
                return response

        return page_handler
