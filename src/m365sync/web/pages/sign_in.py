"""Sign-in (password, or Microsoft), the Microsoft callback, sign-out, and the start page.

Forms shown before anyone is signed in are CSRF-protected with a double-submit cookie
(``m365sync_sign_in_csrf``): a cross-site form cannot read it, so it cannot sign a victim's
browser in to the attacker's account. Both sign-in forms are rate limited per visitor
(``web.security``; 429 with the time to wait).
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse

from m365sync.auth.microsoft_sign_in import begin_microsoft_sign_in, complete_microsoft_sign_in
from m365sync.auth.service import (
    SESSION_IDLE_LIFETIME,
    NewSession,
    SignInRefused,
    csrf_token_matches,
    end_session,
    resolve_session,
    sign_in_with_password,
)
from m365sync.web.dependencies import (
    DbSession,
    MemberForm,
    SignedInMember,
    cookie_is_secure,
    session_cookie_name,
    settings_of,
)
from m365sync.web.pages.rendering import PageRoute, redirect, render
from m365sync.web.security import rate_limited

router = APIRouter(route_class=PageRoute)
sign_in_attempt = [Depends(rate_limited("sign_ins"))]

SIGN_IN_CSRF_COOKIE = "m365sync_sign_in_csrf"
MICROSOFT_BINDING_COOKIE = "m365sync_microsoft_sign_in"


def _safe_next(target: str | None) -> str:
    # Only paths of this site: never "//evil.example" or an absolute URL.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _show_sign_in(
    request: Request,
    *,
    status_code: int = 200,
    error: SignInRefused | None = None,
    email: str = "",
    next_url: str = "",
) -> HTMLResponse:
    token = request.cookies.get(SIGN_IN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = render(
        request,
        "auth/sign_in.html",
        status_code=status_code,
        title="Sign in",
        me=None,
        anonymous_csrf=token,
        error=error,
        email=email,
        next=next_url,
    )
    response.set_cookie(
        SIGN_IN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=cookie_is_secure(request),
        max_age=3600,
    )
    return response


def _check_sign_in_csrf(request: Request, given: str) -> None:
    if not csrf_token_matches(request.cookies.get(SIGN_IN_CSRF_COOKIE, ""), given):
        raise SignInRefused(
            "The sign-in form expired.", fix="Try again: the form has been reloaded."
        )


def _signed_in_response(request: Request, new_session: NewSession, target: str) -> Response:
    response = redirect(target)
    response.set_cookie(
        session_cookie_name(request),
        new_session.token,
        httponly=True,
        secure=cookie_is_secure(request),
        samesite="lax",  # sent on the top-level redirect back from Microsoft's sign-in page
        max_age=int(SESSION_IDLE_LIFETIME.total_seconds()),
        path="/",
    )
    response.delete_cookie(SIGN_IN_CSRF_COOKIE)
    return response


@router.get("/", include_in_schema=False)
def start_page(member: SignedInMember) -> Response:
    return redirect("/admin/service-accounts" if member.is_admin else "/me/connections")


@router.get("/sign-in", include_in_schema=False)
def sign_in_page(request: Request, db: DbSession, next: str = "") -> Response:
    if resolve_session(db, request.cookies.get(session_cookie_name(request))) is not None:
        return redirect(_safe_next(next))
    return _show_sign_in(request, next_url=next)


@router.post("/sign-in", include_in_schema=False, dependencies=sign_in_attempt)
def sign_in_with_password_form(
    request: Request,
    db: DbSession,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    try:
        _check_sign_in_csrf(request, csrf_token)
        new_session = sign_in_with_password(db, email, password)
    except SignInRefused as refused:
        # Returning normally commits the request, keeping the failed-attempt counter.
        return _show_sign_in(request, status_code=401, error=refused, email=email, next_url=next)
    return _signed_in_response(request, new_session, _safe_next(next))


@router.post("/sign-in/microsoft", include_in_schema=False, dependencies=sign_in_attempt)
def sign_in_with_microsoft_form(
    request: Request,
    db: DbSession,
    email: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    try:
        _check_sign_in_csrf(request, csrf_token)
        start = begin_microsoft_sign_in(
            db, settings_of(request), email, str(request.url_for("microsoft_sign_in_callback"))
        )
    except SignInRefused as refused:
        return _show_sign_in(request, status_code=400, error=refused, email=email)
    response = redirect(start.authorization_url)
    response.set_cookie(
        MICROSOFT_BINDING_COOKIE,
        start.browser_binding,
        httponly=True,
        secure=cookie_is_secure(request),
        samesite="lax",
        max_age=900,
        path="/auth/microsoft",
    )
    return response


@router.get("/auth/microsoft/callback", name="microsoft_sign_in_callback", include_in_schema=False)
def microsoft_sign_in_callback(request: Request, db: DbSession) -> Response:
    try:
        new_session = complete_microsoft_sign_in(
            db,
            settings_of(request),
            dict(request.query_params),
            request.cookies.get(MICROSOFT_BINDING_COOKIE),
        )
    except SignInRefused as refused:
        return _show_sign_in(request, status_code=401, error=refused)
    response = _signed_in_response(request, new_session, "/")
    response.delete_cookie(MICROSOFT_BINDING_COOKIE, path="/auth/microsoft")
    return response


@router.post("/sign-out", include_in_schema=False)
def sign_out(request: Request, db: DbSession, _member: MemberForm) -> Response:
    end_session(db, request.cookies.get(session_cookie_name(request)))
    response = redirect("/sign-in")
    response.delete_cookie(
        session_cookie_name(request), path="/", secure=cookie_is_secure(request), httponly=True
    )
    return response
