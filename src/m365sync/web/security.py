"""Browser-facing security: response headers for every page, and safe email bodies.

Two promises:

- Every response carries a Content-Security-Policy that allows no inline script and no
  framing (``frame-ancestors 'none'``), plus the usual hardening headers. The dashboard's
  own JavaScript is a static file, so the policy never needs ``'unsafe-inline'``.
- Email bodies shown in Activities are sanitised with ``nh3`` before they reach a
  template: no script, no event handlers, no styles, no forms, no frames, and no remote
  content (images keep only inline ``data:`` sources). Links open outside our origin's
  context (``rel="noopener noreferrer nofollow"``). The CSP's ``img-src 'self' data:`` is
  the second line of defence should the sanitiser ever let a remote image through.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import nh3
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["SecurityHeadersMiddleware", "content_security_policy", "sanitize_email_html"]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(*, sign_in_origins: tuple[str, ...] = ()) -> str:
    """The page policy. ``sign_in_origins`` are the Microsoft sign-in hosts a form may
    redirect to ("Connect your Office 365", "Sign in with Microsoft"): browsers apply
    ``form-action`` to the redirects that follow a form submission."""
    form_targets = " ".join(["'self'", *sorted({_origin(o) for o in sign_in_origins})])
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "frame-src 'none'",
            "base-uri 'none'",
            f"form-action {form_targets}",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp, *, sign_in_origins: tuple[str, ...] = ()) -> None:
        self.app = app
        self.headers: list[tuple[bytes, bytes]] = [
            (
                b"content-security-policy",
                content_security_policy(sign_in_origins=sign_in_origins).encode(),
            ),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"cross-origin-resource-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in self.headers if h[0] not in present)
                if https and b"strict-transport-security" not in present:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


_EMAIL_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del",
    "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
    "ins", "li", "ol", "p", "pre", "q", "s", "small", "span", "strike", "strong", "sub",
    "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
_EMAIL_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "*": {"dir", "lang", "title"},
}
_REMOVED_WITH_CONTENT = {
    "script",
    "style",
    "iframe",
    "object",
    "embed",
    "template",
    "noscript",
    "title",
}


def _keep_only_inline_images(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src" and not value.lower().startswith("data:image/"):
        return None
    return value


def sanitize_email_html(body: str) -> str:
    """HTML of an email body, safe to place in a page of our origin (see module docs)."""
    return nh3.clean(
        body,
        tags=_EMAIL_TAGS,
        clean_content_tags=_REMOVED_WITH_CONTENT,
        attributes=_EMAIL_ATTRIBUTES,
        attribute_filter=_keep_only_inline_images,
        url_schemes={"http", "https", "mailto", "data"},
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True,
    )
