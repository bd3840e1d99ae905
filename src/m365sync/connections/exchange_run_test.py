"""Run Test for Exchange (EWS): diagnose an on-premises Exchange connection before it is
saved, with the cause and the fix of each failure.

The same ``TestReport`` as Office 365's Run Test (``run_test``), with Exchange's checks, in
order: the domains and the test account (service accounts), the server's address (given,
or found by Autodiscover), the server itself (it answers, over a trusted certificate, and is
an Exchange Server rather than Exchange Online, which takes Graph only), sign-in, the
version (Exchange Server 2016 or later), the test mailbox (a service account must be able to
impersonate it: the ApplicationImpersonation role), and its calendar. The first check that
leaves the rest unable to run has them reported as skipped, with its reason. It only reads:
one anonymous request, the server's version, the Inbox and the Calendar folders.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from m365sync.connections.features import FeatureMatrix
from m365sync.connections.models import Feature
from m365sync.connections.run_test import (
    Check,
    Outcome,
    TestReport,
    domains_check,
    failed_check,
    not_verified_check,
    skipped_check,
    test_mailbox_domain_check,
)
from m365sync.microsoft import errors as ms
from m365sync.microsoft.ews import (
    MINIMUM_BUILD,
    ExchangeLogin,
    ExchangeServer,
    discover_ews_url,
    is_exchange_online,
    is_valid_ews_url,
    normalize_ews_url,
    probe_server,
)
from m365sync.settings import Settings

EXCHANGE_NAMES = {(15, 1): "Exchange Server 2016", (15, 2): "Exchange Server 2019 or SE"}

TASKS_VIA_EXCHANGE_USER_CONNECTION = (
    "Task Sync over Exchange runs through each user's own Exchange connection."
)


@dataclass(frozen=True)
class ExchangeDraft:
    """An Exchange connection as entered, before it is saved. ``server_url`` is the EWS
    address, an Autodiscover address (``.../autodiscover/autodiscover.svc``), or empty to
    find the server by Autodiscover from the test mailbox's domain. ``impersonation``: a
    service account (ApplicationImpersonation) rather than the user's own mailbox."""

    server_url: str
    username: str
    password: str = field(repr=False)
    test_mailbox: str
    impersonation: bool

    def __repr__(self) -> str:
        return (
            f"ExchangeDraft(server_url={self.server_url!r}, username={self.username!r}, "
            f"test_mailbox={self.test_mailbox!r}, impersonation={self.impersonation!r})"
        )


@dataclass
class _Trial:
    settings: Settings
    draft: ExchangeDraft
    domain_names: list[str] | None  # None: a user connection, which needs no domains
    sleep: Callable[[float], Any] | None
    report: TestReport = field(default_factory=TestReport)
    ews_url: str = ""
    auth: str = "ntlm"
    server: ExchangeServer | None = None
    mail_ok: bool = False
    calendar_ok: bool = False

    @property
    def mailbox(self) -> str:
        return self.draft.test_mailbox.strip().lower()

    def login(self) -> ExchangeLogin:
        return ExchangeLogin(self.draft.username.strip(), self.draft.password, auth=self.auth)


Step = Callable[[_Trial], Awaitable[str | None]]


def _autodiscover_endpoint(url: str) -> str | None:
    path = urlsplit(url if "://" in url else f"https://{url}").path.lower()
    if path.endswith(("/autodiscover/autodiscover.svc", "/autodiscover/autodiscover.xml")):
        return url.strip()[: -len(".xml")] + ".svc" if path.endswith(".xml") else url.strip()
    return None


async def _domains(trial: _Trial) -> str | None:
    if trial.domain_names is None:
        return None
    check = trial.report.add(domains_check(trial.domain_names))
    if check.outcome == Outcome.FAILED:
        return "Skipped: no domains."
    check = trial.report.add(test_mailbox_domain_check(trial.mailbox, trial.domain_names))
    return "Skipped: no usable test account." if check.outcome == Outcome.FAILED else None


