"""One mailbox on an Exchange server, as the sync engine holds it: the server (login,
back-off) and the address, with the reads the engine needs."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from exchangelib import Account

from m365sync.microsoft.ews.calendar import (
    ExchangeCalendarItems,
    calendar_changed,
    calendar_window,
)
from m365sync.microsoft.ews.client import ExchangeServer
from m365sync.microsoft.ews.mail import MAX_CHANGES, MessagePage, message_changes
from m365sync.microsoft.ews.tasks import ExchangeTasks, task_changes


class ExchangeMailbox:
    """``address``'s mailbox through ``server`` (impersonated by a service account, or the
    user's own). Blocking: call from a worker thread."""

    def __init__(self, server: ExchangeServer, address: str) -> None:
        self.server = server
        self.address = address.strip().lower()
        self._account: Account | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ExchangeMailbox({self.address!r}, {self.server.ews_url!r})"

    @property
    def account(self) -> Account:
        with self._lock:
            if self._account is None:
                self._account = self.server.account(self.address)
            return self._account

    def message_changes(
        self,
        folder: str,
        sync_state: str | None,
        *,
        page_size: int = MAX_CHANGES,
        since: datetime | None = None,
        headers_only: bool = False,
    ) -> MessagePage:
        """The next page of ``folder``'s changes (``mail.message_changes``)."""
        return message_changes(
            self.server,
            self.account,
            folder,
            sync_state,
            page_size=page_size,
            since=since,
            headers_only=headers_only,
        )

    def calendar_changed(self, sync_state: str | None) -> tuple[str, bool, int]:
        """(SyncState now, changed since ``sync_state``, requests sent)."""
        return calendar_changed(self.server, self.account, sync_state)

    def calendar_window(self, start: datetime, end: datetime) -> tuple[list[dict[str, Any]], int]:
        """The window's occurrences as Graph events (``calendar.calendar_window``)."""
        return calendar_window(self.server, self.account, start, end)

    def calendar_items(self) -> ExchangeCalendarItems:
        """The default calendar, written to by ``sync.push`` without meeting messages."""
        return ExchangeCalendarItems(self.server, self.account)

    def task_changes(self, sync_state: str | None, *, page_size: int) -> MessagePage:
        """The next page of the Tasks folder's changes (``tasks.task_changes``)."""
        return task_changes(self.server, self.account, sync_state, page_size=page_size)

    def task_items(self) -> ExchangeTasks:
        """The Tasks folder, written to by ``sync.push``."""
        return ExchangeTasks(self.server, self.account)


__all__ = ["ExchangeMailbox"]
