"""The organization's sync rules as a value: what an admin submits and what a run reads."""

from __future__ import annotations

from dataclasses import dataclass

from m365sync.sync.models import SyncSettings

__all__ = ["DEFAULT_MAIL_FOLDERS", "SyncRules"]

DEFAULT_MAIL_FOLDERS = ("inbox", "sentitems")


@dataclass(frozen=True)
class SyncRules:
    """An organization's sync rules (privacy, folders, windows), detached from the database.

    ``SyncSettings`` is the row that stores them. An admin's changes arrive as one of these
    (``service.update_sync_settings`` checks them all at once); a run reads them with
    ``from_settings`` and may hand them to threads."""

    mail_folders: list[str]
    backfill_days: int
    log_internal: bool
    excluded_addresses: list[str]
    excluded_domains: list[str]
    headers_only: bool
    log_unknown: bool
    create_leads: bool
    delete_policy: str
    calendar_days_back: int
    calendar_days_ahead: int

    @classmethod
    def from_settings(cls, row: SyncSettings) -> SyncRules:
        """The stored rules (a row without folders syncs Inbox and Sent Items)."""
        return cls(
            mail_folders=list(row.mail_folders or DEFAULT_MAIL_FOLDERS),
            backfill_days=row.backfill_days,
            log_internal=row.log_internal,
            excluded_addresses=list(row.excluded_addresses or []),
            excluded_domains=list(row.excluded_domains or []),
            headers_only=row.headers_only,
            log_unknown=row.log_unknown,
            create_leads=row.create_leads,
            delete_policy=row.delete_policy,
            calendar_days_back=row.calendar_days_back,
            calendar_days_ahead=row.calendar_days_ahead,
        )
