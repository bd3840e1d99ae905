"""AuthBackend: the org's connected apps, user passwords, and the sessions, authorization
codes and refresh tokens issued to them.

Access tokens look like Salesforce's (``<org id>!<secret>``) and are opaque: the backend
looks them up. A session ends when its timeout passes (``SfConfig.session_timeout_seconds``,
on the simulator's clock) or when it is revoked; the REST API then answers 401
``INVALID_SESSION_ID``. Token answers carry Salesforce's fields: ``access_token``,
``instance_url``, ``id`` (the identity URL on the login host), ``token_type``,
``issued_at`` (epoch milliseconds, as a string), ``signature`` (HMAC-SHA256 of id +
issued_at keyed with the consumer secret), ``scope``, and ``refresh_token`` for the web
server flow.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sfsim.state import SfState

AUTH_CODE_LIFETIME = timedelta(minutes=15)


@dataclass
class ConnectedApp:
    name: str
    consumer_key: str
    consumer_secret: str
    certificate_pem: str | None = None  # for the JWT bearer flow ("Use digital signatures")
    callback_urls: list[str] = field(default_factory=list)
    client_credentials_user: str | None = None  # the "Run As" username
    pre_authorized: list[str] | None = (
        None  # usernames admin-approved; None: all may self-authorize
    )
    require_secret_for_web_server_flow: bool = True
    require_pkce: bool = True
    scopes: list[str] = field(default_factory=lambda: ["api", "refresh_token"])

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "consumerKey": self.consumer_key,
            "hasCertificate": self.certificate_pem is not None,
            "callbackUrls": self.callback_urls,
            "clientCredentialsUser": self.client_credentials_user,
            "preAuthorized": self.pre_authorized,
            "requireSecretForWebServerFlow": self.require_secret_for_web_server_flow,
            "requirePkce": self.require_pkce,
            "scopes": self.scopes,
        }


@dataclass
class Session:
    token: str
    user_id: str
    app: str
    issued_at: datetime
    expires_at: datetime
    scope: str
    revoked: bool = False


@dataclass
class AuthorizationCode:
    code: str
    app: ConnectedApp
    user_id: str
    redirect_uri: str
    code_challenge: str | None
    expires_at: datetime
    scope: str


@dataclass
class RefreshGrant:
    token: str
    app: ConnectedApp
    user_id: str
    scope: str
    revoked: bool = False


class AuthBackend:
    def __init__(self, state: SfState) -> None:
        self.state = state
        self.apps: dict[str, ConnectedApp] = {}
        self.passwords: dict[str, str] = {}  # user id -> password (for the login page)
        self.sessions: dict[str, Session] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.refresh_tokens: dict[str, RefreshGrant] = {}

    def add_app(self, app: ConnectedApp) -> ConnectedApp:
        self.apps[app.consumer_key] = app
        return app

    def app_by_name(self, name: str) -> ConnectedApp | None:
        return next((a for a in self.apps.values() if a.name == name), None)

    # -- sessions -----------------------------------------------------------------------
    def session(self, token: str) -> Session | None:
        """The live session of an access token, or None (unknown, expired, revoked)."""
        found = self.sessions.get(token)
        if found is None or found.revoked or found.expires_at <= self.state.now():
            return None
        return found

    def issue(
        self, app: ConnectedApp, user_id: str, *, scope: str, refresh: bool = False
    ) -> dict[str, Any]:
        now = self.state.now()
        org = self.state.org
        token = f"{org.id[:15]}!{secrets.token_urlsafe(72)}"
        self.sessions[token] = Session(
            token=token,
            user_id=user_id,
            app=app.name,
            issued_at=now,
            expires_at=now + timedelta(seconds=self.state.config.session_timeout_seconds),
            scope=scope,
        )
        # Salesforce names the identity URL on the shared login host, whatever host was used.
        identity = f"https://{org.login_host}/id/{org.id}/{user_id}"
        issued_at = str(int(now.timestamp() * 1000))
        signature = base64.b64encode(
            hmac.new(
                app.consumer_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
            ).digest()
        ).decode()
        answer: dict[str, Any] = {
            "access_token": token,
            "signature": signature,
            "scope": scope,
            "instance_url": self.state.base_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
        }
        if refresh:
            refresh_token = f"5Aep861{secrets.token_urlsafe(64)}"
            self.refresh_tokens[refresh_token] = RefreshGrant(
                token=refresh_token, app=app, user_id=user_id, scope=scope
            )
            answer["refresh_token"] = refresh_token
        return answer

    def expire_sessions(self) -> int:
        """End every session now (tests provoke INVALID_SESSION_ID this way)."""
        live = [s for s in self.sessions.values() if not s.revoked]
        for found in live:
            found.revoked = True
        return len(live)

    def revoke(self, token: str) -> bool:
        if token in self.sessions:
            self.sessions[token].revoked = True
            return True
        grant = self.refresh_tokens.get(token)
        if grant is not None:
            grant.revoked = True
            for found in self.sessions.values():
                if found.user_id == grant.user_id and found.app == grant.app.name:
                    found.revoked = True
            return True
        return False

    # -- authorization codes ------------------------------------------------------------
    def new_code(
        self,
        app: ConnectedApp,
        user_id: str,
        redirect_uri: str,
        code_challenge: str | None,
        scope: str,
    ) -> str:
        code = f"aPrx{secrets.token_urlsafe(48)}"
        self.codes[code] = AuthorizationCode(
            code=code,
            app=app,
            user_id=user_id,
            redirect_uri=redirect_uri,
            code_challenge=code_challenge,
            expires_at=self.state.now() + AUTH_CODE_LIFETIME,
            scope=scope,
        )
        return code
