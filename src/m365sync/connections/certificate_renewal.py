"""Certificate renewal without a person, for the app registrations m365sync set up itself.

``certificate_renewal_days`` before a certificate expires, ``renew_certificate`` generates a
new key pair, adds its certificate to the app with ``addKey`` (the app's own token, which
needs no permission for its own keys, and a proof of possession signed by the current
certificate), waits until Entra ID signs the app in with it and its token carries the
permissions the account uses, runs Run Test with it, switches the account to it, and
removes the old certificate with ``removeKey``. Each change in the tenant is audited.

If the new certificate can't be made to work, it is removed again and the account keeps the
current one (still valid): the next pass tries again. Tokens already issued with the old
certificate stay valid until they expire, and each sync unit picks the new certificate up
when it next starts, so syncing never stops for a renewal.

``renew_due_certificates`` is the job: one unit of work per due account, run by the sync
scheduler about once an hour (``m365sync.sync.scheduler``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from m365sync.audit import service as audit
from m365sync.connections import service_accounts
from m365sync.connections.errors import ConnectionsError
from m365sync.connections.models import ConnectionKind, CredentialType, Feature, ServiceAccount
from m365sync.connections.repository import ConnectionRepository
from m365sync.connections.run_test import ServiceAccountDraft
from m365sync.connections.runtime import ConnectionRuntime
from m365sync.db.base import utcnow
from m365sync.db.session import Database
from m365sync.microsoft import errors as ms
from m365sync.microsoft.applications import (
    ApplicationsClient,
    certificate_expiry,
    proof_of_possession,
    sign_in_when_replicated,
)
from m365sync.microsoft.auth import ClientCertificate, generate_certificate
from m365sync.organizations.repository import OrganizationRepository

__all__ = [
    "ACTOR",
    "CertificateRenewalFailed",
    "RenewalResult",
    "renew_certificate",
    "renew_due_certificates",
    "renewal_due",
]

log = logging.getLogger(__name__)

ACTOR = "m365sync (certificate renewal)"


class CertificateRenewalFailed(ConnectionsError):
    """The new certificate could not be put to use; the account keeps its current one."""

    status = 502


@dataclass
class RenewalResult:
    account_id: str
    renewed: bool
    old_removed: bool = False
    thumbprint: str | None = None  # the certificate in use afterwards
    problem: str = ""


def renewal_due(account: ServiceAccount, renewal_days: int, now: datetime) -> bool:
    """Whether m365sync renews this account's certificate now: the app is one m365sync
    registered, and the certificate expires within ``renewal_days``."""
    if (
        account.kind != ConnectionKind.OFFICE365
        or account.credential_type != CredentialType.CERTIFICATE
        or not account.application_object_id
        or not account.certificate_pem
        or not account.client_id
        or not account.tenant_id
    ):
        return False
    return certificate_expiry(account.certificate_pem) - timedelta(days=renewal_days) <= now


@dataclass
class _Audit:
    organization_id: str
    done: list[tuple[datetime, str, str, dict[str, Any]]] = field(default_factory=list)

    def add(self, action: str, target: str, **detail: Any) -> None:
        self.done.append((utcnow(), action, target, detail))

    def record(self, session: Session) -> None:
        for at, action, target, detail in self.done:
            audit.record(session, self.organization_id, ACTOR, action, target, at=at, **detail)
        self.done.clear()


async def renew_certificate(
    session: Session,
    runtime: ConnectionRuntime,
    account: ServiceAccount,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> RenewalResult:
    """Renew ``account``'s certificate now (see the module docstring). Raises
    ``CertificateRenewalFailed`` (after auditing what was done) when the account keeps its
    current certificate; the caller commits in both cases."""
    settings = runtime.settings
    organization = OrganizationRepository(session).get(account.organization_id)
    object_id, client_id, tenant_id = (
        account.application_object_id,
        account.client_id,
        account.tenant_id,
    )
    if organization is None or not object_id or not client_id or not tenant_id:
        raise CertificateRenewalFailed(
            f"The service account '{account.name}' has no app registration m365sync manages.",
            fix="Only service accounts made with Set up for me renew their certificate themselves.",
        )
    current = runtime.credential(account)
    assert isinstance(current, ClientCertificate)
    old_key_id = account.certificate_key_id
    new = generate_certificate(
        f"m365sync {organization.slug}", days=settings.certificate_lifetime_days
    )
    changes = _Audit(organization.id)
    target = account.name
    async with ApplicationsClient(
        settings, runtime.app_only_auth(account), transport=runtime.graph_transport
    ) as entra:
        try:
            added = await entra.add_certificate(
                object_id,
                new,
                proof=proof_of_possession(object_id, current),
                display_name=f"m365sync {utcnow():%Y-%m-%d}",
            )
        except ms.MicrosoftError as error:
            changes.add("service_account.certificate_renewal_failed", target, reason=error.message)
            changes.record(session)
            raise CertificateRenewalFailed(
                f"The certificate of '{account.name}' could not be renewed: {error.message}",
                fix=error.fix,
            ) from error
        changes.add(
            "entra.certificate.add",
            target,
            app_id=client_id,
            key_id=added.key_id,
            thumbprint=new.thumbprint,
            expires=certificate_expiry(new.certificate_pem).isoformat(),
        )
        problem = await _try(
            session,
            runtime,
            account,
            new,
            sleep=sleep,
            clock=clock,
        )
        if problem is not None:
            await _remove(entra, object_id, added.key_id, signed_by=current, changes=changes)
            changes.add("service_account.certificate_renewal_failed", target, reason=problem)
            changes.record(session)
            raise CertificateRenewalFailed(
                f"The new certificate of '{account.name}' did not work, so the current one "
                f"(valid until {certificate_expiry(current.certificate_pem):%Y-%m-%d}) stays "
                f"in use: {problem}",
                fix="Nothing to do yet: m365sync tries again at its next check. If it keeps "
                "failing, run the service account's test to see why.",
            )
        _switch(runtime, account, new, added.key_id)
        changes.add(
            "service_account.certificate_renewed",
            target,
            account_id=account.id,
            thumbprint=new.thumbprint,
            replaced=current.thumbprint,
        )
        removed = old_key_id is not None and await _remove(
            entra, object_id, old_key_id, signed_by=new, changes=changes
        )
    changes.record(session)
    session.flush()
    return RenewalResult(account.id, renewed=True, old_removed=removed, thumbprint=new.thumbprint)


async def _try(
    session: Session,
    runtime: ConnectionRuntime,
    account: ServiceAccount,
    new: ClientCertificate,
    *,
    sleep: Callable[[float], Awaitable[None]],
    clock: Callable[[], float],
) -> str | None:
    """Why the new certificate can't replace the current one, or None: it signs the app in
    (once replicated) with the permissions the account uses, and Run Test with it enables
    every feature the account has now."""
    assert account.client_id and account.tenant_id
    settings = runtime.settings
    try:
        await sign_in_when_replicated(
            settings,
            client_id=account.client_id,
            tenant_id=account.tenant_id,
            certificate=new,
            permissions=account.granted_permissions,
            timeout_seconds=settings.setup_replication_timeout_seconds,
            poll_seconds=settings.setup_replication_poll_seconds,
            sleep=sleep,
            clock=clock,
        )
    except ms.MicrosoftError as error:
        return error.message
    organization = OrganizationRepository(session).get(account.organization_id)
    assert organization is not None
    report = await service_accounts.test_draft(
        session,
        runtime,
        organization,
        ServiceAccountDraft(
            client_id=account.client_id,
            credential=new,
            test_mailbox=account.test_mailbox or "",
            tenant_id=account.tenant_id,
            name=account.name,
        ),
    )
    if not report.signed_in:
        failed = report.check("sign_in")
        return f"Run Test could not sign in with it ({failed.message if failed else 'no sign-in'})."
    lost = [f for f in account.enabled_features if Feature(f) not in set(report.enabled_features)]
    if lost:
        return f"Run Test with it leaves {', '.join(lost)} off."
    return None


def _switch(
    runtime: ConnectionRuntime, account: ServiceAccount, new: ClientCertificate, key_id: str
) -> None:
    """The account uses ``new`` from now on (each process's cached sign-in is rebuilt, as
    ``updated_at`` changed)."""
    runtime.seal(account, "private_key_sealed", new.private_key_pem)
    account.certificate_pem = new.certificate_pem
    account.certificate_thumbprint = new.thumbprint
    account.certificate_key_id = key_id
    runtime.seal(account, "token_cache_sealed", None)
    account.updated_at = utcnow()
    runtime.forget(account.id)


async def _remove(
    entra: ApplicationsClient,
    object_id: str,
    key_id: str,
    *,
    signed_by: ClientCertificate,
    changes: _Audit,
) -> bool:
    """``removeKey``; False (audited and logged) when Entra ID refused: the certificate then
    simply expires."""
    try:
        await entra.remove_certificate(
            object_id, key_id, proof=proof_of_possession(object_id, signed_by)
        )
    except ms.MicrosoftError as error:
        log.warning("could not remove certificate %s of app %s: %s", key_id, object_id, error)
        changes.add("entra.certificate.remove_failed", object_id, key_id=key_id, reason=str(error))
        return False
    changes.add("entra.certificate.remove", object_id, key_id=key_id)
    return True


async def renew_due_certificates(
    database: Database,
    runtime: ConnectionRuntime,
    *,
    now: datetime | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[RenewalResult]:
    """Renew every certificate due at ``now`` (default: the wall clock), each account in a
    unit of work of its own; one account's trouble never stops the others'."""
    moment = now or utcnow()
    days = runtime.settings.certificate_renewal_days
    with database.session() as session:
        due = [
            a.id
            for a in ConnectionRepository(session).accounts_with_registered_apps()
            if renewal_due(a, days, moment)
        ]
    results: list[RenewalResult] = []
    for account_id in due:
        try:
            with database.session() as session:
                account = session.get(ServiceAccount, account_id)
                if account is None:
                    continue
                try:
                    results.append(
                        await renew_certificate(session, runtime, account, sleep=sleep, clock=clock)
                    )
                except CertificateRenewalFailed as failed:
                    log.warning("certificate renewal of %s: %s", account_id, failed.message)
                    results.append(RenewalResult(account_id, renewed=False, problem=failed.message))
        except Exception:
            log.exception("could not renew the certificate of service account %s", account_id)
            results.append(RenewalResult(account_id, renewed=False, problem="unexpected error"))
    return results
