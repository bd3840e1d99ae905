"""The EWS client: one Exchange server, one login, any number of mailboxes.

Promises:

- a mailbox is an exchangelib ``Account`` on a protocol that trusts the product's
  ``ca_bundle`` (``_transport``), with Basic or NTLM credentials, as the user itself
  (``DELEGATE``) or as a service account impersonating it (``IMPERSONATION``);
- ``ExchangeServer.call`` runs one blocking exchangelib call: ``ErrorServerBusy`` is waited
  out for its ``BackOffMilliseconds`` and retried, a temporary failure is retried with
  exponential back-off, both within ``graph_max_retries`` (the same budget as Graph's); a
  back-off longer than ``graph_backoff_max_seconds`` is raised at once as ``Throttled`` so
  the scheduler can park the unit. Every failure leaves as a ``microsoft.errors`` category;
- nothing here is async: callers on an event loop run it with ``asyncio.to_thread``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests
from exchangelib import BASIC, DELEGATE, IMPERSONATION, NTLM, Account, Configuration, Credentials
from exchangelib import errors as ews_errors
from exchangelib.protocol import close_connections

from m365sync.microsoft import errors as ms
from m365sync.microsoft.ews._errors import classify_ews_error
from m365sync.microsoft.ews._transport import (
    autodiscover_protocol_class,
    plain_session,
    protocol_class,
)
from m365sync.settings import Settings

T = TypeVar("T")

MINIMUM_BUILD = (15, 1)
"""Exchange Server 2016 (15.1); 2019 and Subscription Edition report 15.2."""

EXCHANGE_ONLINE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
"""Office 365 Exchange Online's application id, named in its OAuth-only ``WWW-Authenticate``
challenge: the way to tell an EWS address is Exchange Online."""

_AUTH_TYPES = {"ntlm": NTLM, "basic": BASIC}


@dataclass(frozen=True)
class ExchangeLogin:
    """Who signs in to EWS: ``user@domain``, ``DOMAIN\\user`` or ``user``, and how (NTLM,
    what Exchange's EWS virtual directory offers by default, or Basic)."""

    username: str
    password: str = field(repr=False)
    auth: str = "ntlm"

    def credentials(self) -> Credentials:
        return Credentials(self.username.strip(), self.password)


@dataclass(frozen=True)
class ServerProbe:
    """What an anonymous request to an EWS address told: the sign-in methods offered."""

    url: str
    status: int
    challenges: list[str]

    @property
    def exchange_online(self) -> bool:
        return any(
            c.lower().startswith("bearer") and EXCHANGE_ONLINE_APP_ID in c for c in self.challenges
        )

    @property
    def methods(self) -> set[str]:
        return {c.split(" ", 1)[0].lower() for c in self.challenges}


def probe_server(settings: Settings, ews_url: str) -> ServerProbe:
    """One anonymous POST to ``ews_url``: whether it answers, over trusted TLS, as an
    Exchange Server or as Exchange Online. Raises ``ExchangeServerUnreachable`` or
    ``ExchangeTlsUntrusted``."""
    with plain_session(settings.tls_verify) as session:
        try:
            response = session.post(
                ews_url,
                data=b"",
                headers={"Content-Type": "text/xml; charset=utf-8"},
                timeout=(15, 30),
                allow_redirects=False,
            )
        except requests.RequestException as error:
            raise classify_ews_error(error) from error
    challenges = [
        value.strip()
        for name, value in response.raw.headers.items()
        if name.lower() == "www-authenticate"
    ]
    return ServerProbe(ews_url, response.status_code, challenges)


def autodiscover_endpoints(address: str) -> list[str]:
    """Where Exchange's SOAP Autodiscover is looked for, as Outlook does without DNS SRV."""
    domain = address.rsplit("@", 1)[-1].strip().lower()
    return [
        f"https://autodiscover.{domain}/autodiscover/autodiscover.svc",
        f"https://{domain}/autodiscover/autodiscover.svc",
    ]


def discover_ews_url(
    settings: Settings,
    address: str,
    login: ExchangeLogin,
    endpoints: Sequence[str] | None = None,
) -> str:
    """The EWS address of ``address``'s mailbox, from SOAP Autodiscover (GetUserSettings) at
    the first of ``endpoints`` that answers. A wrong password or an unknown mailbox is
    raised as such; no endpoint answering is ``AutodiscoverFailed`` naming those tried."""
    tried = list(endpoints) if endpoints else autodiscover_endpoints(address)
    protocol_cls = autodiscover_protocol_class(settings.tls_verify)
    unreachable: list[str] = []
    for endpoint in tried:
        protocol = protocol_cls(
            config=Configuration(
                service_endpoint=endpoint,
                credentials=login.credentials(),
                auth_type=_AUTH_TYPES.get(login.auth, NTLM),
            )
        )
        try:
            response = protocol.get_user_settings(user=address)
            response.raise_errors()
        except Exception as raw:
            error = classify_ews_error(raw)
            if isinstance(error, ms.ExchangeCredentialsRejected | ms.MailboxNotOnServer):
                raise error from raw
            unreachable.append(endpoint)
            continue
        finally:
            protocol.close()
        if response.ews_url:
            return str(response.ews_url)
        unreachable.append(endpoint)
    raise ms.AutodiscoverFailed(
        f"Autodiscover found no Exchange server for {address} (tried {', '.join(unreachable)})."
    )


class ExchangeServer:
    """One EWS endpoint and one login: opens mailboxes and runs calls with back-off."""

    def __init__(
        self,
        settings: Settings,
        ews_url: str,
        login: ExchangeLogin,
        *,
        impersonation: bool,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        self.settings = settings
        self.ews_url = ews_url
        self.login = login
        self.impersonation = impersonation
        self._sleep = sleep
        self._config = Configuration(
            service_endpoint=ews_url,
            credentials=login.credentials(),
            auth_type=_AUTH_TYPES.get(login.auth, NTLM),
        )
        self.protocol = protocol_class(settings.tls_verify)(config=self._config)
        self._accounts: dict[str, Account] = {}
        self._accounts_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ExchangeServer({self.ews_url!r}, {self.login!r})"

    def account(self, address: str) -> Account:
        """``address``'s mailbox (no request is sent until it is used). Kept for the next
        call, with the folders exchangelib has looked up in it."""
        key = address.strip().lower()
        with self._accounts_lock:
            account = self._accounts.get(key)
            if account is None:
                account = Account(
                    key,
                    config=self._config,
                    autodiscover=False,
                    access_type=IMPERSONATION if self.impersonation else DELEGATE,
                )
                account.protocol = self.protocol
                self._accounts[key] = account
            return account

    def build(self) -> tuple[int, ...]:
        """The server's build (``ServerVersionInfo``), learnt with one request."""
        version = self.call(lambda: self.protocol.version)
        build = version.build
        return (build.major_version, build.minor_version, build.major_build, build.minor_build)

    def require_supported_version(self) -> tuple[int, ...]:
        build = self.build()
        if build[:2] < MINIMUM_BUILD:
            raise ms.ExchangeServerTooOld(
                f"The Exchange server reports build {'.'.join(map(str, build))}, older than "
                "Exchange Server 2016 (15.1)."
            )
        return build

    def call(self, operation: Callable[[], T]) -> T:
        """``operation()`` with ``ErrorServerBusy`` and temporary failures retried (see the
        module docstring); anything else raised as its category."""
        attempt = 0
        while True:
            try:
                return operation()
            except ews_errors.EWSError as raw:
                error = classify_ews_error(raw)
                failure: BaseException = raw
            except requests.RequestException as raw:
                error = classify_ews_error(raw)
                failure = raw
            if not error.retryable or attempt >= self.settings.graph_max_retries:
                raise error from failure
            delay = self._delay(error, attempt)
            if delay > self.settings.graph_backoff_max_seconds:
                raise error from failure
            attempt += 1
            self._sleep(delay)

    def _delay(self, error: ms.MicrosoftError, attempt: int) -> float:
        if isinstance(error, ms.Throttled) and error.retry_after:
            return float(error.retry_after)
        base = self.settings.graph_backoff_base_seconds * (2**attempt)
        return float(base + random.uniform(0, base / 2))  # noqa: S311 (jitter)


def close_exchange_connections() -> None:
    """Close every pooled EWS session (exchangelib keeps them per endpoint and login)."""
    close_connections()


__all__ = [
    "EXCHANGE_ONLINE_APP_ID",
    "MINIMUM_BUILD",
    "ExchangeLogin",
    "ExchangeServer",
    "ServerProbe",
    "autodiscover_endpoints",
    "close_exchange_connections",
    "discover_ews_url",
    "probe_server",
]