async def _address(trial: _Trial) -> str | None:
    key, title = "server_address", "Exchange server address"
    given = trial.draft.server_url.strip()
    if given and is_exchange_online(given):
        trial.report.add(failed_check(key, title, ms.ExchangeOnlineRefusesEws()))
        return "Skipped: Exchange Online is reached through Microsoft Graph."
    endpoint = _autodiscover_endpoint(given) if given else None
    if given and endpoint is None:
        url = normalize_ews_url(given)
        if not is_valid_ews_url(url):
            trial.report.add(
                Check(
                    key,
                    title,
                    Outcome.FAILED,
                    f"'{given}' is not an HTTPS address of an Exchange server.",
                    "Enter the server's EWS address, such as "
                    "https://mail.contoso.com/EWS/Exchange.asmx, or leave it empty to use "
                    "Autodiscover.",
                )
            )
            return "Skipped: no server address."
        trial.ews_url = url
        trial.report.add(Check(key, title, Outcome.PASSED, f"EWS address: {url}."))
        return None
    if "@" not in trial.mailbox:
        trial.report.add(
            Check(
                key,
                title,
                Outcome.FAILED,
                "Autodiscover needs a mailbox address, and none was given.",
                "Enter the test account's email address, or the server's EWS address.",
            )
        )
        return "Skipped: no server address."
    try:
        trial.ews_url = await asyncio.to_thread(
            discover_ews_url,
            trial.settings,
            trial.mailbox,
            trial.login(),
            [endpoint] if endpoint else None,
        )
    except ms.MicrosoftError as error:
        trial.report.add(failed_check(key, title, error))
        return "Skipped: the server's address is unknown."
    trial.report.add(
        Check(key, title, Outcome.PASSED, f"Autodiscover found the EWS address {trial.ews_url}.")
    )
    return None


async def _server(trial: _Trial) -> str | None:
    key, title = "server", "Exchange server"
    host = urlsplit(trial.ews_url).netloc
    try:
        probe = await asyncio.to_thread(probe_server, trial.settings, trial.ews_url)
    except ms.ExchangeTlsUntrusted as error:
        trial.report.add(Check(key, title, Outcome.PASSED, f"{host} answers."))
        trial.report.add(
            failed_check(
                "tls",
                "TLS certificate",
                ms.ExchangeTlsUntrusted(
                    f"{host} answers, but its TLS certificate is not trusted.", code=error.code
                ),
            )
        )
        return "Skipped: the server's certificate is not trusted."
    except ms.MicrosoftError as error:
        trial.report.add(
            failed_check(
                key,
                title,
                ms.ExchangeServerUnreachable(
                    f"The Exchange server at {host} did not answer.", code=error.code
                ),
            )
        )
        return "Skipped: the server did not answer."
    trial.report.add(Check(key, title, Outcome.PASSED, f"{host} answers."))
    trial.report.add(Check("tls", "TLS certificate", Outcome.PASSED, "The certificate is trusted."))
    key, title = "exchange_server", "Exchange Server (not Exchange Online)"
    if probe.exchange_online:
        trial.report.add(
            failed_check(
                key,
                title,
                ms.ExchangeOnlineRefusesEws(
                    f"{host} is Exchange Online, which no longer accepts EWS with a username "
                    "and password (it asks for OAuth, as Microsoft Graph does).",
                    code="ExchangeOnline",
                ),
            )
        )
        return "Skipped: Exchange Online is reached through Microsoft Graph."
    methods = probe.methods
    if probe.status == 404 or not methods:
        trial.report.add(
            Check(
                key,
                title,
                Outcome.FAILED,
                f"{trial.ews_url} is not an Exchange Web Services address (it answered "
                f"{probe.status} without asking to sign in).",
                "Enter the server's EWS address, such as "
                "https://mail.contoso.com/EWS/Exchange.asmx.",
                code=str(probe.status),
            )
        )
        return "Skipped: no Exchange server at this address."
    if methods & {"ntlm", "negotiate"}:
        trial.auth = "ntlm"
    elif "basic" in methods:
        trial.auth = "basic"
    else:
        trial.report.add(
            Check(
                key,
                title,
                Outcome.FAILED,
                f"The server offers no sign-in m365sync can use ({', '.join(sorted(methods))}).",
                "Turn on Windows (NTLM) or Basic authentication on the EWS virtual directory "
                "(Set-WebServicesVirtualDirectory -WindowsAuthentication $true).",
            )
        )
        return "Skipped: no usable sign-in method."
    trial.report.add(
        Check(key, title, Outcome.PASSED, f"Exchange Server, signing in with {trial.auth}.")
    )
    return None


async def _sign_in(trial: _Trial) -> str | None:
    key, title = "sign_in", "Sign-in"
    server = trial.server = ExchangeServer(
        trial.settings,
        trial.ews_url,
        trial.login(),
        impersonation=trial.draft.impersonation,
        **({"sleep": trial.sleep} if trial.sleep else {}),
    )
    try:
        build = await asyncio.to_thread(server.build)
    except (ms.Throttled, ms.Transient) as error:
        trial.report.add(not_verified_check(key, title, error))
        return "Skipped: the server is busy; run the test again."
    except ms.MicrosoftError as error:
        trial.report.add(failed_check(key, title, error))
        return "Skipped: the account could not sign in."
    trial.report.add(
        Check(key, title, Outcome.PASSED, f"{trial.draft.username.strip()} signed in.")
    )
    version = ".".join(map(str, build))
    if build[:2] < MINIMUM_BUILD:
        trial.report.add(
            failed_check(
                "version",
                "Exchange version",
                ms.ExchangeServerTooOld(
                    f"The server reports build {version}, older than Exchange Server 2016 (15.1)."
                ),
            )
        )
        return "Skipped: the server is too old."
    name = EXCHANGE_NAMES.get((build[0], build[1]), "Exchange Server")
    trial.report.add(Check("version", "Exchange version", Outcome.PASSED, f"{name} ({version})."))
    return None


