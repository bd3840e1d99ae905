"""Driving m365sim's Entra ID the way its clients do.

``browser`` follows the sign-in pages over HTTP like a person with a browser would: it
reads each page's forms, fills in what a person types and presses the named button,
and stops at the redirect back to the app.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlparse

import httpx
import msal
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from m365sim.server import SimServer
from support.sim_tokens import sim_client

CONTOSO = "contoso.com"
REDIRECT_URI = "http://localhost:8365/connections/office365/callback"


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str, str]] = field(default_factory=list)  # (name, value, label)
    inputs: list[str] = field(default_factory=list)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.text: list[str] = []
        self._button: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(values.get("action", ""), values.get("method", "get").lower()))
        elif tag == "input" and self.forms:
            name = values.get("name")
            if name:
                self.forms[-1].inputs.append(name)
                if values.get("type") in ("hidden", "text", "email", None) and "value" in values:
                    self.forms[-1].fields[name] = values["value"]
        elif tag == "button" and self.forms:
            self._button = [values.get("name", ""), values.get("value", ""), ""]

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None:
            name, value, label = self._button
            self.forms[-1].buttons.append((name, value, " ".join(label.split())))
            self._button = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._button is not None:
            self._button[2] += data


@dataclass
class Page:
    response: httpx.Response
    forms: list[Form]
    text: str

    @property
    def title(self) -> str:
        body = self.response.text
        start = body.find('id="page-title">')
        return body[start + 16 : body.find("</h1>", start)] if start >= 0 else ""


class Browser:
    """A cookie-keeping HTTP client that reads and submits m365sim's sign-in forms."""

    def __init__(self, sim: SimServer) -> None:
        self.sim = sim
        self.client = sim_client(sim, follow_redirects=False)
        self.visited: list[str] = []  # page titles, in order

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def open(self, url: str) -> Page | dict[str, str]:
        return self._settle(self.client.get(url))

    def submit(
        self, page: Page, button: str, fields: dict[str, str] | None = None
    ) -> Page | dict[str, str]:
        """Press the button labelled ``button`` (with ``fields`` typed in) on ``page``."""
        for form in page.forms:
            for name, value, label in form.buttons:
                if button in label:
                    data = {**form.fields, **(fields or {})}
                    if name:
                        data[name] = value
                    target = urljoin(str(page.response.url), form.action)
                    return self._settle(self.client.post(target, data=data))
        raise AssertionError(f"no button {button!r} on page {page.title!r}: {page.forms}")

    def _settle(self, response: httpx.Response) -> Page | dict[str, str]:
        """Follow redirects inside m365sim; a redirect to the app ends the visit."""
        while response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            if not location.startswith(self.sim.url):
                parsed = urlparse(location)
                return dict(parse_qsl(parsed.query or parsed.fragment))
            response = self.client.get(location)
        parser = _FormParser()
        parser.feed(response.text)
        page = Page(response, parser.forms, " ".join(" ".join(parser.text).split()))
        self.visited.append(page.title)
        return page

    def sign_in(
        self,
        url: str,
        username: str,
        password: str,
        *,
        consent: str = "Accept",
        for_organization: bool = False,
    ) -> dict[str, str]:
        """Walk the pages from ``url`` to the app's redirect; returns its query parameters."""
        step = self.open(url)
        for _ in range(6):
            if isinstance(step, dict):
                return step
            if step.title == "Sign in":
                step = self.submit(step, "Sign in", {"login": username, "passwd": password})
            elif step.title == "Pick an account":
                step = (
                    self.submit(step, username)
                    if username in step.text
                    else self.submit(step, "Use another account")
                )
            elif step.title == "Permissions requested":
                fields = {"consent_org": "1"} if for_organization else {}
                step = self.submit(step, consent, fields)
            else:
                raise AssertionError(f"unexpected page {step.title!r}: {step.text}")
        raise AssertionError("sign-in did not finish")


def confidential_app(
    sim: SimServer, client_id: str, credential: Any, tenant: str = CONTOSO
) -> msal.ConfidentialClientApplication:
    """MSAL as a product would configure it against m365sim."""
    return msal.ConfidentialClientApplication(
        client_id,
        client_credential=credential,
        authority=sim.authority(tenant),
        instance_discovery=False,
    )


@dataclass
class GeneratedCertificate:
    private_key_pem: str
    certificate_pem: str
    sha1_thumbprint: str


def make_certificate(common_name: str = "m365sync test", days: int = 30) -> GeneratedCertificate:
    """A self-signed certificate as `New-SelfSignedCertificate` or openssl would make one."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return GeneratedCertificate(
        private_key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        sha1_thumbprint=cert.fingerprint(hashes.SHA1()).hex().upper(),
    )
