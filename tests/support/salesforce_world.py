"""The demo org sfsim serves, as m365sync's Salesforce tests meet it: its connected app,
users and keys, settings pointing at it, and the control calls tests make.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from m365sync.salesforce import (
    ConsumerSecret,
    JwtBearerFlow,
    JwtSigningKey,
    SalesforceToken,
)
from m365sync.settings import Settings
from sfsim import DEMO_SEED, SfServer
from support.demo import SALESFORCE_CONSUMER_SECRET

CONSUMER_SECRET = ConsumerSecret(SALESFORCE_CONSUMER_SECRET)  # as the product holds it
DEMO_KEY = JwtSigningKey(
    private_key_pem=(DEMO_SEED.parent / "demo-jwt.key").read_text(),
    certificate_pem=(DEMO_SEED.parent / "demo-jwt.crt").read_text(),
)
REP = "rep@acme.example"
REP_PASSWORD = "Demo-Rep-1!"


def salesforce_settings(sf: SfServer, data_dir: Path, **overrides: Any) -> Settings:
    """Settings whose Salesforce login URL is sfsim's (its My Domain) and whose CA bundle
    trusts it."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "salesforce_login_url": sf.url,
        "ca_bundle": sf.tls.ca_bundle,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class CountingSource:
    """A token source that counts the sessions it handed out."""

    def __init__(self, inner: JwtBearerFlow) -> None:
        self.inner = inner
        self.issued: list[SalesforceToken] = []

    def __call__(self) -> SalesforceToken:
        token = self.inner()
        self.issued.append(token)
        return token


def sim(sf: SfServer, method: str, path: str, **kwargs: Any) -> Any:
    """A control API call (``/_sim/...``); its JSON answer, if any."""
    answer = requests.request(method, f"{sf.url}/_sim/{path}", timeout=10, **kwargs)
    assert answer.status_code < 300, answer.text
    return answer.json() if answer.content else None


def logged(sf: SfServer, path_contains: str, method: str | None = None) -> list[dict[str, Any]]:
    """Requests sfsim served whose path contains ``path_contains``."""
    params = {"path_contains": path_contains}
    if method:
        params["method"] = method
    entries: list[dict[str, Any]] = sim(sf, "GET", "requests", params=params)["value"]
    return entries


def log_in_and_allow(authorization_url: str, *, username: str, password: str) -> dict[str, str]:
    """What a person does on Salesforce's login page: the callback's query parameters."""
    parts = urlsplit(authorization_url)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    page = requests.get(base, params=params, timeout=10)
    assert page.status_code == 200, page.text
    redirect = requests.post(
        base,
        data={**params, "username": username, "pw": password, "decision": "allow"},
        allow_redirects=False,
        timeout=10,
    )
    assert redirect.status_code == 302, redirect.text
    return {k: v[0] for k, v in parse_qs(urlsplit(redirect.headers["location"]).query).items()}
