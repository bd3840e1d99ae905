"""What one run of a unit carries: the database, the mailbox access, the lease, progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from m365sync.db.session import Database
from m365sync.errors import M365SyncError
from m365sync.microsoft.graph import GraphClient, RequestBudget
from m365sync.settings import Settings
from m365sync.sync.features import SyncFeature

if TYPE_CHECKING:  # exchangelib loads only when an Exchange connection is used
    from m365sync.microsoft.ews import ExchangeMailbox

__all__ = ["LeaseLost", "Progress", "RunContext"]


class LeaseLost(M365SyncError):
    """Another worker took over this unit (ours expired): stop without writing more."""

    status = 409


@dataclass
class Progress:
    """Running totals of one unit run; ``on_change`` feeds progress bars."""

    feature: SyncFeature
    mailbox: str
    pages: int = 0
    items: int = 0
    logged: int = 0
    skipped: int = 0
    removed: int = 0
    quarantined: int = 0
    pushed: int = 0
    requests: int = 0
    expected: int = 0  # items Microsoft counted for this pass (first syncs), 0: not counted
    on_change: Callable[[Progress], None] | None = field(default=None, repr=False)

    def page_done(self, items: int) -> None:
        self.pages += 1
        self.items += items
        if self.on_change is not None:
            self.on_change(self)

    def as_counts(self) -> dict[str, int]:
        return {
            "pages": self.pages,
            "items": self.items,
            "logged": self.logged,
            "skipped": self.skipped,
            "removed": self.removed,
            "quarantined": self.quarantined,
            "pushed": self.pushed,
        }


class MailboxAccessLike(Protocol):
    """A mailbox as a unit reaches it: through Graph (``graph``, ``user_path``) or, for a
    mailbox on an Exchange Server, through EWS (``exchange`` is set)."""

    @property
    def graph(self) -> GraphClient: ...

    @property
    def user_path(self) -> str: ...

    @property
    def exchange(self) -> ExchangeMailbox | None: ...

    @property
    def protocol(self) -> str:
        """``graph`` or ``ews``."""
        ...


@dataclass
class RunContext:
    database: Database
    unit_id: str
    organization_id: str
    member_id: str
    member_email: str
    access: MailboxAccessLike
    settings: Settings
    lease_owner: str
    budget: RequestBudget
    progress: Progress
    full: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
