"""From a failure to what people see: the unit's status, message, fix and next attempt.

The engine branches only on error categories (``m365sync.microsoft.errors`` and the
connections package's errors), never on status codes. Permanent causes park the unit:
it is retried every ``sync_parked_retry_seconds``, so fixing the cause in Microsoft 365
(granting consent, changing the access policy, assigning a licence) resumes it by itself.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from m365sync.connections.errors import DomainNotVerified, MemberNotSynced, NoConnection
from m365sync.microsoft import errors as ms
from m365sync.settings import Settings
from m365sync.sync.models import UnitStatus

__all__ = ["Verdict", "judge_failure", "transient_delay"]


@dataclass(frozen=True)
class Verdict:
    status: UnitStatus
    message: str
    fix: str
    code: str
    next_run_at: datetime
    counts_as_failure: bool


def transient_delay(failures: int, base: float = 30.0, cap: float = 3600.0) -> float:
    """Exponential back-off with jitter: 30 s, 60 s, 120 s ... up to an hour."""
    delay: float = min(cap, base * (2 ** max(0, failures - 1)))
    return delay * (0.75 + random.random() / 2)  # noqa: S311 (jitter, not security)


_PARKED: list[tuple[type[Exception], UnitStatus]] = [
    (ms.AccessDeniedByPolicy, UnitStatus.BLOCKED_BY_POLICY),
    (ms.ConsentMissing, UnitStatus.NEEDS_CONSENT),
    (ms.AuthRevoked, UnitStatus.NEEDS_RECONNECT),
    (ms.CredentialError, UnitStatus.NEEDS_RECONNECT),
    (ms.PermissionMissing, UnitStatus.INSUFFICIENT_PERMISSIONS),
    (ms.ImpersonationDenied, UnitStatus.INSUFFICIENT_PERMISSIONS),
    (ms.ExchangeAccessDenied, UnitStatus.INSUFFICIENT_PERMISSIONS),
    (ms.MailboxUnreachable, UnitStatus.MAILBOX_UNAVAILABLE),
    (ms.QuotaExceeded, UnitStatus.MAILBOX_FULL),
    (NoConnection, UnitStatus.NO_CONNECTION),
    (DomainNotVerified, UnitStatus.DOMAIN_NOT_VERIFIED),
    (MemberNotSynced, UnitStatus.NO_CONNECTION),
]


def judge_failure(error: Exception, failures: int, now: datetime, settings: Settings) -> Verdict:
    """``failures`` counts this one."""
    message = getattr(error, "message", None) or str(error) or error.__class__.__name__
    fix = getattr(error, "fix", None) or ""
    code = str(getattr(error, "code", None) or error.__class__.__name__)
    if isinstance(error, ms.Throttled):
        wait = error.retry_after if error.retry_after is not None else transient_delay(failures)
        return Verdict(
            UnitStatus.BACKING_OFF, message, fix, code, now + timedelta(seconds=wait), False
        )
    for kind, status in _PARKED:
        if isinstance(error, kind):
            return Verdict(
                status,
                message,
                fix,
                code,
                now + timedelta(seconds=settings.sync_parked_retry_seconds),
                True,
            )
    if isinstance(error, ms.MicrosoftError) and error.retryable:
        return Verdict(
            UnitStatus.BACKING_OFF,
            message,
            fix,
            code,
            now + timedelta(seconds=transient_delay(failures)),
            True,
        )
    # Unexpected answers and our own bugs: retried with back-off; after many, shown as failed.
    status = UnitStatus.FAILED if failures >= 8 else UnitStatus.BACKING_OFF
    return Verdict(
        status,
        message,
        fix or "Retried automatically; if it keeps failing, check the server log for this mailbox.",
        code,
        now + timedelta(seconds=transient_delay(failures)),
        True,
    )
