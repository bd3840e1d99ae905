"""Templates, the viewer's time zone, and the route class every dashboard page uses.

``PageRoute`` turns the product's expected errors into pages instead of JSON: no session →
redirect to sign-in; any ``M365SyncError`` → the error page with its status, message and
fix (or just the error box, for the small fetches of ``app.js``). Only dashboard routes
use it, so the JSON API keeps its own error format. ``problem_response`` is that error
page for everything else a browser may meet (an unknown address, a server error); see
``m365sync.web.pages.install_pages``.

Times are shown in the viewer's zone (``viewer_zone``): the one chosen in their profile,
else their browser's (``app.js`` keeps it in the ``m365sync_tz`` cookie), else UTC; always
in one format, the zone named (``m365sync.time_zones.format_when``).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from markupsafe import Markup

from m365sync.auth.microsoft_sign_in import DomainNotVerifiedForSignIn, NotAMember
from m365sync.connections.errors import RunTestFailed
from m365sync.crm.service import file_size_text
from m365sync.errors import M365SyncError
from m365sync.time_zones import (
    format_day,
    format_span,
    format_when,
    is_time_zone,
    zone_or_utc,
)
from m365sync.web.dependencies import NotSignedIn
from m365sync.web.security import response_headers

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
TIME_ZONE_COOKIE = "m365sync_tz"
"""The browser's time zone, as ``app.js`` reads it from the browser."""

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


@dataclass(frozen=True)
class ViewerZone:
    """The zone a page shows times in, and where it came from."""

    name: str
    source: str  # "profile" | "browser" | "none" (no choice, no browser zone: UTC)

    @property
    def label(self) -> str:
        name = self.name.replace("_", " ")
        return {
            "profile": f"{name} (your choice)",
            "browser": f"{name} (your browser's time zone)",
        }.get(self.source, "UTC")


def viewer_zone(request: Request) -> ViewerZone:
    """The profile's zone, else the browser's, else UTC."""
    known: ViewerZone | None = getattr(request.state, "viewer_zone", None)
    if known is not None:
        return known
    chosen = getattr(getattr(request.state, "signed_in", None), "time_zone", None)
    browser = unquote(request.cookies.get(TIME_ZONE_COOKIE, ""))
    if chosen and is_time_zone(chosen):
        zone = ViewerZone(chosen, "profile")
    elif browser and is_time_zone(browser):
        zone = ViewerZone(browser, "browser")
    else:
        zone = ViewerZone("UTC", "none")
    if getattr(request.state, "signed_in", None) is not None:
        request.state.viewer_zone = zone  # known for the rest of this request
    return zone


def _instant(value: datetime | str) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _unbroken(text: str) -> str:
    """A narrow column breaks a time after its date only: "Wed 12 Mar 2025," / "14:05 CET"."""
    return text.replace(" ", "\u00a0").replace(",\u00a0", ", ")


@pass_context
def _when(context: Any, value: datetime | str | None, zone_name: str | None = None) -> str:
    """An instant in the one format, in the viewer's zone (or ``zone_name``), as a
    ``<time>`` element carrying the instant itself."""
    instant = None if value is None or value == "" else _instant(value)
    if instant is None:
        return "—" if not value else str(value)
    zone = zone_or_utc(zone_name or viewer_zone(context["request"]).name)
    iso = instant.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return Markup('<time datetime="{}">{}</time>').format(
        iso, _unbroken(format_when(instant, zone))
    )


@pass_context
def _span(context: Any, start: datetime, end: datetime, zone_name: str | None = None) -> str:
    """A meeting's start and end in the one format: "Wed 12 Mar 2025, 14:00-14:30 CET"."""
    zone = zone_or_utc(zone_name or viewer_zone(context["request"]).name)
    iso = start.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return Markup('<time datetime="{}">{}</time>').format(
        iso, _unbroken(format_span(start, end, zone))
    )


@pass_context
def _day(context: Any, value: date | datetime | str | None, zone_name: str | None = None) -> str:
    """A day in the one format; an instant's day in the viewer's zone (or ``zone_name``:
    "UTC" for a date stored as midnight UTC, such as a secret's expiry)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        parsed = _instant(value)
        if parsed is None:
            return value
        value = parsed
    zone = zone_or_utc(zone_name or viewer_zone(context["request"]).name)
    return format_day(value, zone)


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
templates.env.filters["span"] = _span
templates.env.filters["fix"] = web_fix
templates.env.filters["filesize"] = file_size_text
templates.env.globals["viewer_zone_label"] = lambda request: viewer_zone(request).label


def is_fragment_request(request: Request) -> bool:
    return request.headers.get("x-requested-with") == "fetch"


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("me", getattr(request.state, "signed_in", None))
    context.setdefault("notice", None)
    context.setdefault("error", None)
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


PROBLEM_TITLES = {
    400: "This request can't be used",
    401: "Please sign in",
    403: "Not allowed",
    404: "Page not found",
    405: "This address can't be opened like that",
    409: "That clashes with something",
    413: "That is too large",
    422: "Something needs correcting",
    429: "Please wait a moment",
    503: "The server is busy",
}


def problem_response(request: Request, error: M365SyncError) -> HTMLResponse:
    """An error as the product's page (for a browser), or only its error box (for the small
    fetches of ``app.js``). The admin menu is shown only to a signed-in admin on an admin
    page: a refused user never sees it."""
    if is_fragment_request(request):
        response = render(request, "partials/error.html", status_code=error.status, error=error)
    else:
        me = getattr(request.state, "signed_in", None)
        response = render(
            request,
            "error_page.html",
            status_code=error.status,
            title=PROBLEM_TITLES.get(error.status, "Something went wrong"),
            problem=error,
            status=error.status,
            area="admin"
            if me is not None and me.is_admin and request.url.path.startswith("/admin")
            else "user",
        )
    response.headers.update(response_headers(error))
    return response


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
                return problem_response(request, error)

        return page_handler
