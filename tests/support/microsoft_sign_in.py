"""Drive m365sim's sign-in, account picker and consent pages as a browser would: they are
plain HTML forms, so httpx with a cookie jar is enough."""

from __future__ import annotations

import html
import re
import ssl
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx

FORM_RE = re.compile(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', re.S)
INPUT_RE = re.compile(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', re.S)
BUTTON_RE = re.compile(r'<button[^>]*name="([^"]+)"[^>]*value="([^"]*)"', re.S)


def sign_in(
    authorization_url: str,
    *,
    username: str,
    password: str,
    ca_bundle: str,
    redirect_prefix: str,
    consent: bool = True,
) -> dict[str, str]:
    """Follow the pages until Microsoft redirects to ``redirect_prefix``; returns its query."""
    verify = ssl.create_default_context(cafile=ca_bundle)
    with httpx.Client(verify=verify, follow_redirects=False, timeout=20) as client:
        response = client.get(authorization_url)
        for _ in range(12):
            if response.status_code in (301, 302, 303, 307):
                location = urljoin(str(response.url), response.headers["location"])
                if location.startswith(redirect_prefix):
                    return dict(parse_qsl(urlsplit(location).query))
                response = client.get(location)
                continue
            page = response.text
            forms = FORM_RE.findall(page)
            if not forms:
                raise AssertionError(f"no form on the page:\n{page[:2000]}")
            action, body = forms[0]
            fields = {name: html.unescape(value) for name, value in INPUT_RE.findall(body)}
            if 'name="passwd"' in body:
                fields.update({"login": username, "passwd": password})
            elif "/Consent/Set" in action:
                fields["action"] = "accept" if consent else "cancel"
            elif "/login/select" in action:
                buttons = [
                    value for name, value in BUTTON_RE.findall(body) if name == "account" and value
                ]
                fields["account"] = buttons[0] if buttons else ""
            url = urljoin(str(response.url), html.unescape(action))
            if url.startswith(redirect_prefix):  # response_mode=form_post
                return fields
            response = client.post(url, data=fields)
        raise AssertionError("sign-in did not finish")
