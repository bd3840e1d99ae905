"""What sfsim tests share: simple-salesforce clients signed in through sfsim's real OAuth
flows, with the demo org's connected app (``support.demo``)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from simple_salesforce import Salesforce

from sfsim import DEMO_SEED, SfServer
from sfsim.testing import session_for
from support.demo import SALESFORCE_CALLBACK, SALESFORCE_CONSUMER_KEY, SALESFORCE_CONSUMER_SECRET

DEMO_KEY = DEMO_SEED.parent / "demo-jwt.key"
MY_DOMAIN = "acme-demo.my"  # simple-salesforce's ``domain`` for the demo org's My Domain


def client_credentials_token(
    sf: SfServer, session: requests.Session | None = None
) -> dict[str, Any]:
    answer = (session or session_for(sf)).post(
        sf.token_url,
        data={"grant_type": "client_credentials"},
        auth=(SALESFORCE_CONSUMER_KEY, SALESFORCE_CONSUMER_SECRET),
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def sf_client(sf: SfServer, session: requests.Session | None = None) -> Salesforce:
    """simple-salesforce, unmodified, on a session token from the client credentials flow."""
    session = session or session_for(sf)
    token = client_credentials_token(sf, session)
    return Salesforce(
        instance_url=token["instance_url"], session_id=token["access_token"], session=session
    )


def user_client(sf: SfServer, username: str, password: str) -> Salesforce:
    """simple-salesforce, unmodified, signed in as a person (OAuth username-password flow
    with the demo connected app): what a rep does in Salesforce, through the API."""
    return Salesforce(
        username=username,
        password=password,
        consumer_key=SALESFORCE_CONSUMER_KEY,
        consumer_secret=SALESFORCE_CONSUMER_SECRET,
        domain=MY_DOMAIN,
        session=session_for(sf),
    )


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


def authorize(
    sf: SfServer,
    session: requests.Session,
    *,
    username: str,
    password: str,
    challenge: str | None,
    state: str = "xyz",
) -> requests.Response:
    """Log in on sfsim's authorize page as a person would (GET the page, POST the form)."""
    params = {
        "response_type": "code",
        "client_id": SALESFORCE_CONSUMER_KEY,
        "redirect_uri": SALESFORCE_CALLBACK,
        "state": state,
    }
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    page = session.get(f"{sf.url}/services/oauth2/authorize", params=params)
    assert page.status_code == 200, page.text
    return session.post(
        f"{sf.url}/services/oauth2/authorize",
        data={**params, "username": username, "pw": password, "decision": "allow"},
        allow_redirects=False,
    )


def code_from(redirect: requests.Response) -> str:
    assert redirect.status_code == 302, redirect.text
    query = parse_qs(urlsplit(redirect.headers["location"]).query)
    return query["code"][0]