def _mailbox_failure(trial: _Trial, error: ms.MicrosoftError) -> ms.MicrosoftError:
    """The error, in words naming the account and the test mailbox."""
    mailbox, username = trial.mailbox, trial.draft.username.strip()
    if isinstance(error, ms.ImpersonationDenied):
        return ms.ImpersonationDenied(
            f"{username} may not impersonate {mailbox}: it lacks the ApplicationImpersonation "
            "role, or the role's scope leaves this mailbox out.",
            fix=f"In the Exchange Management Shell run: New-ManagementRoleAssignment -Role "
            f"ApplicationImpersonation -User {username} (with -CustomRecipientWriteScope, make "
            f"sure the scope includes {mailbox}).",
            code=error.code,
        )
    if isinstance(error, ms.MailboxNotOnServer):
        return ms.MailboxNotOnServer(
            f"This Exchange server has no mailbox for {mailbox}.",
            fix="Check the address. If the mailbox was moved to Exchange Online, it is synced "
            "through Microsoft Graph (an Office 365 service account or connection) instead.",
            code=error.code,
        )
    if isinstance(error, ms.ExchangeAccessDenied):
        return ms.ExchangeAccessDenied(
            f"Exchange denied {username} access to {mailbox}.", code=error.code
        )
    return error


async def _mailbox(trial: _Trial) -> str | None:
    key, title = "mailbox", "Test account's mailbox"
    server = trial.server
    assert server is not None
    account = server.account(trial.mailbox)
    try:
        count = await asyncio.to_thread(server.call, lambda: account.inbox.total_count)
    except (ms.Throttled, ms.Transient) as error:
        trial.report.add(not_verified_check(key, title, error))
        return "Skipped: the server is busy; run the test again."
    except ms.MicrosoftError as error:
        trial.report.add(failed_check(key, title, _mailbox_failure(trial, error)))
        return "Skipped: the test mailbox can't be read."
    trial.mail_ok = True
    how = "impersonating it" if trial.draft.impersonation else "as its owner"
    trial.report.add(
        Check(key, title, Outcome.PASSED, f"Read {trial.mailbox}'s Inbox ({count} items), {how}.")
    )
    key, title = "calendar_access", "Read the test account's calendar"
    try:
        await asyncio.to_thread(server.call, lambda: account.calendar.total_count)
    except (ms.Throttled, ms.Transient) as error:
        trial.report.add(not_verified_check(key, title, error))
        return None
    except ms.MicrosoftError as error:
        trial.report.add(failed_check(key, title, _mailbox_failure(trial, error), required=False))
        return None
    trial.calendar_ok = True
    trial.report.add(Check(key, title, Outcome.PASSED, "Read access to the calendar: OK."))
    return None


STEPS: tuple[tuple[str, str, Step], ...] = (
    ("domains", "Domains to sync", _domains),
    ("server_address", "Exchange server address", _address),
    ("server", "Exchange server", _server),
    ("sign_in", "Sign-in", _sign_in),
    ("mailbox", "Test account's mailbox", _mailbox),
)


def _matrix(trial: _Trial) -> FeatureMatrix:
    matrix = FeatureMatrix()
    if trial.mail_ok:
        matrix.enabled.add(Feature.EMAIL)
        if not trial.draft.impersonation:
            matrix.enabled.add(Feature.TASKS)
    if trial.calendar_ok:
        matrix.enabled |= {Feature.CALENDAR, Feature.SCHEDULING}
    if trial.draft.impersonation:
        matrix.notes[Feature.TASKS] = TASKS_VIA_EXCHANGE_USER_CONNECTION
    return matrix


async def run_exchange_test(
    settings: Settings,
    draft: ExchangeDraft,
    *,
    domain_names: list[str] | None = None,
    sleep: Callable[[float], Any] | None = None,
) -> TestReport:
    """Diagnose ``draft`` (see the module docstring); ``domain_names`` for a service account
    (its test mailbox must be in them), None for a user's own connection. Stores nothing."""
    trial = _Trial(settings=settings, draft=draft, domain_names=domain_names, sleep=sleep)
    try:
        for index, (_key, _title, step) in enumerate(STEPS):
            reason = await step(trial)
            if reason is not None:
                for later_key, later_title, _ in STEPS[index + 1 :]:
                    trial.report.add(skipped_check(later_key, later_title, reason))
                break
    finally:
        if trial.server is not None:
            trial.server.protocol.close()
    trial.report.matrix = _matrix(trial)
    return trial.report


__all__ = ["ExchangeDraft", "run_exchange_test"]
